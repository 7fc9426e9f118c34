"""Personal data in the store, on both backends (real SQLite file, real Redis): bookings
purged after their day, a caller's bookings and records deleted, the write-once record.

Dates are pinned: `purge_bookings` takes the cutoff, so no test depends on today.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time

import pytest
import redis.asyncio as aioredis

from tests.tools.conftest import require_redis
from tools.store import NotFound, RedisStore, SqliteStore, Store

CUTOFF = dt.date(2031, 3, 10)  # bookings before this day go
OLD, OLDER, KEPT, LATER = (dt.date(2031, 3, 9), dt.date(2031, 1, 2), CUTOFF, dt.date(2031, 4, 1))
ADA, BOB = "+15550100101", "+15550100202"


async def _gone(store: Store, booking_id: str) -> bool:
    try:
        await store.get(booking_id)
    except NotFound:
        return True
    return False


async def test_purge_deletes_bookings_before_the_cutoff_whatever_their_status(store: Store) -> None:
    old = await store.book(OLD, "10:00", "Ada", ADA, "c1:t1")
    older = await store.book(OLDER, "09:00", "Ada", ADA, "c1:t2")
    await store.cancel(older.booking_id, "c1:t3")  # cancelled ones are personal data too
    kept = await store.book(KEPT, "10:00", "Ada", ADA, "c2:t1")  # on the cutoff: stays
    later = await store.book(LATER, "11:00", "Bob", BOB, "c3:t1")
    anonymous = await store.book(OLD, "11:00", "Withheld", None, "c4:t1")

    assert await store.purge_bookings(CUTOFF) == 3

    for b in (old, older, anonymous):
        assert await _gone(store, b.booking_id)
    assert await store.get(kept.booking_id) == kept
    assert await store.get(later.booking_id) == later
    # Their slots are free and the phone index forgot them ...
    assert await store.booked_times(OLD) == []
    assert await store.find_by_phone(ADA) == [kept]
    # ... and their idempotency keys went with them: a replay books afresh instead of
    # pointing at a booking that no longer exists.
    for key in ("c1:t1", "c1:t2", "c1:t3", "c4:t1"):
        assert await store.get_by_idem(key) is None
    assert await store.get_by_idem("c2:t1") == kept
    again = await store.book(OLD, "10:00", "Ada", ADA, "c1:t1")
    assert again.booking_id != old.booking_id
    # Nothing left to purge: a second run deletes nothing more.
    assert await store.purge_bookings(CUTOFF) == 1  # only the replayed booking above
    assert await store.purge_bookings(CUTOFF) == 0


async def test_a_booking_moved_past_the_cutoff_is_kept(store: Store) -> None:
    moved = await store.book(OLD, "10:00", "Ada", ADA, "c1:t1")
    moved = await store.reschedule(moved.booking_id, LATER, "09:00", "c1:t2")
    assert await store.purge_bookings(CUTOFF) == 0
    assert await store.get(moved.booking_id) == moved
    assert await store.booked_times(LATER) == ["09:00"]


async def test_purge_needs_a_date(store: Store) -> None:
    with pytest.raises(TypeError, match="datetime.date"):
        await store.purge_bookings(dt.datetime(2031, 3, 10, 12, 0))  # type: ignore[arg-type]


async def test_deleting_a_callers_bookings_leaves_everyone_elses(store: Store) -> None:
    ada = [
        await store.book(LATER, "10:00", "Ada", ADA, "c1:t1"),
        await store.book(OLD, "10:00", "Ada", ADA, "c1:t2"),
        await store.book(LATER, "12:00", "Ada", ADA, "c2:t1"),
    ]
    await store.cancel(ada[2].booking_id, "c2:t2")
    bob = await store.book(LATER, "11:00", "Bob", BOB, "c3:t1")

    assert await store.delete_bookings_of(ADA) == 3

    for b in ada:
        assert await _gone(store, b.booking_id)
    assert await store.find_by_phone(ADA) == []
    assert await store.booked_times(LATER) == ["11:00"]
    assert await store.get_by_idem("c1:t1") is None and await store.get_by_idem("c2:t2") is None
    assert await store.find_by_phone(BOB) == [bob]
    assert await store.get_by_idem("c3:t1") == bob
    assert await store.delete_bookings_of(ADA) == 0
    with pytest.raises(ValueError, match="phone number"):
        await store.delete_bookings_of("")


async def test_delete_records_where_a_field_matches(store: Store) -> None:
    await store.put_record("call", "CA1", {"call_sid": "CA1", "caller_hash": "aaa"}, ttl_s=3600)
    await store.put_record("call", "CA2", {"call_sid": "CA2", "caller_hash": "bbb"}, ttl_s=3600)
    await store.put_record("call", "CA3", {"call_sid": "CA3", "caller_hash": "aaa"})
    await store.put_record("call", "CA4", {"call_sid": "CA4"})  # written before hashes existed
    await store.put_record("other", "CA5", {"caller_hash": "aaa"})  # another kind: untouched

    assert await store.delete_records_where("call", "caller_hash", "aaa") == 2

    assert await store.get_record("call", "CA1") is None
    assert await store.get_record("call", "CA3") is None
    assert [r["call_sid"] for r in await store.list_records("call")] == ["CA4", "CA2"]
    assert await store.get_record("other", "CA5") == {"caller_hash": "aaa"}
    assert await store.delete_records_where("call", "caller_hash", "aaa") == 0
    with pytest.raises(ValueError, match="plain name"):
        await store.delete_records_where("call", "caller_hash') OR 1=1 --", "x")


async def test_put_record_if_absent_keeps_the_first_value(store: Store) -> None:
    values = await asyncio.gather(
        *(store.put_record_if_absent("secret", "k", {"v": i}) for i in range(12))
    )
    assert len({v["v"] for v in values}) == 1  # every writer got the one stored value
    assert await store.get_record("secret", "k") == values[0]
    assert await store.put_record_if_absent("secret", "k", {"v": 99}) == values[0]


async def test_sqlite_purges_expired_records_from_the_file(sqlite_store: SqliteStore) -> None:
    await sqlite_store.put_record("call", "CA1", {"v": 1}, ttl_s=3600)
    await sqlite_store.put_record("call", "CA2", {"v": 2}, ttl_s=3600)
    await sqlite_store.put_record("secret", "k", {"v": 3})
    # Pin the clock the simple way: make CA1's expiry lie in the past on disk.
    with sqlite3.connect(sqlite_store.path) as conn:
        conn.execute("UPDATE records SET expires_at = ? WHERE key = 'CA1'", (time.time() - 1,))
    assert await sqlite_store.purge_expired_records() == 1
    with sqlite3.connect(sqlite_store.path) as conn:
        keys = sorted(k for (k,) in conn.execute("SELECT key FROM records"))
    assert keys == ["CA2", "k"]


async def test_redis_leaves_no_key_of_a_deleted_booking(redis_store: RedisStore) -> None:
    booking = await redis_store.book(OLD, "10:00", "Ada", ADA, "c1:t1")
    await redis_store.reschedule(booking.booking_id, OLDER, "08:00", "c1:t2")
    client = aioredis.from_url(require_redis())
    try:
        async def keys() -> set[str]:
            return {k.decode() async for k in client.scan_iter(match="{" + redis_store.prefix + "}:*")}

        before = await keys()
        assert redis_store._booking(booking.booking_id) in before
        assert await redis_store.purge_bookings(CUTOFF) == 1
        left = await keys()
        # Empty slot hashes and phone sets vanish in Redis; idempotency keys are deleted.
        assert left == set(), left
    finally:
        await client.aclose()


async def test_redis_record_deletion_also_drops_expired_index_entries(redis_store: RedisStore) -> None:
    await redis_store.put_record("call", "CA1", {"caller_hash": "aaa"}, ttl_s=3600)
    await redis_store.put_record("call", "CA2", {"caller_hash": "bbb"}, ttl_s=3600)
    client = aioredis.from_url(require_redis())
    try:
        await client.delete(redis_store._rec("call", "item", "CA2"))  # its TTL fired
        assert await redis_store.delete_records_where("call", "caller_hash", "aaa") == 1
        assert await client.zrange(redis_store._rec("call", "index"), 0, -1) == []
    finally:
        await client.aclose()
