"""Child-process side of the multi-process booking race (imported by spawned processes).

Each process opens its own store (its own SQLite connections / Redis pool), waits at a
barrier so both processes fire together, then launches `attempts` concurrent bookings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import traceback
from pathlib import Path
from typing import Any

from tools.store import SlotTaken, open_store


async def _race(
    backend: str, target: str, prefix: str, day: dt.date, time: str,
    worker: int, attempts: int, shared_key: bool, barrier: Any,
) -> dict[str, Any]:  # fmt: skip
    store = (
        open_store(target, "unused", prefix=prefix)
        if backend == "redis"
        else open_store(None, Path(target))
    )
    booked: list[str] = []
    taken = 0
    errors: list[str] = []
    try:
        await store.booked_times(day)  # connect (and create the schema) before the race
        await asyncio.to_thread(barrier.wait, 30)

        async def attempt(i: int) -> None:
            nonlocal taken
            key = "race:shared" if shared_key else f"race:w{worker}:a{i}"
            try:
                booking = await store.book(day, time, f"Caller {worker}-{i}", None, key)
                booked.append(booking.booking_id)
            except SlotTaken:
                taken += 1
            except Exception:  # reported to the parent, which fails the test with it
                errors.append(traceback.format_exc())

        await asyncio.gather(*(attempt(i) for i in range(attempts)))
    finally:
        await store.close()
    return {"worker": worker, "booked": booked, "taken": taken, "errors": errors}


def run(
    backend: str, target: str, prefix: str, day_iso: str, time: str,
    worker: int, attempts: int, shared_key: bool, barrier: Any, results: Any,
) -> None:  # fmt: skip
    try:
        outcome = asyncio.run(
            _race(backend, target, prefix, dt.date.fromisoformat(day_iso), time,
                  worker, attempts, shared_key, barrier)
        )  # fmt: skip
    except BaseException:
        outcome = {"worker": worker, "booked": [], "taken": 0, "errors": [traceback.format_exc()]}
    results.put(outcome)
