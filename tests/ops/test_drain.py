"""SIGTERM on a real `phone-agent serve`: turn new calls away, let live ones finish.

While draining the process keeps listening, so Twilio gets a busy answer (not a
connection error) and the balancer sees /readyz 503; it exits once the last call ends,
or hangs the stragglers up at DRAIN_DEADLINE_S.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, tone
from telephony.testing.emulator import CallRejected, EmulatedCall
from tests.ops.cluster import cluster
from tools.store import open_store


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIRealtime]:
    async with FakeOpenAIRealtime(Scenario(default_reply="Of course, here is the answer you asked for.")) as server:
        yield server


async def stored_record(data_dir: Path, call_sid: str) -> dict:
    store = open_store(None, data_dir)
    try:
        record = await store.get_record("call", call_sid)
    finally:
        await store.close()
    assert record is not None, f"no record for {call_sid}"
    return record


async def test_sigterm_turns_calls_away_and_exits_when_the_live_call_ends(
    fake: FakeOpenAIRealtime, tmp_path: Path
) -> None:
    deadline_s = 60.0
    async with cluster(tmp_path, instances=1, openai_url=fake.url, openai_key=fake.scenario.api_key,
                       redis_url=None, extra_env={"DRAIN_DEADLINE_S": str(deadline_s)}) as run:
        (server,) = run.servers
        target = await run.dial(server)
        loop = asyncio.get_running_loop()
        async with EmulatedCall(target) as call, httpx.AsyncClient(base_url=server.base_url) as http:
            await call.wait_for_bot_reply(timeout=15)
            assert (await http.get("/readyz")).status_code == 200

            server.proc.send_signal(signal.SIGTERM)
            await server.wait_line(lambda m: m.startswith("draining:"), 10)
            with pytest.raises(CallRejected) as rejected:  # still listening, answering busy
                await run.dial(server)
            assert rejected.value.reason == "busy"
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["draining"] is True

            # The live call is untouched: the caller talks, the bot answers.
            await call.say(tone(700, hz=300.0, amplitude=6000))
            reply = await call.wait_for_bot_reply(timeout=15)
            assert reply.bot_audio_played_ms > 1000
            assert server.proc.returncode is None and not call.closed
            hung_up_at = loop.time()
        # Leaving the block hangs up like a caller; the process follows.
        assert await server.wait_exit(15) == 0
        assert loop.time() - hung_up_at < deadline_s / 2
    record = await stored_record(tmp_path / "a" / "data", target.call_sid)
    assert record["outcome"] == "caller_hung_up"
    assert len(record["turn_latencies_ms"]) == 1


async def test_sigterm_hangs_up_calls_still_live_at_the_deadline(
    fake: FakeOpenAIRealtime, tmp_path: Path
) -> None:
    deadline_s = 2.0
    async with cluster(tmp_path, instances=1, openai_url=fake.url, openai_key=fake.scenario.api_key,
                       redis_url=None, extra_env={"DRAIN_DEADLINE_S": str(deadline_s)}) as run:
        (server,) = run.servers
        target = await run.dial(server)
        loop = asyncio.get_running_loop()
        async with EmulatedCall(target) as call:
            await call.wait_for_bot_reply(timeout=15)
            server.proc.send_signal(signal.SIGTERM)
            sent_at = loop.time()
            await call.wait_closed(deadline_s + 10)  # the caller never hangs up
            closed_after = loop.time() - sent_at
            assert call.closed_by_server and call.close_reason == "drain_deadline"
        assert await server.wait_exit(10) == 0
        exited_after = loop.time() - sent_at
    assert deadline_s - 0.2 <= closed_after <= deadline_s + 3
    assert exited_after <= deadline_s + 8
    record = await stored_record(tmp_path / "a" / "data", target.call_sid)
    assert record["outcome"] == "drain_deadline"
