"""Offline engine as a caller hears it: voice-to-voice and barge-in stop time.

    python -m tests.bench.bench_offline_turn [--concurrency 4] [--calls 0] [--barge-rounds 2]

The engine runs in a subprocess of its own (its memory is its own, as in production);
each call gets its own in-process phone-agent (fresh store, the call's day pinned)
pointed at it, and is played by the emulated Twilio phone in real time.

1. Voice-to-voice on the held-out calls (agent/devkit/eval/heldout: voices and phrasings
   the engine was not tuned on), `--concurrency` calls at a time: from the caller's last
   speech frame to the first bot frame the caller hears (the emulator's
   `response_latency_ms`). The greeting is not a turn.
2. Barge-in stop time: the devkit barge-in call, `--concurrency` at a time: from the
   first word of the caller's interruption to the end of the last bot frame the caller
   heard (`barge_in_stop_ms`).

Targets: voice-to-voice p50 < 500 ms, barge-in stop < 150 ms, engine peak RSS < 700 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # runnable as a plain script from a checkout

from tests.bench.bench_engine import TOKEN, free_port, memory_mb, pct, start_engine  # noqa: E402

TARGET_P50_MS = 500
TARGET_STOP_MS = 150
TARGET_RSS_MB = 700
DEVKIT_CALLS = ROOT / "agent" / "devkit" / "calls"


async def run_one(script: Any, engine_url: str, bookings: list[Any], today: dt.date) -> Any:
    """One call through a phone-agent of its own, on the shared engine."""
    from agent.callrecord import CallRecord
    from agent.devkit.eval.calls import seed_bookings
    from agent.devkit.runner import record_collector, run_script
    from agent.devkit.stack import local_stack

    records: dict[str, asyncio.Future[CallRecord]] = {}
    async with local_stack(
        realtime_url=engine_url, local_engine_token=TOKEN, tools_today=today.isoformat(),
        tool_delays_ms=script.slow_tools,
    ) as stack:  # fmt: skip
        stack.watch(record_collector(records))
        await seed_bookings(stack.store, script, bookings)
        return await run_script(
            script, base_url=stack.base_url, auth_token=stack.auth_token, records=records,
            store=stack.store, today=today,
        )  # fmt: skip


async def run_all(
    scripts: list[Any], engine_url: str, concurrency: int, bookings: Any, today: Callable[[Any], dt.date]
) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(script: Any) -> Any:
        async with gate:
            result = await run_one(script, engine_url, list(bookings.get(script.name, [])), today(script))
            mark = "ok " if result.ok else "FAIL"
            lat = ", ".join(f"{v:.0f}" for v in result.latencies_ms)
            why = f"  ({'; '.join(result.failures)[:200]})" if result.failures else ""
            print(f"  {mark} {script.name:34} v2v ms [{lat}]{why}", flush=True)
            return result

    return list(await asyncio.gather(*(one(s) for s in scripts)))


def summary(name: str, values: list[float], target: float) -> dict[str, Any]:
    p50, p90 = pct(values, 0.5), pct(values, 0.9)
    mean = statistics.fmean(values) if values else float("nan")
    print(f"  {name:34} n={len(values):<3} p50 {p50:5.0f} ms  p90 {p90:5.0f} ms  "
          f"mean {mean:5.0f} ms  (target p50 < {target} ms)")  # fmt: skip
    return {"n": len(values), "p50_ms": _ms(p50), "p90_ms": _ms(p90), "mean_ms": _ms(mean)}


def _ms(value: float) -> int | None:
    return None if value != value else round(value)  # NaN: no samples


async def main() -> int:
    from agent.devkit.eval.sets import load_set
    from agent.devkit.runner import business_today
    from agent.devkit.scripts import load_scripts

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--calls", type=int, default=0, help="held-out calls to play (0: all)")
    parser.add_argument("--barge-rounds", type=int, default=2, help="rounds of --concurrency barge-in calls")
    args = parser.parse_args()

    heldout = load_set("heldout")
    scripts = load_scripts(heldout.calls_dir)
    if args.calls:
        scripts = scripts[: args.calls]
    barge = next(s for s in load_scripts(DEVKIT_CALLS) if s.name == "barge-in")
    port = free_port()
    engine = start_engine(port)
    url = f"ws://127.0.0.1:{port}/v1/realtime"
    t0 = time.perf_counter()
    try:
        print(f"held-out calls: {len(scripts)}, {args.concurrency} at a time", flush=True)
        results = await run_all(
            scripts, url, args.concurrency, heldout.bookings, lambda s: s.today or heldout.today
        )
        turns = [v for r in results for v in r.latencies_ms]  # the greeting has none
        print(f"barge-in calls: {args.barge_rounds * args.concurrency}, {args.concurrency} at a time", flush=True)
        barges = await run_all([barge] * (args.barge_rounds * args.concurrency), url, args.concurrency, {},
                               business_today)  # fmt: skip
        stops = [t.barge_in_stop_ms for r in barges for t in r.turns if t.barge_in_stop_ms is not None]
        rss, hwm = memory_mb(engine.pid)
    finally:
        engine.terminate()
        engine.wait(timeout=10)
    print(f"\noffline engine, {args.concurrency} calls at once ({time.perf_counter() - t0:.0f} s)")
    v2v = summary("voice-to-voice (held-out voices)", turns, TARGET_P50_MS)
    stop = summary("barge-in onset -> bot quiet", stops, TARGET_STOP_MS)
    print(f"  engine memory: VmRSS {rss:.0f} MB, peak VmHWM {hwm:.0f} MB (target < {TARGET_RSS_MB} MB)")
    failed = [r.script for r in [*results, *barges] if not r.ok]
    print(f"  calls failed: {len(failed)} {failed if failed else ''}")
    ok = (v2v["p50_ms"] or 1e9) < TARGET_P50_MS and (stop["p50_ms"] or 1e9) < TARGET_STOP_MS and hwm < TARGET_RSS_MB
    print(f"  {'OK' if ok else 'MISSED'}")
    print(json.dumps({"voice_to_voice": v2v, "barge_in_stop": stop, "peak_rss_mb": round(hwm),
                      "failed_calls": failed, "concurrency": args.concurrency, "cpus": os.cpu_count(),
                      "loadavg": os.getloadavg()}))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
