"""The false-interruption verdict, as a pure object: no loop, no socket, no clock."""

from __future__ import annotations

from agent.interruption import InterruptionJudge, ReplyTape, Verdict, has_words


def ticks(judge: InterruptionJudge, start: float, end: float, **kw: object) -> Verdict:
    """Feed 20 ms caller frames from `start` to `end` (ms); the first verdict, if any."""
    t = start
    while t < end:
        t += 20
        verdict = judge.tick(t, **kw)  # type: ignore[arg-type]
        if verdict is not Verdict.PENDING:
            return verdict
    return Verdict.PENDING


def held(mode: str = "hold", **kw: int) -> InterruptionJudge:
    judge = InterruptionJudge(mode, stop_window_ms=500, **kw)  # type: ignore[arg-type]
    judge.pause(1000.0, caller_item="item_cough")
    return judge


# ---------------------------------------------------------------- "hold" (OpenAI)


def test_a_short_sound_with_an_empty_transcript_is_noise() -> None:
    judge = held()
    assert ticks(judge, 1000, 1650) is Verdict.PENDING  # the VAD's silence window runs
    assert judge.speech_stopped(160, 1660) is Verdict.PENDING  # short: wait for words
    assert judge.words("", "item_cough") is Verdict.NOISE
    assert not judge.pending and judge.why == "short, no words" and judge.speech_ms == 160


def test_a_short_sound_whose_transcript_never_comes_is_noise_after_the_wait() -> None:
    judge = held(words_wait_ms=1500)
    judge.speech_stopped(120, 1660)
    assert ticks(judge, 1660, 3140) is Verdict.PENDING
    assert ticks(judge, 3140, 3200) is Verdict.NOISE


def test_a_short_word_is_real() -> None:
    judge = held()
    judge.speech_stopped(250, 1700)
    assert judge.words("No.", "item_cough") is Verdict.REAL
    assert judge.why == "words"


def test_a_late_transcript_of_an_earlier_turn_is_not_evidence() -> None:
    judge = held()
    judge.speech_stopped(150, 1660)
    assert judge.words("Where is my order?", "item_earlier") is Verdict.PENDING
    assert judge.pending


def test_a_long_sound_is_real_when_it_stops() -> None:
    judge = held()
    assert judge.speech_stopped(300, 1800) is Verdict.REAL
    assert judge.why == "long sound"


def test_speech_that_goes_on_is_real_before_it_stops() -> None:
    """No speech-stopped by min speech + silence window (+ margin): still speaking."""
    judge = held()
    assert ticks(judge, 1000, 1980) is Verdict.PENDING
    assert ticks(judge, 1980, 2000) is Verdict.REAL
    assert judge.why == "still speaking"


def test_words_while_speaking_are_real_at_once() -> None:
    judge = held()
    assert judge.words("Actually", "item_cough", final=False) is Verdict.REAL


def test_an_unmeasured_stop_counts_as_real() -> None:
    # A provider that cannot say how long the sound lasted: never resume on a guess.
    assert held().speech_stopped(None, 1500) is Verdict.REAL


def test_a_new_reply_does_not_decide_while_holding() -> None:
    # OpenAI may answer the noise itself; that answer is held until the verdict.
    judge = held()
    assert judge.model_took_turn() is Verdict.PENDING and judge.pending


def test_one_verdict_per_pause() -> None:
    judge = held()
    assert judge.speech_stopped(400, 1700) is Verdict.REAL
    assert judge.words("hello", "item_cough") is Verdict.PENDING
    assert judge.speech_stopped(10, 1800) is Verdict.PENDING
    assert judge.tick(9000) is Verdict.PENDING


# ---------------------------------------------------------------- "replay" (Gemini)


def test_replay_noise_once_the_model_stays_quiet_and_the_caller_too() -> None:
    judge = held("replay", replay_wait_ms=1500, quiet_ms=400)
    loud = (980.0, 1140.0)  # a 160 ms cough, begun just before the provider heard it
    assert ticks(judge, 1000, 2480, loud=loud) is Verdict.PENDING
    assert ticks(judge, 2480, 2500, loud=loud) is Verdict.NOISE


def test_replay_a_long_sound_is_real() -> None:
    judge = held("replay")
    assert judge.tick(1320, loud=(1000.0, 1300.0)) is Verdict.REAL


def test_replay_the_model_taking_the_turn_is_real() -> None:
    judge = held("replay")
    assert judge.model_took_turn() is Verdict.REAL
    assert judge.why == "model took the turn"


def test_replay_waits_while_the_caller_is_still_making_noise() -> None:
    judge = held("replay", replay_wait_ms=1000, quiet_ms=400)
    # loud bursts, each short, the last one ending at 2100 ms
    assert ticks(judge, 1000, 2480, loud=(2000.0, 2100.0)) is Verdict.PENDING
    assert ticks(judge, 2480, 2520, loud=(2000.0, 2100.0)) is Verdict.NOISE


# ---------------------------------------------------------------- the tape


def test_the_tape_holds_the_unheard_rest() -> None:
    tape = ReplyTape()
    tape.record("item_1", b"\x01" * 800, "resp_1")  # 100 ms
    tape.record("item_1", b"\x02" * 800, "resp_1")
    paused = tape.pause("item_1", 60)
    assert paused is not None
    assert bytes(paused.rest) == b"\x01" * 320 + b"\x02" * 800
    assert paused.more and paused.heard_ms == 60 and paused.response_id == "resp_1"


def test_the_tape_has_nothing_to_hold_for_a_reply_heard_whole() -> None:
    tape = ReplyTape()
    tape.record("item_1", b"\x01" * 800)
    tape.finish("item_1")
    assert tape.pause("item_1", 100) is None
    assert tape.pause("item_other", 0) is None


def test_the_tape_keeps_only_the_latest_reply() -> None:
    tape = ReplyTape()
    tape.record("item_1", b"\x01" * 80)
    tape.record("item_2", b"\x02" * 80)
    paused = tape.pause("item_2", 0)
    assert paused is not None and bytes(paused.rest) == b"\x02" * 80


def test_words_are_what_says_something() -> None:
    assert not has_words("") and not has_words(" ... ") and not has_words("[?]")
    assert not has_words("Hmm.") and not has_words("Mm-hmm.") and not has_words("(coughs)")
    assert not has_words("[BLANK_AUDIO]") and not has_words("Uh, um.") and not has_words("M")
    assert not has_words("Mmmm.") and not has_words("Hmmmm")
    assert has_words("no") and has_words("4") and has_words("Hmm, no.")
