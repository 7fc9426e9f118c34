"""Caller audio in fewer appends while the line is quiet: what waits and what never does."""

from __future__ import annotations

from agent.devkit.bridge_probe import stamp
from agent.devkit.fake_openai import silence_frames, speech_frames
from agent.providers.openai.uplink import QUIET_PEAK, QuietBatcher, is_quiet
from telephony.audio import pcm16_to_ulaw

QUIET = b"\xff" * 160


def level(peak: int) -> bytes:
    """A 20 ms μ-law frame of silence with one sample of `peak`."""
    pcm = bytearray(320)
    pcm[100:102] = peak.to_bytes(2, "little", signed=True)
    return pcm16_to_ulaw(bytes(pcm))


def test_quiet_means_no_sample_reaches_the_peak() -> None:
    assert is_quiet(QUIET) and is_quiet(b"\x7f" * 160)
    assert is_quiet(level(QUIET_PEAK // 2)) and is_quiet(level(-QUIET_PEAK // 2))
    assert not is_quiet(level(2 * QUIET_PEAK)) and not is_quiet(level(-2 * QUIET_PEAK))
    assert not any(is_quiet(f) for f in speech_frames(100))
    assert is_quiet(stamp(123456789) + QUIET[18:])  # the load test's clock stamps


def test_quiet_frames_go_in_batches_in_order_with_their_start() -> None:
    batcher = QuietBatcher(frames=5)
    frames = [bytes([0xF0 + i]) * 160 for i in range(12)]  # quiet, each its own
    out = [batcher.push(f, 20.0 * i, speaking=False) for i, f in enumerate(frames)]
    assert [o is None for o in out] == [True] * 4 + [False] + [True] * 4 + [False] + [True] * 2
    assert out[4] == (b"".join(frames[:5]), 0.0)
    assert out[9] == (b"".join(frames[5:10]), 100.0)
    assert batcher.held_frames == 2
    assert batcher.drain() == (b"".join(frames[10:]), 200.0)
    assert batcher.drain() is None and batcher.held_frames == 0


def test_a_loud_frame_goes_at_once_with_the_quiet_ones_before_it() -> None:
    batcher = QuietBatcher(frames=10)
    loud = speech_frames(20)[0]
    assert batcher.push(loud, 0.0, speaking=False) == (loud, 0.0)  # nothing held: as it came
    for i, f in enumerate(silence_frames(60)):
        assert batcher.push(f, 20.0 + 20 * i, speaking=False) is None
    out = batcher.push(loud, 80.0, speaking=False)
    assert out == (QUIET * 3 + loud, 20.0)
    assert batcher.held_frames == 0


def test_nothing_waits_while_the_model_listens_to_a_turn() -> None:
    batcher = QuietBatcher(frames=10)
    assert batcher.push(QUIET, 0.0, speaking=False) is None
    # The turn's closing silence: the first quiet frame takes the held one with it.
    assert batcher.push(QUIET, 20.0, speaking=True) == (QUIET * 2, 0.0)
    assert batcher.push(QUIET, 40.0, speaking=True) == (QUIET, 40.0)
