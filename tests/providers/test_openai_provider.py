"""OpenAIRealtimeSession against the fake GA server (which validates every client event
against the openai SDK's own types), plus unit tests of the pure pieces."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent

from agent.devkit.fake_openai import (
    FakeOpenAIRealtime,
    Scenario,
    ScriptedTurn,
    ToolStep,
    check_client_event,
    dominant_hz,
    silence_frames,
    speech_frames,
)
from agent.providers.openai import wire
from agent.providers.openai.gate import ResponseGate
from agent.providers.openai.session import OpenAIRealtimeError, OpenAIRealtimeSession
from agent.realtime import (
    AudioDone,
    AudioOut,
    ProviderError,
    RealtimeEvent,
    RealtimeSession,
    ResponseDone,
    ResponseStarted,
    SessionConfig,
    SessionReconnecting,
    SessionResumed,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    ToolSpec,
    Transcript,
)

KEY = "test-key"
LOOKUP = ToolSpec(
    "lookup_order",
    "Find an order by number",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)
CLIENT_EVENT = pydantic.TypeAdapter(RealtimeClientEvent)


class Events:
    """Reads a session's events with bounded waits (no sleeping)."""

    def __init__(self, session: OpenAIRealtimeSession) -> None:
        self._it: AsyncIterator[RealtimeEvent] = session.events().__aiter__()
        self.seen: list[RealtimeEvent] = []

    async def next(self, within_s: float = 5.0) -> RealtimeEvent:
        ev = await asyncio.wait_for(anext(self._it), within_s)
        self.seen.append(ev)
        return ev

    async def until(
        self, pred: Callable[[RealtimeEvent], bool], within_s: float = 5.0
    ) -> list[RealtimeEvent]:
        got: list[RealtimeEvent] = []
        async with asyncio.timeout(within_s):
            while True:
                ev = await self.next(within_s)
                got.append(ev)
                if pred(ev):
                    return got

    async def rest(self, within_s: float = 5.0) -> list[RealtimeEvent]:
        """Everything until the stream ends."""
        got: list[RealtimeEvent] = []
        async with asyncio.timeout(within_s):
            async for ev in self._it:
                got.append(ev)
        return got


Opener = Callable[..., Awaitable[tuple[FakeOpenAIRealtime, OpenAIRealtimeSession, Events]]]


@pytest.fixture
async def open_call() -> AsyncIterator[Opener]:
    """open_call(scenario, **config) -> (fake, connected session, events)."""
    opened: list[tuple[FakeOpenAIRealtime, OpenAIRealtimeSession]] = []

    async def _open(
        scenario: Scenario | None = None, **config: Any
    ) -> tuple[FakeOpenAIRealtime, OpenAIRealtimeSession, Events]:
        fake = FakeOpenAIRealtime(scenario or Scenario())
        url = await fake.start()
        config.setdefault("instructions", "You answer the phone for Acme.")
        config.setdefault("tools", (LOOKUP,))
        session = OpenAIRealtimeSession(SessionConfig(**config), url=url, api_key=KEY)
        opened.append((fake, session))
        await session.connect()
        return fake, session, Events(session)

    yield _open
    for fake, session in opened:
        await session.close()
        await fake.stop()
    for fake, _ in opened:
        fake.assert_clean()  # zero client violations, zero invalid fake events


async def speak(session: OpenAIRealtimeSession, ms: int = 300, silence_ms: int = 600) -> None:
    """One caller turn: speech then enough silence for server VAD to end it."""
    for frame in speech_frames(ms) + silence_frames(silence_ms):
        await session.send_audio(frame)


def is_(kind: type, **attrs: Any) -> Callable[[RealtimeEvent], bool]:
    return lambda ev: isinstance(ev, kind) and all(getattr(ev, k) == v for k, v in attrs.items())


def audio_of(events: list[RealtimeEvent], item_id: str | None = None) -> bytes:
    return b"".join(
        e.audio
        for e in events
        if isinstance(e, AudioOut) and (item_id is None or e.item_id == item_id)
    )


# ---------------------------------------------------------------- session setup


@pytest.mark.parametrize("fmt", ["pcmu", "pcm24"])
async def test_session_update_is_valid_ga(open_call: Opener, fmt: str) -> None:
    fake, session, _ = await open_call(audio_format=fmt, voice="", vad_silence_ms=650)
    assert isinstance(session, RealtimeSession)
    s = fake.sessions[0]
    assert s.headers["Authorization"] == f"Bearer {KEY}"
    assert "OpenAI-Beta" not in s.headers
    assert s.query["model"] == ["gpt-realtime"]
    (update,) = s.of_type("session.update")
    assert s.violations == []
    want = {"type": "audio/pcmu"} if fmt == "pcmu" else {"type": "audio/pcm", "rate": 24000}
    audio = update["session"]["audio"]
    assert audio["input"]["format"] == want == audio["output"]["format"]
    assert audio["output"]["voice"] == "marin"
    assert audio["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "en"}
    vad = audio["input"]["turn_detection"]
    # The reply goes on over caller sound; the bridge cancels it once that proves real.
    assert vad["silence_duration_ms"] == 650 and vad["interrupt_response"] is False
    assert vad["create_response"] is True
    assert update["session"]["tools"][0]["name"] == "lookup_order"
    assert session.effective_session["audio"]["input"]["format"] == want


def test_client_events_validate_against_sdk_types() -> None:
    cfg = SessionConfig(instructions="x", tools=(LOOKUP,), language="de-DE", voice="cedar")
    events = [
        wire.session_update(cfg),
        wire.session_update(SessionConfig(instructions="", audio_format="pcm24")),
        wire.session_update(SessionConfig("x", turn_detection="semantic_vad", vad_eagerness="low",
                                          noise_reduction="far_field")),
        wire.session_update(SessionConfig("x", vad_threshold=0.8, noise_reduction="off")),
        json.loads(wire.append_audio_frame(b"\xff" * 160)),
        wire.response_say("Hello, this is Acme."),
        wire.response_plain(),
        wire.response_filler("One moment."),
        wire.response_cancel(),
        wire.response_cancel("resp_1"),
        wire.truncate("item_1", 1234),
        wire.item_delete("item_1"),
        wire.session_update(SessionConfig("x", hold_on_speech=False)),
        *(wire.item_create(wire.message_item(r, "hi")) for r in ("user", "assistant", "system")),
        wire.item_create(wire.function_output_item("call_1", {"status": "shipped"})),
        *wire.seed_items([("user", "hi"), ("assistant", "hello")]),
    ]
    for ev in events:
        model = CLIENT_EVENT.validate_python(ev)  # the SDK's own union
        assert model.type == ev["type"]
        assert check_client_event(ev) is None, ev  # ... and no unknown fields
    assert wire.response_say("Hi")["response"] == {"instructions": 'Say exactly: "Hi"'}


def test_listening_settings_reach_the_session() -> None:
    audio = wire.session_update(SessionConfig("x"))["session"]["audio"]["input"]
    assert audio["noise_reduction"] == {"type": "near_field"}  # a handset, by default
    assert audio["turn_detection"]["type"] == "server_vad" and audio["turn_detection"]["threshold"] == 0.5
    noisy = wire.session_update(SessionConfig("x", vad_threshold=0.8, vad_silence_ms=700, noise_reduction="off"))
    audio = noisy["session"]["audio"]["input"]
    assert audio["noise_reduction"] is None
    assert audio["turn_detection"]["threshold"] == 0.8 and audio["turn_detection"]["silence_duration_ms"] == 700
    semantic = wire.session_update(SessionConfig("x", turn_detection="semantic_vad", vad_eagerness="high"))
    assert semantic["session"]["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad", "eagerness": "high", "create_response": True, "interrupt_response": True,
    }


def test_checker_rejects_beta_shapes() -> None:
    """The fake's validator bites on the classic field bugs."""
    beta = {"type": "session.update", "session": {"type": "realtime", "voice": "alloy"}}
    assert check_client_event(beta).code == "unknown_parameter"
    no_type = {"type": "session.update", "session": {"instructions": "x"}}
    bad = check_client_event(no_type)
    assert bad.code == "missing_required_parameter" and bad.param == "session.type"
    string_fmt = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"format": "g711_ulaw"}}},
    }
    assert check_client_event(string_fmt) is not None
    obj_output = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c", "output": {"a": 1}},
    }
    assert check_client_event(obj_output) is not None


async def test_rejected_session_update_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def beta_update(config: SessionConfig) -> dict[str, Any]:
        return {"type": "session.update", "session": {"type": "realtime", "voice": "marin"}}

    monkeypatch.setattr(wire, "session_update", beta_update)
    async with FakeOpenAIRealtime() as fake:
        session = OpenAIRealtimeSession(SessionConfig(instructions="x"), url=fake.url, api_key=KEY)
        with pytest.raises(OpenAIRealtimeError, match="Unknown parameter") as err:
            await session.connect()
        assert err.value.code == "unknown_parameter"
        assert [v.code for v in fake.sessions[0].violations] == ["unknown_parameter"]
        await session.close()


async def test_wrong_api_key_raises() -> None:
    async with FakeOpenAIRealtime() as fake:
        session = OpenAIRealtimeSession(
            SessionConfig(instructions="x"), url=fake.url, api_key="nope"
        )
        with pytest.raises(OpenAIRealtimeError, match="401"):
            await session.connect()
        assert fake.sessions == []


# ---------------------------------------------------------------- audio and turns


@pytest.mark.parametrize("fmt", ["pcmu", "pcm24"])
async def test_audio_both_ways(open_call: Opener, fmt: str) -> None:
    scenario = Scenario(turns=[ScriptedTurn("Do you open on Sunday?", "No, we are closed.", reply_ms=1000)])
    fake, session, events = await open_call(scenario, audio_format=fmt)
    await speak(session, 300, 600)
    got = await events.until(is_(ResponseDone))
    caller = [e for e in got if isinstance(e, Transcript) and e.role == "caller" and e.final]
    assert caller[0].text == "Do you open on Sunday?"
    assert any(isinstance(e, SpeechStarted) for e in got)
    (done,) = [e for e in got if isinstance(e, AudioDone)]
    ulaw = audio_of(got, done.item_id)
    assert abs(len(ulaw) - 8000) <= (0 if fmt == "pcmu" else 160)  # 1000 ms of μ-law
    assert abs(dominant_hz(ulaw) - 440) < 10
    bot = [e for e in got if isinstance(e, Transcript) and e.role == "bot" and e.final]
    assert bot[0].text == "No, we are closed."
    # Caller audio arrived whole (pcm24: minus the input resampler's filter delay).
    appended = fake.sessions[0].appended_ms
    assert appended == 900 if fmt == "pcmu" else 840 <= appended <= 900


async def test_a_quiet_line_goes_in_fewer_appends_and_a_turn_frame_by_frame(
    open_call: Opener,
) -> None:
    fake, session, events = await open_call(Scenario())
    s = fake.sessions[0]
    for frame in silence_frames(1000):
        await session.send_audio(frame)
    await fake.wait_for(lambda: s.appended_ms == 1000)
    assert len(s.of_type("input_audio_buffer.append")) == 5  # 200 ms each
    # Speech goes out as it comes; once the model hears a turn, so does its silence.
    for frame in speech_frames(300):
        await session.send_audio(frame)
    await events.until(is_(SpeechStarted))
    for frame in silence_frames(600):
        await session.send_audio(frame)
    await events.until(is_(SpeechStopped))
    await fake.wait_for(lambda: s.appended_ms == 1900)
    assert len(s.of_type("input_audio_buffer.append")) == 5 + 15 + 30


async def test_hold_audio_takes_only_what_would_wait_and_keeps_the_order(
    open_call: Opener,
) -> None:
    fake, session, events = await open_call(Scenario())
    quiet = [bytes([0xF0 + i % 16]) * 160 for i in range(10)]
    assert [session.hold_audio(f) for f in quiet[:9]] == [True] * 9
    assert not session.hold_audio(quiet[9])  # it would complete the batch: send it
    assert not session.hold_audio(speech_frames(20)[0])  # loud: never held here
    await session.send_audio(quiet[9])
    s = fake.sessions[0]
    await fake.wait_for(lambda: s.appended_ms == 200)
    (append,) = s.of_type("input_audio_buffer.append")
    assert base64.b64decode(append["audio"]) == b"".join(quiet)
    for frame in speech_frames(300):
        await session.send_audio(frame)
    await events.until(is_(SpeechStarted))
    assert not session.hold_audio(quiet[0])  # the model is hearing a turn


async def test_function_call_round_trip(open_call: Opener) -> None:
    scenario = Scenario(
        turns=[ScriptedTurn("Where is order 123?", tool=ToolStep("lookup_order", {"order_id": "123"}))]
    )
    fake, session, events = await open_call(scenario)
    await speak(session)
    got = await events.until(is_(ToolCall))
    call = got[-1]
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments) == ("lookup_order", {"order_id": "123"})
    await events.until(is_(ResponseDone))
    await session.send_tool_result(call, {"status": "shipped", "eta": "Friday"})
    got = await events.until(lambda e: isinstance(e, Transcript) and e.role == "bot" and e.final)
    assert '"status": "shipped"' in got[-1].text
    assert audio_of(got)
    s = fake.sessions[0]
    assert s.function_outputs == [
        {
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": '{"status": "shipped", "eta": "Friday"}',
        }
    ]
    assert s.errors == []


async def test_invalid_tool_arguments_are_kept_raw(open_call: Opener) -> None:
    fake, session, events = await open_call()
    await fake.inject(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "resp_x",
            "item_id": "item_x",
            "output_index": 0,
            "call_id": "call_x",
            "name": "lookup_order",
            "arguments": '{"order_id": 12',
        }
    )
    call = await events.next()
    assert call == ToolCall("call_x", "lookup_order", {}, '{"order_id": 12')


async def test_say_while_active_is_queued(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(realtime_factor=8.0))
    await session.say("Thanks for calling Acme, how can I help you today?")
    await events.until(is_(ResponseStarted))  # the first reply is now running
    await session.say("Our hours are nine to five.")  # must wait: never a second create now
    assert len(fake.sessions[0].of_type("response.create")) == 1
    got = await events.until(lambda e: isinstance(e, ResponseDone) and len(done_ids(events)) == 2)
    finals = [e.text for e in events.seen if isinstance(e, Transcript) and e.final]
    assert finals == [
        "Thanks for calling Acme, how can I help you today?",
        "Our hours are nine to five.",
    ]
    assert all(e.status == "completed" for e in got if isinstance(e, ResponseDone))
    assert fake.sessions[0].errors == []  # no conversation_already_has_active_response


def done_ids(events: Events) -> list[str]:
    return [e.response_id for e in events.seen if isinstance(e, ResponseDone)]


async def test_tool_result_during_vad_reply_is_spoken_after_it(open_call: Opener) -> None:
    scenario = Scenario(
        turns=[
            ScriptedTurn("Where is order 7?", tool=ToolStep("lookup_order", {"order_id": "7"})),
            ScriptedTurn("Are you there?", "Yes, still checking.", reply_ms=1500),
        ],
        realtime_factor=8.0,
    )
    fake, session, events = await open_call(scenario)
    await speak(session)
    call = (await events.until(is_(ToolCall)))[-1]
    await events.until(is_(ResponseDone))
    await speak(session)  # the caller talks while the tool runs: the server replies itself
    await events.until(is_(ResponseStarted))
    await session.send_tool_result(call, {"status": "delivered"})
    await events.until(lambda e: isinstance(e, Transcript) and "delivered" in e.text and e.final)
    assert fake.sessions[0].errors == []


async def test_out_of_band_filler_runs_alongside(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(realtime_factor=8.0))
    await session.say("Let me look that up for you right away.")
    await events.until(is_(ResponseStarted))
    await session.say_out_of_band("One moment.")
    got = await events.until(is_(ResponseDone, out_of_band=True))
    filler = [e for e in got if isinstance(e, AudioOut) and e.out_of_band]
    assert filler and all(e.response_id == filler[0].response_id for e in filler)
    assert any(isinstance(e, ResponseStarted) and e.out_of_band for e in got)
    (_, oob) = fake.sessions[0].of_type("response.create")
    assert oob["response"]["conversation"] == "none"
    assert oob["response"]["metadata"] == {"kind": "filler"}
    await events.until(is_(ResponseDone, out_of_band=False))
    assert fake.sessions[0].errors == []


async def test_send_text_is_a_caller_turn(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(default_reply="Got your digits."))
    await session.send_text("(The caller typed on the keypad: 1234)")
    got = await events.until(lambda e: isinstance(e, Transcript) and e.final)
    assert got[-1].text == "Got your digits."
    s = fake.sessions[0]
    assert s.created_items[0]["role"] == "user"
    assert s.created_items[0]["content"] == [
        {"type": "input_text", "text": "(The caller typed on the keypad: 1234)"}
    ]


async def test_background_tool_acknowledged_then_result_when_idle(open_call: Opener) -> None:
    scenario = Scenario(
        turns=[ScriptedTurn("Text me the receipt.", tool=ToolStep("lookup_order", {"order_id": "9"}))]
    )
    fake, session, events = await open_call(scenario)
    await speak(session)
    call = (await events.until(is_(ToolCall)))[-1]
    assert isinstance(call, ToolCall)
    await session.acknowledge_background(call)  # the function-call response may still run
    got = await events.until(lambda e: isinstance(e, Transcript) and e.final and e.role == "bot")
    assert '"status": "started"' in got[-1].text
    await events.until(is_(ResponseDone))
    await session.send_background_result(call, {"sent": True}, "SILENT")
    await session.send_background_result(call, {"sent": True, "again": 1}, "WHEN_IDLE")
    await events.until(lambda e: isinstance(e, ResponseDone) and len(done_ids(events)) == 3)
    s = fake.sessions[0]
    assert [o["output"] for o in s.function_outputs] == [json.dumps(wire.BACKGROUND_STARTED)]
    notes = [i["content"][0]["text"] for i in s.created_items if i.get("role") == "system"]
    assert len(notes) == 2 and all("background task lookup_order" in n for n in notes)
    # SILENT asked for nothing; WHEN_IDLE for exactly one reply; the ack for one.
    assert len(s.of_type("response.create")) == 2
    assert s.errors == []


# ---------------------------------------------------------------- barge-in


async def test_interrupt_cancels_and_truncates_at_heard_ms(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(realtime_factor=2.0, chunk_ms=100))
    await session.say("A long answer " * 10)
    got = await events.until(
        lambda e: isinstance(e, AudioOut) and len(audio_of(events.seen)) >= 8 * 600
    )
    item = got[-1].item_id
    await session.interrupt(item, heard_ms=420)
    await events.until(is_(ResponseDone, status="cancelled"))
    s = fake.sessions[0]
    await fake.wait_for(lambda: len(s.truncates) == 1)
    assert [c.get("response_id") for c in s.cancels] == [got[-1].response_id]
    assert s.truncates == [
        {
            "type": "conversation.item.truncate",
            "item_id": item,
            "content_index": 0,
            "audio_end_ms": 420,
        }
    ]
    assert s.errors == []


async def test_vad_barge_in_truncates_without_cancel_spam(open_call: Opener) -> None:
    # A server that cuts its own reply (interrupt_response true, as for the engine).
    fake, session, events = await open_call(Scenario(realtime_factor=2.0), hold_on_speech=False)
    await session.say("Here is a rather long explanation of our return policy " * 3)
    got = await events.until(
        lambda e: isinstance(e, AudioOut) and len(audio_of(events.seen)) >= 8 * 400
    )
    item = got[-1].item_id
    for frame in speech_frames(100):  # the caller talks over the bot
        await session.send_audio(frame)
    started = (await events.until(is_(SpeechStarted)))[-1]
    assert isinstance(started, SpeechStarted) and started.interrupted
    await events.until(is_(ResponseDone, status="cancelled"))
    await session.interrupt(item, heard_ms=250)  # server VAD already cancelled it
    s = fake.sessions[0]
    await fake.wait_for(lambda: len(s.truncates) == 1)
    assert s.cancels == []
    assert s.truncates[0]["audio_end_ms"] == 250
    assert s.errors == []


async def test_truncate_clamped_to_audio_received(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(realtime_factor=2.0))
    await session.say("Another long answer that keeps going " * 4)
    await events.until(lambda e: isinstance(e, AudioOut) and len(audio_of(events.seen)) >= 8 * 300)
    item = next(e.item_id for e in events.seen if isinstance(e, AudioOut))
    await session.interrupt(item, heard_ms=60_000)  # a bogus playback position
    s = fake.sessions[0]
    await fake.wait_for(lambda: len(s.truncates) == 1)
    end = s.truncates[0]["audio_end_ms"]
    resp = s.responses[0]
    assert len(audio_of(events.seen)) // 8 <= end <= resp.sent_ms
    assert s.errors == []


async def test_truncate_skipped_for_unknown_or_fully_played_items(open_call: Opener) -> None:
    fake, session, events = await open_call()
    await session.say("Short.")
    got = await events.until(is_(ResponseDone))
    item = next(e.item_id for e in got if isinstance(e, AudioDone))
    played_ms = len(audio_of(got, item)) // 8
    await session.interrupt(item, heard_ms=played_ms)  # heard it all
    await session.interrupt("item_unknown", heard_ms=100)
    await session.interrupt(None, None)
    await session.add_context("marker")  # everything before it has reached the fake
    s = fake.sessions[0]
    await fake.wait_for(lambda: any(i.get("role") == "system" for i in s.created_items))
    assert s.truncates == [] and s.cancels == [] and s.errors == []


# ---------------------------------------------------------------- hand-over


async def test_rollover_reseeds_transcript(open_call: Opener) -> None:
    scenario = Scenario(
        turns=[
            ScriptedTurn("I want to book a haircut.", "Sure, which day suits you?"),
            ScriptedTurn("Tuesday please.", "Tuesday at ten is free."),
        ]
    )
    fake, session, events = await open_call(scenario, max_session_s=1.0)
    await speak(session)
    await events.until(is_(ResponseDone))
    await session.add_context("Caller is a returning customer.")
    got = await events.until(is_(SessionResumed), within_s=10)
    assert any(is_(SessionReconnecting, reason="max_session")(e) for e in got)
    resumed = got[-1]
    assert isinstance(resumed, SessionResumed) and resumed.reason == "max_session"
    assert resumed.gap_ms < 1000
    new = fake.sessions[1]
    assert new.of_type("session.update")  # configured like the first one
    seeded = [
        (i["role"], i["content"][0]["type"], i["content"][0]["text"]) for i in new.created_items
    ]
    assert seeded[0][0] == "system" and "handed over" in seeded[0][2]
    assert seeded[1:] == [
        ("user", "input_text", "I want to book a haircut."),
        ("assistant", "output_text", "Sure, which day suits you?"),
        ("system", "input_text", "Caller is a returning customer."),
    ]
    await fake.wait_for(lambda: fake.sessions[0].closed)  # the old session was let go
    # The call goes on in the new session (the fake restarts its script per session).
    await speak(session)
    got = await events.until(lambda e: isinstance(e, Transcript) and e.role == "bot" and e.final)
    assert got[-1].text == "Sure, which day suits you?"
    assert new.appended_ms >= 880


async def test_session_expired_rolls_over(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(expire_after_s=0.2))
    got = await events.until(is_(SessionResumed))
    assert [type(e) for e in got] == [SessionReconnecting, SessionResumed]
    assert got[0].reason == "session_expired"
    assert len(fake.sessions) == 2 and not any(isinstance(e, ProviderError) for e in got)
    await session.say("Still here.")
    await events.until(is_(ResponseDone))
    assert fake.sessions[1].of_type("response.create")


async def test_tool_result_from_a_replaced_session_becomes_a_note(open_call: Opener) -> None:
    scenario = Scenario(
        turns=[ScriptedTurn("Where is order 5?", tool=ToolStep("lookup_order", {"order_id": "5"}))]
    )
    fake, session, events = await open_call(scenario)
    await speak(session)
    call = (await events.until(is_(ToolCall)))[-1]
    assert isinstance(call, ToolCall)
    await events.until(is_(ResponseDone))
    await fake.expire(0)  # the tool is still running when the session ends
    await events.until(is_(SessionResumed))
    await session.send_tool_result(call, {"status": "packed"})
    got = await events.until(is_(ResponseDone))
    assert any(isinstance(e, AudioOut) for e in got)
    new = fake.sessions[1]
    assert new.function_outputs == []  # its call id means nothing to the new session
    assert new.created_items[-1] == wire.message_item(
        "system", 'Result of lookup_order: {"status": "packed"}'
    )
    seeded = [i["content"][0]["text"] for i in new.created_items]
    assert "Where is order 5?" in seeded
    assert new.errors == []


async def test_disconnect_reconnects_once_and_keeps_audio(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(drop_after_s=0.2))
    await events.until(is_(SessionReconnecting, reason="connection_lost"))
    for frame in silence_frames(400):  # during or after the swap: none may be lost
        await session.send_audio(frame)
    await events.until(is_(SessionResumed))
    await fake.wait_for(lambda: fake.sessions[1].appended_ms == 400)


async def test_disconnect_then_failed_reconnect_is_fatal(open_call: Opener) -> None:
    fake, session, events = await open_call(Scenario(drop_after_s=0.2, max_connections=1))
    rest = await events.rest()
    assert isinstance(rest[0], SessionReconnecting)
    last = rest[-1]
    assert isinstance(last, ProviderError) and last.fatal
    assert fake.rejected_handshakes == 1  # exactly one quick attempt
    await session.send_audio(b"\xff" * 160)  # harmless after the end


# ---------------------------------------------------------------- misc


async def test_unknown_server_event_ignored_and_rate_limits_kept(open_call: Opener) -> None:
    fake, session, events = await open_call()
    await fake.inject({"type": "response.brand_new_thing", "x": 1}, validate=False)
    await fake.inject(
        {"type": "rate_limits.updated", "rate_limits": [{"name": "tokens", "remaining": 7}]}
    )
    await fake.inject(
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 5, "item_id": "item_a"}
    )
    assert await events.next() == SpeechStarted(5, interrupted=False, item_id="item_a")
    assert session.rate_limits == [{"name": "tokens", "remaining": 7}]


async def test_close_is_idempotent_and_ends_events(open_call: Opener) -> None:
    _, session, events = await open_call()
    await session.close()
    await session.close()
    assert await events.rest() == []


async def test_sdk_client_talks_to_the_fake() -> None:
    """The official SDK client parses everything the fake sends; the fake's own errors."""
    from openai import AsyncOpenAI

    async with FakeOpenAIRealtime(Scenario(realtime_factor=1.0)) as fake:
        client = AsyncOpenAI(api_key=KEY, websocket_base_url=fake.url.rsplit("/realtime", 1)[0])
        async with client.realtime.connect(model="gpt-realtime") as conn:

            async def recv_until(kind: str) -> list[Any]:
                got = [await conn.recv()]
                while got[-1].type != kind:
                    got.append(await asyncio.wait_for(conn.recv(), 5))
                return got

            assert (await conn.recv()).type == "session.created"
            await conn.session.update(session=wire.session_update(SessionConfig("x"))["session"])
            assert (await conn.recv()).type == "session.updated"
            await conn.response.create(response={"instructions": 'Say exactly: "Hi there"'})
            started = (await recv_until("response.created"))[-1]
            await conn.response.create()  # a second default response while one is active
            err = (await recv_until("error"))[-1]
            assert err.error.code == "conversation_already_has_active_response"
            assert err.error.message == (
                f"Conversation already has an active response in progress: "
                f"{started.response.id}. Wait until the response is finished before "
                "creating a new one."
            )
            got = await recv_until("response.done")
            assert "response.output_audio.delta" in [e.type for e in got]
            item_id = next(e.item_id for e in got if e.type == "response.output_audio.done")
            await conn.conversation.item.truncate(
                item_id=item_id, content_index=0, audio_end_ms=99_000
            )
            err = (await recv_until("error"))[-1]
            assert err.error.message == "Audio content of 480ms is already shorter than 99000ms"
            await conn.conversation.item.truncate(
                item_id=item_id, content_index=0, audio_end_ms=200
            )
            assert (await recv_until("conversation.item.truncated"))[-1].audio_end_ms == 200
        fake.assert_clean()


# ---------------------------------------------------------------- the gate (pure)


def test_gate_queues_until_idle() -> None:
    gate = ResponseGate()
    gate.push(wire.response_say("one"), "say")
    first = gate.pop_ready()
    assert first is not None and gate.busy
    gate.push(wire.response_say("two"), "say")
    assert gate.pop_ready() is None
    gate.on_created("resp_1")
    assert gate.pop_ready() is None
    assert gate.on_done("resp_1")
    assert gate.pop_ready() == wire.response_say("two")


def test_gate_requeues_after_active_response_error() -> None:
    gate = ResponseGate()
    gate.push(wire.response_say("hello"), "say")
    assert gate.pop_ready() is not None
    gate.on_created("resp_vad")  # the server's own VAD reply won the race
    gate.on_active_error(
        "Conversation already has an active response in progress: resp_vad. Wait until the "
        "response is finished before creating a new one."
    )
    assert gate.pop_ready() is None
    gate.on_done("resp_vad")
    assert gate.pop_ready() == wire.response_say("hello")


def test_gate_error_without_created_learns_active_id() -> None:
    gate = ResponseGate()
    gate.push(wire.response_plain(), "respond")
    gate.pop_ready()
    gate.on_active_error("Conversation already has an active response in progress: resp_9.")
    assert gate.active == "resp_9" and gate.pop_ready() is None
    gate.on_done("resp_9")
    assert gate.pop_ready() == wire.response_plain()


def test_gate_new_response_satisfies_queued_tool_replies() -> None:
    gate = ResponseGate()
    gate.on_created("resp_a")
    gate.push(wire.response_plain(), "respond")
    gate.push(wire.response_plain(), "respond")  # coalesced
    assert gate.queued == 1
    gate.on_done("resp_a")
    gate.on_created("resp_vad")  # a new response reads the function output anyway
    assert gate.queued == 0
