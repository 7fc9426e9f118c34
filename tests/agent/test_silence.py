"""Issue 12: a caller who says nothing is asked once, then bid goodbye, on every provider.

The rule itself (agent/silence.py) with a fast clock, then real calls through the Twilio
emulator and the OpenAI and Gemini test servers (the offline engine: the caller-silent
call in agent/devkit/calls, run by tests/e2e)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.silence import SilenceWatch
from tests.agent.conftest import dial
from tests.fakes.gemini_server import FakeGeminiLive
from tests.fakes.gemini_server import Scenario as GeminiScenario

AFTER_S = 0.8


class Probe:
    def __init__(self) -> None:
        self.said: list[str] = []
        self.heard = asyncio.Event()
        self.heard.set()
        self.changed = asyncio.Event()

    async def wait_heard(self) -> None:
        await self.heard.wait()

    async def prompt(self) -> None:
        self.said.append("prompt")
        self.changed.set()

    async def give_up(self) -> None:
        self.said.append("goodbye")
        self.changed.set()

    async def next(self) -> list[str]:
        await asyncio.wait_for(self.changed.wait(), 5)
        self.changed.clear()
        return self.said


def watch(probe: Probe, after_s: float = 0.05) -> SilenceWatch:
    return SilenceWatch(after_s, heard=probe.wait_heard, prompt=probe.prompt, give_up=probe.give_up)


async def test_one_prompt_then_goodbye() -> None:
    probe = Probe()
    w = watch(probe)
    w.answer_due()
    assert await probe.next() == ["prompt"]
    w.answer_due()  # the prompt was said: the caller owes an answer again
    assert await probe.next() == ["prompt", "goodbye"]
    w.answer_due()
    assert w.closed and w._timer is None  # nothing after goodbye
    await w.aclose()


async def test_the_caller_forgives_and_the_bot_or_a_tool_pauses_the_count() -> None:
    probe = Probe()
    w = watch(probe)
    w.answer_due()
    assert await probe.next() == ["prompt"]
    w.caller_active()  # they answered: the next silence prompts again, not goodbye
    w.answer_due()
    assert await probe.next() == ["prompt", "prompt"]
    w.answer_due()
    w.bot_busy()  # the bot speaks / a tool runs: not the caller's turn
    w.caller_speaking = True
    w.answer_due()  # ignored while the caller is mid-sentence
    await asyncio.sleep(0.2)  # several countdowns' worth: nothing may fire
    assert probe.said == ["prompt", "prompt"]
    await w.aclose()


async def test_the_count_starts_once_the_bot_is_heard() -> None:
    probe = Probe()
    probe.heard.clear()
    w = watch(probe)
    w.answer_due()
    await asyncio.sleep(0.2)
    assert probe.said == []  # the bot's audio is still playing
    probe.heard.set()
    assert await probe.next() == ["prompt"]
    await w.aclose()


def _flows(tmp_path: Path, provider: str) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(f"""\
default_flow: desk
flows:
  desk:
    provider: {provider}
    voice: {"Kore" if provider == "gemini" else "marin"}
    greeting: "Hello."
    tools: [lookup_order, end_call]
    reprompt_after_s: {AFTER_S}
    reprompt: "Are you still there?"
    silence_goodbye: "Goodbye for now."
""")
    return path


async def _silent_call(stack, records) -> tuple:  # noqa: ANN001
    target, call = await dial(stack, records, to="+15550009999", from_="+15551112222")
    async with call:
        await call.wait_for_bot_reply(timeout=10)  # the greeting
        # ...then nothing (the phone keeps sending silence frames, as Twilio does)
        await call.wait_closed(timeout=30)
    record = await asyncio.wait_for(records[target.call_sid], 10)
    return record, call


def _check(record) -> None:  # noqa: ANN001
    lines = [line["text"] for line in record.transcript_lines if line["role"] == "bot"]
    assert lines[-2:] == ["Are you still there?", "Goodbye for now."], lines
    assert [e["kind"] for e in record.events].count("reprompt") == 1, (record.events, record.transcript_lines)
    assert record.outcome == "caller_silent"
    assert record.tool_calls == []


async def test_a_silent_caller_on_openai(tmp_path: Path) -> None:
    scenario = Scenario(default_reply="Sure.", ms_per_char=15, min_reply_ms=300)
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key,
                               flows_file=_flows(tmp_path, "openai")) as stack:
            stack.watch(record_collector(records))
            record, call = await _silent_call(stack, records)
        fake.assert_clean()
    _check(record)
    assert call.violations == []


async def test_a_silent_caller_on_gemini(tmp_path: Path) -> None:
    scenario = GeminiScenario(default_reply="Sure.", chunk_interval_s=0.02)
    async with FakeGeminiLive(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, flows_file=_flows(tmp_path, "gemini"),
                               gemini_live_url=fake.url, gemini_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            record, call = await _silent_call(stack, records)
    assert fake.violations == []
    _check(record)


@pytest.mark.local
@pytest.mark.speech_call
async def test_a_silent_caller_on_the_offline_engine(tmp_path: Path) -> None:
    records: dict = {}
    async with local_stack(data_dir=tmp_path, flows_file=_flows(tmp_path, "local")) as stack:
        stack.watch(record_collector(records))
        record, call = await _silent_call(stack, records)
    _check(record)
    assert call.violations == []
