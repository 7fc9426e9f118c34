"""The live-call registry and control channel: two registries (two "instances") on real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.service.live_calls import LiveCall, LocalLiveCalls, RedisLiveCalls, new_instance_id
from agent.service.redis_client import open_redis
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.helpers.speed import BEHAVIOUR_SPEED
from tests.ops.conftest import delete_matching


class FakeHolder:
    """Stands in for the Service: holds calls, ends them when told to."""

    def __init__(self) -> None:
        self.registry: Any = None
        self.calls: dict[str, dict[str, Any]] = {}
        self.hangups: list[tuple[str, str]] = []

    async def hang_up_local(self, call_sid: str, outcome: str) -> bool:
        if call_sid not in self.calls:
            return False
        self.hangups.append((call_sid, outcome))
        del self.calls[call_sid]
        await self.registry.remove(call_sid, outcome)
        return True

    def snapshot_local(self, call_sid: str) -> dict[str, Any] | None:
        return self.calls.get(call_sid)


@contextlib.asynccontextmanager
async def instance(url: str, prefix: str, ttl_s: float = 30.0) -> AsyncIterator[tuple[RedisLiveCalls, FakeHolder]]:
    holder = FakeHolder()
    client = open_redis(url)  # each instance its own process's client, as in production
    registry = RedisLiveCalls(client, holder, new_instance_id(), prefix=prefix, ttl_s=ttl_s)
    holder.registry = registry
    await registry.start()
    try:
        yield registry, holder
    finally:
        await registry.close()
        await client.aclose()


async def test_instance_ids_are_unique_and_readable() -> None:
    ids = {new_instance_id() for _ in range(50)}
    assert len(ids) == 50
    host, pid, rand = next(iter(ids)).rsplit("-", 2)
    assert host and pid.isdigit() and len(rand) == 6


async def test_every_instance_sees_live_calls_and_can_end_them(
    redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    try:
        async with instance(redis_url, prefix) as (a, holder_a), instance(redis_url, prefix) as (b, _):
            call = LiveCall("CA" + "1" * 32, a.instance_id, time.time(), "desk", "+1555***0001")
            holder_a.calls[call.call_sid] = {"call_sid": call.call_sid, "outcome": "in_progress"}
            await a.add(call)

            assert await b.live() == [call]
            assert await b.get(call.call_sid) == call
            ttl_ms = await redis_client.pttl(f"{prefix}:live:{call.call_sid}")
            assert 0 < ttl_ms <= 30_000  # a crashed holder's calls expire

            # Snapshot and hang-up asked of B travel over the channel to A, which holds it.
            assert await b.snapshot(call.call_sid, 2.0) == holder_a.calls[call.call_sid]
            outcome = await b.hang_up(call.call_sid, "admin_hangup", 5.0)
            assert outcome == "admin_hangup"
            assert holder_a.hangups == [(call.call_sid, "admin_hangup")]
            assert await b.live() == [] and await a.get(call.call_sid) is None
    finally:
        await delete_matching(redis_client, f"{prefix}:*")


async def test_expired_entries_drop_out_of_the_listing(
    redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    try:
        async with instance(redis_url, prefix) as (a, _):
            call = LiveCall("CAstale", "some-dead-instance", time.time(), "desk")
            await a._write(call)  # as if written by an instance that then died
            assert [c.call_sid for c in await a.live()] == []  # not ours: _write cleans up
            await redis_client.hset(f"{prefix}:live:CAstale", mapping={"call_sid": "CAstale"})
            await redis_client.zadd(f"{prefix}:live-index", {"CAstale": 1.0, "CAgone": 2.0})
            # CAgone's hash expired (TTL): the listing skips it and prunes the index.
            assert [c.call_sid for c in await a.live()] == ["CAstale"]
            assert await redis_client.zscore(f"{prefix}:live-index", "CAgone") is None
    finally:
        await delete_matching(redis_client, f"{prefix}:*")


async def test_hang_up_of_a_call_nobody_holds_is_not_confirmed(
    redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    try:
        async with instance(redis_url, prefix) as (a, _), instance(redis_url, prefix) as (b, holder_b):
            await a._redis.publish(a.channel, "not json")  # ignored, the listener survives
            await a._redis.publish(a.channel, '{"op": "hangup"}')
            assert await a.hang_up("CAnobody", "admin_hangup", 0.3) is None
            assert await a.snapshot("CAnobody", 0.3) is None
            # Still listening after the garbage: a real hang-up goes through.
            call = LiveCall("CAreal", b.instance_id, time.time(), "desk")
            holder_b.calls["CAreal"] = {"call_sid": "CAreal"}
            await b.add(call)
            assert await a.hang_up("CAreal", "admin_hangup", 5.0) == "admin_hangup"
    finally:
        await delete_matching(redis_client, f"{prefix}:*")


async def test_refresh_recreates_entries_redis_lost(
    redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    try:
        async with instance(redis_url, prefix) as (a, holder_a):
            call = LiveCall("CAkeep", a.instance_id, time.time(), "desk")
            holder_a.calls["CAkeep"] = {}
            await a.add(call)
            await redis_client.delete(f"{prefix}:live:CAkeep")  # e.g. Redis restarted empty
            await a.refresh_once()  # what the periodic refresh does
            assert await redis_client.hget(f"{prefix}:live:CAkeep", "instance") == a.instance_id
            await a.remove("CAkeep", "completed")
            assert not await redis_client.exists(f"{prefix}:live:CAkeep")
    finally:
        await delete_matching(redis_client, f"{prefix}:*")


async def test_services_with_different_prefixes_on_one_redis_never_meet(
    redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    other = prefix + "-other"
    try:
        async with instance(redis_url, prefix) as (a, holder_a), instance(redis_url, other) as (b, _):
            assert (a.channel, b.channel) == (f"{prefix}:control", f"{other}:control")
            call = LiveCall("CAmine", a.instance_id, time.time(), "desk")
            holder_a.calls["CAmine"] = {"call_sid": "CAmine"}
            await a.add(call)
            assert await a.live() == [call]
            assert await b.live() == [] and await b.get("CAmine") is None
            # B's hang-up goes out on B's channel only: A never hears it.
            assert await b.hang_up("CAmine", "admin_hangup", 0.3) is None
            assert holder_a.hangups == [] and await a.live() == [call]
    finally:
        await delete_matching(redis_client, f"{prefix}:*", f"{other}:*")


async def test_every_redis_name_of_the_service_starts_with_redis_prefix(
    redis_url: str, redis_client: aioredis.Redis, prefix: str, tmp_path: Path
) -> None:
    """Tokens, live calls, records and the control channel, all under REDIS_PREFIX."""
    scenario = Scenario()
    try:
        async with FakeOpenAIRealtime(scenario) as fake, local_stack(
            data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key=scenario.api_key,
            redis_url=redis_url, redis_prefix=prefix,
        ) as stack:
            channels = await redis_client.pubsub_channels(f"{prefix}:*")
            assert channels == [f"{prefix}:control"]
            records: dict = {}
            stack.watch(record_collector(records))
            target = await dial_webhook(stack.base_url, stack.auth_token, to="+15550002000",
                                        from_="+15551230078")
            records[target.call_sid] = asyncio.get_running_loop().create_future()
            async with EmulatedCall(target, speed=BEHAVIOUR_SPEED) as call:
                await call.wait_for_bot_reply(timeout=10)
                assert await redis_client.exists(f"{prefix}:live:{target.call_sid}")
                assert await redis_client.zscore(f"{prefix}:live-index", target.call_sid) is not None
            await asyncio.wait_for(records[target.call_sid], 10)  # the record is stored
            assert len([k async for k in redis_client.scan_iter(match=f"{prefix}:token:*")]) == 1
            stored = await stack.store.get_record("call", target.call_sid)
            assert stored is not None and stored["call_sid"] == target.call_sid
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:rec:*")]
        assert any(target.call_sid in k for k in keys)
        # ...and nothing of this call under the default prefix.
        assert not await redis_client.exists(f"phone-agent:live:{target.call_sid}",
                                             f"phone-agent:rec:{{call}}:item:{target.call_sid}")
    finally:
        await delete_matching(redis_client, f"{prefix}:*", f"{{{prefix}}}:*")


async def test_local_registry_needs_no_redis() -> None:
    holder = FakeHolder()
    registry = LocalLiveCalls(holder, "solo")
    holder.registry = registry
    call = LiveCall("CAlocal", "solo", time.time(), "desk")
    holder.calls["CAlocal"] = {"call_sid": "CAlocal"}
    await registry.add(call)
    assert await registry.live() == [call]
    assert await registry.snapshot("CAlocal", 1.0) == {"call_sid": "CAlocal"}
    assert await registry.hang_up("CAlocal", "admin_hangup", 1.0) == "admin_hangup"
    assert await registry.live() == []
    assert await registry.hang_up("CAlocal", "admin_hangup", 1.0) is None
