"""What a forged voice webhook costs the event loop (make bench).

Target: a 64 KiB forged request under 5 ms of event-loop time. Measured in-process over
ASGI (no sockets): the time from the request to the 403 is all event-loop time, since
nothing in the webhook awaits I/O once the body has arrived. Also a real, signed
webhook for comparison. (Before the form was read in linear time, 8,000 short fields
cost ~2.1 s.)
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from telephony.tokens import StreamTokens
from telephony.webhook import WebhookConfig, voice_routes

PUBLIC = "https://agent.example.com"
TOKEN = "t" * 32
FORGED = {
    "8,000 short fields (64 KiB)": urlencode([(f"f{i}", "x") for i in range(8000)]).encode()[:65536],
    "256 fields of 240 chars (64 KiB)": urlencode([(f"f{i}", "y" * 240) for i in range(256)]).encode()[:65536],
    "one 64 KiB field": b"a=" + b"z" * 65000,
}
REAL = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "2" * 32, "From": "+15551230001",
        "To": "+15550002000", "CallStatus": "ringing", "Direction": "inbound"}


async def time_ms(client: httpx.AsyncClient, body: bytes, signature: str, n: int = 200) -> list[float]:
    headers = {"content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.post("/twilio/voice", content=body, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def main() -> None:
    logging.getLogger("telephony").setLevel(logging.ERROR)  # the rejections are expected
    config = WebhookConfig(public_url=PUBLIC, auth_token=TOKEN, tokens=StreamTokens(b"k" * 32))
    app = Starlette(routes=voice_routes(config, lambda form: "booking"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        print(f"{'request':<36} {'median ms':>10} {'p99 ms':>8}  target < 5 ms")
        for name, body in FORGED.items():
            runs = sorted(await time_ms(client, body, "Zm9yZ2Vk"))
            print(f"{'forged: ' + name:<36} {statistics.median(runs):>10.2f} {runs[int(len(runs) * .99) - 1]:>8.2f}")
        body = urlencode(REAL).encode()
        signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/voice", REAL)
        runs = sorted(await time_ms(client, body, signature))
        print(f"{'real, signed (answered with TwiML)':<36} {statistics.median(runs):>10.2f} {runs[int(len(runs) * .99) - 1]:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
