"""Shared pieces for bridge tests: caller audio and a stack against a fake provider."""

from __future__ import annotations

import math

import numpy as np
import pytest

from telephony.audio import pcm16_to_ulaw


def speech_like(ms: int, hz: float = 300.0, amp: int = 6000) -> bytes:
    """A loud tone the fakes' energy VAD hears as speech (μ-law 8 kHz)."""
    t = np.arange(8 * ms) / 8000
    return pcm16_to_ulaw((amp * np.sin(2 * math.pi * hz * t)).astype(np.int16).tobytes())


@pytest.fixture
def caller_speech() -> bytes:
    return speech_like(800)
