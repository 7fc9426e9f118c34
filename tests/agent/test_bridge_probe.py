"""Clock stamps carried in μ-law audio (agent.devkit.bridge_probe)."""

from __future__ import annotations

import audioop

from agent.devkit.bridge_probe import (
    STAMP_BYTES,
    now_us,
    read_stamp,
    stamp,
    stamp_front,
    summary_us,
)
from telephony.audio import ulaw_to_pcm16


def test_a_stamp_reads_back_exactly() -> None:
    for us in (0, 1, now_us(), 2**48 - 1):
        assert read_stamp(stamp(us)) == us


def test_audio_without_a_stamp_reads_as_none() -> None:
    speech = bytes(range(256))[:160]
    assert read_stamp(speech) is None
    assert read_stamp(b"\xff" * 160) is None
    assert read_stamp(stamp(5)[:-1]) is None  # cut short


def test_a_stamped_frame_keeps_its_length_and_the_stamp_is_near_silent() -> None:
    frame = b"\x10" * 160  # loud
    stamped = stamp_front(frame)
    assert len(stamped) == 160 and stamped[STAMP_BYTES:] == frame[STAMP_BYTES:]
    assert read_stamp(stamped) is not None
    assert audioop.rms(ulaw_to_pcm16(stamp(now_us())), 2) < 150  # far below any VAD
    assert stamp_front(b"\x10" * 10) == b"\x10" * 10  # too short to carry one


def test_summary() -> None:
    assert summary_us([]) == {"n": 0, "p50": None, "p99": None, "max": None}
    s = summary_us(list(range(1, 101)))
    assert (s["n"], s["p50"], s["p99"], s["max"]) == (100, 51, 100, 100)
