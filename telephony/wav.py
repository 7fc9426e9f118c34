"""Phone-line audio on disk: 8 kHz μ-law WAV files, read and written.

Call fixtures, the emulator's recordings and imported caller recordings all meet here.
The stdlib `wave` module only handles PCM, so μ-law RIFF chunks are written by hand.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np

from telephony.audio import TELEPHONY_RATE, pcm16_to_ulaw, ulaw_to_pcm16

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7


class WavFormatError(ValueError):
    """A WAV file that cannot be used here; the message says what it is and what would do."""


def write_ulaw_wav(path: Path | str, ulaw: bytes, rate: int = TELEPHONY_RATE) -> None:
    """Write raw μ-law bytes as a mono WAVE_FORMAT_MULAW file (fmt + fact + data chunks)."""
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_MULAW, 1, rate, rate, 1, 8, 0)  # cbSize 0
    fact = struct.pack("<I", len(ulaw))  # non-PCM formats carry a sample count
    pad = b"\x00" if len(ulaw) % 2 else b""  # RIFF chunks are word aligned
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<I", len(fact)) + fact
        + b"data" + struct.pack("<I", len(ulaw)) + ulaw + pad
    )  # fmt: skip
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_pcm_wav(path: Path | str, ulaw: bytes | list[bytes], rate: int = TELEPHONY_RATE) -> None:
    """μ-law mono, or [left, right] μ-law tracks of equal length, as a PCM16 WAV that
    every player opens."""
    tracks = [ulaw] if isinstance(ulaw, bytes | bytearray) else list(ulaw)
    pcm = [np.frombuffer(ulaw_to_pcm16(bytes(t)), dtype=np.int16) for t in tracks]
    if len(pcm) not in (1, 2):
        raise ValueError("write_pcm_wav takes one or two tracks")
    n = min(len(p) for p in pcm)
    frames = np.column_stack([p[:n] for p in pcm]).astype("<i2").tobytes()  # interleaved
    with wave.open(str(path), "wb") as out:
        out.setnchannels(len(pcm))
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


def riff_chunks(data: bytes) -> dict[bytes, bytes]:
    """The chunks of a RIFF/WAVE file by id (first one wins). Lenient about a `data`
    size that overruns the file, as streaming writers (espeak-ng --stdout) leave it."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError("not a RIFF/WAVE file")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.setdefault(cid, data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    return chunks


def read_ulaw_wav(path: Path | str) -> bytes:
    """Raw μ-law 8 kHz mono bytes of a fixture WAV (μ-law, or PCM16 encoded on read)."""
    path = Path(path)
    chunks = riff_chunks(path.read_bytes())
    if b"fmt " not in chunks or b"data" not in chunks:
        raise WavFormatError(f"{path}: missing fmt or data chunk")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    if channels != 1 or rate != TELEPHONY_RATE:
        raise WavFormatError(
            f"{path}: need mono {TELEPHONY_RATE} Hz, got {channels} ch {rate} Hz"
        )
    data = chunks[b"data"]
    if tag == WAVE_FORMAT_MULAW and bits == 8:
        return data
    if tag == WAVE_FORMAT_PCM and bits == 16:
        return pcm16_to_ulaw(data[: len(data) - len(data) % 2])
    raise WavFormatError(f"{path}: need μ-law (format 7, 8 bit), got format {tag}, {bits} bit")


def wav_format(path: Path | str) -> tuple[int, int, int, int]:
    """(format tag, channels, rate, bits per sample) of a WAV file."""
    chunks = riff_chunks(Path(path).read_bytes())
    if b"fmt " not in chunks:
        raise WavFormatError(f"{path}: missing fmt chunk")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    return tag, channels, rate, bits
