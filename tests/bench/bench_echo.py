"""Echo round trip through the shipped telephony path (make bench).

Real uvicorn serving the signed webhook and the media stream with the echo handler, in a
child process; N Twilio-like clients in this process send real-time 20 ms frames, each
with a unique payload, and time each frame until its echo comes back. Marks are echoed
as soon as they arrive (an ideal phone), so pacing never holds audio back here: what is
measured is parse -> handler -> frame/mark -> send, plus loopback.

    python -m tests.bench.bench_echo [--calls 1,50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time

import websockets

from telephony.testing.emulator import dial_webhook
from telephony.testing.messages import (
    InboundBuilder,
)

TOKEN = "bench-auth-token"
SERVER = r"""
import asyncio, sys
from starlette.applications import Starlette
from agent.devkit.stack import bind_free, run_app
from telephony.media_route import echo_handler, media_stream_route
from telephony.tokens import StreamTokens
from telephony.webhook import WebhookConfig, voice_routes

async def main():
    sock = bind_free()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    tokens = StreamTokens(b"0123456789abcdef0123456789abcdef", ttl_s=60)
    cfg = WebhookConfig(public_url=base, auth_token=sys.argv[1], tokens=tokens)
    app = Starlette(routes=[*voice_routes(cfg, lambda f: "echo"),
                            media_stream_route("/twilio/media", echo_handler, tokens)])
    async with run_app(app, sock) as url:
        print(url, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_call(base: str, seconds: float, rtts: list[float]) -> None:
    target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15551112222")
    b = InboundBuilder("MZ" + os.urandom(16).hex(), target.call_sid, target.account_sid)
    sent: dict[bytes, float] = {}
    async with websockets.connect(target.ws_url, max_size=2**20, compression=None) as ws:
        await ws.send(b.connected())
        await ws.send(b.start(target.parameters))

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if msg["event"] == "media":


                    payload = base64.b64decode(msg["media"]["payload"])
                    t = sent.pop(payload[:8], None)
                    if t is not None:
                        rtts.append((time.perf_counter() - t) * 1e6)
                elif msg["event"] == "mark":
                    await ws.send(b.mark(msg["mark"]["name"]))

        reader = asyncio.create_task(receive())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for n in range(int(seconds * 50)):
            await asyncio.sleep(max(0.0, t0 + n * 0.02 - loop.time()))
            frame = n.to_bytes(4, "big") + os.urandom(4) + b"\x55" * 152
            sent[frame[:8]] = time.perf_counter()
            await ws.send(b.media(frame, n * 20))
        await ws.send(b.stop())
        reader.cancel()


async def run(calls: int, seconds: float, base: str, pid: int) -> None:
    rtts: list[float] = []
    c0 = cpu_seconds(pid)
    await asyncio.gather(*(one_call(base, seconds, rtts) for _ in range(calls)))
    cpu = cpu_seconds(pid) - c0
    rtts.sort()
    p = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))]  # noqa: E731
    print(f"{calls:5d} calls  frames {len(rtts):6d}  echo RTT p50 {p(0.5) / 1000:6.2f} ms  "
          f"p99 {p(0.99) / 1000:6.2f} ms  server CPU {cpu / (calls * seconds) * 1000:5.2f} ms per call-second")


async def main(calls: list[int], seconds: float, base: str, pid: int) -> None:
    print("echo round trip: client send -> server parse -> echo -> pace/mark -> client receive")
    for n in calls:
        await run(n, seconds, base, pid)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="1,50")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    # The server runs in its own process so its CPU can be read from /proc.
    proc = subprocess.Popen([sys.executable, "-c", SERVER, TOKEN], stdout=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip()  # type: ignore[union-attr]
        asyncio.run(main([int(x) for x in args.calls.split(",")], args.seconds, base, proc.pid))
    finally:
        proc.terminate()
        proc.wait(5)
