"""The bridge's own cost with many concurrent calls (make bench).

    python tests/bench/bench_bridge.py [--calls 50,100,200] [--seconds 20]

Three processes, so each one's CPU can be read on its own from /proc/<pid>/stat:

- the server (this repo's app under uvicorn, every flow pointed at the fake),
- the fake OpenAI Realtime server (tests/fakes, stamping and timing frames),
  both started by `agent.devkit.process_stack` (as `phone-agent loadtest` does),
- this process: N emulated Twilio calls at real-time speed (20 ms frames), each caller
  silent with a short speech-like tone burst every few seconds so the fake replies.

Per N it holds the calls for --seconds and reports:

(a) inbound: emulator sends a media frame -> the fake receives it in
    `input_audio_buffer.append`. Each frame is stamped at send time with
    time.monotonic_ns() in its first 18 bytes (`agent.devkit.bridge_probe`); the fake
    times the last frame of each append (quiet frames the server holds to send several
    in one append wait for it on purpose: that wait is not the hop).
(b) outbound: the fake sends the first audio delta of a reply (stamped the same way)
    -> the emulator receives the first media frame of it. Later deltas of a reply are
    deliberately held by the server's pacing (~200 ms ahead of the ear), so only the
    first one times the bridge itself.
(c) server CPU: seconds per call per minute of call time, and % of one core.
(d) frames: late at the emulator (its own scheduling: if high, the client is the
    bottleneck and (a)/(b) are inflated by it) and lost (inbound frames sent but never
    appended; outbound reply audio the fake sent that never reached the phone).

All three run on uvloop when it is installed (as `phone-agent serve` does).
Both stamps include two loopback hops, the websockets/uvicorn stacks on each side and
each process's event-loop queueing, not just our code. On a small shared machine the
numbers are noisy: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from a checkout

import httpx  # noqa: E402
import yaml  # noqa: E402

from agent.devkit.bridge_probe import StampedCall, summary_us  # noqa: E402
from agent.devkit.process_stack import ProcessStack, Usage  # noqa: E402
from agent.flows import DEFAULT_FLOWS_FILE  # noqa: E402
from agent.service.runtime import event_loop_runner  # noqa: E402
from telephony.testing.emulator import StreamTarget, dial_webhook  # noqa: E402

FRAME = 160  # bytes of μ-law per 20 ms
TO = "+15550001000"  # the example flows' appointment desk
BURST_MS, PERIOD_MS = 400, 6000
SCENARIO = {
    "default_reply": "Okay, got it. Anything else?",  # ~1.1 s of tone
    "ms_per_char": 40,  # multiples of 20 ms: replies end on a frame boundary
    "min_reply_ms": 400,
    "max_reply_ms": 1600,  # the greeting too
}


# ---------------------------------------------------------------- the emulated calls


class BenchCall(StampedCall):
    """A stamped call that also keeps its own worst lateness in the measured window."""

    def __init__(self, target: StreamTarget, out_lat_us: list[int]) -> None:
        super().__init__(target, out_lat_us, speed=1.0, record_audio=False)
        self.window_max_late_ms = 0.0
        note_lateness = self._core.note_lateness

        def note(late_s: float) -> None:
            self.window_max_late_ms = max(self.window_max_late_ms, late_s * 1000)
            note_lateness(late_s)

        self._core.note_lateness = note  # type: ignore[method-assign]


async def caller(call: BenchCall, burst: bytes, first_ms: int, stop_at: float) -> None:
    """Silence, then a short tone burst every PERIOD_MS; none in the last period before
    `stop_at`, so every reply has finished playing when the calls hang up."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(Exception):  # the call ending under it is the normal end
        await call.pause(first_ms)
        while loop.time() + PERIOD_MS / 1000 < stop_at:
            await call.say(burst)
            await call.pause(PERIOD_MS - BURST_MS)


# How a bench call reaches a server: the signed webhook (ours) or straight to a socket.
Dial = Callable[[httpx.AsyncClient, int], Awaitable[StreamTarget]]


async def run_level(
    n: int,
    seconds: float,
    stack: ProcessStack,
    dial: Dial | None = None,
    in_step: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """N calls held for `seconds` on `stack`; `in_step` is awaited once they are all up,
    before the measured window (to line it up with another level's)."""
    from agent.devkit.fake_openai import tone

    fake = stack.fake
    base, token = stack.base_url, stack.auth_token
    burst = tone(BURST_MS, hz=300.0, amplitude=6000)
    out_lat: list[int] = []
    await fake.ask("reset")
    loop = asyncio.get_running_loop()
    t_open = time.monotonic()
    sem = asyncio.Semaphore(32)  # webhook + handshake at once: like a ramp of a second or two
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def open_one(i: int) -> BenchCall:
            async with sem:
                if dial is None:
                    target = await dial_webhook(
                        base, token, to=TO, from_=f"+1555{i:07d}", client=client
                    )
                else:
                    target = await dial(client, i)
                call = BenchCall(target, out_lat)
                await call.open()
                return call

        opened = await asyncio.gather(*(open_one(i) for i in range(n)), return_exceptions=True)
    calls = [c for c in opened if isinstance(c, BenchCall)]
    failed_open = [c for c in opened if not isinstance(c, BenchCall)]
    # Until every greeting has played: the provider sessions are open and the frames that
    # waited for them (buffered by the server) are out of the way.
    await asyncio.gather(*(c.wait_for_bot_reply(timeout=60) for c in calls), return_exceptions=True)
    open_s = time.monotonic() - t_open
    if in_step is not None:
        await in_step()
    stop_at = loop.time() + seconds + 2.0
    rng = random.Random(n)
    callers = [
        asyncio.create_task(caller(c, burst, rng.randrange(0, PERIOD_MS, 20), stop_at))
        for c in calls
    ]

    # The measured window: all calls open, greetings played.
    await fake.ask("window")
    out_lat.clear()
    for c in calls:
        c.window_max_late_ms = 0.0
    late0 = sum(c.frames_late for c in calls)
    usage0 = Usage.now(stack)
    await asyncio.sleep(seconds)  # the hold itself: the calls run meanwhile
    cost = Usage.now(stack).cost_since(usage0)
    wall = cost.pop("wall_s")
    window = await fake.ask("stats")
    late = sum(c.frames_late for c in calls) - late0
    out = summary_us(list(out_lat))
    lateness = max((c.window_max_late_ms for c in calls), default=0.0)

    # Let the last replies play out, then hang up and wait for the fake to see every close.
    await asyncio.gather(*callers, return_exceptions=True)
    await asyncio.gather(*(c.hangup() for c in calls), return_exceptions=True)
    final = await fake.ask("idle")
    sent = sum(c.frames_sent for c in calls)
    received_ms = sum(t.bot_audio_received_ms for c in calls for t in c.turns)
    return {
        "calls": n,
        "opened": len(calls),
        "failed_open": [repr(e)[:200] for e in failed_open[:3]],
        "open_s": round(open_s, 1),
        "window_s": round(wall, 1),
        "in_us": window["in_us"],
        "out_us": out,
        **cost,
        "server_cpu_s": round(cost["server_cpu_s"], 2),
        "server_cpu_s_per_call_min": round(
            cost["server_cpu_s"] / max(1, len(calls)) / (wall / 60), 3
        ),
        "frames_late": late,
        "frames_late_pct": round(100 * late / max(1, len(calls) * wall * 50), 2),
        "max_lateness_ms": round(lateness, 1),
        "lost_in_frames": sent - final["frames_in"],
        "lost_out_ms": round(final["audio_out_ms"] - received_ms, 1),
        "cancels": final["cancels"],
        "fake_violations": final["violations"] + final["internal_errors"],
    }


def _fmt_us(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "-"
    return f"{stats['p50']:>6} / {stats['p99']:>6}"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'calls':>5} | {'in µs p50 / p99':>15} | {'out µs p50 / p99':>16} | {'srv %core':>9} | "
        f"{'srv CPU s/call/min':>18} | {'fake %':>6} | {'emu %':>5} | {'late % (max ms)':>15} | "
        f"{'lost in/out':>11} | {'box busy %':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        lost = f"{r['lost_in_frames']}/{max(0, round(r['lost_out_ms'] / 20))}"
        print(
            f"{r['opened']:>5} | {_fmt_us(r['in_us']):>15} | {_fmt_us(r['out_us']):>16} | "
            f"{r['server_core_pct']:>9.1f} | {r['server_cpu_s_per_call_min']:>18.3f} | "
            f"{r['fake_core_pct']:>6.1f} | {r['emulator_core_pct']:>5.1f} | "
            f"{r['frames_late_pct']:>6.2f} ({r['max_lateness_ms']:>5.0f}) | {lost:>11} | "
            f"{r['machine_busy_pct']:>5.0f} ({r['machine_steal_pct']:.0f})"
        )
    print(
        "\nin: emulator sends a frame -> fake gets it (append); out: fake sends a reply's first "
        "delta -> emulator gets its first frame (n samples: "
        + ", ".join(f"{r['in_us']['n']}/{r['out_us']['n']}" for r in rows)
        + ").\nlate: emulator frames sent > 5 ms after their deadline (this client's own "
        "scheduling); lost: inbound frames never appended / outbound frames never delivered.\n"
        "box busy: all CPUs, every process on the machine (steal in brackets); near 100 the "
        "machine, not the bridge, is the limit.\n"
        "Two loopback hops and every process's event loop are inside both latencies; "
        "the machine may be shared: numbers are noisy."
    )
    for r in rows:
        if r["failed_open"] or r["cancels"] or r["fake_violations"]:
            print(
                f"  {r['calls']} calls: {r['calls'] - r['opened']} failed to open "
                f"{r['failed_open']}, {r['cancels']} reply cancels, "
                f"{r['fake_violations']} fake violations"
            )


def bench_flows(directory: Path) -> Path:
    """The example flows with the silence prompt off: the callers here are silent for
    long stretches by design, and an "Are you still there?" would be traffic the bench
    does not mean to measure (and audio in flight when the level hangs up)."""
    flows = yaml.safe_load(DEFAULT_FLOWS_FILE.read_text())
    for flow in flows["flows"].values():
        flow["reprompt_after_s"] = 0
    path = directory / "bench-flows.yaml"
    path.write_text(yaml.safe_dump(flows))
    return path


async def bench(levels: list[int], seconds: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        flows = bench_flows(Path(tmp))
        async with ProcessStack.start(scenario=SCENARIO, flows_file=flows) as stack:
            return await _levels(stack, levels, seconds)


async def _levels(stack: ProcessStack, levels: list[int], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for n in levels:
        print(f"... {n} calls for {seconds:g} s", file=sys.stderr, flush=True)
        rows.append(await run_level(n, seconds, stack))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="50,100,200", help="comma-separated call counts")
    parser.add_argument("--seconds", type=float, default=20.0, help="hold per level")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    levels = [int(x) for x in args.calls.split(",") if x.strip()]
    rows = event_loop_runner()(bench(levels, args.seconds))
    print(f"bridge cost: {os.cpu_count()} CPUs, {args.seconds:g} s per level\n")
    print_table(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
