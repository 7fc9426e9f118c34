"""Tools on a live call: fillers, cuts, errors, timeouts and background results.

Real uvicorn + the Twilio emulator + the fake providers; the tools are real functions.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like
from tests.fakes.gemini_server import FakeGeminiLive
from tests.fakes.gemini_server import Scenario as GScenario
from tests.fakes.gemini_server import ScriptedTurn as GTurn
from tests.helpers.speed import BEHAVIOUR_SPEED

FLOWS = """\
default_flow: t
flows:
  t:
    provider: {provider}
    greeting: "Hi."
    filler_after_ms: {filler_after_ms}
    filler_phrases: ["One moment please."]
    tools: [tests.agent.slow_tools:slow_lookup, tests.agent.slow_tools:flaky_lookup,
            tests.agent.slow_tools:stuck_lookup, tests.agent.slow_tools:background_report]
"""


def _flows(tmp_path: Path, provider: str = "openai", filler_after_ms: int = 300) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(FLOWS.format(provider=provider, filler_after_ms=filler_after_ms))
    return path


async def _one_turn_call(
    tmp_path: Path, scenario: Scenario, *, filler_after_ms: int = 300, turns: int = 1, speed: float = 1.0
):
    """Greeting, then `turns` caller turns; returns (fake, record, emulator call).
    Filler tests keep real time (`speed` 1): a filler's onset and cut are wall clock."""
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key,
                               flows_file=_flows(tmp_path, filler_after_ms=filler_after_ms)) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550007777", from_="+15551234567", speed=speed)
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                for _ in range(turns):
                    await call.say(speech_like(600))
                    await call.wait_for_bot_reply(timeout=15, quiet_ms=900)
            record = await asyncio.wait_for(records[target.call_sid], 10)
        fake.assert_clean()
        return fake, record, call


def _filler_responses(fake) -> list:
    return [r for r in fake.sessions[0].responses if r.conversation == "none"]


async def test_filler_plays_when_a_tool_outlasts_filler_after_ms_and_is_cut_on_result(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="check", tool=ToolStep("slow_lookup", {"seconds": 1.2},
                                                                     reply="Done: {output}"))])
    fake, record, call = await _one_turn_call(tmp_path, scenario)
    (tc,) = record.tool_calls
    assert tc["status"] == "ok" and tc["fillers"] == ["One moment please."]
    # Filler onset is measured from the filler_after_ms deadline.
    assert tc["filler_onset_ms"][0] < 250  # first time: includes the model rendering it
    # First time for this voice: rendered by the model out-of-band (kept out of the conversation)...
    (filler,) = _filler_responses(fake)
    assert filler.metadata == {"kind": "filler"}
    # ...and the filler (60 ms/char -> ~1.1 s) was still playing at 1.2 s: cut with a Twilio clear.
    clears = [e for e in call.timeline if e.kind == "clear"]
    assert clears, "the filler was not cut when the result was ready"
    result = json.loads(fake.sessions[0].function_outputs[0]["output"])
    assert result["status"] == "found"


async def test_no_filler_when_the_tool_is_fast(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="check", tool=ToolStep("slow_lookup", {"seconds": 0.05}))])
    fake, record, call = await _one_turn_call(tmp_path, scenario, filler_after_ms=500)
    (tc,) = record.tool_calls
    assert tc["status"] == "ok" and tc["fillers"] == []
    assert _filler_responses(fake) == []
    assert not any(e["kind"] == "filler" for e in record.events)


async def test_cached_filler_clip_plays_instantly_on_the_next_call(tmp_path: Path) -> None:
    # A short answer after the tool: the filler is what this test listens to (real time).
    scenario = Scenario(turns=[ScriptedTurn(transcript="check", tool=ToolStep("slow_lookup", {"seconds": 1.0},
                                                                     reply="Found it."))])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, flows_file=_flows(tmp_path)) as stack:
            stack.watch(record_collector(records))
            for _ in range(2):
                target, call = await dial(stack, records, to="+15550007777", from_="+15551234567")
                async with call:
                    await call.wait_for_bot_reply(timeout=10)
                    await call.say(speech_like(600))
                    await call.wait_for_bot_reply(timeout=15, quiet_ms=900)
                record = await asyncio.wait_for(records[target.call_sid], 10)
        fillers = [e for e in record.events if e["kind"] == "filler"]
        assert fillers and fillers[0]["cached"] is True
        # A stored clip goes out the moment the deadline passes.
        assert record.tool_calls[0]["filler_onset_ms"][0] < 50
        # Only the first call asked the model; the second played the stored clip.
        assert sum(1 for s in fake.sessions for r in s.responses if r.conversation == "none") == 1


async def test_tool_exception_becomes_a_spoken_recovery_and_the_call_goes_on(tmp_path: Path) -> None:
    scenario = Scenario(turns=[
        ScriptedTurn(transcript="where is 12", tool=ToolStep("flaky_lookup", {"order": "12"},
                                                     reply="Sorry, trouble: {output}")),
        ScriptedTurn(transcript="ok thanks", reply="Anything else?"),
    ])
    fake, record, call = await _one_turn_call(tmp_path, scenario, turns=2, speed=BEHAVIOUR_SPEED)
    (tc,) = record.tool_calls
    assert tc["status"] == "error" and tc["attempts"] == 2  # idempotent: retried once
    out = json.loads(fake.sessions[0].function_outputs[0]["output"])
    assert out["retryable"] is True and "unreachable" in out["error"]
    # The model spoke after the error, and again on the next turn: the call went on.
    assert call.turns[-2].bot_audio_played_ms > 300 and call.turns[-1].bot_audio_played_ms > 300
    assert record.outcome != "error"


async def test_tool_timeout_becomes_a_spoken_recovery(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="where is 12", tool=ToolStep("stuck_lookup", {"order": "12"}))])
    t0 = time.monotonic()
    fake, record, call = await _one_turn_call(tmp_path, scenario, speed=BEHAVIOUR_SPEED)
    (tc,) = record.tool_calls
    assert tc["status"] == "timeout" and tc["duration_ms"] < 2000
    out = json.loads(fake.sessions[0].function_outputs[0]["output"])
    assert out["retryable"] is True and "too long" in out["error"]
    assert call.turns[-1].bot_audio_played_ms > 300
    assert time.monotonic() - t0 < 30


async def test_background_tool_result_arrives_on_openai(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="report", tool=ToolStep("background_report", {"topic": "sales"},
                                                                      reply="Started: {output}"))])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, flows_file=_flows(tmp_path)) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550007777", from_="+15551234567",
                                      speed=BEHAVIOUR_SPEED)
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await call.wait_for_bot_reply(timeout=15)
                sess = fake.sessions[0]
                await fake.wait_for(
                    lambda: any("all good on sales" in json.dumps(i) for i in sess.created_items), 10)
            await asyncio.wait_for(records[target.call_sid], 10)
    started = json.loads(sess.function_outputs[0]["output"])
    assert started["status"] == "started"  # answered at once; the conversation went on
    fake.assert_clean()


async def test_background_tool_result_arrives_on_gemini_non_blocking(tmp_path: Path) -> None:
    scenario = GScenario(turns=[GTurn(caller="report", tool="background_report", args={"topic": "sales"},
                                      reply="Here: {result}")])
    async with FakeGeminiLive(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, flows_file=_flows(tmp_path, "gemini"),
                               gemini_live_url=fake.url, gemini_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550007777", from_="+15551234567")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await fake.wait_until(lambda: bool(fake.connections[0].tool_responses), 10)
            await asyncio.wait_for(records[target.call_sid], 10)
    conn = fake.connections[0]
    decl = conn.setup["tools"][0]["functionDeclarations"]
    assert {d["name"]: d.get("behavior") for d in decl}["background_report"] == "NON_BLOCKING"
    (resp,) = conn.tool_responses
    assert resp["response"]["report"] == "all good on sales" and resp["scheduling"] == "WHEN_IDLE"
    assert fake.violations == []
