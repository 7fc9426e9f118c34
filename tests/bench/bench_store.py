"""Booking throughput and latency per storage backend.

    python tests/bench/bench_store.py [--bookings 2000] [--concurrency 32] [--redis-url URL]

Each booking targets a distinct (day, time) slot with its own idempotency key, so the
numbers measure the full write path (lock or script, idempotency record, slot index)
without contention failures. SQLite runs on a temporary file; Redis on REDIS_URL
(default redis://127.0.0.1:6379/0) under a throwaway key prefix that is deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

# Runnable as a plain script from a checkout, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.store import RedisStore, SqliteStore, Store  # noqa: E402

SLOTS = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]
BASE_DAY = dt.date(2100, 1, 1)


@dataclass
class Result:
    backend: str
    bookings: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.bookings / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def slot(i: int) -> tuple[dt.date, str]:
    return BASE_DAY + dt.timedelta(days=i // len(SLOTS)), SLOTS[i % len(SLOTS)]


async def run(backend: str, store: Store, bookings: int, concurrency: int) -> Result:
    run_id = uuid.uuid4().hex[:8]
    # Warm-up on far-away days: connections, schema, script cache.
    for i in range(20):
        day, time_ = slot(i)
        await store.book(day + dt.timedelta(days=30_000), time_, "warm", None, f"w{run_id}{i}")

    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(bookings):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            day, time_ = slot(i)
            start = time.perf_counter()
            await store.book(day, time_, f"Caller {i}", f"+1555{i:07d}", f"{run_id}:{i}")
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    assert len(latencies) == bookings
    return Result(backend, bookings, elapsed, latencies)


async def bench_sqlite(bookings: int, concurrency: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        try:
            return await run("sqlite (WAL, 4 threads)", store, bookings, concurrency)
        finally:
            await store.close()


async def bench_redis(url: str, bookings: int, concurrency: int) -> Result | str:
    probe = aioredis.from_url(url, socket_connect_timeout=2)
    try:
        await probe.ping()
    except Exception as exc:  # report and carry on with the other backend
        return f"skipped: Redis at {url} not reachable ({exc})"
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    store = RedisStore(url, prefix=prefix)
    try:
        return await run("redis (Lua script)", store, bookings, concurrency)
    finally:
        await store.close()
        for pattern in ("{" + prefix + "}:*", prefix + ":*"):
            keys = [k async for k in probe.scan_iter(match=pattern, count=1000)]
            for chunk in range(0, len(keys), 1000):
                await probe.delete(*keys[chunk : chunk + 1000])
        await probe.aclose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()

    console = Console()
    console.print(
        f"[bold]Store booking benchmark[/]: {args.bookings} bookings of distinct slots, "
        f"{args.concurrency} concurrent callers, Python {sys.version.split()[0]}"
    )
    results: list[Result | str] = [
        await bench_sqlite(args.bookings, args.concurrency),
        await bench_redis(args.redis_url, args.bookings, args.concurrency),
    ]
    table = Table()
    for column in ("backend", "bookings/s", "p50 ms", "p99 ms", "mean ms", "max ms"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for r in results:
        if isinstance(r, str):
            table.add_row("redis", r, "", "", "", "")
            continue
        table.add_row(
            r.backend,
            f"{r.per_second:,.0f}",
            f"{r.pct(0.50):.2f}",
            f"{r.pct(0.99):.2f}",
            f"{statistics.fmean(r.latencies_ms):.2f}",
            f"{max(r.latencies_ms):.2f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
