"""Admin API and console on one in-process server (real uvicorn, emulator, fake OpenAI)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.stack import local_stack
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.helpers.speed import BEHAVIOUR_SPEED

TOKEN = "admin-" + "x" * 24
ORDER_TO = "+15550002000"  # the example flows route this number to order-status
CALLER = "+15551230077"


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_without_admin_token_there_is_no_admin_api_or_console(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.service.app")
    async with local_stack(data_dir=tmp_path, engine=False, realtime_url="ws://127.0.0.1:9/v1/realtime") as stack:
        async with httpx.AsyncClient(base_url=stack.base_url) as http:
            for method, path in [("GET", "/admin/calls"), ("GET", "/admin/calls/CA1"),
                                 ("POST", "/admin/calls/CA1/hangup"), ("GET", "/console/"),
                                 ("GET", "/console/app.js")]:
                r = await http.request(method, path, headers=bearer("anything"))
                assert r.status_code == 404, (method, path)
    assert any("admin API and console disabled" in r.getMessage() for r in caplog.records)


async def test_bearer_token_is_required(tmp_path: Path) -> None:
    async with local_stack(data_dir=tmp_path, engine=False, realtime_url="ws://127.0.0.1:9/v1/realtime",
                           admin_token=TOKEN) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url) as http:
            missing = await http.get("/admin/calls")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="phone-agent admin"'
            wrong = await http.get("/admin/calls", headers=bearer("nope"))
            assert wrong.status_code == 401
            assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
            basic = await http.get("/admin/calls", headers={"Authorization": "Basic " + TOKEN})
            assert basic.status_code == 401
            hang = await http.post("/admin/calls/CA1/hangup", headers=bearer("nope"))
            assert hang.status_code == 401
            ok = await http.get("/admin/calls", headers=bearer())
            assert ok.status_code == 200
            assert ok.json()["live"] == [] and ok.json()["recent"] == []
            assert ok.json()["instance"] == stack.service.instance_id
            bad = await http.get("/admin/calls?limit=0", headers=bearer())
            assert bad.status_code == 400
            assert (await http.get("/admin/calls/CA1", headers=bearer())).status_code == 404
            assert (await http.post("/admin/calls/CA1/hangup", headers=bearer())).status_code == 404
            assert (await http.get("/admin/calls/bad%20sid", headers=bearer())).status_code == 400


async def test_list_inspect_and_hang_up_a_live_call(tmp_path: Path) -> None:
    scenario = Scenario()
    async with FakeOpenAIRealtime(scenario) as fake:
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, admin_token=TOKEN) as stack, \
                httpx.AsyncClient(base_url=stack.base_url, headers=bearer()) as http:
            target = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=CALLER)
            sid = target.call_sid
            async with EmulatedCall(target, speed=BEHAVIOUR_SPEED) as call:
                await call.wait_for_bot_reply(timeout=10)  # the greeting played: call is live

                listing = (await http.get("/admin/calls")).json()
                (live,) = listing["live"]
                assert live["call_sid"] == sid and live["local"] is True
                assert live["flow"] == "order-status" and live["caller"] == "+1555***0077"
                assert live["state"] in ("listening", "speaking", "greeting")

                detail = (await http.get(f"/admin/calls/{sid}")).json()
                assert detail["live"] is True and detail["instance"] == stack.service.instance_id
                assert detail["record"]["call_sid"] == sid
                assert detail["record"]["outcome"] == "in_progress"
                assert any(line["role"] == "bot" for line in detail["record"]["transcript_lines"])

                r = await http.post(f"/admin/calls/{sid}/hangup")
                assert r.status_code == 200, r.text
                assert r.json() == {"ended": True, "outcome": "admin_hangup",
                                    "instance": stack.service.instance_id}
                await call.wait_closed(5)
                assert call.closed_by_server

            detail = (await http.get(f"/admin/calls/{sid}")).json()
            assert detail["live"] is False
            assert detail["record"]["outcome"] == "admin_hangup"
            assert [e["outcome"] for e in detail["record"]["events"] if e["kind"] == "hangup"] == ["admin_hangup"]
            listing = (await http.get("/admin/calls?limit=5")).json()
            assert listing["live"] == []
            (recent,) = [c for c in listing["recent"] if c["call_sid"] == sid]
            assert recent["outcome"] == "admin_hangup" and recent["flow"] == "order-status"
            again = await http.post(f"/admin/calls/{sid}/hangup")
            assert again.status_code == 409 and again.json()["outcome"] == "admin_hangup"
    fake.assert_clean()


async def test_console_is_served_with_a_strict_policy(tmp_path: Path) -> None:
    async with local_stack(data_dir=tmp_path, engine=False, realtime_url="ws://127.0.0.1:9/v1/realtime",
                           admin_token=TOKEN) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url) as http:
            r = await http.get("/console")
            assert r.status_code == 308 and r.headers["location"] == "/console/"
            page = await http.get("/console/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert '<script type="module" src="app.js">' in page.text and "http" not in page.text.split("<body>")[1]
            js = await http.get("/console/app.js")
            assert js.headers["content-type"].startswith("text/javascript")
            assert "innerHTML" not in js.text  # caller speech is rendered as text, never markup
            assert (await http.get("/console/style.css")).status_code == 200
            assert (await http.get("/console/../agent/server.py")).status_code == 404
            assert (await http.get("/console/nope.js")).status_code == 404
