"""Barge-in on the offline engine, as the caller hears it (issue 14, item 6).

A real interruption silences the bot within 150 ms of the caller's first word; a short
wordless sound ("hmm") over the reply does not lose it: the reply goes on from the piece
the caller was hearing, and the caller hears every word of it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.local.codec import InputDecoder, encode_output
from agent.local.models import load_models
from tests.agent.conftest import dial

pytestmark = [pytest.mark.local, pytest.mark.speech_call]

GREETING = "Hi, you've reached Acme orders. What's your order number?"  # flows.example.yaml
ORDERS = "+15550002000"


def rendered(text: str) -> bytes:
    """μ-law 8 kHz of `text` in the engine's own voice, with 400 ms of trailing silence."""
    tts = load_models().tts
    return encode_output(tts.synthesize(text), tts.rate, "audio/pcmu") + b"\xff" * 8 * 400


def hum(ms: int = 200) -> bytes:
    """A short "hmm": the first `ms` of voice of a rendered one, then silence."""
    audio = rendered("Hmm.")
    start = next(i for i, b in enumerate(audio) if b & 0x7F < 0x50)  # first loud sample
    return audio[start : start + 8 * ms] + b"\xff" * 8 * 600


def transcribe(ulaw: bytes) -> str:
    return load_models().stt.transcribe(InputDecoder("audio/pcmu").decode(ulaw)).text


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


async def test_a_real_interruption_stops_the_bot_within_150_ms(tmp_path: Path) -> None:
    records: dict = {}
    async with local_stack(data_dir=tmp_path) as stack:
        stack.watch(record_collector(records))
        _, call = await dial(stack, records, to=ORDERS, from_="+15551230101")
        async with call:
            turn = await call.interrupt_after(700, rendered("Sorry, where is my order?"))
            await call.wait_for_bot_reply(timeout=20)
    assert turn.barge_in_stop_ms is not None, turn
    assert turn.barge_in_stop_ms < 150, turn.barge_in_stop_ms
    assert turn.bot_audio_discarded_ms > 0  # the rest of the greeting never played


async def test_a_hum_over_the_reply_does_not_lose_it(tmp_path: Path) -> None:
    records: dict = {}
    async with local_stack(data_dir=tmp_path) as stack:
        stack.watch(record_collector(records))
        target, call = await dial(stack, records, to=ORDERS, from_="+15551230102")
        async with call:
            turn = await call.interrupt_after(900, hum())
            resumed = await call.wait_for_bot_reply(timeout=20)
            played = call.played_audio
        record = await asyncio.wait_for(records[target.call_sid], 10)
    assert turn.barge_in_stop_ms is not None and turn.barge_in_stop_ms < 150  # it did stop
    assert resumed.index > turn.index and resumed.bot_audio_played_ms > 0  # ... and went on
    # Every word of the greeting reached the caller: the part heard before the hum plus
    # the resumed rest, as the record has them; and the audio played ends on its question.
    bot = [line["text"] for line in record.transcript_lines if line["role"] == "bot"]
    said = words(" ".join(bot))
    assert [w for w in words(GREETING) if w not in said] == [], bot
    assert "order number" in " ".join(words(await asyncio.to_thread(transcribe, played))), bot
    assert not record.tool_calls  # the hum asked for nothing
