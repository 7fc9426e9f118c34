"""Two real server processes behind one Redis act as one service.

(a) an admin hang-up sent to A ends a call held by B;
(b) the same slot booked by two concurrent calls, one per instance: exactly one booking;
(c) a stream token issued by A is good once anywhere: used on B, replayed on A -> 1008.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep, tone
from telephony.testing.emulator import EmulatedCall
from tests.helpers.speed import BEHAVIOUR_SPEED
from tests.ops.cluster import Cluster, cluster
from tests.ops.conftest import require_redis

pytestmark = pytest.mark.asyncio(loop_scope="module")

BOOK_AT = "10:00"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake() -> AsyncIterator[FakeOpenAIRealtime]:
    # Every session's first caller turn books the same slot (the day is filled in below).
    async with FakeOpenAIRealtime(Scenario()) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(fake: FakeOpenAIRealtime, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    url = require_redis()
    tmp: Path = tmp_path_factory.mktemp("two-instances")
    async with cluster(tmp, instances=2, openai_url=fake.url, openai_key=fake.scenario.api_key,
                       redis_url=url) as run:
        fake.scenario.turns = [ScriptedTurn(transcript=f"Book me at ten on {run.today}", tool=ToolStep(
            "book_appointment", {"day": run.today.isoformat(), "time": BOOK_AT, "name": "Ada"},
            reply="{output}"))]
        yield run


async def test_admin_hang_up_on_a_reaches_the_call_held_by_b(pair: Cluster) -> None:
    a, b = pair.servers
    target = await pair.dial(b)
    sid = target.call_sid
    async with pair.admin(a) as on_a, pair.admin(b) as on_b:
        b_id = (await on_b.get("/admin/calls")).json()["instance"]
        async with EmulatedCall(target, speed=BEHAVIOUR_SPEED) as call:
            await call.wait_for_bot_reply(timeout=15)  # greeting heard: the call is live on B

            live = {c["call_sid"]: c for c in (await on_a.get("/admin/calls")).json()["live"]}
            assert live[sid]["instance"] == b_id and live[sid]["local"] is False
            detail = (await on_a.get(f"/admin/calls/{sid}")).json()  # B's live record, via A
            assert detail["live"] is True and detail["instance"] == b_id
            assert detail["record"]["call_sid"] == sid and detail["record"]["outcome"] == "in_progress"

            r = await on_a.post(f"/admin/calls/{sid}/hangup")
            assert r.status_code == 200, r.text
            assert r.json() == {"ended": True, "outcome": "admin_hangup", "instance": b_id}
            await call.wait_closed(5)
            assert call.closed_by_server

        stored = (await on_a.get(f"/admin/calls/{sid}")).json()
        assert stored["live"] is False and stored["record"]["outcome"] == "admin_hangup"
        assert sid not in {c["call_sid"] for c in (await on_a.get("/admin/calls")).json()["live"]}


async def test_one_slot_booked_through_both_instances_at_once_is_booked_once(
    pair: Cluster, fake: FakeOpenAIRealtime
) -> None:
    a, b = pair.servers
    before = len(fake.sessions)
    targets = await asyncio.gather(pair.dial(a), pair.dial(b))
    calls = [EmulatedCall(t, speed=BEHAVIOUR_SPEED) for t in targets]
    async with calls[0], calls[1]:
        await asyncio.gather(*(c.wait_for_bot_reply(timeout=15) for c in calls))
        speech = tone(700, hz=300.0, amplitude=6000)
        await asyncio.gather(*(c.say(speech) for c in calls))  # both ask at the same moment
        ours = fake.sessions[before:]
        await fake.wait_for(lambda: sum(len(s.function_outputs) for s in ours) == 2, 20)

    outputs = [json.loads(o["output"]) for s in ours for o in s.function_outputs]
    booked = [o for o in outputs if o.get("status") == "booked"]
    taken = [o for o in outputs if o.get("error") == "slot_taken"]
    assert len(booked) == 1 and len(taken) == 1, outputs
    assert booked[0]["day"] == pair.today.isoformat() and booked[0]["time"] == BOOK_AT
    redis = aioredis.from_url(pair.redis_url or "", decode_responses=True)
    try:
        slots = await redis.hgetall(f"{{{pair.redis_prefix}}}:slots:{pair.today.isoformat()}")
    finally:
        await redis.aclose()
    assert slots == {BOOK_AT: booked[0]["booking_id"]}
    fake.assert_clean()


async def test_stream_token_from_a_works_once_on_b_and_never_again(pair: Cluster) -> None:
    a, b = pair.servers
    target = await pair.dial(a)  # A issued the token
    async with EmulatedCall(target, ws_url=b.ws_url, speed=BEHAVIOUR_SPEED) as call:
        await call.wait_for_bot_reply(timeout=15)  # accepted by B
        assert not call.closed

    replay = EmulatedCall(target)  # the same `start` parameters, now to A
    async with replay:
        await replay.wait_closed(5)
    assert replay.closed_by_server
    assert replay.close_code == 1008 and "already used" in replay.close_reason
