"""The engine speaks OpenAI Realtime GA: driven by the official SDK, every frame checked
against `openai.types.realtime.RealtimeServerEvent` (see conftest.Client)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from .conftest import ENGINE_TOKEN, TODAY, audio_of, phone_session, speech, transcript_of

pytestmark = pytest.mark.local

TOMORROW = (date.fromisoformat(TODAY) + timedelta(days=1)).isoformat()
LONG = (
    "Thank you for calling Acme dental. Our office is open from nine to five, Monday to Friday. "
    "We can book, move or cancel appointments, and check on orders."
)


async def test_session_update_validation(connect) -> None:
    async with connect() as c:
        await c.send({"type": "session.update", "session": {"instructions": "no type"}})
        err = await c.wait_for("error")
        assert err["error"]["code"] == "missing_required_parameter"
        assert err["error"]["param"] == "session.type"
        assert err["error"]["type"] == "invalid_request_error"

        # a beta-era field rejects the whole update: the instructions must not apply
        await c.send({"type": "session.update", "session": {"type": "realtime", "instructions": "X", "voice": "alloy"}})
        err = await c.wait_for("error")
        assert err["error"]["code"] == "unknown_parameter"
        assert err["error"]["param"] == "session.voice"

        await c.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": "g711_ulaw"}}}})
        err = await c.wait_for("error")
        assert err["error"]["code"] == "invalid_type"

        updated = await c.update(phone_session())
        session = updated["session"]
        assert session["instructions"] == "You answer the phone for Acme."
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert [t["name"] for t in session["tools"]][:2] == ["check_availability", "book_appointment"]


async def test_spoken_booking_turn(connect) -> None:
    """Caller speech -> VAD events -> transcript -> book_appointment call -> result spoken."""
    async with connect() as c:
        await c.update(phone_session())
        await c.say("I'd like to book an appointment tomorrow at 10 am, my name is Ana.")

        started = await c.wait_for("input_audio_buffer.speech_started")
        stopped = await c.wait_for("input_audio_buffer.speech_stopped")
        assert stopped["item_id"] == started["item_id"]
        assert stopped["audio_end_ms"] > started["audio_start_ms"] + 1500
        committed = await c.wait_for("input_audio_buffer.committed")
        assert committed["item_id"] == started["item_id"]
        added = await c.wait_for("conversation.item.added")
        assert added["item"]["role"] == "user" and added["item"]["id"] == started["item_id"]
        done = await c.until_done()
        transcribed = next(e for e in c.events if e["type"] == "conversation.item.input_audio_transcription.completed")
        assert "book" in transcribed["transcript"].lower()
        assert transcribed["usage"]["type"] == "duration" and transcribed["usage"]["seconds"] > 1

        response = done[-1]["response"]
        assert response["status"] == "completed"
        assert response["conversation_id"]
        call = response["output"][0]
        assert call["type"] == "function_call" and call["name"] == "book_appointment"
        args = json.loads(call["arguments"])
        assert args["day"] == TOMORROW
        assert args["time"] == "10:00"
        assert args["name"] in ("Ana", "Anna")
        arg_done = next(e for e in done if e["type"] == "response.function_call_arguments.done")
        assert arg_done["call_id"] == call["call_id"] and arg_done["arguments"] == call["arguments"]
        assert arg_done["response_id"] == response["id"] and arg_done["item_id"] == call["id"]

        result = {"status": "booked", "booking_id": "BK-1042", "day": TOMORROW, "time": "10:00", "name": "Ana"}
        await c.send({"type": "conversation.item.create",
                      "item": {"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps(result)}})
        item_done = await c.wait_for("conversation.item.done")
        assert item_done["item"]["type"] == "function_call_output"
        await c.send({"type": "response.create", "response": {"metadata": {"turn": "result"}}})
        events = await c.until_done()
        spoken = transcript_of(events)
        assert "booked" in spoken and "Wednesday, November 25" in spoken and "10 AM" in spoken
        assert "BK-1042" in spoken
        audio = audio_of(events)
        assert len(audio) > 8000  # more than a second of μ-law
        final = events[-1]["response"]
        assert final["status"] == "completed" and final["metadata"] == {"turn": "result"}
        message = final["output"][0]
        assert message["role"] == "assistant" and message["status"] == "completed"
        assert message["content"][0]["transcript"] == spoken
        kinds = [e["type"] for e in events]
        order = ["response.created", "response.output_item.added", "response.content_part.added",
                 "response.output_audio.delta", "response.output_audio.done",
                 "response.output_audio_transcript.done", "response.content_part.done",
                 "response.output_item.done", "response.done"]  # fmt: skip
        assert [k for k in kinds if k in order and k != "response.output_audio.delta"] == [
            k for k in order if k != "response.output_audio.delta"
        ]
        first_delta = kinds.index("response.output_audio.delta")
        assert kinds.index("response.content_part.added") < first_delta < kinds.index("response.output_audio.done")


async def test_cancel_and_truncate(connect) -> None:
    async with connect() as c:
        await c.update(phone_session())
        await c.send({"type": "response.cancel"})
        err = await c.wait_for("error")
        assert err["error"]["code"] == "response_cancel_not_active"

        await c.send({"type": "response.create", "response": {"instructions": f'Say exactly: "{LONG}"'}})
        created = await c.wait_for("response.created")
        delta = await c.wait_for("response.output_audio.delta")
        await c.send({"type": "response.cancel"})
        events = await c.until_done(created["response"]["id"])
        done = events[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert done["output"][0]["status"] == "incomplete"
        assert any(e["type"] == "response.output_audio.done" for e in events)
        received = audio_of([delta, *events])
        received_ms = len(received) // 8
        assert 0 < received_ms < 6000  # it really stopped early: the whole text is ~10 s

        item_id = delta["item_id"]
        too_far = received_ms + 5000
        await c.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": too_far})
        err = await c.wait_for("error")
        assert err["error"]["type"] == "invalid_request_error"
        assert err["error"]["message"] == f"Audio content of {received_ms}ms is already shorter than {too_far}ms"

        await c.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 300})
        truncated = await c.wait_for("conversation.item.truncated")
        assert truncated == {**truncated, "item_id": item_id, "content_index": 0, "audio_end_ms": 300}

        await c.send({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 1})
        assert (await c.wait_for("error"))["error"]["param"] == "item_id"


async def test_barge_in_cancels_with_turn_detected(connect) -> None:
    async with connect() as c:
        await c.update(phone_session())
        await c.send({"type": "response.create", "response": {"instructions": f'Say exactly: "{LONG}"'}})
        created = await c.wait_for("response.created")
        await c.wait_for("response.output_audio.delta")
        await c.say("Can I speak to a person?")
        started = await c.wait_for("input_audio_buffer.speech_started")
        done = await c.wait_for("response.done", lambda e: e["response"]["id"] == created["response"]["id"])
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        assert c.events.index(started) < c.events.index(done)
        # the caller's turn then gets its own response: a transfer
        events = await c.until_done()
        calls = [i for i in events[-1]["response"]["output"] if i["type"] == "function_call"]
        assert [i["name"] for i in calls] == ["transfer_call"]
        assert "connect you" in transcript_of(events)


async def test_one_default_response_at_a_time_and_out_of_band(connect) -> None:
    async with connect() as c:
        await c.update(phone_session())
        await c.send({"type": "response.create", "response": {"instructions": f'Say exactly: "{LONG}"'}})
        first = (await c.wait_for("response.created"))["response"]["id"]
        await c.send({"type": "response.create"})
        err = await c.wait_for("error")
        assert err["error"]["code"] == "conversation_already_has_active_response"
        assert err["error"]["message"] == (
            f"Conversation already has an active response in progress: {first}. "
            "Wait until the response is finished before creating a new one."
        )
        # an out-of-band filler may run alongside
        await c.send({"type": "response.create", "response": {
            "conversation": "none", "input": [], "metadata": {"kind": "filler"}, "output_modalities": ["audio"],
            "instructions": 'Say exactly: "One moment, let me check that."'}})  # fmt: skip
        filler = await c.wait_for("response.created", lambda e: e["response"]["metadata"] == {"kind": "filler"})
        filler_id = filler["response"]["id"]
        assert filler["response"]["conversation_id"] is None
        events = await c.until_done(filler_id)
        mine = [e for e in events if e.get("response_id") == filler_id]
        assert any(e["type"] == "response.output_audio.delta" for e in mine)
        assert not any(e["type"] == "conversation.item.added" and e["item"]["id"] == mine[0]["item"]["id"] for e in events)
        done = events[-1]["response"]
        assert done["metadata"] == {"kind": "filler"}
        assert done["output"][0]["content"][0]["transcript"] == "One moment, let me check that."
        assert (await c.done_of(first))["response"]["status"] == "completed"


async def test_bad_input_keeps_session_alive(connect) -> None:
    async with connect() as c:
        await c.conn.send_raw("{not json")
        err = await c.wait_for("error")
        assert err["error"]["type"] == "invalid_request_error" and err["error"]["code"] == "invalid_json"
        await c.conn.send_raw(json.dumps({"type": "response.make_it_so", "event_id": "evt_1"}))
        err = await c.wait_for("error")
        assert err["error"]["param"] == "type" and err["error"]["event_id"] == "evt_1"
        await c.conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": "***"}))
        assert (await c.wait_for("error"))["error"]["param"] == "audio"
        await c.conn.send_raw(json.dumps({"type": "conversation.item.create", "item": {"type": "function_call_output"}}))
        assert (await c.wait_for("error"))["error"]["code"] == "missing_required_parameter"
        await c.conn.send_raw(json.dumps({"type": "response.create", "response": {"modalities": ["audio"]}}))
        assert (await c.wait_for("error"))["error"]["code"] == "unknown_parameter"
        # still serving
        await c.send({"type": "response.create", "response": {"instructions": 'Say exactly: "Still here."'}})
        events = await c.until_done()
        assert transcript_of(events) == "Still here."


async def test_typed_message_and_manual_commit(connect) -> None:
    async with connect() as c:
        session = phone_session()
        session["audio"]["input"]["turn_detection"] = None
        updated = await c.update(session)
        assert updated["session"]["audio"]["input"]["turn_detection"] is None

        await c.send({"type": "input_audio_buffer.commit"})
        err = await c.wait_for("error")
        assert err["error"]["code"] == "input_audio_buffer_commit_empty"

        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where is my order 4567?"}]}})  # fmt: skip
        await c.wait_for("conversation.item.done")
        await c.send({"type": "response.create"})
        events = await c.until_done()
        output = events[-1]["response"]["output"]
        assert output[0]["type"] == "message"  # "Let me look that up.", heard while it runs
        call = output[-1]
        assert call["name"] == "lookup_order" and json.loads(call["arguments"]) == {"order_number": "4567"}

        await c.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call["call_id"],
            "output": json.dumps({"found": False, "order_number": "4567", "message": "no such order"})}})  # fmt: skip
        await c.send({"type": "response.create"})
        assert "couldn't find order 4567" in transcript_of(await c.until_done())

        # no VAD: audio waits in the buffer until the client commits it
        await c.append(speech("It's nine eight seven six."))
        await c.send({"type": "input_audio_buffer.commit"})
        committed = await c.wait_for("input_audio_buffer.committed")
        await c.send({"type": "response.create"})
        events = await c.until_done()
        transcribed = next(e for e in c.events if e["type"] == "conversation.item.input_audio_transcription.completed")
        assert transcribed["item_id"] == committed["item_id"]
        call = events[-1]["response"]["output"][-1]
        assert call["type"] == "function_call", (transcribed, call)
        assert json.loads(call["arguments"]) == {"order_number": "9876"}

        await c.append(speech("Hello."))
        await c.send({"type": "input_audio_buffer.clear"})
        await c.wait_for("input_audio_buffer.cleared")


async def test_reseeded_history_is_context_not_a_request(connect) -> None:
    """A session hand-over re-seeds the transcript as items; nothing is redone."""
    async with connect() as c:
        await c.update(phone_session())
        for role, text in [("system", "This call continues from an earlier session."),
                           ("user", "Book me tomorrow at 10 am, my name is Ana."),
                           ("assistant", "You're booked for Wednesday, November 25 at 10 AM.")]:  # fmt: skip
            kind = "output_text" if role == "assistant" else "input_text"
            await c.send({"type": "conversation.item.create",
                          "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}})
            await c.wait_for("conversation.item.done")
        await c.send({"type": "response.create"})
        events = await c.until_done()
        assert not [i for i in events[-1]["response"]["output"] if i["type"] == "function_call"]
        assert transcript_of(events) == "Is there anything else I can help you with?"


async def test_client_leaving_mid_response_is_clean(connect) -> None:
    # max_queue=None: a client that stops reading mid-stream otherwise leaves the engine's
    # closing frame unread behind 16 queued deltas and waits out websockets' 10 s
    # close_timeout (python-websockets/websockets#1555). The engine sees the same goodbye
    # in the middle of a response either way; this one completes at once.
    async with connect(max_queue=None) as c:
        await c.update(phone_session())
        await c.send({"type": "response.create", "response": {"instructions": f'Say exactly: "{LONG}"'}})
        await c.wait_for("response.output_audio.delta")
    async with connect() as c:  # the engine is still fine
        await c.send({"type": "response.create", "response": {"instructions": 'Say exactly: "Hello again."'}})
        assert transcript_of(await c.until_done()) == "Hello again."


async def test_pcm24k_in_and_out(connect) -> None:
    async with connect() as c:
        session = phone_session()
        session["audio"]["input"]["format"] = {"type": "audio/pcm", "rate": 24000}
        session["audio"]["output"]["format"] = {"type": "audio/pcm", "rate": 24000}
        await c.update(session)
        await c.append(speech("Can I speak to a person?", "audio/pcm"), frame=960)
        await c.append(b"\x00" * 48 * 1000, frame=960)
        events = await c.until_done()
        assert any(e["type"] == "input_audio_buffer.speech_stopped" for e in c.events)
        audio = audio_of(events)
        assert len(audio) % 2 == 0 and len(audio) > 48 * 1000  # PCM16 24 kHz: 48 bytes per ms
        assert events[-1]["response"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_error_message_format_matches_protocol_doc() -> None:
    doc = "Audio content of 9800ms is already shorter than 11579ms"
    assert re.fullmatch(r"Audio content of \d+ms is already shorter than \d+ms", doc)


@pytest.mark.parametrize("authorization", [None, "Bearer sk-an-openai-key", f"Bearer {ENGINE_TOKEN}x"])
async def test_engine_refuses_clients_without_its_token(engine: int, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(f"ws://127.0.0.1:{engine}/v1/realtime", additional_headers=headers):
            pass
    assert refused.value.response.status_code == 401
    async with ws_connect(f"ws://127.0.0.1:{engine}/v1/realtime",
                          additional_headers={"Authorization": f"Bearer {ENGINE_TOKEN}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"


async def test_the_engine_plans_with_the_day_its_session_is_told(connect) -> None:
    """One clock: the service tells every model the tools' day; the engine, pinned to
    another one here (TOOLS_TODAY in its environment), follows the session's."""
    async with connect() as c:
        session = phone_session(instructions="You answer the phone for Acme.\n\nToday is Monday, 2030-01-07.")
        session["audio"]["input"]["turn_detection"] = None
        await c.update(session)
        await c.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Book me tomorrow at 10 am, my name is Ana."}]}})  # fmt: skip
        await c.wait_for("conversation.item.done")
        await c.send({"type": "response.create"})
        call = (await c.until_done())[-1]["response"]["output"][0]
        assert call["name"] == "book_appointment"
        assert json.loads(call["arguments"])["day"] == "2030-01-08" != (date.fromisoformat(TODAY) + timedelta(days=1)).isoformat()
