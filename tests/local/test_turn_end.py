"""When a caller turn may end early, and how a barge-in over a reply is resolved:
the completeness rule, the detector's early end and fast start, resuming after noise."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import pytest

from agent.local.barge_in import BargeIns, Interrupted, is_noise
from agent.local.completeness import has_words
from agent.local.dialog import Reply, ToolCall
from agent.local.policy import DialogPolicy
from agent.local.responses import AudioRecord, ResponseRun
from agent.local.tts import speech_chunks
from agent.local.vad import TurnDetector

from .test_policy import ALL_TOOLS
from .test_speech_units import loud_scorer, pcm

TODAY = date(2026, 11, 24)  # Tuesday


def waiting_on(*said: str, results: tuple[Any, ...] = ()) -> DialogPolicy:
    """A policy after the caller said `said` (one turn each) and tools answered `results`."""
    p = DialogPolicy(today=TODAY, tools=ALL_TOOLS)
    answers = iter(results)
    for text in said:
        p.hear(text)
        reply = p.respond()
        while reply.calls and reply.calls[-1].name != "end_call":
            data = next(answers, None)
            if data is None:
                break
            p.tool_result(reply.calls[-1].call_id, json.dumps(data))
            reply = p.respond()
    return p


# ---------------------------------------------------------------- the completeness rule
@pytest.mark.parametrize("text", ["Friday.", "Next Tuesday, please.", "On the 3rd."])
def test_a_day_answers_what_day(text: str) -> None:
    p = waiting_on("I'd like to book an appointment.")
    assert p.state.awaiting == "day"
    assert p.sounds_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "Friday at",  # the time is coming
        "On Friday and",
        "Um",
        "I think it's",
        "",
        "Friday...",
        "Can you hold on, I need to check my calendar, it's",
    ],
)
def test_words_that_go_on_wait_the_full_silence(text: str) -> None:
    assert not waiting_on("I'd like to book an appointment.").sounds_complete(text)


def test_a_new_request_waits_for_its_details() -> None:
    p = waiting_on()
    assert not p.sounds_complete("I'd like to book an appointment.")
    assert not p.sounds_complete("I need to cancel my appointment.")


@pytest.mark.parametrize("text", [
    "I'd like to book an appointment.", "Can I get an appointment on Friday?",
    "I need to cancel my appointment.", "Where is my order?", "Could I move my booking to Monday, please?",
])  # fmt: skip
def test_a_request_in_a_finished_sentence_is_finished(text: str) -> None:
    p = waiting_on()
    assert not p.sounds_complete(text)  # its details may follow: not the shortest quiet
    assert p.sounds_finished(text)


@pytest.mark.parametrize("text", [
    "I'd like to book an appointment",  # no full stop: whisper leaves it off words that trail
    "I'd like to book an appointment for the.", "I'd like to book an appointment...",
    "Booking.",  # too short to tell
    "My order number is 4 5 6 7.",  # digits come in groups
    "Goodbye, thanks.",  # settled by sounds_complete, not a request
])  # fmt: skip
def test_what_is_not_a_finished_sentence(text: str) -> None:
    assert not waiting_on().sounds_finished(text)


def test_words_we_did_not_understand_end_like_any_sentence() -> None:
    """When the turn ends is not what we understood: a misheard request gets its "sorry?"
    as soon as a clear one would get its answer."""
    assert waiting_on().sounds_finished("He left me in the morning.")


def test_an_answer_is_not_judged_as_a_request() -> None:
    p = waiting_on("I'd like to book an appointment.")
    assert p.state.awaiting == "day"
    assert not p.sounds_finished("Friday, please.")
    assert p.sounds_finished("Actually, where is my order?")  # a new task


def test_my_order_number_is_does_not_end_early() -> None:
    p = waiting_on("Where is my order?")
    assert p.state.awaiting == "order_number"
    for text in ("My order number is", "My order number is 45", "4 5 6 7.", "It's 1042."):
        assert not p.sounds_complete(text), text


def test_a_bare_hour_may_go_on_but_a_clock_time_is_whole() -> None:
    p = waiting_on("I'd like to book an appointment.", "Friday.", results=({"day": "2026-11-27",
                   "free_slots": ["09:00", "10:30", "14:00"]},))  # fmt: skip
    assert p.state.awaiting == "time"
    assert not p.sounds_complete("Ten.")  # "... thirty"?
    assert p.sounds_complete("Ten thirty.")
    assert p.sounds_complete("2 pm, please.")
    assert p.sounds_complete("The first one.")


def test_a_name_needs_first_and_last() -> None:
    p = waiting_on("Book me in for Friday at 10 am.", results=({"day": "2026-11-27", "free_slots": ["10:00"]},))
    assert p.state.awaiting == "name"
    assert p.sounds_complete("My name is Ana Lopez.")
    assert not p.sounds_complete("My name is Ana")


def test_yes_settles_a_read_back_but_a_lone_no_may_go_on() -> None:
    p = waiting_on("Cancel my appointment on Friday.",
                   results=({"status": "needs_confirmation", "booking_id": "B1",
                             "say": "Cancel your appointment on Friday at 10 AM?"},))  # fmt: skip
    assert p.state.awaiting == "confirm"
    assert p.sounds_complete("Yes, please.")
    assert not p.sounds_complete("No")  # "... the Monday one"
    assert not p.sounds_complete("Yes, but")


@pytest.mark.parametrize("text", ["Can I speak to a person?", "Okay, thank you, goodbye."])
def test_requests_that_settle_the_turn(text: str) -> None:
    assert waiting_on().sounds_complete(text)


def test_judging_does_not_change_the_dialog() -> None:
    p = waiting_on("I'd like to book an appointment.")
    before = (p.state.awaiting, p.state.intent, list(p.state.history))
    p.sounds_complete("Friday.")
    assert (p.state.awaiting, p.state.intent, list(p.state.history)) == before


# ---------------------------------------------------------------- the detector
def test_early_end_after_a_short_quiet_when_asked_for_that_pause() -> None:
    det = TurnDetector(loud_scorer, silence_ms=500, min_speech_ms=200)
    events = det.process(pcm(800, True) + pcm(192, False))
    assert [e.kind for e in events] == ["start", "pause"]
    pause = events[-1]
    det.end_early(pause.ms, 256)
    stop = det.process(pcm(96, False))
    assert [e.kind for e in stop] == ["stop"] and stop[0].ms == pause.ms
    assert stop[0].at - stop[0].ms <= 256 + 32


def test_early_end_lapses_when_the_caller_goes_on() -> None:
    det = TurnDetector(loud_scorer, silence_ms=500, min_speech_ms=200)
    pause = det.process(pcm(800, True) + pcm(192, False))[-1]
    det.end_early(pause.ms, 256)  # arrives late: the caller has spoken again meanwhile
    events = det.process(pcm(320, True) + pcm(320, False))
    assert [e.kind for e in events] == ["resume", "pause"]  # not stopped at 256 ms
    assert [e.kind for e in det.process(pcm(256, False))] == ["stop"]  # the full 500


def test_quiet_is_timed_from_the_voice_not_from_the_vad_decay() -> None:
    """silero's probability stays up for a while after the voice stops; the turn's quiet
    is timed from the last loud window, once silero agrees there is quiet."""
    lagging = iter([0.0] * 16 + [1.0] * 25 + [0.9] * 6 + [0.0] * 100)  # 6 windows of decay

    def scorer(window: Any) -> float:
        return next(lagging)

    det = TurnDetector(scorer, silence_ms=500, min_speech_ms=200)
    events = det.process(pcm(512, False) + pcm(800, True) + pcm(1200, False))
    stop = events[-1]
    assert stop.kind == "stop" and stop.ms == 512 + 800  # the voice's end, not the decay's
    assert stop.at - stop.ms == 512  # the flow's silence, counted from there


def test_energy_alone_does_not_end_a_turn_silero_still_hears() -> None:
    """A soft stretch energy counts as quiet but silero hears as voice: no split."""
    voice = iter([0.0] * 16 + [1.0] * 200)

    def scorer(window: Any) -> float:
        return next(voice, 1.0)

    det = TurnDetector(scorer, silence_ms=500, min_speech_ms=200)
    events = det.process(pcm(512, False) + pcm(800, True) + pcm(1200, False))
    assert [e.kind for e in events] == ["start"]  # no pause to transcribe at, no end


def test_a_pause_silero_still_hears_voice_in_is_taken_again() -> None:
    """Voice right after a pause that silero hears and energy does not (without a dip):
    the pause is taken back and taken again once silero is quiet, so its transcript has
    all the words; the turn's end still counts from the loud voice."""
    probs = iter([0.0] * 16 + [1.0] * 25 + [0.0] * 5 + [0.9] * 2 + [0.0] * 100)

    def scorer(window: Any) -> float:
        return next(probs)

    det = TurnDetector(scorer, silence_ms=500, min_speech_ms=200)
    events = det.process(pcm(512, False) + pcm(800, True) + pcm(1200, False))
    kinds = [e.kind for e in events]
    assert kinds == ["start", "pause", "resume", "pause", "stop"], kinds
    retaken = events[3]
    assert retaken.at >= 512 + 800 + 7 * 32  # after the soft voice


def test_a_soft_word_after_a_pause_resumes_the_turn() -> None:
    """On a noisy line a quiet last word ("... four, two") is under the energy threshold;
    silero hearing it again after the pause means the caller went on."""
    probs = iter([0.0] * 16 + [1.0] * 25 + [0.0] * 8 + [0.9] * 5 + [0.0] * 100)

    def scorer(window: Any) -> float:
        return next(probs)

    det = TurnDetector(scorer, silence_ms=500, min_speech_ms=200)
    events = det.process(pcm(512, False) + pcm(800, True) + pcm(2000, False))
    assert [e.kind for e in events] == ["start", "pause", "resume", "pause", "stop"]
    assert events[-1].ms == 512 + 800 + (8 + 5) * 32  # the soft word's end


def test_fast_start_over_a_reply() -> None:
    det = TurnDetector(loud_scorer, min_speech_ms=200)
    det.fast_start = True
    events = det.process(pcm(96, True))
    assert [e.kind for e in events] == ["start"] and events[0].at <= 2 * 32
    calm = TurnDetector(loud_scorer, min_speech_ms=200)
    assert calm.process(pcm(96, True)) == []


# ---------------------------------------------------------------- barge-in resolution
class _Hooks:
    def item_added(self, run: ResponseRun, item: dict[str, Any], record: AudioRecord | None) -> str | None:
        return None

    def finishing(self, run: ResponseRun) -> None:
        pass

    def audio_sent(self, run: ResponseRun, ms: int) -> None:
        pass


def played_run(text: str, calls: tuple[ToolCall, ...] = (), sent_chunks: int | None = None) -> ResponseRun:
    """A run that planned `text` and sent the audio of its first `sent_chunks` pieces
    (1 s each)."""
    run = ResponseRun(emit=_emit, render=_render, hooks=_Hooks(), plan=_plan, conversation_id="c",
                      fmt="audio/pcmu", voice=None, modalities=["audio"], metadata=None)  # fmt: skip
    run.reply = Reply(text, calls)
    run.message_id = "item_bot"
    run.record = AudioRecord("audio/pcmu")
    chunks = speech_chunks(text)
    for i, chunk in enumerate(chunks[: len(chunks) if sent_chunks is None else sent_chunks]):
        run.record.segments.append((chunk, i * 1000, (i + 1) * 1000))
        run.record.sent = (i + 1) * 8000
    return run


async def _emit(event: dict[str, Any]) -> None:
    pass


async def _render(text: str, fmt: str, priority: int) -> bytes:
    return b""


async def _plan() -> Reply:
    return Reply()


TEXT = "Your appointment is booked. It's on Friday at 10 AM. Your confirmation number is 4 5 1 2."


def test_resume_from_the_piece_the_caller_was_hearing() -> None:
    chunks = speech_chunks(TEXT)
    assert len(chunks) == 3
    cut = Interrupted(played_run(TEXT), heard="Your appointment is booked. It's on", end_ms=1400)
    assert cut.remainder() == Reply(" ".join(chunks[1:]))


def test_resume_says_what_was_never_sent_and_the_calls_not_made() -> None:
    call = ToolCall("call_1", "end_call", {"reason": "caller said goodbye"})
    cut = Interrupted(played_run(TEXT, (call,), sent_chunks=1))  # no truncate: all sent was heard
    assert cut.remainder() == Reply(" ".join(speech_chunks(TEXT)[1:]), (call,))


def test_nothing_to_resume_when_it_was_all_heard() -> None:
    assert Interrupted(played_run(TEXT)).remainder() is None
    assert Interrupted(played_run(TEXT), heard=TEXT, end_ms=3000).remainder() is None


@pytest.mark.parametrize(
    ("voiced_ms", "text", "noise"),
    [(128, "", True), (250, "Mm.", True), (200, "(coughs)", True), (250, "No.", False),
     (640, "", False), (160, "Stop.", False), (300, "M.", True), (256, "them", True),
     (256, "Wait.", False), (256, "Yeah.", False), (256, "Friday.", False)],
)  # fmt: skip
def test_noise_is_short_and_wordless(voiced_ms: int, text: str, noise: bool) -> None:
    asked_day = waiting_on("I'd like to book an appointment.")  # "Friday." answers it
    assert is_noise(voiced_ms, text, asked_day.says_something) is noise


def test_has_words() -> None:
    assert not has_words("Hmm.") and not has_words("") and has_words("Wait")


async def test_playback_estimate_and_deferred_truncate() -> None:
    now = [100.0]
    barge = BargeIns(lambda: now[0])
    assert not barge.playing()
    run = played_run(TEXT)
    barge.audio_sent(run, 100)
    barge.audio_sent(run, 3000)  # sent faster than real time: plays until first + 3 s
    now[0] = 102.9
    assert barge.playing()
    pending = barge.interrupt()
    assert pending is not None and pending.run is run
    assert not barge.defer_truncate("other_item", "x", 10)
    assert barge.defer_truncate("item_bot", "Your appointment", 700)
    assert barge.take() is pending and pending.end_ms == 700
    assert not barge.defer_truncate("item_bot", "Your appointment", 700)  # decided: apply it
    now[0] = 103.5
    assert not barge.playing()
    await asyncio.sleep(0)


async def test_a_closed_session_lets_go_of_its_vad_model_at_once() -> None:
    """The session may wait in a reference cycle for the garbage collector; its silero
    model (~9 MB native) must not: an engine serving call after call grew 7 MB a call."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from agent.local.listener import Listener

    freed: list[bool] = []

    def scorer(window: Any) -> float:
        return 0.0

    with ThreadPoolExecutor(1) as pool:
        models = SimpleNamespace(workers=SimpleNamespace(vad=pool), new_vad=lambda: scorer)
        listener = Listener(models, {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}})  # type: ignore[arg-type]
        await listener.append(b"\xff" * 160)
        detector = await listener._detector
        listener.close()
        try:
            detector.process(pcm(64, True))
        except RuntimeError:
            freed.append(True)
    assert freed == [True]
