"""`phone-agent serve` as an operator runs it, checked from outside: it refuses to start
open or misconfigured, and the switch for local experiments is loud and local-only.

(a) no TWILIO_AUTH_TOKEN: no server, so no forged webhook can get a stream; every other
    configuration mistake is named in the same message;
(b) with the token, webhooks signed with the empty key or another key get 403, and no
    model session is opened for them (prewarm happens only for signed calls);
(c) --unsigned-webhooks: refused on a public address; on localhost every webhook it
    takes unsigned is logged as such.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.ops.cluster import DESK_NUMBER, FLOWS_YAML
from tests.ops.procs import serve_process, serve_refused

CALLER = "+15551230042"


def base_env(tmp_path: Path, fake: FakeOpenAIRealtime) -> dict[str, str]:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS_YAML)
    return {"OPENAI_REALTIME_URL": fake.url, "OPENAI_API_KEY": fake.scenario.api_key,
            "FLOWS_FILE": str(flows), "DATA_DIR": str(tmp_path / "data")}


async def test_serve_refuses_to_start_open_or_misconfigured(tmp_path: Path) -> None:
    code, err = await serve_refused({"DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path)
    assert code == 2, err
    assert "TWILIO_AUTH_TOKEN is not set" in err and "phone-agent serve --local" in err
    code, err = await serve_refused({
        "TWILIO_AUTH_TOKEN": "x" * 32, "REDIS_URL": "redis://127.0.0.1:9/0",
        "PUBLIC_URL": "http://agent.example.com", "ADMIN_TOKEN": "short", "DATA_DIR": str(tmp_path / "data"),
    }, cwd=tmp_path)  # fmt: skip
    assert code == 2, err
    for named in ("STREAM_TOKEN_SECRET is not", "PUBLIC_URL is 'http://agent.example.com', not https://",
                  "ADMIN_TOKEN is 5 characters"):
        assert named in err, err


async def test_forged_webhooks_get_403_and_no_model_session(tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    async with FakeOpenAIRealtime(Scenario()) as fake:
        env = {**base_env(tmp_path, fake), "TWILIO_AUTH_TOKEN": token, "PUBLIC_URL": "http://127.0.0.1:1"}
        async with serve_process(env, cwd=tmp_path) as server, httpx.AsyncClient(base_url=server.base_url) as http:
            form = {"CallSid": "CA" + secrets.token_hex(16), "From": CALLER, "To": DESK_NUMBER}
            signed_url = "http://127.0.0.1:1/twilio/voice"
            for key in ("", "guessed-token"):
                signature = RequestValidator(key).compute_signature(signed_url, form)
                r = await http.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})
                assert r.status_code == 403 and "<Stream" not in r.text
            assert (await http.post("/twilio/voice", data=form)).status_code == 403
            # The same request signed with the real token is answered with a stream.
            target = await dial_webhook(server.base_url, token, to=DESK_NUMBER, from_=CALLER,
                                        public_url="http://127.0.0.1:1", ws_url=server.ws_url)
            assert target.parameters["token"]
            await fake.wait_for(lambda: len(fake.sessions) == 1, 5)  # warmed for it alone
        assert len(fake.sessions) == 1


async def test_unsigned_webhooks_are_for_localhost_and_say_so(tmp_path: Path) -> None:
    async with FakeOpenAIRealtime(Scenario()) as fake:
        env = base_env(tmp_path, fake)
        code, err = await serve_refused({**env, "HOST": "0.0.0.0"}, "--unsigned-webhooks", cwd=tmp_path)
        assert code == 2 and "only listens on localhost" in err, err
        async with serve_process(env, "--unsigned-webhooks", cwd=tmp_path) as server:
            # Any key at all: nothing is checked. The call still needs its stream token.
            target = await dial_webhook(server.base_url, "anything", to=DESK_NUMBER, from_=CALLER)
            async with EmulatedCall(target, speed=4) as call:
                await call.wait_for_bot_reply(timeout=15)
            await server.wait_line(lambda m: "UNSIGNED webhook accepted" in m and target.call_sid in m, 5)
            assert any("webhooks are NOT authenticated" in m for m in server.messages())
