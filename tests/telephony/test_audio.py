"""Codec, stateful resampling and framing."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from telephony.audio import (
    FRAME_BYTES,
    Framer,
    PcmToUlaw,
    StreamResampler,
    UlawToPcm,
    pcm16_to_ulaw,
    ulaw_to_pcm16,
)


def tone(rate: int, ms: int, hz: float = 440.0, amp: int = 8000) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (amp * np.sin(2 * math.pi * hz * t)).astype(np.int16).tobytes()


def test_ulaw_round_trip_is_close() -> None:
    pcm = tone(8000, 100)
    back = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(pcm)), dtype=np.int16).astype(float)
    orig = np.frombuffer(pcm, dtype=np.int16).astype(float)
    assert len(back) == len(orig)
    # G.711 is ~38 dB SNR for a loud tone.
    snr = 10 * math.log10(np.sum(orig**2) / np.sum((orig - back) ** 2))
    assert snr > 30


def test_ulaw_silence_decodes_to_zero() -> None:
    assert set(np.frombuffer(ulaw_to_pcm16(b"\xff" * 160), dtype=np.int16)) == {0}


def test_stream_resampler_keeps_length_and_has_no_frame_edge_clicks() -> None:
    src = tone(8000, 1000)
    r = StreamResampler(8000, 16000)
    out = b"".join(r.process(src[i : i + 320]) for i in range(0, len(src), 320)) + r.flush()
    assert abs(len(out) // 2 - 16000) <= 2
    whole = StreamResampler(8000, 16000)
    ref = whole.process(src) + whole.flush()
    a = np.frombuffer(out, dtype=np.int16).astype(int)
    b = np.frombuffer(ref, dtype=np.int16).astype(int)
    n = min(len(a), len(b))
    # Chunked streaming equals one-shot streaming: state carries across frame edges.
    assert np.max(np.abs(a[:n] - b[:n])) <= 2


def test_resampler_handles_odd_byte_splits() -> None:
    src = tone(24000, 200)
    r = StreamResampler(24000, 8000)
    out = b"".join(r.process(src[i : i + 333]) for i in range(0, len(src), 333)) + r.flush()
    assert abs(len(out) // 2 - 1600) <= 2


def test_gemini_directions() -> None:
    up = UlawToPcm(16000)
    down = PcmToUlaw(24000)
    ulaw = pcm16_to_ulaw(tone(8000, 1000))
    pcm16k = b"".join(up.convert(ulaw[i : i + 160]) for i in range(0, len(ulaw), 160))
    assert 15400 <= len(pcm16k) // 2 <= 16000  # minus the ~20-40 ms still in the filter
    out = b"".join(down.convert(tone(24000, 1000)[i : i + 960]) for i in range(0, 48000, 960))
    out += down.flush()
    assert 7950 <= len(out) <= 8010


def test_resampler_emits_every_frame() -> None:
    # Latency: output must not wait for 100 ms blocks (soxr's default streaming engine does).
    r = StreamResampler(8000, 16000)
    src = tone(8000, 200)
    sizes = [len(r.process(src[i : i + 320])) for i in range(0, len(src), 320)]
    assert all(s > 0 for s in sizes[2:]), sizes


@given(st.lists(st.binary(max_size=500), max_size=20))
def test_framer_never_loses_or_invents_bytes(chunks: list[bytes]) -> None:
    f = Framer()
    frames = [fr for c in chunks for fr in f.push(c)]
    assert all(len(fr) == FRAME_BYTES for fr in frames)
    tail = f.flush()
    data = b"".join(chunks)
    assert b"".join(frames) == data[: len(frames) * FRAME_BYTES]
    if tail is not None:
        rest = data[len(frames) * FRAME_BYTES :]
        assert tail[: len(rest)] == rest and set(tail[len(rest) :]) <= {0xFF}
    else:
        assert len(data) % FRAME_BYTES == 0
