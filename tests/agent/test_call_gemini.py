"""The bridge with Gemini Live: real uvicorn + the Twilio emulator + the fake Gemini server
(which validates every client message against google-genai's LiveClientMessage)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like
from tests.fakes.gemini_server import FakeGeminiLive, Scenario, ScriptedTurn

FLOWS = """\
default_flow: gem
flows:
  gem:
    provider: gemini
    voice: Kore
    greeting: "Hello from Gemini."
    tools: [lookup_order, end_call]
"""


def _stack(tmp_path: Path, fake: FakeGeminiLive):
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS)
    return local_stack(
        data_dir=tmp_path, engine=False, flows_file=flows,
        gemini_live_url=fake.url, gemini_api_key=fake.scenario.api_key,
    )


async def test_interrupted_clears_twilio_and_tool_round_trip(tmp_path: Path) -> None:
    scenario = Scenario(
        turns=[
            ScriptedTurn(caller="order", tool="lookup_order", args={"order_number": "4567"},
                 reply="Your order: {result}", reply_ms=600),
            ScriptedTurn(caller="long", reply="A very long answer", reply_ms=5000),
        ],
        chunk_interval_s=0.05,
    )
    async with FakeGeminiLive(scenario) as fake:
        records: dict = {}
        async with _stack(tmp_path, fake) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550009999", from_="+15551112222")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                turn = await call.interrupt_after(1000, speech_like(600), timeout=15)
                await fake.wait_until(lambda: fake.connections[0].interruptions > 0, 5)
            record = await asyncio.wait_for(records[target.call_sid], 10)
    assert fake.violations == []
    assert turn.clear_latency_ms is not None  # Gemini `interrupted` -> Twilio `clear`
    assert any(e["kind"] == "barge_in" for e in record.events)
    assert record.tool_calls[0]["name"] == "lookup_order" and record.tool_calls[0]["status"] == "ok"
    (response,) = fake.connections[0].tool_responses
    assert response["response"]["found"] is True
    assert call.violations == []


async def test_go_away_resumes_without_the_caller_noticing(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(caller="a", reply="first", reply_ms=1500),
                               ScriptedTurn(caller="b", reply="second", reply_ms=800)],
                        chunk_interval_s=0.05)
    async with FakeGeminiLive(scenario) as fake:
        records: dict = {}
        async with _stack(tmp_path, fake) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550009999", from_="+15551112222")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await fake.go_away(0)  # while the first reply is being generated
                first = await call.wait_for_bot_reply(timeout=15)
                await fake.wait_until(lambda: len(fake.connections) >= 2, 10)
                await call.say(speech_like(600))
                second = await call.wait_for_bot_reply(timeout=15)
            record = await asyncio.wait_for(records[target.call_sid], 10)
    assert fake.violations == []
    new = fake.connections[1]
    assert new.resume_handle  # resumed with the handle, not a fresh session
    assert first.bot_audio_discarded_ms == 0 and first.bot_audio_played_ms >= 1400
    assert second.bot_audio_played_ms >= 700  # the conversation went on
    resumed = [e for e in record.events if e["kind"] == "provider_resumed"]
    assert resumed and record.outcome != "provider_failed"
    # Nothing the caller said was lost across the swap.
    assert new.audio_bytes > 0
