"""New calls are turned away while the event loop lags; live calls are left alone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.service.overload import LoopLag
from telephony.testing.emulator import CallRejected, dial_webhook
from tests.agent.conftest import dial, speech_like
from tests.agent.test_observability import metric


def feed(lag: LoopLag, start: float, seconds: float, lag_ms: float) -> float:
    """Samples every 50 ms for `seconds`; returns the time after the last one."""
    t = start
    for _ in range(round(seconds / 0.05)):
        t += 0.05
        lag.note(t, lag_ms)
    return t


def test_sustained_lag_trips_it_and_it_clears_below_half_the_limit() -> None:
    lag = LoopLag(40)
    t = feed(lag, 0.0, 1.0, 100.0)
    assert not lag.overloaded  # start-up: less than a whole window seen
    t = feed(lag, t, 1.5, 100.0)
    assert lag.overloaded and lag.lag_ms == 100
    t = feed(lag, t, 2.5, 30.0)  # under the limit but above half: still overloaded
    assert lag.overloaded
    feed(lag, t, 2.5, 10.0)
    assert not lag.overloaded and lag.lag_ms == 10


def test_a_few_slow_moments_do_not_trip_it() -> None:
    lag = LoopLag(40)
    t = 0.0
    for i in range(100):  # one 300 ms stall in every four samples (a collection, a burst)
        t += 0.05
        lag.note(t, 300.0 if i % 4 == 0 else 1.0)
    assert not lag.overloaded and lag.lag_ms == 1.0


def test_limit_zero_measures_but_never_trips() -> None:
    seen: list[float] = []
    lag = LoopLag(0, on_sample=seen.append)
    feed(lag, 0.0, 5.0, 500.0)
    assert not lag.overloaded and lag.lag_ms == 500 and len(seen) == 100


@contextlib.asynccontextmanager
async def hogged_loop(block_s: float) -> AsyncIterator[None]:
    """Block the event loop for `block_s` at every turn, like a process out of CPU."""
    stop = asyncio.Event()

    async def hog() -> None:
        while not stop.is_set():
            time.sleep(block_s)  # noqa: ASYNC251 - blocking the loop is the point
            await asyncio.sleep(0)

    task = asyncio.create_task(hog())
    try:
        yield
    finally:
        stop.set()
        await task


async def readiness(http: httpx.AsyncClient, want: bool, within_s: float = 15.0) -> dict:
    """Poll /readyz (as a balancer does) until it says `want`."""
    async with asyncio.timeout(within_s):
        while True:
            reply = await http.get("/readyz")
            if reply.json()["ready"] is want:
                assert reply.status_code == (200 if want else 503)
                return reply.json()
            await asyncio.sleep(0.1)


async def test_a_lagging_server_answers_new_calls_busy_and_keeps_its_live_call(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="hello"), ScriptedTurn(transcript="again")])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, overload_lag_ms=40) as stack:
            stack.watch(record_collector(records))
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                await readiness(http, True)
                target, call = await dial(stack, records, to="+15550002000", from_="+15551234567")
                async with call:
                    await call.wait_for_bot_reply(timeout=10)
                    async with hogged_loop(0.12):
                        body = await readiness(http, False)
                        assert body["overloaded"] is True and body["loop_lag_ms"] >= 40
                        with pytest.raises(CallRejected) as rejected:
                            await dial_webhook(stack.base_url, stack.auth_token,
                                               to="+15550002000", from_="+15557654321")
                        assert rejected.value.reason == "busy"
                    await readiness(http, True)
                    # The live call was never touched: it still talks.
                    await call.say(speech_like(600))
                    await call.wait_for_bot_reply(timeout=10)
                record = await asyncio.wait_for(records[target.call_sid], 10)
                text = (await http.get("/metrics")).text
                # Recovered: a new call is taken again.
                again, _ = await dial(stack, records, to="+15550002000", from_="+15557654321")
                assert again.call_sid
    assert record.outcome == "caller_hung_up"
    assert metric(text, 'phone_agent_calls_rejected_total{reason="overloaded"}') == 1
    assert metric(text, "phone_agent_event_loop_lag_ms") >= 0
