"""Offline engine: turn latency and memory.

    python -m tests.bench.bench_engine [--sessions 4] [--rounds 2] [--port 0]

Starts the engine in a subprocess (`run_engine`), then plays a short dialog into it over
the Realtime protocol in real time (20 ms μ-law frames, like a phone line):

1. one session alone: latency per caller turn;
2. `--sessions` sessions at once (same dialog): latency under load, and the engine
   process's peak resident memory (VmHWM from /proc/PID/status).

Latency is measured from `input_audio_buffer.speech_stopped` (the engine's end-of-speech
decision) to the first `response.output_audio.delta`; for turns answered with a tool call
(no audio), to `response.function_call_arguments.done`. "from last word" adds the VAD
hangover: wall time from the last voiced frame sent to the same first output.
Tool results are answered at once and their spoken phrasing is timed from `response.create`.
Every session uses its own dialog variant so data-dependent replies are not cache hits.
Targets: p50 < 700 ms, peak RSS < 700 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # runnable as a plain script from a checkout

TARGET_P50_MS = 700
TARGET_RSS_MB = 700
FRAME = 160  # 20 ms of μ-law
TOOLS = ["check_availability", "book_appointment", "lookup_order", "transfer_call", "end_call"]

# Each session plays its own variant (other day, name, order number), so replies that
# depend on the data are synthesised fresh instead of coming from the engine's phrase cache.
DAYS = [("Monday", "2026-11-30"), ("Tuesday", "2026-12-01"), ("Wednesday", "2026-11-25"),
        ("Thursday", "2026-11-26"), ("Friday", "2026-11-27"), ("Saturday", "2026-11-28")]  # fmt: skip
NAMES = ["Ana Lopez", "Maria Gonzalez", "John Smith", "Kim Lee", "Peter Brown", "Sara Cohen"]
ORDERS = [("four five six seven", "4567"), ("one two three four", "1234"), ("eight eight two one", "8821"),
          ("three three nine zero", "3390"), ("five one seven two", "5172"), ("six zero four eight", "6048")]  # fmt: skip
TIMES = [("Ten thirty.", "10:30"), ("Nine.", "09:00"), ("Two pm.", "14:00"), ("Eleven.", "11:00"),
         ("Three thirty.", "15:30"), ("At twelve noon.", "12:00")]  # fmt: skip


def dialog(variant: int) -> list[tuple[str, dict[str, Any] | None]]:
    """(caller says, canned tool result if the engine calls a tool)."""
    (day_word, day), name = DAYS[variant % 6], NAMES[variant % 6]
    (spoken_order, order), (spoken_time, time_) = ORDERS[variant % 6], TIMES[variant % 6]
    slots = sorted({"09:00", "10:30", "14:00", time_})
    return [
        ("Hi, I'd like to book an appointment.", None),
        (f"{day_word}, please.", {"day": day, "free_slots": slots}),
        (spoken_time, None),
        (f"My name is {name}.", {"status": "booked", "booking_id": f"BK-{1000 + variant}", "day": day,
                                 "time": time_, "name": name}),  # fmt: skip
        ("Where is my order?", None),
        (spoken_order.capitalize() + ".", {"found": True, "order_number": order, "status": "shipped",
                                            "items": ["mug"], "eta": DAYS[(variant + 2) % 6][1]}),  # fmt: skip
        ("What's the weather like today?", None),
        ("Can I speak to a person?", {"status": "transferring"}),
    ]


@dataclass
class Timings:
    turn_ms: list[float] = field(default_factory=list)  # speech_stopped -> first output
    audio_ms: list[float] = field(default_factory=list)  # ... for turns answered with audio
    from_last_word_ms: list[float] = field(default_factory=list)
    result_ms: list[float] = field(default_factory=list)  # response.create -> first audio

    def extend(self, other: Timings) -> None:
        for name in ("turn_ms", "audio_ms", "from_last_word_ms", "result_ms"):
            getattr(self, name).extend(getattr(other, name))


def render_dialog(variant: int) -> list[bytes]:
    from agent.local.codec import encode_output
    from agent.local.models import load_models

    tts = load_models().tts
    return [encode_output(tts.synthesize(text), tts.rate, "audio/pcmu") for text, _ in dialog(variant)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TOKEN = secrets.token_urlsafe(16)  # the engine refuses clients without its token


def start_engine(port: int) -> subprocess.Popen[str]:
    code = f"from agent.local.server import run_engine; run_engine('127.0.0.1', {port}, {TOKEN!r})"
    env = {**os.environ, "TOOLS_TODAY": "2026-11-24", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "local engine listening on ..." once models are loaded
    if "listening" not in line:
        proc.kill()
        raise SystemExit(f"engine did not start: {line!r}")
    return proc


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


async def run_session(port: int, variant: int, audio: list[bytes]) -> Timings:
    timings = Timings()
    async with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", max_size=None,
                       additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        session = {
            "type": "realtime",
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
                "output": {"format": {"type": "audio/pcmu"}},
            },
            "tools": [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in TOOLS],
        }
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        inbox: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

        async def reader() -> None:
            async for message in ws:
                await inbox.put((time.perf_counter(), json.loads(message)))

        async def next_event(*kinds: str) -> tuple[float, dict[str, Any]]:
            while True:
                at, event = await inbox.get()
                if event["type"] == "error":
                    raise RuntimeError(event["error"])
                if event["type"] in kinds:
                    return at, event

        read_task = asyncio.create_task(reader())
        await next_event("session.updated")
        try:
            for utterance, (_, tool_result) in zip(audio, dialog(variant), strict=True):
                last_word = await play(ws, utterance)
                stopped, _ = await next_event("input_audio_buffer.speech_stopped")
                at, first = await next_event("response.output_audio.delta", "response.function_call_arguments.done")
                timings.turn_ms.append((at - stopped) * 1000)
                timings.from_last_word_ms.append((at - last_word) * 1000)
                if first["type"] == "response.output_audio.delta":
                    timings.audio_ms.append((at - stopped) * 1000)
                _, done = await next_event("response.done")
                calls = [i for i in done["response"]["output"] if i["type"] == "function_call"]
                if calls and tool_result is not None:
                    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                        "type": "function_call_output", "call_id": calls[-1]["call_id"],
                        "output": json.dumps(tool_result)}}))  # fmt: skip
                    sent = time.perf_counter()
                    await ws.send(json.dumps({"type": "response.create"}))
                    kinds = ("response.output_audio.delta", "response.done")
                    at, event = await next_event(*kinds)
                    if event["type"] == "response.output_audio.delta":
                        timings.result_ms.append((at - sent) * 1000)
                        await next_event("response.done")
        finally:
            read_task.cancel()
    return timings


async def play(ws: Any, utterance: bytes, silence_ms: int = 1200) -> float:
    """Send speech then silence in real time; returns when the last voiced frame went out."""
    frames = [utterance[i : i + FRAME] for i in range(0, len(utterance), FRAME)]
    silence = [b"\xff" * FRAME] * (silence_ms // 20)
    start = time.perf_counter()
    last_word = start
    for i, frame in enumerate(frames + silence):
        await asyncio.sleep(max(0.0, start + i * 0.02 - time.perf_counter()))  # pacing, not sync
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()}))
        if i == len(frames) - 1:
            last_word = time.perf_counter()
    return last_word


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(title: str, t: Timings) -> dict[str, Any]:
    rows = {
        "end of speech -> first output": t.turn_ms,
        "end of speech -> first audio": t.audio_ms,
        "last voiced frame -> first output": t.from_last_word_ms,
        "tool result -> first audio": t.result_ms,
    }
    print(f"\n{title}")
    print(f"  {'metric':36} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'mean':>8}")
    out: dict[str, Any] = {}
    for name, values in rows.items():
        mean = statistics.fmean(values) if values else float("nan")
        p50, p95 = pct(values, 0.5), pct(values, 0.95)
        print(f"  {name:36} {len(values):>4} {p50:>8.0f} {p95:>8.0f} {mean:>8.0f}")
        out[name] = {"n": len(values), "p50_ms": round(p50), "p95_ms": round(p95)}
    return out


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="dialog repetitions in the single-session run")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    variants = args.rounds + args.sessions
    print(f"rendering caller audio ({variants} dialog variants) ...", flush=True)
    audio = [render_dialog(v) for v in range(variants)]
    port = args.port or free_port()
    t0 = time.perf_counter()
    engine = start_engine(port)
    print(f"engine pid {engine.pid} up in {time.perf_counter() - t0:.1f} s (models loaded, warmed)")
    try:
        single = Timings()
        for v in range(args.rounds):
            single.extend(await run_session(port, v, audio[v]))
        solo = report("1 session", single)
        loaded = Timings()
        runs = (run_session(port, v, audio[v]) for v in range(args.rounds, variants))
        for result in await asyncio.gather(*runs):
            loaded.extend(result)
        busy = report(f"{args.sessions} sessions at once", loaded)
        rss, hwm = memory_mb(engine.pid)
    finally:
        engine.terminate()
        engine.wait(timeout=10)
    print(f"\nengine memory: VmRSS {rss:.0f} MB, peak VmHWM {hwm:.0f} MB (target < {TARGET_RSS_MB} MB)")
    p50 = solo["end of speech -> first audio"]["p50_ms"]
    ok = p50 < TARGET_P50_MS and hwm < TARGET_RSS_MB
    print(f"p50 end of speech -> first audio {p50} ms (target < {TARGET_P50_MS} ms), "
          f"peak RSS {hwm:.0f} MB: {'OK' if ok else 'MISSED'}")
    print(json.dumps({"single": solo, "concurrent": busy, "sessions": args.sessions,
                      "rss_mb": round(rss), "peak_rss_mb": round(hwm), "cpus": os.cpu_count(),
                      "loadavg": os.getloadavg()}))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
