"""Redis-only guarantees: key isolation by prefix, TTLs, Lua atomicity, cluster hash tags."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
import redis.asyncio as aioredis

from tests.tools.conftest import purge_prefix, require_redis, unique_prefix
from tools.store import RedisStore, StoreUnavailable

DAY = dt.date(2031, 3, 4)


async def test_prefixes_isolate_stores(redis_store: RedisStore) -> None:
    url = require_redis()
    other_prefix = unique_prefix()
    async with RedisStore(url, prefix=other_prefix) as other:
        try:
            await redis_store.book(DAY, "10:00", "Ada", None, "k1")
            await other.book(DAY, "10:00", "Bob", None, "k1")  # no SlotTaken: another tenant
            assert await other.booked_times(DAY) == ["10:00"]
            assert (await other.get_by_idem("k1")).name == "Bob"
        finally:
            await purge_prefix(url, other_prefix)


async def test_booking_keys_share_one_hash_tag(redis_store: RedisStore) -> None:
    """Redis Cluster runs a script only if all its keys hash to one slot."""
    b = await redis_store.book(DAY, "10:00", "Ada", "+15550100", "k1")
    client = aioredis.from_url(require_redis())
    try:
        keys = [k.decode() async for k in client.scan_iter(match="{" + redis_store.prefix + "}:*")]
    finally:
        await client.aclose()
    assert any(b.booking_id in k for k in keys)
    assert {k.split(":", 1)[0] for k in keys} == {"{" + redis_store.prefix + "}"}


async def test_record_ttl_is_set_and_expired_records_leave_the_index(
    redis_store: RedisStore,
) -> None:
    await redis_store.put_record("token", "short", {"v": 1}, ttl_s=30)
    await redis_store.put_record("token", "forever", {"v": 2})
    client = aioredis.from_url(require_redis())
    try:
        short_key = redis_store._rec("token", "item", "short")
        ttl_ms = await client.pttl(short_key)
        assert 0 < ttl_ms <= 30_000
        assert await client.pttl(redis_store._rec("token", "item", "forever")) == -1
        # Expiry is Redis's job; simulate it firing rather than waiting 30 s.
        await client.delete(short_key)
        assert await redis_store.get_record("token", "short") is None
        assert await redis_store.list_records("token") == [{"v": 2}]
        assert await client.zrange(redis_store._rec("token", "index"), 0, -1) == [b"forever"]
    finally:
        await client.aclose()


async def test_list_records_pages_past_expired_entries(redis_store: RedisStore) -> None:
    for i in range(6):
        await redis_store.put_record("call", f"CA{i}", {"i": i})
    client = aioredis.from_url(require_redis())
    try:
        for i in (5, 4, 2):  # the newest ones "expired"
            await client.delete(redis_store._rec("call", "item", f"CA{i}"))
    finally:
        await client.aclose()
    assert [r["i"] for r in await redis_store.list_records("call", limit=2)] == [3, 1]
    assert [r["i"] for r in await redis_store.list_records("call")] == [3, 1, 0]


def test_prefix_with_braces_is_rejected() -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisStore("redis://127.0.0.1:6379/0", prefix="a{b}")


async def test_unreachable_redis_is_store_unavailable_with_a_sentence_for_the_caller() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        for attempt in (store.ping(), store.find_by_phone("+15550100"), store.get_blob("k")):
            with pytest.raises(StoreUnavailable) as info:
                await attempt
            assert isinstance(info.value.cause, redis.ConnectionError)
            assert info.value.retryable and str(info.value) == StoreUnavailable.SENTENCE
    finally:
        await store.close()
