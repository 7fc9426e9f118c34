"""The bridge's own cost with many concurrent calls (make bench).

    python tests/bench/bench_bridge.py [--calls 50,100,200] [--seconds 20]

Three processes, so each one's CPU can be read on its own from /proc/<pid>/stat:

- the server (this repo's app under uvicorn, every flow pointed at the fake),
- the fake OpenAI Realtime server (tests/fakes, subclassed here to time frames),
- this process: N emulated Twilio calls at real-time speed (20 ms frames), each caller
  silent with a short speech-like tone burst every few seconds so the fake replies.

Per N it holds the calls for --seconds and reports:

(a) inbound: emulator sends a media frame -> the fake receives it in
    `input_audio_buffer.append`. Each frame is stamped at send time with
    time.monotonic_ns() in its first 18 bytes (near-silent μ-law codes, so the fake's
    VAD does not hear them); CLOCK_MONOTONIC is one clock for all processes on Linux.
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
import base64
import contextlib
import json
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fakes lives in the checkout, not the package

import httpx  # noqa: E402

from telephony.emulator import EmulatedCall, StreamTarget, dial_webhook  # noqa: E402

# A stamp: 6 magic bytes + 12 nibbles of microseconds, all μ-law codes 0xF0-0xFF (|x| <= 120
# of 32767: far below any VAD threshold). 18 bytes = 24 base64 chars, no padding.
MAGIC = bytes([0xFA, 0xF5] * 3)
MAGIC_B64 = base64.b64encode(MAGIC).decode()
STAMP_BYTES, STAMP_B64 = 18, 24
PAYLOAD_KEY = '"payload":"'
OUT_KEY = PAYLOAD_KEY + MAGIC_B64
MEDIA_HEAD = '{"event":"media"'
APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
FRAME = 160  # bytes of μ-law per 20 ms
TO = "+15550001000"  # the example flows' appointment desk
BURST_MS, PERIOD_MS = 400, 6000


def now_us() -> int:
    return time.monotonic_ns() // 1000


def stamp(us: int) -> bytes:
    return MAGIC + bytes(0xF0 | ((us >> (4 * (11 - i))) & 0xF) for i in range(12))


def read_stamp(data: bytes) -> int | None:
    if data[:6] != MAGIC or len(data) < STAMP_BYTES:
        return None
    us = 0
    for b in data[6:STAMP_BYTES]:
        us = us << 4 | (b & 0xF)
    return us


def summary_us(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    s = sorted(values)
    return {
        "n": len(s),
        "p50": s[len(s) // 2],
        "p99": s[min(len(s) - 1, int(len(s) * 0.99))],
        "max": s[-1],
    }


def machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) clock ticks over all CPUs since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- child processes


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def fake_main() -> None:
    """The fake OpenAI server, timing stamped caller frames and stamping reply audio."""
    from tests.fakes.openai_server import FakeOpenAIRealtime, FakeSession, Scenario

    class BenchFake(FakeOpenAIRealtime):
        def __init__(self, scenario: Scenario) -> None:
            super().__init__(scenario)
            self.reset()

        def reset(self) -> None:
            self.in_lat_us: list[int] = []
            self.frames_in = 0
            self.unstamped_in = 0
            self.audio_out_ms = 0
            self.stamped: set[str] = set()
            self.sessions = [s for s in self.sessions if not s.closed]

        async def _on_message(self, sess: FakeSession, raw: str | bytes) -> None:
            t = now_us()
            # Fast path for the 50/s per call appends: the schema check (pydantic) per frame
            # would make the fake, not the bridge, the bottleneck; other events keep it.
            if isinstance(raw, str) and raw.startswith(APPEND_HEAD):
                audio = base64.b64decode(raw[len(APPEND_HEAD) : -2])
                for i in range(0, len(audio), FRAME):
                    sent = read_stamp(audio[i : i + STAMP_BYTES])
                    if sent is None:
                        self.unstamped_in += 1
                    else:
                        self.in_lat_us.append(t - sent)
                self.frames_in += len(audio) // FRAME
                await self._on_append(sess, audio)
                return
            await super()._on_message(sess, raw)

        async def _send(
            self, sess: FakeSession, ev: dict[str, Any], *, validate: bool = True
        ) -> None:
            if ev.get("type") == "response.output_audio.delta":
                chunk = base64.b64decode(ev["delta"])
                self.audio_out_ms += len(chunk) // 8
                pcmu = sess.config["audio"]["output"]["format"].get("type") == "audio/pcmu"
                rid = ev["response_id"]
                if pcmu and rid not in self.stamped and len(chunk) >= FRAME:
                    self.stamped.add(rid)
                    chunk = stamp(now_us()) + chunk[STAMP_BYTES:]
                    ev = {**ev, "delta": base64.b64encode(chunk).decode()}
                    validate = False  # the same shape was validated a thousand times
            await super()._send(sess, ev, validate=validate)

        def stats(self) -> dict[str, Any]:
            return {
                "in_us": summary_us(self.in_lat_us),
                "frames_in": self.frames_in,
                "unstamped_in": self.unstamped_in,
                "audio_out_ms": self.audio_out_ms,
                "stamped_out": len(self.stamped),
                "sessions": len(self.sessions),
                "open": sum(1 for s in self.sessions if not s.closed),
                "cancels": sum(len(s.cancels) for s in self.sessions),
                "violations": sum(len(s.violations) for s in self.sessions),
                "internal_errors": len(self.internal_errors),
            }

    scenario = Scenario(
        default_reply="Okay, got it. Anything else?",  # ~1.1 s of tone
        ms_per_char=40,  # multiples of 20 ms: replies end on a frame boundary
        min_reply_ms=400,
        max_reply_ms=1600,  # the greeting too
        rate_limits=False,
    )
    async with BenchFake(scenario) as fake:
        _reply({"ready": True, "url": fake.url, "api_key": scenario.api_key})
        lines = await _stdin_lines()
        while line := (await lines.readline()).decode().strip():
            if line == "reset":
                fake.reset()
                _reply({"ok": True})
            elif line == "window":
                fake.in_lat_us = []
                _reply({"ok": True})
            elif line == "stats":
                _reply(fake.stats())
            elif line == "idle":
                with contextlib.suppress(TimeoutError):
                    await fake.wait_for(lambda: all(s.closed for s in fake.sessions), 30)
                _reply(fake.stats())


async def server_main(realtime_url: str, api_key: str) -> None:
    """The phone-agent app under uvicorn, every flow on the fake (as `local_stack` does)."""
    import logging

    from agent.inprocess import bind_free, run_app
    from agent.server import create_app
    from agent.settings import Settings

    logging.basicConfig(level=logging.WARNING)
    sock = bind_free()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        cfg = Settings(
            public_url=base,
            twilio_auth_token=token,
            data_dir=Path(tmp),
            force_local=True,
            local_engine_url=realtime_url,
            openai_api_key=api_key,
            stream_token_secret=secrets.token_hex(16),
            max_concurrent_calls=100_000,
        )
        async with run_app(create_app(cfg), sock) as url:
            _reply({"ready": True, "url": url, "auth_token": token})
            lines = await _stdin_lines()
            while await lines.readline():
                pass  # stdin closed: the bench is done


class Child:
    """A role of this script in its own process, driven by lines on stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    @classmethod
    async def start(cls, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        child = cls(proc, {})
        child.info = await child._line(60)
        return child

    @property
    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    async def _line(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"child {self.proc.pid} exited ({await self.proc.wait()})")
        return json.loads(line)

    async def ask(self, command: str, timeout: float = 60) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._line(timeout)

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()  # our own child, by its handle
            await self.proc.wait()


# ---------------------------------------------------------------- the emulated calls


class BenchCall(EmulatedCall):
    """An emulated call that stamps every media frame it sends and times stamped replies."""

    def __init__(self, target: StreamTarget, out_lat_us: list[int]) -> None:
        super().__init__(target, speed=1.0, record_audio=False)
        self.window_max_late_ms = 0.0  # the emulator's own worst lateness in the window
        note_lateness = self._core.note_lateness

        def note(late_s: float) -> None:
            self.window_max_late_ms = max(self.window_max_late_ms, late_s * 1000)
            note_lateness(late_s)

        self._core.note_lateness = note  # type: ignore[method-assign]
        inner = self._core.on_message

        def on_message(message: str | bytes, now: float) -> Any:
            if isinstance(message, str):
                i = message.find(OUT_KEY)
                if i >= 0:
                    t = now_us()
                    start = i + len(PAYLOAD_KEY)
                    sent = read_stamp(base64.b64decode(message[start : start + STAMP_B64]))
                    if sent is not None:
                        out_lat_us.append(t - sent)
            return inner(message, now)

        self._core.on_message = on_message  # type: ignore[method-assign]

    async def open(self) -> None:
        await super().open()
        # open() created the clock task but it has not run yet (a task starts at the next
        # loop turn), so its `send = self._ws.send` picks up this wrapper.
        assert self._ws is not None
        raw_send: Callable[..., Any] = self._ws.send

        async def send(message: str) -> None:
            if message.startswith(MEDIA_HEAD):
                i = message.rfind(PAYLOAD_KEY) + len(PAYLOAD_KEY)
                tag = base64.b64encode(stamp(now_us())).decode()
                message = message[:i] + tag + message[i + STAMP_B64 :]
            await raw_send(message)

        self._ws.send = send  # type: ignore[method-assign]


async def caller(call: BenchCall, burst: bytes, first_ms: int, stop_at: float) -> None:
    """Silence, then a short tone burst every PERIOD_MS; none in the last period before
    `stop_at`, so every reply has finished playing when the calls hang up."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(Exception):  # the call ending under it is the normal end
        await call.pause(first_ms)
        while loop.time() + PERIOD_MS / 1000 < stop_at:
            await call.say(burst)
            await call.pause(PERIOD_MS - BURST_MS)


async def run_level(n: int, seconds: float, fake: Child, server: Child) -> dict[str, Any]:
    from tests.fakes.openai_server import tone  # here: the server child need not load it

    base, token = server.info["url"], server.info["auth_token"]
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
                target = await dial_webhook(
                    base, token, to=TO, from_=f"+1555{i:07d}", client=client
                )
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
    cpu0 = server.cpu_s, fake.cpu_s, time.process_time()
    box0 = machine_ticks()
    t0 = time.monotonic()
    await asyncio.sleep(seconds)  # the hold itself: the calls run meanwhile
    wall = time.monotonic() - t0
    cpu1 = server.cpu_s, fake.cpu_s, time.process_time()
    busy, steal, total = (b - a for a, b in zip(box0, machine_ticks(), strict=True))
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
    server_cpu, fake_cpu, emu_cpu = (b - a for a, b in zip(cpu0, cpu1, strict=True))
    return {
        "calls": n,
        "opened": len(calls),
        "failed_open": [repr(e)[:200] for e in failed_open[:3]],
        "open_s": round(open_s, 1),
        "window_s": round(wall, 1),
        "in_us": window["in_us"],
        "out_us": out,
        "server_cpu_s": round(server_cpu, 2),
        "server_core_pct": round(100 * server_cpu / wall, 1),
        "server_cpu_s_per_call_min": round(server_cpu / max(1, len(calls)) / (wall / 60), 3),
        "fake_core_pct": round(100 * fake_cpu / wall, 1),
        "emulator_core_pct": round(100 * emu_cpu / wall, 1),
        # The whole machine (every process, ours and anyone else's): near 100 = saturated.
        "machine_busy_pct": round(100 * busy / max(1, total), 1),
        "machine_steal_pct": round(100 * steal / max(1, total), 1),
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


async def bench(levels: list[int], seconds: float) -> list[dict[str, Any]]:
    fake = await Child.start("--role", "fake")
    try:
        server = await Child.start(
            "--role",
            "server",
            "--realtime-url",
            fake.info["url"],
            "--api-key",
            fake.info["api_key"],
        )
        try:
            rows = []
            for n in levels:
                print(f"... {n} calls for {seconds:g} s", file=sys.stderr, flush=True)
                rows.append(await run_level(n, seconds, fake, server))
        finally:
            await server.stop()
    finally:
        await fake.stop()
    return rows


def _runner() -> Callable[..., Any]:
    """uvloop when installed, in every role: `phone-agent serve` runs on it, and a cheaper
    loop leaves more of a small machine to the server under test."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="50,100,200", help="comma-separated call counts")
    parser.add_argument("--seconds", type=float, default=20.0, help="hold per level")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--role", choices=["bench", "fake", "server"], default="bench")
    parser.add_argument("--realtime-url", default="")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    run = _runner()
    if args.role == "fake":
        run(fake_main())
    elif args.role == "server":
        run(server_main(args.realtime_url, args.api_key))
    else:
        levels = [int(x) for x in args.calls.split(",") if x.strip()]
        rows = run(bench(levels, args.seconds))
        print(f"bridge cost: {os.cpu_count()} CPUs, {args.seconds:g} s per level\n")
        print_table(rows)
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
