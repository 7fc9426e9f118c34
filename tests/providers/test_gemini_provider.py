"""GeminiLiveSession against the fake Gemini Live server (real websockets, real sockets).

The fake validates every client message against google-genai's LiveClientMessage and
every message it sends against LiveServerMessage; most tests end by asserting that no
violation was recorded.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from google.genai import types
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agent.providers.gemini.events import GeminiTranslator
from agent.providers.gemini.session import GeminiLiveSession
from agent.providers.gemini.wire import (
    audio_message,
    build_setup,
    heard_prefix,
    model_name,
    parse_duration_s,
    tool_response,
)
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
    ToolCallCancelled,
    ToolSpec,
    Transcript,
)
from telephony.audio import UlawToPcm, pcm16_to_ulaw
from tests.fakes.gemini_server import (
    FakeGeminiLive,
    Scenario,
    ScriptedTurn,
    validate_client_message,
    validate_server_message,
)

E = TypeVar("E")
KEY = "test-key"
ORDER_TOOL = ToolSpec(
    "lookup_order",
    "Find an order by its number",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)
SLOW_TOOL = ToolSpec(
    "check_stock",
    "Check warehouse stock (slow)",
    {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
    background=True,
    scheduling="WHEN_IDLE",
)


# ---------------------------------------------------------------- helpers


def speech(ms: int, hz: float = 300.0, amp: int = 8000) -> bytes:
    """Caller 'speech': a μ-law 8 kHz tone loud enough for the fake's energy VAD."""
    t = np.arange(8 * ms) / 8000
    return pcm16_to_ulaw((amp * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes())


def silence(ms: int) -> bytes:
    return b"\xff" * (8 * ms)


def frames(ulaw: bytes) -> list[bytes]:
    return [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]


class Caller:
    """Sends 20 ms frames and keeps a reference converter to know the exact PCM sent."""

    def __init__(self, session: GeminiLiveSession) -> None:
        self.session = session
        self.reference = UlawToPcm(16000)
        self.pcm_bytes = 0

    async def send(self, ulaw: bytes) -> int:
        """Returns the PCM16 16 kHz bytes these frames become."""
        n = 0
        for frame in frames(ulaw):
            n += len(self.reference.convert(frame))
            await self.session.send_audio(frame)
        self.pcm_bytes += n
        return n

    async def utterance(self, speech_ms: int = 300, silence_ms: int = 600) -> None:
        await self.send(speech(speech_ms) + silence(silence_ms))


class Events:
    """Drains session.events() in the background so no test can miss one."""

    def __init__(self, session: GeminiLiveSession) -> None:
        self.items: list[RealtimeEvent] = []
        self.ended = False
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._pump(session.events()))

    async def _pump(self, it: AsyncIterator[RealtimeEvent]) -> None:
        async for event in it:
            self.items.append(event)
            async with self._changed:
                self._changed.notify_all()
        self.ended = True
        async with self._changed:
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(predicate)

    async def first(
        self, cls: type[E], where: Callable[[E], bool] = lambda e: True, within_s: float = 5.0
    ) -> E:
        def found() -> E | None:
            return next((e for e in self.items if isinstance(e, cls) and where(e)), None)

        await self.until(lambda: found() is not None, within_s)
        event = found()
        assert event is not None
        return event

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.items if isinstance(e, cls)]

    def index(self, event: object) -> int:
        return next(i for i, e in enumerate(self.items) if e is event)


Factory = Callable[..., Awaitable[tuple[FakeGeminiLive, GeminiLiveSession, Events]]]


@pytest.fixture
async def gemini() -> AsyncIterator[Factory]:
    """gemini(scenario, tools=...) -> (fake, connected session, events)."""
    opened: list[tuple[FakeGeminiLive, GeminiLiveSession]] = []

    async def make(
        scenario: Scenario | None = None, tools: tuple[ToolSpec, ...] = ()
    ) -> tuple[FakeGeminiLive, GeminiLiveSession, Events]:
        fake = FakeGeminiLive(scenario or Scenario())
        url = await fake.start()
        config = SessionConfig(instructions="You answer the phone for Acme.", tools=tools)
        session = GeminiLiveSession(config, url=url, api_key=KEY, connect_timeout_s=5.0)
        opened.append((fake, session))
        await session.connect()
        return fake, session, Events(session)

    yield make
    for fake, session in opened:
        await session.close()
        await fake.stop()


def bot_finals(events: Events) -> list[str]:
    return [t.text for t in events.of(Transcript) if t.role == "bot" and t.final]


# ---------------------------------------------------------------- setup and validation


async def test_setup_is_complete_and_valid(gemini: Factory) -> None:
    fake, session, _ = await gemini(tools=(ORDER_TOOL, SLOW_TOOL))
    assert isinstance(session, RealtimeSession)
    setup = fake.connections[0].setup
    assert setup is not None
    assert setup["model"] == "models/gemini-2.5-flash-native-audio-preview-09-2025"
    gen = setup["generationConfig"]
    assert gen["responseModalities"] == ["AUDIO"]
    assert gen["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"
    assert gen["speechConfig"]["languageCode"] == "en-US"
    assert setup["systemInstruction"] == {"parts": [{"text": "You answer the phone for Acme."}]}
    decls = {d["name"]: d for d in setup["tools"][0]["functionDeclarations"]}
    assert decls["lookup_order"]["parametersJsonSchema"] == ORDER_TOOL.parameters
    assert "behavior" not in decls["lookup_order"]
    assert decls["check_stock"]["behavior"] == "NON_BLOCKING"
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    ric = setup["realtimeInputConfig"]
    assert ric["automaticActivityDetection"]["silenceDurationMs"] == 500
    assert ric["activityHandling"] == "START_OF_ACTIVITY_INTERRUPTS"
    assert setup["sessionResumption"] == {}
    assert setup["contextWindowCompression"]["slidingWindow"]["targetTokens"] > 0
    assert fake.violations == []


@pytest.mark.parametrize(("threshold", "sensitivity"), [
    (0.5, None), (0.8, "START_SENSITIVITY_LOW"), (0.3, "START_SENSITIVITY_HIGH"),
])
def test_a_flows_vad_threshold_maps_to_start_sensitivity(threshold: float, sensitivity: str | None) -> None:
    setup = build_setup(SessionConfig("hi", vad_threshold=threshold, vad_silence_ms=800))
    detection = setup["setup"]["realtimeInputConfig"]["automaticActivityDetection"]
    assert detection.get("startOfSpeechSensitivity") == sensitivity
    assert detection["silenceDurationMs"] == 800
    assert validate_client_message(json.dumps(setup))[1] == []


async def test_wrong_api_key_is_refused() -> None:
    async with FakeGeminiLive() as fake:
        session = GeminiLiveSession(SessionConfig("hi"), url=fake.url, api_key="nope")
        with pytest.raises(ConnectionError, match="403"):
            await session.connect()
        await session.close()


def test_validator_catches_misspelled_and_unknown_fields() -> None:
    good = json.dumps(build_setup(SessionConfig("hi", tools=(ORDER_TOOL, SLOW_TOOL))))
    assert validate_client_message(good)[1] == []

    bad = json.loads(good)
    bad["setup"]["generationConfig"]["responseModality"] = ["AUDIO"]  # missing "s"
    problems = validate_client_message(json.dumps(bad))[1]
    assert problems and "responseModality" in problems[0]

    typo = '{"realtimeInput":{"audio":{"data":"AAAA","mimeTyp":"audio/pcm;rate=16000"}}}'
    assert validate_client_message(typo)[1]
    assert validate_client_message('{"toolResponses":{"functionResponses":[]}}')[1]
    assert validate_client_message('{"realtimeInput":{"audio":{"data":"no!b64"}}}')[1]

    bad = json.loads(good)
    bad["setup"]["tools"][0]["functionDeclarations"][1]["behavior"] = "NONBLOCKING"
    assert "NONBLOCKING is not a valid Behavior" in validate_client_message(json.dumps(bad))[1]

    two_keys = {"realtimeInput": {"text": "a"}, "clientContent": {"turnComplete": True}}
    assert validate_client_message(json.dumps(two_keys))[1]

    # The fake holds itself to the same standard for what it sends.
    assert validate_server_message({"serverContent": {"turnComplete": True}}) == []
    assert validate_server_message({"serverContent": {"turnCompleted": True}})

    # Why the fake extends the SDK type: 3.6.1's own LiveClientSetup rejects the
    # documented realtimeInputConfig.
    with pytest.raises(ValidationError, match="realtimeInputConfig"):
        types.LiveClientMessage.model_validate_json(good)


async def test_fake_records_misspelled_field_on_the_wire() -> None:
    async with FakeGeminiLive() as fake:
        async with connect(fake.url, additional_headers={"x-goog-api-key": KEY}) as ws:
            await ws.send(json.dumps({"setup": {"model": "models/x"}}))
            assert "setupComplete" in json.loads(await ws.recv())
            await ws.send(json.dumps({"clientContent": {"turnComplet": True}}))
            await fake.wait_until(lambda: len(fake.connections[0].received) == 2)
        assert any("turnComplet" in v for v in fake.violations)


def test_wire_helpers() -> None:
    assert model_name("") == "models/gemini-2.5-flash-native-audio-preview-09-2025"
    assert model_name("models/x") == "models/x"
    assert parse_duration_s("5s", 1.0) == 5.0 and parse_duration_s("0.250s", 1.0) == 0.25
    assert parse_duration_s(None, 3.0) == 3.0
    wrapped = tool_response("c1", "f", "done", None)["toolResponse"]["functionResponses"][0]
    assert wrapped == {"id": "c1", "name": "f", "response": {"output": "done"}}
    assert heard_prefix("one two three four", 500, 1000) == "one two"
    assert heard_prefix("one two three four", 0, 1000) == ""
    assert heard_prefix("one two", 2000, 1000) == "one two"
    assert json.loads(audio_message(b"\x01\x00"))["realtimeInput"]["audio"]["data"] == "AQA="
    for msg in (audio_message(b"\x00" * 640), json.dumps(tool_response("c", "f", {}, "SILENT"))):
        assert validate_client_message(msg)[1] == []


def test_translator_checks_every_key_and_ignores_unknown() -> None:
    tr = GeminiTranslator()
    out = tr.feed(
        {
            "serverContent": {"outputTranscription": {"text": "Hi"}},
            "usageMetadata": {"totalTokenCount": 3},
            "someFutureKey": {"x": 1},
            "sessionResumptionUpdate": {"newHandle": "h1", "resumable": True},
        }
    )
    assert [type(e) for e in out] == [ResponseStarted, Transcript]
    assert tr.handle == "h1"
    tr.feed({"sessionResumptionUpdate": {"resumable": False}})  # busy: keep the last handle
    assert tr.handle == "h1"
    start = tr.feed({"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}})
    end = tr.feed({"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_EOS"}})
    assert start == [SpeechStarted(interrupted=False)] and end == [SpeechStopped()]


# ---------------------------------------------------------------- audio and turns


async def test_audio_both_ways_with_transcripts(gemini: Factory) -> None:
    scenario = Scenario(turns=[ScriptedTurn(caller="what are your hours", reply="We open at nine")])
    fake, session, events = await gemini(scenario)
    caller = Caller(session)
    await caller.utterance(speech_ms=400, silence_ms=600)
    done = await events.first(ResponseDone)
    assert done.status == "completed"

    # In: μ-law 8 kHz -> PCM16 16 kHz, 4 bytes per μ-law byte, one resampler, nothing lost.
    await fake.wait_until(lambda: fake.connections[0].audio_bytes == caller.pcm_bytes)
    assert abs(caller.pcm_bytes - 32 * 1000) <= 32 * 40  # soxr holds back ~30 ms

    # Out: 500 ms of 24 kHz PCM16 (24000 bytes) -> ~4000 bytes of μ-law 8 kHz.
    audio = [e for e in events.of(AudioOut) if e.item_id == done.response_id]
    total = sum(len(e.audio) for e in audio)
    assert abs(total - 500 * 8) <= 8  # the resampler's tail is flushed at turnComplete
    assert len(audio) == 6  # one AudioOut per 100 ms modelTurn chunk, plus that tail
    assert events.of(AudioDone)[0].item_id == done.response_id
    finals = [t for t in events.of(Transcript) if t.final]
    assert [(t.role, t.text) for t in finals] == [
        ("caller", "what are your hours"),
        ("bot", "We open at nine"),
    ]
    assert fake.violations == []


async def test_binary_frames_are_parsed(gemini: Factory) -> None:
    fake, session, events = await gemini(Scenario(binary_frames="always", turns=[ScriptedTurn()]))
    await Caller(session).utterance()
    await events.first(ResponseDone)
    assert bot_finals(events) == ["Hi there, how can I help?"]
    assert fake.violations == []


async def test_unknown_keys_and_riding_usage_metadata_are_ignored(gemini: Factory) -> None:
    fake, session, events = await gemini()
    await fake.send_raw({"brandNewMessage": {"x": 1}})
    await fake.send_raw(
        {
            "serverContent": {"outputTranscription": {"text": "still here"}, "turnComplete": True},
            "usageMetadata": {"totalTokenCount": 12},
            "anotherNewKey": True,
        },
        binary=True,
    )
    assert (await events.first(Transcript, lambda t: t.final)).text == "still here"
    assert not events.of(ProviderError)
    # And the session still works afterwards.
    await Caller(session).utterance()
    await events.until(lambda: len(events.of(ResponseDone)) == 2)
    assert fake.violations == []


async def test_say_speaks_exact_text(gemini: Factory) -> None:
    fake, session, events = await gemini()
    await session.say("Thanks for calling Acme.")
    await events.first(ResponseDone)
    cc = fake.connections[0].messages("clientContent")[0]
    assert cc == {
        "turns": [{"role": "user", "parts": [{"text": 'Say exactly: "Thanks for calling Acme."'}]}],
        "turnComplete": True,
    }
    assert bot_finals(events) == ["Thanks for calling Acme."]
    await session.say_out_of_band("One moment.")  # Gemini: same as say
    await events.until(lambda: bot_finals(events)[-1:] == ["One moment."])
    assert fake.violations == []


async def test_add_context_waits_for_the_model_to_finish(gemini: Factory) -> None:
    fake, session, events = await gemini(Scenario(reply_ms=600, chunk_interval_s=0.01))
    await session.say("Hello there, welcome.")
    await events.first(AudioOut)
    await session.add_context("The caller is a gold member.")  # mid-turn: must not cut it
    done = await events.first(ResponseDone)
    assert done.status == "completed"
    conn = fake.connections[0]
    await fake.wait_until(lambda: len(conn.messages("clientContent")) == 2)
    note = conn.messages("clientContent")[1]
    assert note["turnComplete"] is False
    assert note["turns"][0]["parts"][0]["text"] == "The caller is a gold member."
    assert conn.interruptions == 0 and not events.of(SpeechStarted)
    assert fake.violations == []


async def test_send_text_is_a_caller_turn(gemini: Factory) -> None:
    fake, session, events = await gemini()
    await session.send_text("(The caller typed on the keypad: 42)")
    await events.first(ResponseDone)
    cc = fake.connections[0].messages("clientContent")[0]
    assert cc["turnComplete"] is True
    assert cc["turns"][0]["parts"][0]["text"] == "(The caller typed on the keypad: 42)"
    assert bot_finals(events) == [fake.scenario.default_reply]
    assert fake.violations == []


# ---------------------------------------------------------------- barge-in


async def test_barge_in_interrupts_and_tells_the_model_what_was_heard(gemini: Factory) -> None:
    reply = " ".join(f"word{i}" for i in range(30))
    scenario = Scenario(turns=[ScriptedTurn(reply=reply, reply_ms=3000)], chunk_interval_s=0.02)
    fake, session, events = await gemini(scenario)
    caller = Caller(session)
    await caller.utterance()
    started = await events.first(ResponseStarted)
    # Barge in once ~1 s of the reply has arrived.
    await events.until(lambda: sum(len(a.audio) for a in events.of(AudioOut)) >= 8000)
    await caller.send(speech(200))
    barge = await events.first(SpeechStarted)
    assert barge.interrupted
    done = await events.first(ResponseDone)
    assert done.status == "cancelled" and done.response_id == started.response_id
    assert fake.connections[0].interruptions == 1

    await session.interrupt(started.response_id, heard_ms=500)
    conn = fake.connections[0]
    await fake.wait_until(lambda: bool(conn.messages("clientContent")))
    note = conn.messages("clientContent")[0]
    assert note["turnComplete"] is False
    text = note["turns"][0]["parts"][0]["text"]
    assert text.startswith("[The caller interrupted; they heard only: 'word0 word1")
    assert "word29" not in text
    assert fake.violations == []


# ---------------------------------------------------------------- tools


async def test_blocking_tool_call_round_trip(gemini: Factory) -> None:
    turn = ScriptedTurn(
        caller="where is order one two three",
        tool="lookup_order",
        args={"order_id": "123"},
        reply="Your order is {result}",
    )
    fake, session, events = await gemini(Scenario(turns=[turn]), tools=(ORDER_TOOL,))
    await Caller(session).utterance()
    call = await events.first(ToolCall)
    assert call.name == "lookup_order" and call.arguments == {"order_id": "123"}
    await session.send_tool_result(call, {"output": "shipped"}, scheduling="INTERRUPT")
    await events.first(ResponseDone)
    assert bot_finals(events) == ['Your order is "shipped"']
    fr = fake.connections[0].tool_responses[0]
    assert fr == {"id": call.call_id, "name": "lookup_order", "response": {"output": "shipped"}}
    assert fake.connections[0].scheduling == [(call.call_id, "BLOCKING")]
    assert fake.violations == []


async def test_background_tool_is_non_blocking_and_scheduling_is_sent(gemini: Factory) -> None:
    turns = [
        ScriptedTurn(
            caller="is it in stock", tool="check_stock", args={"sku": "A1"}, reply="Stock {result}"
        ),
        ScriptedTurn(
            caller="and the blue one", tool="check_stock", args={"sku": "B2"}, reply="Blue {result}"
        ),
        ScriptedTurn(
            caller="and the red one", tool="check_stock", args={"sku": "R3"}, reply="Red {result}"
        ),
    ]
    scenario = Scenario(turns=turns, reply_ms=1000, chunk_interval_s=0.02)
    fake, session, events = await gemini(scenario, tools=(SLOW_TOOL,))
    caller = Caller(session)
    conn = fake.connections[0]

    # 1: WHEN_IDLE (the tool's default) while the model says its filler: the result is
    # spoken after the filler, which is not cut.
    await caller.utterance()
    call = await events.first(ToolCall)
    await events.first(AudioOut)  # the model keeps talking while the tool runs
    await session.send_tool_result(call, {"output": 5})
    await events.until(lambda: bot_finals(events) == [scenario.filler_reply, "Stock 5"])
    assert [d.status for d in events.of(ResponseDone)] == ["completed", "completed"]

    # 2: INTERRUPT cuts the filler and answers now.
    await caller.utterance()
    call2 = await events.first(ToolCall, lambda c: c.arguments == {"sku": "B2"})
    await events.until(lambda: len(events.of(ResponseStarted)) == 3)
    await session.send_tool_result(call2, {"output": 0}, scheduling="INTERRUPT")
    await events.until(lambda: bot_finals(events)[-1:] == ["Blue 0"])
    assert "cancelled" in [d.status for d in events.of(ResponseDone)]

    # 3: respond=False -> SILENT: added to context, no reply.
    await caller.utterance()
    call3 = await events.first(ToolCall, lambda c: c.arguments == {"sku": "R3"})
    await session.send_tool_result(call3, {"output": 9}, respond=False)
    await fake.wait_until(lambda: len(conn.tool_responses) == 3)
    assert [fr["scheduling"] for fr in conn.tool_responses] == ["WHEN_IDLE", "INTERRUPT", "SILENT"]
    assert [s for _, s in conn.scheduling] == ["WHEN_IDLE", "INTERRUPT", "SILENT"]
    assert fake.violations == []


async def test_background_api_sends_scheduling_only_for_non_blocking(gemini: Factory) -> None:
    turns = [
        ScriptedTurn(caller="stock please", tool="check_stock", args={"sku": "A"}, reply="In stock"),
        ScriptedTurn(
            caller="my order", tool="lookup_order", args={"order_id": "7"}, reply="Order {result}"
        ),
    ]
    fake, session, events = await gemini(Scenario(turns=turns), tools=(ORDER_TOOL, SLOW_TOOL))
    caller = Caller(session)
    conn = fake.connections[0]
    await caller.utterance()
    bg = await events.first(ToolCall)
    await session.acknowledge_background(bg)  # NON_BLOCKING: nothing goes on the wire
    await session.send_background_result(bg, {"output": 3}, "SILENT")
    await fake.wait_until(lambda: len(conn.tool_responses) == 1)
    assert conn.tool_responses[0]["scheduling"] == "SILENT"

    await caller.utterance()
    blocking = await events.first(ToolCall, lambda c: c.name == "lookup_order")
    await session.send_background_result(blocking, {"output": "late"}, "INTERRUPT")
    await events.until(lambda: bot_finals(events)[-1:] == ['Order "late"'])
    assert "scheduling" not in conn.tool_responses[1]  # blocking: scheduling is meaningless
    assert fake.violations == []


async def test_caller_interrupting_a_pending_tool_cancels_it(gemini: Factory) -> None:
    turn = ScriptedTurn(tool="lookup_order", args={"order_id": "9"})
    fake, session, events = await gemini(Scenario(turns=[turn]), tools=(ORDER_TOOL,))
    caller = Caller(session)
    await caller.utterance()
    call = await events.first(ToolCall)
    await caller.send(speech(200))  # "actually, never mind"
    cancelled = await events.first(ToolCallCancelled)
    assert cancelled.call_ids == (call.call_id,)
    await session.send_tool_result(call, {"output": "late"})  # must not reach the server
    await caller.send(silence(600))
    await events.until(lambda: len(events.of(ResponseDone)) >= 1)
    assert fake.connections[0].tool_responses == []
    assert fake.violations == []


# ---------------------------------------------------------------- goAway and drops


async def test_go_away_resumes_with_handle_and_loses_no_caller_audio(gemini: Factory) -> None:
    turns = [ScriptedTurn(caller="first", reply="Reply one"), ScriptedTurn(caller="second", reply="Reply two")]
    fake, session, events = await gemini(Scenario(turns=turns))
    caller = Caller(session)
    await caller.utterance()
    await events.first(ResponseDone)
    old = fake.connections[0]
    await fake.wait_until(lambda: len(old.handles) == 2)  # after setup, after the turn
    handle = old.handles[-1]

    fake.resume_gate.clear()  # hold the new connection's setupComplete
    await fake.go_away(time_left="10s")
    await events.first(SessionReconnecting)
    # The caller keeps talking through the swap.
    gap_bytes = await caller.send(speech(300) + silence(600))
    fake.resume_gate.set()
    resumed = await events.first(SessionResumed)
    assert resumed.reason == "goaway" and resumed.gap_ms > 0

    new = fake.connections[1]
    assert new.resume_handle == handle
    assert new.setup is not None and new.setup["sessionResumption"] == {"handle": handle}
    assert old.close_code == 1000  # closed by us, before resuming
    # Everything said during the gap went to the new connection, in full.
    await fake.wait_until(lambda: new.audio_bytes == gap_bytes)
    assert old.audio_bytes + new.audio_bytes == caller.pcm_bytes
    # The resumed connection keeps the conversation: this is the second scripted turn.
    await events.until(lambda: bot_finals(events) == ["Reply one", "Reply two"])
    assert not events.of(ProviderError)
    assert fake.violations == []


async def test_go_away_mid_reply_lets_the_reply_finish_first(gemini: Factory) -> None:
    scenario = Scenario(turns=[ScriptedTurn(reply_ms=1000)], chunk_interval_s=0.02)
    fake, session, events = await gemini(scenario)
    await Caller(session).utterance()
    await events.first(AudioOut)
    await fake.go_away(time_left="10s")
    resumed = await events.first(SessionResumed)
    done = await events.first(ResponseDone)
    assert done.status == "completed"
    assert events.index(done) < events.index(resumed)
    total = sum(len(a.audio) for a in events.of(AudioOut))
    assert abs(total - 1000 * 8) <= 8  # the whole reply arrived over the old connection
    assert fake.connections[1].resume_handle == fake.connections[0].handles[-1]
    assert fake.violations == []


async def test_scheduled_go_away(gemini: Factory) -> None:
    fake, _, events = await gemini(Scenario(go_away_after_s=0.05))
    await events.first(SessionResumed)
    assert len(fake.connections) == 2 and fake.connections[1].resume_handle
    assert fake.violations == []


async def test_gap_buffer_is_bounded(gemini: Factory) -> None:
    fake, session, events = await gemini()
    fake.resume_gate.clear()
    await fake.go_away()
    await events.first(SessionReconnecting)
    await Caller(session).send(silence(3000))  # longer than the 2 s buffer
    fake.resume_gate.set()
    await events.first(SessionResumed)
    new = fake.connections[1]
    await session.add_context("fence")  # same socket, so all audio has arrived before it
    await fake.wait_until(lambda: bool(new.messages("clientContent")))
    assert 2 * 32000 - 640 <= new.audio_bytes <= 2 * 32000  # the newest ~2 s
    assert fake.violations == []


async def test_hard_drop_resumes_with_handle(gemini: Factory) -> None:
    turns = [ScriptedTurn(caller="one", reply="Reply one"), ScriptedTurn(caller="two", reply="Reply two")]
    fake, session, events = await gemini(Scenario(turns=turns))
    caller = Caller(session)
    await caller.utterance()
    await events.first(ResponseDone)
    await fake.wait_until(lambda: len(fake.connections[0].handles) == 2)
    fake.drop()
    reconnecting = await events.first(SessionReconnecting)
    assert reconnecting.reason.startswith("connection lost")
    resumed = await events.first(SessionResumed)
    assert "context lost" not in resumed.reason
    assert fake.connections[1].resume_handle == fake.connections[0].handles[-1]
    await caller.utterance()
    await events.until(lambda: bot_finals(events) == ["Reply one", "Reply two"])
    assert fake.violations == []


async def test_scheduled_drop_resumes(gemini: Factory) -> None:
    fake, _, events = await gemini(Scenario(drop_after_s=0.05))
    await events.first(SessionResumed)
    assert fake.connections[1].resume_handle == fake.connections[0].handles[-1]


async def test_drop_without_handle_opens_a_fresh_session(gemini: Factory) -> None:
    fake, _, events = await gemini(Scenario(handle_updates=False))
    fake.drop()
    resumed = await events.first(SessionResumed)
    assert "context lost" in resumed.reason
    assert fake.connections[1].resume_handle is None
    assert fake.violations == []


async def test_failed_resume_is_fatal_and_last(gemini: Factory) -> None:
    fake, _, events = await gemini(Scenario(refuse_resume=True))
    fake.drop()
    await events.until(lambda: events.ended)
    last = events.items[-1]
    assert isinstance(last, ProviderError) and last.fatal
    assert last.code == "1011"


async def test_blocking_call_pending_at_drop_is_cancelled(gemini: Factory) -> None:
    turn = ScriptedTurn(tool="lookup_order", args={"order_id": "1"})
    fake, session, events = await gemini(Scenario(turns=[turn]), tools=(ORDER_TOOL,))
    await Caller(session).utterance()
    call = await events.first(ToolCall)
    fake.drop()
    # The resumption handle predates the call, so the resumed session never made it.
    cancelled = await events.first(ToolCallCancelled)
    assert cancelled.call_ids == (call.call_id,)
    await events.first(SessionResumed)
    await session.send_tool_result(call, {"output": "x"})
    await session.say("Sorry, where were we?")
    await events.until(lambda: bot_finals(events)[-1:] == ["Sorry, where were we?"])
    assert all(c.tool_responses == [] for c in fake.connections)
    assert fake.violations == []


async def test_fake_rejects_resume_while_old_socket_open() -> None:
    async with FakeGeminiLive() as fake:
        headers = {"x-goog-api-key": KEY}
        async with connect(fake.url, additional_headers=headers) as first:
            await first.send(json.dumps({"setup": {"model": "models/x", "sessionResumption": {}}}))
            await fake.wait_until(lambda: bool(fake.connections[0].handles))
            handle = fake.connections[0].handles[0]
            async with connect(fake.url, additional_headers=headers) as second:
                setup: dict[str, Any] = {
                    "model": "models/x",
                    "sessionResumption": {"handle": handle},
                }
                await second.send(json.dumps({"setup": setup}))
                with pytest.raises(ConnectionClosed) as info:
                    await second.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1011


async def test_close_is_idempotent_and_ends_events(gemini: Factory) -> None:
    fake, session, events = await gemini()
    await session.close()
    await session.close()
    await events.until(lambda: events.ended)
    await session.send_audio(silence(20))  # after close: a no-op, not an error
    await fake.wait_until(lambda: fake.connections[0].close_code == 1000)
