"""The retention purge: at start, then every interval, owned by the app's lifespan; real
SQLite files and the real Redis. Synchronised on the purge's own round counter."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from pathlib import Path

import pytest

from agent.devkit.stack import local_stack
from agent.service.retention import Retention, utc_today
from tests.tools.conftest import require_redis
from tools.store import DB_FILENAME, NotFound, SqliteStore, Store, open_store

TODAY = dt.date(2031, 5, 1)


async def _exists(store: Store, booking_id: str) -> bool:
    try:
        await store.get(booking_id)
    except NotFound:
        return False
    return True


async def test_purge_runs_at_start_and_then_every_interval(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "db.sqlite") as store:
        before_start = await store.book(dt.date(2031, 3, 31), "10:00", "Ada", "+15550100101", "c1:t1")
        edge = await store.book(dt.date(2031, 4, 1), "10:00", "Ada", "+15550100101", "c1:t2")
        retention = Retention(lambda: store, booking_days=30, interval_s=0.01, today=lambda: TODAY)
        assert retention.cutoff() == dt.date(2031, 4, 1)
        task = asyncio.create_task(retention.run())
        try:
            await asyncio.wait_for(retention.wait_rounds(1), 10)
            assert retention.last is not None and retention.last.bookings == 1
            assert not await _exists(store, before_start.booking_id)
            assert await _exists(store, edge.booking_id)  # 30 days after its day: kept
            # Written after the first round: a later round removes it.
            later = await store.book(dt.date(2031, 3, 2), "10:00", "Bob", None, "c2:t1")
            await asyncio.wait_for(retention.wait_rounds(retention.rounds + 2), 10)
            assert not await _exists(store, later.booking_id)
        finally:
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_failed_round_is_logged_and_the_next_one_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.service.retention")
    async with SqliteStore(tmp_path / "db.sqlite") as store:
        calls = 0

        def store_of() -> Store:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("store unreachable")
            return store

        retention = Retention(store_of, booking_days=0, interval_s=0.01, today=lambda: TODAY)
        task = asyncio.create_task(retention.run())
        try:
            await asyncio.wait_for(retention.wait_rounds(2), 10)
        finally:
            task.cancel()
    assert retention.last_error is None and retention.last is not None
    assert "retention: purge failed, next try in 0 s: store unreachable" in caplog.text


def test_retention_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="booking_days"):
        Retention(lambda: None, booking_days=-1, interval_s=1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="interval_s"):
        Retention(lambda: None, booking_days=1, interval_s=0)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_the_service_purges_old_bookings_when_it_starts(tmp_path: Path, backend: str) -> None:
    """By the wall clock: TOOLS_TODAY, a demo's pinned date, must not make a service
    delete real bookings, so it is set centuries ahead here and changes nothing."""
    redis_url = require_redis() if backend == "redis" else None
    phone = "+1555" + str(uuid.uuid4().int)[:7]
    today = utc_today()
    seed = open_store(redis_url, tmp_path)
    async with seed:
        old = await seed.book(today - dt.timedelta(days=400), "10:00", "Ada", phone, f"{phone}:t1")
        recent = await seed.book(today - dt.timedelta(days=5), "10:00", "Ada", phone, f"{phone}:t2")
    try:
        async with local_stack(data_dir=tmp_path, engine=False, redis_url=redis_url,
                               realtime_url="ws://127.0.0.1:9/v1/realtime",
                               booking_retention_days=30, tools_today="2400-01-03") as stack:
            if backend == "sqlite":
                assert (tmp_path / DB_FILENAME).exists()
            retention = stack.service.retention
            await asyncio.wait_for(retention.wait_rounds(1), 30)
            assert retention.last is not None and retention.last.before == today - dt.timedelta(days=30)
            assert not await _exists(stack.store, old.booking_id)
            assert await _exists(stack.store, recent.booking_id)
            assert [t for t in asyncio.all_tasks() if t.get_name() == "retention"]
        # Shut down with the app: no purge left running.
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "retention"]
    finally:
        async with open_store(redis_url, tmp_path) as cleanup:
            await cleanup.delete_bookings_of(phone)
