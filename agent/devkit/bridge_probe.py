"""Time the bridge across processes with stamps carried inside the audio itself.

The load test and `tests/bench/bench_bridge.py` run the emulated phone, the server and
the fake provider as separate processes. To time the server's own hop they stamp the
audio it forwards:

- inbound: the phone writes `time.monotonic_ns() // 1000` into the first 18 bytes of a
  media frame; the fake provider reads it when the frame arrives in
  `input_audio_buffer.append`.
- outbound: the fake stamps the first audio delta of each reply; the phone reads the
  stamp from the first media frame of it.

CLOCK_MONOTONIC is one clock for every process on a Linux machine, so the difference is
the time the frame spent in two loopback hops, the server and each event loop's queue.
A stamp is 6 magic bytes + 12 nibbles, all μ-law codes 0xF0-0xFF (|x| <= 120 of 32767:
far below any voice-activity threshold), so stamped audio still sounds like the audio.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from telephony.testing.emulator import EmulatedCall, StreamTarget

MAGIC = bytes([0xFA, 0xF5] * 3)
STAMP_BYTES = 18
STAMP_B64 = 24  # 18 bytes of base64, no padding
MAGIC_B64 = base64.b64encode(MAGIC).decode()
PAYLOAD_KEY = '"payload":"'
STAMPED_PAYLOAD = PAYLOAD_KEY + MAGIC_B64
MEDIA_HEAD = '{"event":"media"'


def now_us() -> int:
    return time.monotonic_ns() // 1000


# Hex digits <-> μ-law codes 0xF0-0xFF, by bytes.translate (C speed: this runs per frame).
_HEX = b"0123456789abcdef"
_TO_CODES = bytes.maketrans(_HEX, bytes(range(0xF0, 0x100)))
_TO_HEX = bytes.maketrans(bytes(range(0xF0, 0x100)), _HEX)


def stamp(us: int) -> bytes:
    return MAGIC + (b"%012x" % (us & 0xFFFFFFFFFFFF)).translate(_TO_CODES)


def read_stamp(data: bytes) -> int | None:
    """The microsecond stamp at the start of `data`, or None if it carries none."""
    if len(data) < STAMP_BYTES or data[:6] != MAGIC:
        return None
    digits = data[6:STAMP_BYTES]
    if min(digits) < 0xF0:
        return None  # audio that happens to start like a stamp
    return int(digits.translate(_TO_HEX), 16)


def stamp_front(audio: bytes) -> bytes:
    """`audio` with a stamp of now over its first bytes (same length)."""
    if len(audio) < STAMP_BYTES:
        return audio
    return stamp(now_us()) + audio[STAMP_BYTES:]


def summary_us(values: list[int]) -> dict[str, Any]:
    """n, p50, p99, max of microsecond samples (None when there are none)."""
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    s = sorted(values)
    return {
        "n": len(s),
        "p50": s[len(s) // 2],
        "p99": s[min(len(s) - 1, int(len(s) * 0.99))],
        "max": s[-1],
    }


class StampedCall(EmulatedCall):
    """An emulated call that stamps every `every`-th media frame it sends and appends to
    `out_lat_us` the delay of each stamped reply frame it receives."""

    def __init__(
        self, target: StreamTarget, out_lat_us: list[int], *, every: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(target, **kwargs)
        self._every = max(1, every)
        self._sent_media = 0
        inner = self._core.on_message

        def on_message(message: str | bytes, now: float) -> Any:
            if isinstance(message, str):
                i = message.find(STAMPED_PAYLOAD)
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
                self._sent_media += 1
                if self._sent_media % self._every == 0:
                    i = message.rfind(PAYLOAD_KEY) + len(PAYLOAD_KEY)
                    tag = base64.b64encode(stamp(now_us())).decode()
                    message = message[:i] + tag + message[i + STAMP_B64 :]
            await raw_send(message)

        self._ws.send = send  # type: ignore[method-assign,assignment]
