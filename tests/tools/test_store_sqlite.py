"""SQLite-only guarantees: WAL, the database-level unique constraint, TTL, lifecycle."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from tools.store import DB_FILENAME, RedisStore, SqliteStore, open_store, sqlite_backend
from tools.store.sqlite_pool import SqlitePool

DAY = dt.date(2031, 3, 4)


async def test_open_store_picks_sqlite_under_data_dir(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "nested" / "data")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == tmp_path / "nested" / "data" / DB_FILENAME
        await store.booked_times(DAY)  # the first operation creates dirs, file and schema
        assert store.path.exists()
    finally:
        await store.close()


async def test_open_store_picks_redis_when_url_set(tmp_path: Path) -> None:
    store = open_store("redis://127.0.0.1:1/0", tmp_path)  # nothing connects yet
    try:
        assert isinstance(store, RedisStore)
    finally:
        await store.close()


async def test_database_is_in_wal_mode(sqlite_store: SqliteStore) -> None:
    await sqlite_store.book(DAY, "10:00", "Ada", None, "k1")
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_unique_index_rejects_a_second_active_booking(sqlite_store: SqliteStore) -> None:
    """The guarantee holds below our code too: a raw INSERT into a taken slot fails."""
    await sqlite_store.book(DAY, "10:00", "Ada", None, "k1")
    with sqlite3.connect(sqlite_store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO bookings VALUES ('ZZZZZZ', ?, '10:00', 'Eve', NULL, 'active', 0, 0)",
            (DAY.isoformat(),),
        )
    with sqlite3.connect(sqlite_store.path) as conn:
        # A cancelled row in the same slot is fine: the index covers active bookings only.
        conn.execute(
            "INSERT INTO bookings VALUES ('ZZZZZY', ?, '10:00', 'Eve', NULL, 'cancelled', 0, 0)",
            (DAY.isoformat(),),
        )


async def test_replayed_key_leaves_one_row(sqlite_store: SqliteStore) -> None:
    a = await sqlite_store.book(DAY, "10:00", "Ada", None, "call-1:t1")
    b = await sqlite_store.book(DAY, "10:00", "Ada", None, "call-1:t1")
    assert a.booking_id == b.booking_id
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM bookings").fetchone()[0] == 1


async def test_data_survives_reopening(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "db.sqlite")
    b = await first.book(DAY, "10:00", "Ada", None, "k1")
    await first.put_blob("clip", b"\x01\x02")
    await first.close()
    async with SqliteStore(tmp_path / "db.sqlite") as second:
        assert await second.get(b.booking_id) == b
        assert await second.get_blob("clip") == b"\x01\x02"


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await store.booked_times(DAY)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


async def test_record_ttl_expires(sqlite_store: SqliteStore, monkeypatch) -> None:
    clock = _Clock(1_000_000.0)
    monkeypatch.setattr(sqlite_backend, "_time", clock)
    await sqlite_store.put_record("token", "short", {"v": 1}, ttl_s=30)
    await sqlite_store.put_record("token", "forever", {"v": 2})
    assert await sqlite_store.get_record("token", "short") == {"v": 1}
    await sqlite_store.put_record("token", "short-2", {"v": 4}, ttl_s=30)
    clock.now += 31
    assert await sqlite_store.get_record("token", "short") is None
    assert await sqlite_store.take_record("token", "short-2") is None  # expired: not takeable
    assert await sqlite_store.list_records("token") == [{"v": 2}]
    # The next write purges expired rows for good.
    await sqlite_store.put_record("token", "other", {"v": 3})
    with sqlite3.connect(sqlite_store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM records WHERE key='short'").fetchone()[0] == 0


async def test_a_connection_opening_while_another_writes_waits_for_the_lock(
    tmp_path: Path,
) -> None:
    # Switching to WAL needs a lock SQLite does not wait for by itself: a pool thread
    # opening its connection while another writer holds the lock used to fail at once
    # with "database is locked" (seen in CI, 4 in 200 fresh stores under 30 bookings).
    path = tmp_path / "busy.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t(x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    pool = SqlitePool(path, "CREATE TABLE IF NOT EXISTS u(y)", busy_timeout_s=10)
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, writer.execute, "COMMIT")  # the other writer finishes later
    t0 = loop.time()
    try:
        rows = await pool.run(lambda: pool.conn().execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        await pool.close()
        writer.close()
    assert rows == 1  # it waited for the commit instead of failing
    assert loop.time() - t0 >= 0.25
