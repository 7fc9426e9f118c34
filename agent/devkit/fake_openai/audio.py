"""Audio the fake speaks and hears: deterministic tones, and the pitch of what came back."""

from __future__ import annotations

import math

import numpy as np

from telephony.audio import pcm16_to_ulaw, ulaw_to_pcm16


def tone(ms: int, *, fmt: str = "pcmu", hz: float = 440.0, amplitude: int = 8000) -> bytes:
    """A deterministic sine: μ-law 8 kHz ("pcmu") or PCM16 24 kHz ("pcm")."""
    rate = 24000 if fmt == "pcm" else 8000
    n = rate * ms // 1000
    pcm = (amplitude * np.sin(2 * math.pi * hz * np.arange(n) / rate)).astype("<i2").tobytes()
    return pcm if fmt == "pcm" else pcm16_to_ulaw(pcm)


def speech_frames(ms: int, hz: float = 300.0) -> list[bytes]:
    """Caller 'speech' for tests: loud μ-law 20 ms frames."""
    data = tone(ms, hz=hz, amplitude=6000)
    return [data[i : i + 160] for i in range(0, len(data), 160)]


def silence_frames(ms: int) -> list[bytes]:
    return [b"\xff" * 160 for _ in range(ms // 20)]


def dominant_hz(ulaw: bytes, rate: int = 8000) -> float:
    """The strongest frequency in μ-law audio (tests recognise the fake's 440 Hz tone)."""
    pcm = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum))])
