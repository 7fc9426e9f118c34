"""The bridge's CPU per call against a bare relay's, under the same calls (make bench).

    python -m tests.bench.bench_vs_relay [--calls 50] [--seconds 20] [--rounds 2]

Two servers, each with a fake OpenAI server of its own, each in its own process:

- ours: this repo's app (pacing ~200 ms ahead of the ear, a mark per 100 ms and mark
  bookkeeping, call records, tools, metrics), dialed through its signed webhook;
- relay: `tests/bench/bare_relay.py`, a minimal relay written for this comparison after
  the description of Twilio's speech-assistant sample (no pacing, no records).

Each round runs `bench_bridge.run_level` on both servers at once, their measured
windows lined up: N emulated callers each (silence with a tone burst every few seconds,
so the fake replies), the same seconds, the same fake scenario. Side by side in time,
whatever else the machine is doing weighs on both alike. It prints each server's CPU
seconds per call per minute of call time (from /proc), their ratio ours/relay, and
frames lost (inbound frames never appended / outbound audio never delivered). A
benchmark, not a test: numbers from a shared machine are noisy; repeat it.

What bounds the ratio (2-core VM, 50 calls): the relay with its upstream appends
removed, i.e. only uvicorn's WebSocket receive and a json.loads per Twilio frame, cost
0.16 CPU s per call-minute beside the full relay's ~0.25-0.27. Both servers pay that
receive path for every caller frame, so under uvicorn/Starlette no bridge gets much
below ~0.6 of this relay; what ours adds on top (pacing, marks, records, a send per
quiet 200 ms, per loud frame) is what the ratio measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from a checkout

import httpx  # noqa: E402

from agent.devkit.process_stack import Child, ProcessStack  # noqa: E402
from agent.service.runtime import event_loop_runner  # noqa: E402
from telephony.testing.dial import new_sid  # noqa: E402
from telephony.testing.emulator import StreamTarget  # noqa: E402
from tests.bench.bench_bridge import SCENARIO, TO, Dial, bench_flows, run_level  # noqa: E402


def direct_dial(base_url: str) -> Dial:
    """The relay has no webhook: its callers connect straight to its socket."""
    ws_url = base_url.replace("http://", "ws://", 1) + "/media"

    async def dial(_client: httpx.AsyncClient, i: int) -> StreamTarget:
        return StreamTarget(
            call_sid=new_sid("CA"), account_sid=new_sid("AC"), from_=f"+1555{i:07d}", to=TO,
            stream_url=ws_url, ws_url=ws_url,
        )  # fmt: skip

    return dial


async def bench(n: int, seconds: float, rounds: int, deflate: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        flows = bench_flows(Path(tmp))
        async with ProcessStack.start(scenario=SCENARIO, flows_file=flows) as ours:
            # The relay gets a fake of its own: each one's counts (frames appended, audio
            # sent) then belong to one server while both run at once.
            fake = await Child.start("fake", "--scenario", json.dumps(SCENARIO))
            try:
                relay = await Child.start(
                    "--realtime-url", fake.info["url"], "--api-key", fake.info["api_key"],
                    *(["--deflate"] if deflate else []), module="tests.bench.bare_relay", cwd=ROOT,
                )  # fmt: skip
                try:
                    theirs = ProcessStack(fake, relay)
                    for r in range(rounds):
                        print(f"... round {r + 1}: {n} calls to each server for {seconds:g} s",
                              file=sys.stderr, flush=True)  # fmt: skip
                        # Both at once, windows lined up: a shared machine's other load
                        # then weighs on both alike.
                        both = asyncio.Barrier(2)
                        got = await asyncio.gather(
                            run_level(n, seconds, ours, None, both.wait),
                            run_level(n, seconds, theirs, direct_dial(theirs.base_url), both.wait),
                        )
                        for name, row in zip(("ours", "relay"), got, strict=True):
                            rows.append({"round": r + 1, "server": name, **row})
                finally:
                    await relay.stop()
            finally:
                await fake.stop()
    return rows


def print_report(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'round':>5} | {'server':<6} | {'calls':>5} | {'srv %core':>9} | "
        f"{'CPU s/call/min':>14} | {'lost in/out':>11} | {'late %':>6} | {'box busy %':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        lost = f"{r['lost_in_frames']}/{max(0, round(r['lost_out_ms'] / 20))}"
        print(
            f"{r['round']:>5} | {r['server']:<6} | {r['opened']:>5} | {r['server_core_pct']:>9.1f} | "
            f"{r['server_cpu_s_per_call_min']:>14.3f} | {lost:>11} | "
            f"{r['frames_late_pct']:>6.2f} | {r['machine_busy_pct']:>10.0f}"
        )
    cost = {
        name: [r["server_cpu_s_per_call_min"] for r in rows if r["server"] == name]
        for name in ("ours", "relay")
    }
    ours, relay = statistics.mean(cost["ours"]), statistics.mean(cost["relay"])
    per_round = [o / t for o, t in zip(cost["ours"], cost["relay"], strict=True) if t]
    print(
        f"\nCPU s per call-minute: ours {ours:.3f}, relay {relay:.3f}; "
        f"ours/relay = {ours / relay:.2f}"
        + (f" (rounds: {', '.join(f'{x:.2f}' for x in per_round)})" if len(per_round) > 1 else "")
    )
    for r in rows:
        problems = r["failed_open"] or r["cancels"] or r["fake_violations"]
        if problems or r["opened"] != r["calls"]:
            print(
                f"  round {r['round']} {r['server']}: {r['calls'] - r['opened']} failed to open "
                f"{r['failed_open']}, {r['cancels']} reply cancels, "
                f"{r['fake_violations']} fake violations"
            )
    print(
        "lost: inbound frames never appended / outbound 20 ms frames never delivered. "
        "late: emulator frames sent > 5 ms after their deadline (the client's own scheduling)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls")
    parser.add_argument("--seconds", type=float, default=20.0, help="hold per server and round")
    parser.add_argument("--rounds", type=int, default=2, help="times to run both side by side")
    parser.add_argument(
        "--relay-deflate", action="store_true",
        help="the relay offers per-message deflate to the model (its library's default)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = event_loop_runner()(
        bench(args.calls, args.seconds, max(1, args.rounds), args.relay_deflate)
    )
    print(f"bridge vs bare relay: {os.cpu_count()} CPUs, {args.calls} calls, "
          f"{args.seconds:g} s per server and round\n")  # fmt: skip
    print_report(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
