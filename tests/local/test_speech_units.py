"""VAD state machine, STT clean-up, TTS chunking, codecs, protocol validation."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.local import codec
from agent.local.protocol import (
    ProtocolError,
    apply_session_update,
    default_session,
    loose_script,
    scripted_text,
    validate_item,
    validate_response_params,
)
from agent.local.stt import drop_repeats
from agent.local.tts import speech_chunks, spoken_form
from agent.local.vad import TurnDetector, VadEvent

from .conftest import speech


# ---------------------------------------------------------------- VAD
def loud_scorer(window: np.ndarray) -> float:
    """Energy stands in for silero in the state-machine tests."""
    return 1.0 if float(np.sqrt(np.mean(window**2))) > 0.05 else 0.0


def pcm(ms: int, loud: bool) -> bytes:
    n = ms * 8
    if not loud:
        return b"\x00\x00" * n
    t = np.arange(n) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()


def test_vad_turn_events() -> None:
    det = TurnDetector(loud_scorer, silence_ms=500, min_speech_ms=200)
    events = det.process(pcm(512, False) + pcm(1024, True) + pcm(800, False))
    kinds = [e.kind for e in events]
    assert kinds == ["start", "pause", "stop"]
    start, pause, stop = events
    assert start.ms == 512 and start.at >= 512 + 200
    assert stop.ms == 512 + 1024  # last voiced audio
    assert pause.at < stop.at == stop.ms + 512
    assert not det.speaking


def test_vad_ignores_short_clicks_and_resumes_after_pauses() -> None:
    det = TurnDetector(loud_scorer, silence_ms=500, min_speech_ms=200)
    assert det.process(pcm(96, True) + pcm(640, False)) == []  # 96 ms click: not speech
    events = det.process(pcm(640, True) + pcm(320, False) + pcm(640, True) + pcm(640, False))
    assert [e.kind for e in events] == ["start", "pause", "resume", "pause", "stop"]


def test_vad_in_small_appends_equals_one_big() -> None:
    audio = pcm(300, False) + pcm(900, True) + pcm(700, False)
    whole = TurnDetector(loud_scorer).process(audio)
    det = TurnDetector(loud_scorer)
    pieces: list[VadEvent] = []
    for i in range(0, len(audio), 320):  # 20 ms frames
        pieces += det.process(audio[i : i + 320])
    assert pieces == whole


def test_vad_configure_and_reset() -> None:
    det = TurnDetector(loud_scorer)
    det.configure(threshold=0.9, silence_ms=200)
    assert det.silence_ms == 200 and det.pause_ms <= 200
    assert [e.kind for e in det.process(pcm(416, True))] == ["start"]
    det.reset_turn()
    assert not det.speaking
    det.skip(1000)
    assert det.position_ms == 1416


@pytest.mark.local
def test_silero_finds_speech_in_phone_audio() -> None:
    from agent.local.vad import silero_scorer

    ulaw = speech("I'd like to book an appointment tomorrow.")
    audio = codec.InputDecoder("audio/pcmu").decode(b"\xff" * 4000 + ulaw + b"\xff" * 8000)
    events = TurnDetector(silero_scorer()).process(audio)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert 400 < events[0].ms < 900  # speech begins after 500 ms of silence (+ piper's lead-in)
    speech_ms = len(ulaw) // 8
    assert abs(events[-1].ms - (500 + speech_ms)) < 400


# ---------------------------------------------------------------- STT
def test_drop_repeats() -> None:
    assert drop_repeats("Yes. Yes. Yes.") == "Yes."
    assert drop_repeats("Can I speak to a person? Can I speak to") == "Can I speak to a person?"
    assert drop_repeats("No. No, not that one.") == "No. No, not that one."
    assert drop_repeats("") == ""


@pytest.mark.local
def test_transcribe_phone_quality_speech() -> None:
    from agent.local.models import load_models

    stt = load_models().stt
    pcm8k = codec.InputDecoder("audio/pcmu").decode(speech("My order number is four five six seven."))
    result = stt.transcribe(pcm8k)
    assert "4567" in result.text.replace(" ", "").replace(",", "")
    assert 2 < result.seconds < 5
    assert stt.transcribe(b"\x00\x00" * 8000).text == ""
    assert stt.transcribe(b"").text == ""


# ---------------------------------------------------------------- TTS
def test_speech_chunks_split_first_sentence_at_a_clause() -> None:
    assert speech_chunks("You're booked for Thursday, November 27 at 10 AM. See you then!") == [
        "You're booked for Thursday,", "November 27 at 10 AM.", "See you then!",
    ]  # fmt: skip
    assert speech_chunks("Sorry, what day?") == ["Sorry, what day?"]
    long = ("Thank you for calling. Our office is open from nine to five, Monday to Friday, "
            "and we can book, move or cancel appointments, and check on orders for you today.")  # fmt: skip
    chunks = speech_chunks(long)
    assert " ".join(chunks) == long
    assert all(len(c.split()) <= 14 for c in chunks) and len(chunks) == 4
    assert speech_chunks("  ") == []


def test_spoken_form_reads_ids_digit_by_digit() -> None:
    assert spoken_form("Order 4567 has shipped.") == "Order 4 5 6 7 has shipped."
    assert spoken_form("Your confirmation number is BK-1042.") == "Your confirmation number is B K 1 0 4 2."
    assert spoken_form("at 10:30 AM on November 27") == "at 10:30 AM on November 27"


@pytest.mark.local
def test_render_formats_and_cache() -> None:
    from agent.local.models import load_models

    tts = load_models().tts
    ulaw = tts.render("One moment.", "audio/pcmu")
    pcm24 = tts.render("One moment.", "audio/pcm")
    assert 0.4 < len(ulaw) / 8000 < 2.0
    assert 0.7 < (len(pcm24) / 48) / (len(ulaw) / 8) < 1.3  # ~same duration (piper varies a bit)
    assert tts.render("One moment.", "audio/pcmu") is ulaw  # cached


# ---------------------------------------------------------------- codec
def test_codec_roundtrip_and_rates() -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32) * 0.5
    ulaw = codec.encode_output(tone, 22050, "audio/pcmu")
    assert abs(len(ulaw) - 8000) < 10
    pcm24 = codec.encode_output(tone, 22050, "audio/pcm")
    assert abs(len(pcm24) - 48000) < 20
    assert abs(len(codec.encode_output(tone, 22050, "audio/pcma")) - 8000) < 10
    decoded = codec.InputDecoder("audio/pcmu").decode(ulaw)
    assert len(decoded) == 2 * len(ulaw)
    dec24 = codec.InputDecoder("audio/pcm")
    out = b"".join(dec24.decode(pcm24[i : i + 959]) for i in range(0, len(pcm24), 959))  # odd splits
    assert abs(len(out) / 2 - 8000) < 200
    assert codec.format_dict("audio/pcm") == {"type": "audio/pcm", "rate": 24000}
    assert codec.bytes_per_ms("audio/pcm") == 48 and codec.bytes_per_ms("audio/pcmu") == 8


# ---------------------------------------------------------------- protocol
def test_session_update_rules() -> None:
    base = default_session("gpt-realtime")
    with pytest.raises(ProtocolError) as exc:
        apply_session_update(base, {"instructions": "x"})
    assert exc.value.code == "missing_required_parameter"
    assert exc.value.message == "Missing required parameter: 'session.type'."
    for bad, code, param in [
        ({"type": "realtime", "voice": "alloy"}, "unknown_parameter", "session.voice"),
        ({"type": "realtime", "input_audio_format": "g711_ulaw"}, "unknown_parameter", "session.input_audio_format"),
        ({"type": "realtime", "audio": {"input": {"format": "pcm16"}}}, "invalid_type", "session.audio.input.format"),
        ({"type": "realtime", "audio": {"output": {"format": {"type": "audio/mp3"}}}}, "invalid_value", "session.audio.output.format.type"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "bogus": 1}}}}, "unknown_parameter", "session.audio.input.turn_detection.bogus"),
        ({"type": "realtime", "output_modalities": ["audio", "text"]}, "invalid_value", "session.output_modalities"),
        ({"type": "transcription"}, "invalid_value", "session.type"),
    ]:  # fmt: skip
        with pytest.raises(ProtocolError) as exc:
            apply_session_update(base, bad)
        assert (exc.value.code, exc.value.param) == (code, param)
    merged = apply_session_update(base, {"type": "realtime", "audio": {"output": {"voice": "cedar"}}})
    assert merged["audio"]["output"]["voice"] == "cedar"
    assert merged["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}  # untouched
    off = apply_session_update(base, {"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    assert off["audio"]["input"]["turn_detection"] is None
    assert base["audio"]["input"]["turn_detection"] is not None  # no aliasing


def test_items_and_response_params() -> None:
    item = validate_item({"type": "function_call_output", "call_id": "call_1", "output": "{}"})
    assert item["id"].startswith("item_") and item["status"] == "completed"
    with pytest.raises(ProtocolError, match="item.output"):
        validate_item({"type": "function_call_output", "call_id": "c", "output": {"a": 1}})
    with pytest.raises(ProtocolError) as exc:
        validate_item({"type": "message", "role": "user", "content": [{"type": "output_text", "text": "x"}]})
    assert exc.value.param == "item.content[0].type"
    with pytest.raises(ProtocolError, match="Unknown parameter: 'response.voice'"):
        validate_response_params({"voice": "alloy"})
    with pytest.raises(ProtocolError):
        validate_response_params({"metadata": {"k": 1}})
    assert validate_response_params(None) == {}


def test_scripted_speech_convention() -> None:
    assert scripted_text('Greet the caller. Say exactly: "Hi, this is Acme. How can I help?" Nothing else.') == (
        "Hi, this is Acme. How can I help?"
    )
    assert scripted_text("Say exactly: \u201cOne moment.\u201d") == "One moment."
    assert scripted_text("Be friendly.") is None
    assert loose_script("Say briefly: one moment while I check that.") == "One moment while I check that."


# ---------------------------------------------------------------- workers
async def test_priority_pool_runs_urgent_work_first() -> None:
    import threading

    from agent.local.workers import LATER, SOON, URGENT, PriorityPool

    pool = PriorityPool(1, "test-pool")
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(URGENT, gate.wait)  # occupies the only worker
    jobs = [pool.submit(prio, order.append, name) for prio, name in ((LATER, "later"), (SOON, "soon"), (URGENT, "urgent"))]
    cancelled = pool.submit(URGENT, order.append, "cancelled")
    assert cancelled.cancel()  # still queued: it never runs
    gate.set()
    await asyncio.gather(*(asyncio.wrap_future(f) for f in (blocker, *jobs)))
    assert order == ["urgent", "soon", "later"]


async def test_priority_pool_passes_exceptions() -> None:
    from agent.local.workers import URGENT, PriorityPool

    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await PriorityPool(1, "test-pool").run(URGENT, boom)


async def test_semantic_vad_eagerness_sets_the_engines_end_of_turn_wait() -> None:
    """The engine has no "sounds finished" model: eagerness picks how long quiet ends a
    turn (high 300 ms, auto 500, low 1000). 400 ms of quiet ends a turn only at high."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from agent.local.listener import Listener
    from telephony.audio import pcm16_to_ulaw

    with ThreadPoolExecutor(1) as pool:
        models = SimpleNamespace(workers=SimpleNamespace(vad=pool), new_vad=lambda: loud_scorer)
        call = pcm16_to_ulaw(pcm(1024, True) + pcm(400, False))
        kinds = {}
        for eagerness in ("high", "auto", "low"):
            listener = Listener(models, {"format": {"type": "audio/pcmu"}, "turn_detection": None})  # type: ignore[arg-type]
            await listener.configure({
                "format": {"type": "audio/pcmu"},
                "turn_detection": {"type": "semantic_vad", "eagerness": eagerness},
            })  # fmt: skip
            kinds[eagerness] = [e.kind for e in await listener.append(call)]
    assert "stop" in kinds["high"]
    assert "stop" not in kinds["auto"] and "stop" not in kinds["low"]
