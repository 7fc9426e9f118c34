"""The softphone's call API: what the voice webhook would have given Twilio, behind the
admin token, checked on the media stream exactly like a real call's."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent.devkit.stack import local_stack
from agent.service.app import create_app
from agent.service.settings import Settings
from telephony.tokens import TokenError

TOKEN = "softphone-" + "k" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_softphone_call_carries_the_webhooks_parameters_and_a_single_use_token() -> None:
    async with local_stack(engine=False, admin_token=TOKEN) as stack, httpx.AsyncClient(base_url=stack.base_url) as http:
        assert (await http.post("/admin/phone/call", json={})).status_code == 401
        flows = (await http.get("/admin/phone/flows", headers=AUTH)).json()
        assert flows["numbers"]["+15550002000"] == "order-status"

        # Routed by the called number, like `To`; or by flow name, like `?flow=`.
        by_number = (await http.post("/admin/phone/call", headers=AUTH,
                                     json={"from": "+15551230077", "to": "+15550002000"})).json()
        assert by_number["flow"] == "order-status"
        assert by_number["stream_url"] == stack.base_url.replace("http", "ws") + "/twilio/media"
        sid, params = by_number["call_sid"], by_number["parameters"]
        assert sid.startswith("CA") and len(sid) == 34
        assert {k: v for k, v in params.items() if k != "token"} == {
            "flow": "order-status", "from": "+15551230077", "to": "+15550002000"}
        by_name = (await http.post("/admin/phone/call", headers=AUTH, json={"flow": "appointment-desk"})).json()
        assert by_name["flow"] == "appointment-desk"

        # The token binds the call and its parameters, and opens one stream only.
        tokens = stack.service.shared.tokens
        with pytest.raises(TokenError, match="parameters changed"):
            await tokens.verify(params["token"], sid, {**params, "flow": "appointment-desk"})
        await tokens.verify(params["token"], sid, params)
        with pytest.raises(TokenError, match="already used"):
            await tokens.verify(params["token"], sid, params)

        unknown = await http.post("/admin/phone/call", headers=AUTH, json={"flow": "nope"})
        assert unknown.status_code == 404
        bad = await http.post("/admin/phone/call", headers=AUTH, json={"to": "<script>"})
        assert bad.status_code == 400


async def test_with_an_admin_port_the_softphone_streams_to_the_public_url(tmp_path: Path) -> None:
    """The console on ADMIN_PORT may open the stream on PUBLIC_URL (its CSP says so); without
    PUBLIC_URL the call API says what is missing instead of handing out a dead stream URL."""
    for public_url, status in (("https://agent.example.com", 200), (None, 409)):
        settings = Settings(twilio_auth_token="t" * 32, admin_token=TOKEN, admin_port=0,
                            public_url=public_url, data_dir=tmp_path)
        admin_app = create_app(settings).state.admin_app
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin_app),
                                     base_url="http://127.0.0.1:9000") as admin:
            csp = (await admin.get("/console/phone")).headers["content-security-policy"]
            assert ("connect-src 'self' wss://agent.example.com;" in csp) == (public_url is not None), csp
            if status == 409:
                reply = await admin.post("/admin/phone/call", headers=AUTH, json={"to": "+15550002000"})
                assert reply.status_code == 409 and "PUBLIC_URL" in reply.json()["error"]
