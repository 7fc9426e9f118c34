"""Shared pieces for bridge tests: caller audio and a stack against a fake provider."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from telephony.audio import pcm16_to_ulaw
from telephony.testing.emulator import EmulatedCall, StreamTarget, dial_webhook


async def dial(
    stack: Any, records: dict, *, to: str, from_: str, speed: float = 1.0
) -> tuple[StreamTarget, EmulatedCall]:
    """Call the in-process server like Twilio would; `records[call_sid]` will resolve
    with the call's record (the stack needs `record_collector(records)` listening).
    `speed`: see tests/helpers/speed.py (real time unless the test checks no timing)."""
    target = await dial_webhook(stack.base_url, stack.auth_token, to=to, from_=from_)
    records[target.call_sid] = asyncio.get_running_loop().create_future()
    return target, EmulatedCall(target, speed=speed)


def speech_like(ms: int, hz: float = 300.0, amp: int = 6000) -> bytes:
    """A loud tone the fakes' energy VAD hears as speech (μ-law 8 kHz)."""
    t = np.arange(8 * ms) / 8000
    return pcm16_to_ulaw((amp * np.sin(2 * math.pi * hz * t)).astype(np.int16).tobytes())


@pytest.fixture
def caller_speech() -> bytes:
    return speech_like(800)
