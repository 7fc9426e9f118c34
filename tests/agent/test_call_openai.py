"""The bridge end to end: real uvicorn + the Twilio emulator + the fake OpenAI server.

The fake validates every client message against the `openai` SDK's own types; the
emulator plays bot audio in real time and echoes marks only once audio has played.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like
from tests.helpers.speed import BEHAVIOUR_SPEED

ORDER_TO = "+15550002000"  # the example flows route this number to order-status
CALLER = "+15551230001"


async def test_audio_both_ways_and_a_function_call_round_trip(tmp_path: Path) -> None:
    scenario = Scenario(turns=[
        ScriptedTurn(transcript="Where is order 4567?", reply="",
             tool=ToolStep("lookup_order", {"order_number": "4567"}, reply="Your order {output}")),
    ])
    async with FakeOpenAIRealtime(scenario) as fake:
        url = await fake.start() if not getattr(fake, "url", None) else fake.url
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDER_TO, from_=CALLER, speed=BEHAVIOUR_SPEED)
            async with call:
                greeting = await call.wait_for_bot_reply(timeout=10)
                assert greeting.bot_audio_played_ms > 300
                await call.say(speech_like(700))
                reply = await call.wait_for_bot_reply(timeout=10)
                assert reply.response_latency_ms is not None
                assert reply.bot_audio_played_ms > 300
            record = await asyncio.wait_for(records[target.call_sid], 10)
        fake.assert_clean()
        sess = fake.sessions[0]
        # Caller audio reached the model unchanged in length (μ-law passthrough).
        assert sess.appended_ms >= 700
        assert sess.config["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        (output,) = sess.function_outputs
        result = json.loads(output["output"])
        assert result["found"] is True and result["order_number"] == "4567"
    assert [t["name"] for t in record.tool_calls] == ["lookup_order"]
    assert record.tool_calls[0]["status"] == "ok"
    assert call.violations == []


async def test_barge_in_clears_twilio_and_truncates_at_what_was_heard(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="Tell me everything", reply="x", reply_ms=6000)])
    async with FakeOpenAIRealtime(scenario) as fake:
        url = fake.url
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDER_TO, from_=CALLER)
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                turn = await call.interrupt_after(1200, speech_like(600), timeout=15)
                await fake.wait_for(lambda: bool(fake.sessions[0].truncates), 5)
                assert turn.clear_latency_ms is not None
            record = await asyncio.wait_for(records[target.call_sid], 10)
        fake.assert_clean()
        (truncate,) = fake.sessions[0].truncates
        (barge,) = [e for e in record.events if e["kind"] == "barge_in"]
        # Truncated where playback stood when the clear reached the phone (acked marks
        # advanced by the playout clock): within 20 ms of what the phone really played
        # (issue 14), not up to a mark interval (100 ms) behind it.
        assert truncate["audio_end_ms"] == barge["heard_ms"]
        played = turn.bot_audio_played_ms
        assert abs(barge["heard_ms"] - played) <= 20, (barge["heard_ms"], played)
        # Pacing: the phone never held more than ~200 ms; the server dropped the rest.
        assert turn.bot_audio_discarded_ms <= 220
        assert barge["dropped_ms"] > 1000
        assert call.violations == []


async def test_provider_disconnect_apologises_and_leaves_other_calls_alone(tmp_path: Path) -> None:
    scenario = Scenario(max_connections=2,
                        turns=[ScriptedTurn(transcript="hi", reply="Hello there, still here.")] * 5)
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            a_target, a = await dial(stack, records, to=ORDER_TO, from_=CALLER, speed=BEHAVIOUR_SPEED)
            async with a:
                await a.wait_for_bot_reply(timeout=10)
                b_target, b = await dial(stack, records, to=ORDER_TO, from_=CALLER, speed=BEHAVIOUR_SPEED)
                async with b:
                    await b.wait_for_bot_reply(timeout=10)
                    # A's provider connection drops; its one reconnect is refused (503).
                    await fake.drop(0)
                    a_record = await asyncio.wait_for(records[a_target.call_sid], 20)
                    await a.wait_closed(10)
                    # B keeps talking normally.
                    await b.say(speech_like(600))
                    reply = await b.wait_for_bot_reply(timeout=10)
                    assert reply.bot_audio_played_ms > 200
            b_record = await asyncio.wait_for(records[b_target.call_sid], 10)
    assert a_record.outcome == "provider_failed"
    assert any(e["kind"] == "apology" for e in a_record.events)
    # The caller heard the apology before the line closed: never dead silence.
    assert a.turns[-1].bot_audio_played_ms > 2000 or sum(t.bot_audio_played_ms for t in a.turns) > 3000
    assert b_record.outcome != "provider_failed"
