"""Dialing like Twilio: the signed voice webhook and the TwiML answer.

`dial_webhook()` POSTs the form Twilio sends when a call comes in, signed with
`X-Twilio-Signature` over the URL Twilio would have requested (the server's public
URL), and reads the TwiML answer the way Twilio does: verbs in order, `<Reject>` and
`<Hangup>` end the call, `<Connect><Stream>` opens a bidirectional media stream.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

WEBHOOK_PATH = "/twilio/voice"
# Verbs Twilio executes before reaching a stream; the emulator skips them (it has no
# speaker for <Say>), but records them on the target.
_PASSIVE_VERBS = frozenset({"Say", "Play", "Pause", "Start", "Stop"})


class EmulatorError(Exception):
    """Base of everything the emulator raises on purpose."""


class WebhookError(EmulatorError):
    """The voice webhook answered with a non-2xx status."""

    def __init__(self, message: str, status_code: int, body: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class WebhookForbidden(WebhookError):
    """403: the server rejected our X-Twilio-Signature."""


class TwimlError(EmulatorError):
    """The answer is not TwiML Twilio could execute."""


class CallRejected(EmulatorError):
    """The TwiML said `<Reject>`: the caller hears busy/ringing, no stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"call rejected by TwiML <Reject reason={reason!r}>")
        self.reason = reason


class CallHungUp(EmulatorError):
    """The TwiML said `<Hangup>` before any stream."""


class NoStreamError(TwimlError):
    """Valid TwiML, but it never reaches `<Connect><Stream>`."""


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 lowercase hex digits (34 chars)."""
    return prefix + uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where the TwiML told Twilio to stream, and what to send in `start`."""

    call_sid: str
    account_sid: str
    from_: str
    to: str
    stream_url: str  # exactly as in the TwiML
    ws_url: str  # what the emulator connects to (query dropped, maybe rewritten to local)
    parameters: dict[str, str] = field(default_factory=dict)
    stream_name: str | None = None
    status_callback: str | None = None
    connect_action: str | None = None
    verbs_before: tuple[str, ...] = ()  # e.g. ("Say",) executed before the stream
    warnings: tuple[str, ...] = ()  # things real Twilio would choke on
    twiml: str = ""


async def dial_webhook(
    base_url: str,
    auth_token: str,
    *,
    to: str,
    from_: str,
    call_sid: str | None = None,
    flow: str | None = None,
    public_url: str | None = None,
    account_sid: str | None = None,
    ws_url: str | None = None,
    extra_params: dict[str, str] | None = None,
    client: httpx.AsyncClient | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 (httpx's own per-request timeout)
) -> StreamTarget:
    """POST Twilio's signed inbound-call webhook and return the stream to connect to.

    `public_url` is the server's configured PUBLIC_URL: Twilio signs the URL it
    requested, which is the public one, while we actually send the request to
    `base_url`. A `wss://public-host/...` stream URL is then rewritten to `base_url`'s
    host (ws:// for http://) unless `ws_url` names the socket to connect to outright.
    """
    query = "?" + urlencode({"flow": flow}) if flow else ""
    request_url = base_url.rstrip("/") + WEBHOOK_PATH + query
    signed_url = (public_url or base_url).rstrip("/") + WEBHOOK_PATH + query
    params = {
        "CallSid": call_sid or new_sid("CA"),
        "AccountSid": account_sid or new_sid("AC"),
        "From": from_,
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **(extra_params or {}),
    }
    headers = {
        "X-Twilio-Signature": RequestValidator(auth_token).compute_signature(signed_url, params),
        "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*",
    }
    if client is None:
        async with httpx.AsyncClient(timeout=timeout) as own:
            response = await own.post(request_url, data=params, headers=headers)
    else:
        response = await client.post(request_url, data=params, headers=headers, timeout=timeout)

    if response.status_code == 403:
        raise WebhookForbidden(
            f"POST {request_url} -> 403: the server rejected X-Twilio-Signature "
            f"(signed for {signed_url}; check the auth token and that public_url "
            "matches the server's PUBLIC_URL)",
            403,
            response.text,
        )
    if not 200 <= response.status_code < 300:
        raise WebhookError(
            f"POST {request_url} -> {response.status_code}: {response.text[:200]!r}",
            response.status_code,
            response.text,
        )
    return parse_twiml(
        response.text,
        content_type=response.headers.get("content-type", ""),
        call_sid=params["CallSid"],
        account_sid=params["AccountSid"],
        from_=from_,
        to=to,
        local_base=base_url if public_url else None,
        public_url=public_url,
        ws_url=ws_url,
    )


def parse_twiml(
    text: str,
    *,
    content_type: str = "text/xml",
    call_sid: str,
    account_sid: str,
    from_: str,
    to: str,
    local_base: str | None = None,
    public_url: str | None = None,
    ws_url: str | None = None,
) -> StreamTarget:
    """Execute a TwiML answer the way Twilio would, up to the first `<Connect><Stream>`."""
    mime = content_type.split(";")[0].strip().lower()
    if mime not in ("text/xml", "application/xml"):
        raise TwimlError(
            f"answer is {mime or 'untyped'!r}, not TwiML (Twilio needs text/xml or "
            f"application/xml); body starts {text[:80]!r}"
        )
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TwimlError(
            f"answer is not well-formed XML ({exc}); body starts {text[:80]!r}"
        ) from None
    if root.tag != "Response":
        raise TwimlError(f"TwiML root must be <Response>, got <{root.tag}>")

    before: list[str] = []
    for verb in root:
        if verb.tag == "Reject":
            raise CallRejected(verb.get("reason", "rejected"))
        if verb.tag == "Hangup":
            raise CallHungUp(f"TwiML hung up the call (after {before or 'no verbs'})")
        if verb.tag == "Connect":
            stream = verb.find("Stream")
            if stream is None:
                inner = [child.tag for child in verb]
                raise NoStreamError(f"<Connect> holds {inner}, not <Stream>")
            return _target(
                verb,
                stream,
                text,
                before,
                call_sid,
                account_sid,
                from_,
                to,
                local_base,
                public_url,
                ws_url,
            )
        if verb.tag in _PASSIVE_VERBS:
            before.append(verb.tag)
            continue
        # <Dial>, <Redirect>, <Gather>, <Enqueue>, ...: the call goes somewhere else.
        raise NoStreamError(f"TwiML reaches <{verb.tag}> before any <Connect><Stream>")
    raise NoStreamError(
        f"TwiML ends after {before or 'no verbs'} without <Connect><Stream>: Twilio hangs up"
    )


def _target(
    connect: ET.Element,
    stream: ET.Element,
    text: str,
    before: list[str],
    call_sid: str,
    account_sid: str,
    from_: str,
    to: str,
    local_base: str | None,
    public_url: str | None,
    ws_url: str | None,
) -> StreamTarget:
    url = stream.get("url")
    if not url:
        raise TwimlError("<Stream> has no url attribute")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise TwimlError(f"<Stream url={url!r}> is not a WebSocket URL")
    warnings: list[str] = []
    if parts.scheme != "wss":
        warnings.append(f"Twilio only connects to wss:// streams, not {url!r}")
    if parts.query:
        # Twilio drops the query string: a handler that needs ?token= never gets it.
        warnings.append(f"Twilio drops the query string of {url!r}; use <Parameter>")
    params: dict[str, str] = {}
    for p in stream.iter("Parameter"):
        name = p.get("name")
        if not name:
            raise TwimlError("<Parameter> without a name")
        params[name] = p.get("value", "")
    target_url = ws_url or _rewrite(parts, local_base, public_url)
    return StreamTarget(
        call_sid=call_sid,
        account_sid=account_sid,
        from_=from_,
        to=to,
        stream_url=url,
        ws_url=target_url,
        parameters=params,
        stream_name=stream.get("name"),
        status_callback=stream.get("statusCallback"),
        connect_action=connect.get("action"),
        verbs_before=tuple(before),
        warnings=tuple(warnings),
        twiml=text,
    )


def _rewrite(parts: SplitResult, local_base: str | None, public_url: str | None) -> str:
    """Point a stream on the public host at the local server we really talk to."""
    scheme, netloc, path = parts.scheme, parts.netloc, parts.path or "/"
    if local_base and public_url and urlsplit(public_url).hostname == parts.hostname:
        local = urlsplit(local_base)
        scheme = "wss" if local.scheme == "https" else "ws"
        netloc = local.netloc
    return urlunsplit((scheme, netloc, path, "", ""))
