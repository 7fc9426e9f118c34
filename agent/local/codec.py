"""Audio formats of the Realtime protocol and conversions to/from the engine's working format.

The engine works internally on PCM16 mono 8 kHz (what the phone line carries). Input in
`audio/pcm` 24 kHz is resampled down with a stateful soxr stream (one per session, so
frame edges do not click); output is produced per sentence, whole, so a one-shot resample
is exact there.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

# G.711 is the phone line's codec: shared with the bridge on purpose, one implementation.
from telephony.audio import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16

FormatType = Literal["audio/pcmu", "audio/pcma", "audio/pcm"]
FORMAT_TYPES: tuple[str, ...] = ("audio/pcmu", "audio/pcma", "audio/pcm")
ENGINE_RATE = 8000
PCM_RATE = 24000  # the only rate `audio/pcm` allows


def format_dict(fmt: FormatType) -> dict[str, object]:
    """The wire shape of a format, as OpenAI echoes it in session objects."""
    if fmt == "audio/pcm":
        return {"type": "audio/pcm", "rate": PCM_RATE}
    return {"type": fmt}


def bytes_per_ms(fmt: FormatType) -> int:
    """Bytes of one millisecond of audio in `fmt` (8 for G.711, 48 for PCM16 24 kHz)."""
    return 48 if fmt == "audio/pcm" else 8


class InputDecoder:
    """Turns appended client audio into PCM16 8 kHz bytes. Stateful: one per session."""

    def __init__(self, fmt: FormatType) -> None:
        self.fmt = fmt
        self._resampler: soxr.ResampleStream | None = None
        self._odd = b""  # a PCM16 byte split across two appends
        if fmt == "audio/pcm":
            self._resampler = soxr.ResampleStream(PCM_RATE, ENGINE_RATE, 1, dtype="int16")

    def decode(self, data: bytes) -> bytes:
        if self.fmt == "audio/pcmu":
            return ulaw_to_pcm16(data)
        if self.fmt == "audio/pcma":
            return alaw_to_pcm16(data)
        data = self._odd + data
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        samples = np.frombuffer(data[:cut], dtype=np.int16)
        assert self._resampler is not None
        return self._resampler.resample_chunk(samples).astype(np.int16).tobytes()


def encode_output(audio: np.ndarray, rate: int, fmt: FormatType) -> bytes:
    """Float audio in [-1, 1] at `rate` -> wire bytes of `fmt` (one whole sentence)."""
    target = PCM_RATE if fmt == "audio/pcm" else ENGINE_RATE
    resampled = soxr.resample(audio.astype(np.float32), rate, target)
    pcm = (np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    if fmt == "audio/pcmu":
        return pcm16_to_ulaw(pcm)
    if fmt == "audio/pcma":
        return pcm16_to_alaw(pcm)
    return pcm


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
