"""Per-frame cost of the audio path, each direction (make bench).

Target: decode + resample of one 20 ms frame under 20 µs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from telephony.audio import PcmToUlaw, UlawToPcm, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.protocol import (
    media_message,
    parse_inbound,
)
from telephony.testing.messages import (
    InboundBuilder,
)

N = 20_000


def per_call_us(fn: Callable[[], object], n: int = N, repeats: int = 5) -> tuple[float, float]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return min(runs), statistics.median(runs)


def main() -> None:
    rng = np.random.default_rng(1)
    pcm8 = (rng.standard_normal(160) * 3000).astype(np.int16).tobytes()
    ulaw = pcm16_to_ulaw(pcm8)
    pcm24 = (rng.standard_normal(480) * 3000).astype(np.int16).tobytes()
    up16 = UlawToPcm(16000)
    up24 = UlawToPcm(24000)
    down24 = PcmToUlaw(24000)
    builder = InboundBuilder("MZ" + "0" * 32, "CA" + "0" * 32, "AC" + "0" * 32)
    wire = builder.media(ulaw, 20)

    rows = [
        ("parse inbound media message (JSON + base64)", lambda: parse_inbound(wire)),
        ("build outbound media message", lambda: media_message("MZ1", ulaw)),
        ("μ-law -> PCM16 8 kHz", lambda: ulaw_to_pcm16(ulaw)),
        ("μ-law 8k -> PCM16 16 kHz (Gemini in: decode+resample)", lambda: up16.convert(ulaw)),
        ("μ-law 8k -> PCM16 24 kHz (OpenAI pcm24 in)", lambda: up24.convert(ulaw)),
        ("PCM16 24 kHz -> μ-law 8k (Gemini out: resample+encode)", lambda: down24.convert(pcm24)),
    ]
    print(f"{'per 20 ms frame':58} {'best µs':>8} {'median µs':>10}")
    for name, fn in rows:
        best, med = per_call_us(fn)
        print(f"{name:58} {best:8.2f} {med:10.2f}")


if __name__ == "__main__":
    main()
