"""A cough over the bot's reply resumes it; a real interruption stops it, as before.

Real uvicorn + the Twilio emulator + the fake OpenAI server (every client message checked
against the `openai` SDK's types). The fake's server VAD honours `interrupt_response:
false` (the reply keeps streaming over caller speech) and `create_response` (a reply to
the noise when none is running), as the SDK documents them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like

ORDER_TO = "+15550002000"  # the example flows route this number to order-status
REPLY_MS = 4000
NOISE_ANSWER = "Sorry, I did not catch that cough."


async def test_a_cough_over_the_reply_resumes_it_where_it_stopped(tmp_path: Path) -> None:
    scenario = Scenario(turns=[
        ScriptedTurn(transcript="Tell me everything", reply="x", reply_ms=REPLY_MS),
        ScriptedTurn(transcript="", reply=NOISE_ANSWER, reply_ms=1500),  # the cough, wordless
    ])  # fmt: skip
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:  # fmt: skip
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDER_TO, from_="+15551230201")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                cough = await call.interrupt_after(1200, speech_like(150), timeout=15)
                resumed = await call.wait_for_bot_reply(timeout=15)
            record = await asyncio.wait_for(records[target.call_sid], 10)
            registry = stack.service.shared.metrics.registry
            assert registry.get_sample_value("phone_agent_false_interruptions_total") == 1
        fake.assert_clean()
    sess = fake.sessions[0]
    # It did stop at once (the clear went out at the cough) ...
    assert cough.clear_latency_ms is not None
    # ... and the caller then heard the rest, from where it stopped: the whole reply, and
    # nothing of the answer to the cough (1500 ms more if it had played).
    heard = cough.bot_audio_played_ms + resumed.bot_audio_played_ms
    assert REPLY_MS - 40 <= heard <= REPLY_MS + 60, (
        cough.bot_audio_played_ms,
        resumed.bot_audio_played_ms,
    )
    assert 1000 <= cough.bot_audio_played_ms <= 1500
    # No truncate, no barge-in: the model still believes the caller heard it all.
    assert sess.truncates == []
    kinds = [e["kind"] for e in record.events]
    assert "barge_in" not in kinds
    (forgiven,) = [e for e in record.events if e["kind"] == "false_interruption"]
    assert abs(forgiven["heard_ms"] - cough.bot_audio_played_ms) <= 20
    assert forgiven["speech_ms"] < 300
    # The server answered the cough (create_response, nothing running): that answer was
    # cancelled or dropped, and both it and the cough's own item left the conversation.
    cough_item = next(m["item_id"] for m in sess.sent if m["type"] == "input_audio_buffer.committed"
                      and m["item_id"] not in _first_turn_items(sess))  # fmt: skip
    answer = sess.responses[-1]
    assert answer.text == NOISE_ANSWER
    deleted = {d["item_id"] for d in sess.deletes}
    assert {cough_item, answer.item_id} <= deleted
    assert cough_item not in sess.items and answer.item_id not in sess.items
    assert not any("cough" in line["text"].lower() for line in record.transcript_lines)
    assert call.violations == []


def _first_turn_items(sess: object) -> set[str]:
    committed = [m["item_id"] for m in sess.sent if m["type"] == "input_audio_buffer.committed"]  # type: ignore[attr-defined]
    return set(committed[:1])


async def test_a_real_interruption_cancels_and_truncates_at_what_was_heard(tmp_path: Path) -> None:
    """≥ 600 ms of speech: the clear at once, then response.cancel (the reply is still
    streaming: interrupt_response false leaves that to us) and the truncate at the
    position heard at the pause, within 20 ms of what the phone played."""
    scenario = Scenario(
        turns=[ScriptedTurn(transcript="Tell me everything", reply="x", reply_ms=8000),
               ScriptedTurn(transcript="Stop, where is my order?", reply="Let me look.")],
        realtime_factor=1.0,  # still generating when the caller cuts in
    )  # fmt: skip
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:  # fmt: skip
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDER_TO, from_="+15551230202")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                turn = await call.interrupt_after(1200, speech_like(700), timeout=15)
                answer = await call.wait_for_bot_reply(timeout=15)
            record = await asyncio.wait_for(records[target.call_sid], 10)
        fake.assert_clean()
    sess = fake.sessions[0]
    assert turn.clear_latency_ms is not None
    long_reply = next(r for r in sess.responses if r.audio_ms == 8000)
    assert long_reply.cancel_reason == "client_cancelled"
    assert [c.get("response_id") for c in sess.cancels] == [long_reply.id]
    (truncate,) = sess.truncates
    (barge,) = [e for e in record.events if e["kind"] == "barge_in"]
    assert truncate["item_id"] == long_reply.item_id
    assert truncate["audio_end_ms"] == barge["heard_ms"]
    assert abs(barge["heard_ms"] - turn.bot_audio_played_ms) <= 20, (
        barge,
        turn.bot_audio_played_ms,
    )
    assert barge["why"] == "still speaking"
    assert not any(e["kind"] == "false_interruption" for e in record.events)
    # The caller never heard more of the cut reply, and the answer to them did play.
    assert turn.bot_audio_played_ms < 1500
    assert answer.bot_audio_played_ms > 300
    assert call.violations == []
