"""Issue 13: Redis goes away in the middle of live calls, then comes back.

A private redis-server (append-only file on, like a managed Redis) is stopped and
restarted, and frozen with SIGSTOP, while an in-process phone-agent talks to the fake
OpenAI server through the Twilio emulator. What must hold: a booking the model asks for
while Redis is down is refused with a sentence and is not half made; /readyz says 503
while Redis does not answer and 200 once it does; a new call arriving meanwhile hears an
apology; every call gets its record once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like
from tools.store import StoreUnavailable

APPOINTMENTS = "+15550001000"
TODAY = "2026-12-01"  # a Tuesday: the 2nd and 3rd are open days


@dataclass
class PrivateRedis:
    """A redis-server of this test's own, on a free port, with its data on disk."""

    port: int
    directory: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--dir", str(self.directory), "--logfile", "redis.log",
        )  # fmt: skip
        client = aioredis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            for _ in range(100):  # until it accepts connections (no event to await)
                try:
                    await client.ping()
                    return
                except (aioredis.ConnectionError, OSError):
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"redis-server did not start; see {self.directory}/redis.log")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()  # SIGTERM: redis flushes its append-only file, then exits
        await asyncio.wait_for(self.proc.wait(), 10)

    def freeze(self, frozen: bool) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "redis").mkdir()
    server = PrivateRedis(port, tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.returncode is None:
            server.freeze(False)
            server.proc.kill()
            await server.proc.wait()


async def test_redis_stopped_and_restarted_mid_call(private_redis: PrivateRedis, tmp_path: Path) -> None:
    scenario = Scenario(turns=[
        ScriptedTurn(transcript="book tomorrow at ten", tool=ToolStep(
            "book_appointment", {"day": "2026-12-02", "time": "10:00", "name": "Ada Lovelace"},
            reply="Booked: {output}")),
        ScriptedTurn(transcript="and wednesday at eleven", tool=ToolStep(
            "book_appointment", {"day": "2026-12-03", "time": "11:00", "name": "Ada Lovelace"},
            reply="Sorry: {output}")),
    ])  # fmt: skip
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(
            data_dir=tmp_path / "data", engine=False, realtime_url=fake.url,
            openai_api_key=scenario.api_key, redis_url=private_redis.url, tools_today=TODAY,
            prewarm_sessions=False,
        ) as stack, httpx.AsyncClient(base_url=stack.base_url) as http:  # fmt: skip
            stack.watch(record_collector(records))
            assert (await http.get("/readyz")).status_code == 200

            target, call = await dial(stack, records, to=APPOINTMENTS, from_="+15551230001")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await call.wait_for_bot_reply(timeout=10)  # booked while Redis is up

                await private_redis.stop()
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["store"] == "not answering"

                await call.say(speech_like(600))
                await call.wait_for_bot_reply(timeout=15)  # the second booking is refused

                # A new call now: its stream token cannot be checked, so it hears an
                # apology and ends; it is not left in silence.
                target2, call2 = await dial(stack, records, to=APPOINTMENTS, from_="+15551230002")
                async with call2:
                    apology = await call2.wait_for_bot_reply(timeout=15)
                    await call2.wait_closed(timeout=20)
                assert apology.bot_audio_played_ms > 1000
            spooled = stack.service.shared.records.pending
            await asyncio.wait_for(_until(lambda: len(spooled()) == 2), 20)

            await private_redis.start()  # the same port and data directory
            assert await stack.service.shared.records.flush() == 2
            assert (await http.get("/readyz")).status_code == 200
            store = stack.store
            first = await store.get_record("call", target.call_sid)
            second = await store.get_record("call", target2.call_sid)
            bookings = await store.find_by_phone("+15551230001")

    assert first is not None and second is not None
    assert second["outcome"] == "service_unavailable"
    assert [e["kind"] for e in second["events"]] == ["apology"]
    ok, refused = first["tool_calls"]
    assert ok["status"] == "ok" and ok["result"]["status"] == "booked"
    assert refused["status"] == "error"
    assert refused["result"] == {"error": StoreUnavailable.SENTENCE, "retryable": True}
    # What the model was told is the sentence, not a driver's exception text.
    outputs = [json.loads(o["output"]) for s in fake.sessions for o in s.function_outputs]
    assert outputs[1] == {"error": StoreUnavailable.SENTENCE, "retryable": True}
    # The first booking survived the restart; the refused one was not half made.
    assert [(b.day.isoformat(), b.time, b.status) for b in bookings] == [("2026-12-02", "10:00", "active")]


async def test_a_frozen_redis_costs_seconds_not_forever(private_redis: PrivateRedis, tmp_path: Path) -> None:
    """SIGSTOP: the TCP connection stays up and nothing answers. Each Redis client has a
    reply timeout, so readiness and tools give up instead of hanging."""
    async with local_stack(data_dir=tmp_path / "data", engine=False, realtime_url="ws://127.0.0.1:9",
                           redis_url=private_redis.url) as stack, \
            httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:  # fmt: skip
        assert (await http.get("/readyz")).status_code == 200
        private_redis.freeze(True)
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            # The store is asked at most once a second: within about two, readiness knows.
            while (ready := await http.get("/readyz")).status_code == 200:  # noqa: ASYNC110
                assert loop.time() - t0 < 3, "still ready 3 s into the freeze"
            assert ready.json()["store"] == "not answering" and loop.time() - t0 < 3
            t0 = loop.time()
            with pytest.raises(StoreUnavailable):
                await stack.store.find_by_phone("+15551230001")
            assert loop.time() - t0 < 4
        finally:
            private_redis.freeze(False)
        assert (await http.get("/readyz")).status_code in (200, 503)  # answered, either way


async def _until(condition: object) -> None:
    """Poll a condition on disk (files appear; there is no event to await)."""
    assert callable(condition)
    while not condition():  # noqa: ASYNC110 - files on disk: no event to await
        await asyncio.sleep(0.05)
