"""Done-when proof: two OS processes race for one slot on one store; one booking wins.

Each process fires 25 concurrent attempts at the same (day, time), with distinct
idempotency keys, against the same SQLite file or the same Redis. Exactly one booking
may exist afterwards and the other 49 attempts must have seen SlotTaken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.tools import booking_worker
from tests.tools.conftest import purge_prefix, require_redis, unique_prefix
from tools.store import DB_FILENAME, open_store

DAY = dt.date(2031, 6, 2)
TIME = "10:00"
PROCESSES = 2
ATTEMPTS = 25


async def _race(
    backend: str, target: str, prefix: str, *, shared_key: bool
) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited loop/pools
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=booking_worker.run,
            args=(
                backend,
                target,
                prefix,
                DAY.isoformat(),
                TIME,
                w,
                ATTEMPTS,
                shared_key,
                barrier,
                results,
            ),
            name=f"booking-race-{backend}-{w}",
        )  # fmt: skip
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [await asyncio.to_thread(results.get, True, 90) for _ in procs]
        for p in procs:
            await asyncio.to_thread(p.join, 30)
            assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    errors = [e for o in outcomes for e in o["errors"]]
    assert not errors, "worker errors:\n" + "\n".join(errors)
    assert all(o["booked"] or o["taken"] for o in outcomes), "a worker did nothing"
    return outcomes


def _assert_one_winner(outcomes: list[dict[str, Any]]) -> str:
    winners = [b for o in outcomes for b in o["booked"]]
    taken = sum(o["taken"] for o in outcomes)
    assert len(winners) == 1, f"{len(winners)} bookings succeeded: {winners}"
    assert taken == PROCESSES * ATTEMPTS - 1
    return winners[0]


async def test_two_processes_race_one_slot_sqlite(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    outcomes = await _race("sqlite", str(data_dir), "", shared_key=False)
    winner = _assert_one_winner(outcomes)
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        rows = conn.execute("SELECT booking_id, status FROM bookings").fetchall()
    assert rows == [(winner, "active")]
    async with open_store(None, data_dir) as store:
        assert await store.booked_times(DAY) == [TIME]


async def test_two_processes_race_one_slot_redis() -> None:
    url = require_redis()
    prefix = unique_prefix()
    try:
        outcomes = await _race("redis", url, prefix, shared_key=False)
        winner = _assert_one_winner(outcomes)
        async with open_store(url, "unused", prefix=prefix) as store:
            assert await store.booked_times(DAY) == [TIME]
            assert (await store.get(winner)).active
        client = aioredis.from_url(url)
        try:
            keys = [k async for k in client.scan_iter(match="{" + prefix + "}:booking:*")]
        finally:
            await client.aclose()
        assert len(keys) == 1, f"expected one booking record, found {keys}"
    finally:
        await purge_prefix(url, prefix)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_two_processes_replaying_one_key_get_one_booking(
    backend: str, tmp_path: Path
) -> None:
    """50 replays of one tool call across two processes: one booking, everyone gets it."""
    target = require_redis() if backend == "redis" else str(tmp_path / "data")
    prefix = unique_prefix()
    try:
        outcomes = await _race(backend, target, prefix, shared_key=True)
        ids = {b for o in outcomes for b in o["booked"]}
        assert len(ids) == 1 and sum(len(o["booked"]) for o in outcomes) == PROCESSES * ATTEMPTS
        async with open_store(
            target if backend == "redis" else None, target, prefix=prefix
        ) as store:
            assert await store.booked_times(DAY) == [TIME]
            assert (await store.get_by_idem("race:shared")).booking_id == ids.pop()
    finally:
        if backend == "redis":
            await purge_prefix(target, prefix)
