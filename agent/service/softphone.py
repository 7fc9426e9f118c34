"""The console's softphone: the server side of `/console/phone`.

    GET  /admin/phone/flows   the flows and the numbers routed to them (to fill the page)
    POST /admin/phone/call    {"flow"?, "from"?, "to"?} -> what the voice webhook would
                              have given Twilio for such a call: the media stream URL and
                              its <Parameter>s (flow, numbers, single-use stream token)

The browser then opens the media stream itself and speaks Twilio's side of it, into the
same `/twilio/media` endpoint real calls use. There is no second audio path: the stream
is authenticated by its token, exactly like one from Twilio. The admin token stands in
for Twilio's signature: only the console's operator can place such a call.
"""

from __future__ import annotations

import json
import logging
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.flows import Flows
from agent.service.admin import JSON, require_token
from telephony.numbers import mask_number
from telephony.webhook import FlowChooser, WebhookConfig, media_url, stream_answer

log = logging.getLogger(__name__)

DEFAULT_FROM = "+15550100999"  # a fictional number (555-01xx), the caller unless one is chosen
# What a webhook's From/To can hold: E.164, or a `client:`/`sip:` address.
_NUMBER = re.compile(r"^[A-Za-z0-9+:@._-]{0,64}$")
_FLOW = re.compile(r"^[A-Za-z0-9._-]{0,64}$")
MAX_BODY = 2048


def new_call_sid() -> str:
    """A call sid shaped like Twilio's (`CA` + 32 hex), so every part of the service takes it."""
    return "CA" + secrets.token_hex(16)


def softphone_routes(
    token: str, webhook: WebhookConfig, choose_flow: FlowChooser, flows: Flows,
    *, separate_admin: bool = False,
) -> list[BaseRoute]:
    """`separate_admin`: these routes are served on ADMIN_PORT, apart from the media stream."""
    async def list_flows(_request: Request) -> Response:
        return JSON({
            "flows": sorted(flows.flows),
            "numbers": dict(sorted(flows.numbers.items())),
            "default_flow": flows.default_flow,
            "default_from": DEFAULT_FROM,
        })  # fmt: skip

    async def place_call(request: Request) -> Response:
        body = await request.body()
        try:
            if len(body) > MAX_BODY:
                raise ValueError("body too big")
            wanted = json.loads(body or b"{}")
            if not isinstance(wanted, dict):
                raise ValueError("not an object")
            flow = str(wanted.get("flow") or "")
            caller = str(wanted.get("from") or DEFAULT_FROM)
            called = str(wanted.get("to") or "")
        except ValueError as exc:
            return JSON({"error": f"expected a JSON object with flow, from, to: {exc}"}, status_code=400)
        if not (_FLOW.match(flow) and _NUMBER.match(caller) and _NUMBER.match(called)):
            return JSON({"error": "flow, from or to has characters no phone number has"}, status_code=400)
        if separate_admin and webhook.public_url is None:
            # The request came in on the admin port: a stream URL built from it would miss
            # /twilio/media, which only the public port serves.
            return JSON({"error": "with ADMIN_PORT set, the softphone needs PUBLIC_URL to find "
                                  "the media stream"}, status_code=409)
        if webhook.busy():
            return JSON({"error": "busy: this instance takes no new calls now"}, status_code=503)
        call_sid = new_call_sid()
        # The fields Twilio's voice webhook would carry for this call (`flow` as its `?flow=`).
        params = {"CallSid": call_sid, "From": caller, "To": called, "Direction": "inbound",
                  "CallStatus": "ringing", **({"flow": flow} if flow else {})}
        answer = await stream_answer(webhook, choose_flow, params)
        if answer is None:
            return JSON({"error": f"no flow takes a call to {called or '(no number)'}"
                                  + (f" with flow {flow}" if flow else "")}, status_code=404)
        log.info("softphone: call %s from %s to %s -> flow %r", call_sid, mask_number(caller),
                 mask_number(called), answer.flow)
        return JSON({
            "call_sid": call_sid,
            "flow": answer.flow,
            "stream_url": media_url(request, webhook),
            "parameters": answer.parameters,
        })  # fmt: skip

    return [
        Route("/admin/phone/flows", require_token(token, list_flows), methods=["GET"]),
        Route("/admin/phone/call", require_token(token, place_call), methods=["POST"]),
    ]
