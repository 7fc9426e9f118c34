"""The flow webhook's resolution reaches the call when the media stream lands on another
instance: two servers (real uvicorn each) share one Redis, Twilio's webhook goes to A and
its stream to B, as a load balancer may send them. B never saw the webhook, yet greets the
known caller by name with the webhook's tools; a resolution gone from Redis leaves B the
static flow, with a record entry saying so."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.runner import record_collector
from agent.devkit.stack import bind_free, run_app
from agent.service.app import Service, create_app
from agent.service.flow_resolver import KIND
from agent.service.settings import Settings
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.agent.hook_flows import KNOWN_CALLER, ORDERS_TO, SECRET_ENV, write_flows
from tests.fakes.customer_backend import customer_backend
from tests.ops.conftest import delete_matching

MARIA_GREETING = "Hello Maria, welcome back to Acme. Is this about your order?"


@contextlib.asynccontextmanager
async def _instance(tmp: Path, name: str, **shared: object) -> AsyncIterator[tuple[str, Service]]:
    sock = bind_free()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(public_url=base, data_dir=tmp / name, overload_lag_ms=0.0, **shared)  # type: ignore[arg-type]
    app = create_app(settings)
    async with run_app(app, sock) as url:
        yield url, app.state.service


@contextlib.asynccontextmanager
async def _pair(tmp: Path, redis_url: str, prefix: str, fake: FakeOpenAIRealtime, flows: Path):
    shared = dict(
        twilio_auth_token=secrets.token_hex(16), stream_token_secret=secrets.token_hex(32),
        redis_url=redis_url, redis_prefix=prefix, openai_realtime_url=fake.url,
        openai_api_key=fake.scenario.api_key, flows_file=flows,
    )  # fmt: skip
    async with _instance(tmp, "a", **shared) as a, _instance(tmp, "b", **shared) as b:
        yield a, b, shared["twilio_auth_token"]


async def _call_via(a_url: str, b_url: str, auth: str, b: Service, between=None):
    """Webhook to A, stream to B; the record B keeps."""
    records: dict = {}
    b.switchboard.listeners.append(record_collector(records))
    target = await dial_webhook(a_url, auth, to=ORDERS_TO, from_=KNOWN_CALLER,
                                ws_url=b_url.replace("http://", "ws://") + "/twilio/media")
    records[target.call_sid] = asyncio.get_running_loop().create_future()
    if between is not None:
        await between(target)
    async with EmulatedCall(target) as call:
        greeting = await call.wait_for_bot_reply(timeout=10)
    return await asyncio.wait_for(records[target.call_sid], 10), greeting


async def test_the_instance_holding_the_stream_gets_the_webhook_s_flow_from_redis(
    tmp_path: Path, redis_url: str, prefix: str, redis_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        async with customer_backend() as backend, FakeOpenAIRealtime(Scenario()) as fake:
            monkeypatch.setenv(SECRET_ENV, backend.secret)
            flows = write_flows(tmp_path, backend.base_url)
            async with _pair(tmp_path, redis_url, prefix, fake, flows) as ((a_url, a), (b_url, b), auth):
                record, greeting = await _call_via(a_url, b_url, auth, b)
                assert len(backend.seen("/flow")) == 1  # only A asked the backend
                assert not a.switchboard.calls and record.outcome == "caller_hung_up"
        spoke = [s for s in fake.sessions if s.responses]  # B's; A's warm one was never used
        assert len(spoke) == 1
        assert spoke[0].responses[0].text == MARIA_GREETING and greeting.bot_audio_played_ms > 300
        assert [t["name"] for t in spoke[0].config["tools"]] == ["lookup_order", "end_call"]
        assert "You help Maria" in spoke[0].config["instructions"]
        (event,) = [e for e in record.events if e["kind"] == "flow_webhook"]
        assert event["status"] == "used"
        # B took it: nothing is left behind in Redis for this call.
        assert [k async for k in redis_client.scan_iter(match=f"{prefix}:rec:{{{KIND}}}:item:*")] == []
    finally:
        await delete_matching(redis_client, f"{prefix}*", f"{{{prefix}}}*")


async def test_a_resolution_lost_on_the_way_leaves_the_static_flow_and_says_so(
    tmp_path: Path, redis_url: str, prefix: str, redis_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lose_it(_target) -> None:
        assert await delete_matching(redis_client, f"{prefix}:rec:{{{KIND}}}:item:*") == 1

    try:
        async with customer_backend() as backend, FakeOpenAIRealtime(Scenario()) as fake:
            monkeypatch.setenv(SECRET_ENV, backend.secret)
            flows = write_flows(tmp_path, backend.base_url)
            async with _pair(tmp_path, redis_url, prefix, fake, flows) as ((a_url, _), (b_url, b), auth):
                record, greeting = await _call_via(a_url, b_url, auth, b, between=lose_it)
        spoke = [s for s in fake.sessions if s.responses]
        assert spoke[0].responses[0].text == "Hi, you've reached Acme orders."
        assert greeting.bot_audio_played_ms > 300
        (event,) = [e for e in record.events if e["kind"] == "flow_webhook"]
        assert (event["status"], event["reason"]) == ("fallback", "lost")
    finally:
        await delete_matching(redis_client, f"{prefix}*", f"{{{prefix}}}*")
