"""Real caller recordings for call fixtures: any common WAV, as the phone line would carry it.

A fixture line can be a real person's recording instead of synthesised speech
(`recording:` next to its `say:` text). People record at 44.1 or 48 kHz, in stereo,
as 16/24-bit PCM or float; a line from another phone system may be A-law or μ-law.
`recording_to_ulaw` reads all of these, mixes to mono and resamples (soxr, whole file
at once) to 8 kHz μ-law, which is what Twilio would send. Levels and background noise
are kept as recorded: they are what the agent has to cope with.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr

from telephony.audio import TELEPHONY_RATE, alaw_to_pcm16, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.wav import WavFormatError, riff_chunks

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_NAMES = {2: "MS ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM 6.10", 0x55: "MP3", 0x50: "MPEG"}
_CONVERT = "convert it first, e.g. `ffmpeg -i IN -ac 1 -ar 8000 OUT.wav`"
MAX_SECONDS = 600  # one caller line; a whole call belongs in several lines


def read_recording(path: Path | str) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], sample rate) of a WAV file; WavFormatError if
    it is something else (the message says what it is and how to convert it)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WavFormatError(f"no such recording: {path}") from None
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3") or data[:4] in (b"fLaC", b"OggS"):
        raise WavFormatError(f"{path}: not a WAV file (MP3/FLAC/Ogg?): {_CONVERT}")
    try:
        chunks = riff_chunks(data)
    except WavFormatError:
        raise WavFormatError(f"{path}: not a RIFF/WAVE file: {_CONVERT}") from None
    fmt, raw = chunks.get(b"fmt "), chunks.get(b"data")
    if fmt is None or raw is None or len(fmt) < 16:
        raise WavFormatError(f"{path}: missing fmt or data chunk")
    tag, channels, rate, _, block, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the tag
    if channels < 1 or rate < 4000 or block < 1:
        raise WavFormatError(f"{path}: implausible header ({channels} channels, {rate} Hz)")
    raw = raw[: len(raw) - len(raw) % block]
    if not raw:
        raise WavFormatError(f"{path}: no audio in the data chunk")
    samples = _decode(path, tag, bits, raw)
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)  # float files can hold anything
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    if len(samples) > MAX_SECONDS * rate:
        raise WavFormatError(f"{path}: {len(samples) / rate:.0f} s is longer than {MAX_SECONDS} s")
    return samples.astype(np.float32), rate


def _decode(path: Path, tag: int, bits: int, raw: bytes) -> np.ndarray:
    if tag == _PCM and bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    if tag == _PCM and bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
    if tag == _PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / (1 << 23)
    if tag == _PCM and bits == 32:
        return np.frombuffer(raw, dtype="<i4").astype(np.float32) / (1 << 31)
    if tag == _FLOAT and bits in (32, 64):
        return np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    if tag == _MULAW and bits == 8:
        return np.frombuffer(ulaw_to_pcm16(raw), dtype="<i2").astype(np.float32) / 32768
    if tag == _ALAW and bits == 8:
        return np.frombuffer(alaw_to_pcm16(raw), dtype="<i2").astype(np.float32) / 32768
    name = _NAMES.get(tag, f"format tag {tag}")
    raise WavFormatError(f"{path}: {name}, {bits} bit is not supported (PCM 8/16/24/32, float, "
                         f"A-law or μ-law are): {_CONVERT}")  # fmt: skip


def recording_at_8k(path: Path | str) -> np.ndarray:
    """The recording as mono float32 samples at 8 kHz."""
    samples, rate = read_recording(path)
    if rate != TELEPHONY_RATE:
        samples = soxr.resample(samples, rate, TELEPHONY_RATE)  # whole line: one-shot
    return samples


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] (clipped beyond) as PCM16 little-endian bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def recording_to_ulaw(
    path: Path | str, noise: Callable[[int], np.ndarray] | None = None
) -> bytes:
    """The recording as 8 kHz mono μ-law; `noise(n)` (n float32 samples at 8 kHz) is
    mixed in if given."""
    samples = recording_at_8k(path)
    if noise is not None:
        samples = samples + noise(len(samples))
    return pcm16_to_ulaw(float_to_pcm16(samples))
