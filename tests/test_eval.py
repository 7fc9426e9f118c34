"""`phone-agent eval`: the sets as shipped, scoring, and a small run of each level."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import warnings
from pathlib import Path

import pytest

from agent.devkit import BUNDLED_CALLS
from agent.devkit.eval.calls import run_calls, seed_bookings
from agent.devkit.eval.report import summarise, write_json
from agent.devkit.eval.scoring import Heard, hear, score
from agent.devkit.eval.sets import (
    EvalSet,
    EvalSetError,
    Expected,
    Utterance,
    check_rendered,
    describe,
    load_set,
    render_plan,
)
from agent.devkit.eval.utterances import run_utterances
from agent.devkit.scripts import load_scripts
from tests.helpers.speed import SPEECH_CALL_SPEED

HELDOUT = load_set("heldout")
TUNING = load_set("tuning")


def _voices_of(scripts_dir: Path) -> set[str]:
    scripts = load_scripts(scripts_dir)
    return {s.voice_of(step) for s in scripts for step in s.steps if hasattr(step, "text")}


# ---------------------------------------------------------------- the sets as shipped
def test_heldout_is_big_enough_and_covers_both_flows() -> None:
    calls = load_scripts(HELDOUT.calls_dir)
    assert len(HELDOUT.utterances) >= 60
    assert len(calls) >= 15
    assert {u.flow for u in HELDOUT.utterances} == {"appointment-desk", "order-status"}
    assert {c.flow for c in calls} == {"appointment-desk", "order-status"}


@pytest.mark.parametrize("eval_set", [HELDOUT, TUNING], ids=["heldout", "tuning"])
def test_voices_and_noise(eval_set: EvalSet) -> None:
    voices = {u.voice for u in eval_set.utterances} | _voices_of(eval_set.calls_dir)
    assert len(voices) >= 4
    assert not voices & _voices_of(BUNDLED_CALLS), "the bundled fixtures' voices are not held out"
    noisy = [u.noise_db for u in eval_set.utterances if u.noise_db is not None]
    assert len(noisy) * 3 >= len(eval_set.utterances)
    assert all(-35 <= db <= -20 for db in noisy)
    calls = load_scripts(eval_set.calls_dir)
    if eval_set is HELDOUT:  # the tuning set's calls are fewer: 3 of 10
        assert sum(c.noise_db is not None for c in calls) * 3 >= len(calls)


def test_tuning_and_heldout_share_no_voice_and_no_line() -> None:
    def voices(s: EvalSet) -> set[str]:
        return {u.voice for u in s.utterances} | _voices_of(s.calls_dir)

    assert not voices(HELDOUT) & voices(TUNING)
    assert not {u.text for u in HELDOUT.utterances} & {u.text for u in TUNING.utterances}


@pytest.mark.parametrize("eval_set", [HELDOUT, TUNING], ids=["heldout", "tuning"])
def test_rendered_audio_ships_and_matches_the_text(eval_set: EvalSet) -> None:
    assert check_rendered(eval_set) == []
    for script in load_scripts(eval_set.calls_dir):
        assert all(line.audio.is_file() for line in script.lines()), script.name


def test_prior_bookings_name_real_calls() -> None:
    for eval_set in (HELDOUT, TUNING):
        names = {s.name for s in load_scripts(eval_set.calls_dir)}
        assert set(eval_set.bookings) <= names


def test_render_plan_groups_by_noise_and_keeps_each_voice() -> None:
    plan = render_plan(HELDOUT)
    assert "clean.yaml" in plan and any(name.startswith("noise") for name in plan)
    assert "voice: flite:rms" in plan["clean.yaml"]


def test_a_broken_set_says_where(tmp_path: Path) -> None:
    (tmp_path / "utterances.yaml").write_text(
        'today: "2027-01-12"\nutterances:\n  - {id: one, flow: appointment-desk, text: hi,'
        " voice: flite:rms, expect: {time: '25:00'}}\n"
    )
    with pytest.raises(EvalSetError, match=r"utterance 'one': expect\.time"):
        load_set(tmp_path)


# ---------------------------------------------------------------- scoring
def _utterance(**expect: object) -> Utterance:
    return Utterance(
        id="u", flow="appointment-desk", text="x", voice="flite:rms",
        expect=Expected.model_validate(expect),
    )  # fmt: skip


def test_score_counts_missing_wrong_and_invented_slots() -> None:
    u = _utterance(intent="book", day="2027-01-14", time="15:30")
    assert score(u, Heard(intent="book", day="2027-01-14", time="15:30")).ok
    wrong_time = score(u, Heard(intent="book", day="2027-01-14", time="03:30"))
    assert wrong_time.slots == {"day": True, "time": False} and not wrong_time.ok
    invented = score(u, Heard(intent="book", day="2027-01-14", time="15:30", order_number="1530"))
    assert invented.slots["order_number"] is False and not invented.ok
    assert score(u, Heard(intent="cancel", day="2027-01-14", time="15:30")).intent is False


def test_any_of_several_days_is_right_and_intent_may_be_unscored() -> None:
    u = _utterance(day=["2027-01-18", "2027-01-25"])
    result = score(u, Heard(intent="book", day="2027-01-25"))
    assert result.intent is None and result.ok


def test_hear_uses_the_engine_understanding_in_context() -> None:
    today = dt.date(2027, 1, 12)  # a Tuesday
    u = _utterance(intent="book", day="2027-01-15", time="09:00")
    heard = hear(u, "Book me Friday at 9 am", today)
    assert (heard.intent, heard.day, heard.time) == ("book", "2027-01-15", "09:00")
    asked = Utterance.model_validate({**u.model_dump(), "asked": "name", "expect": {}})
    assert hear(asked, "Ana Lopez.", today).name == "Ana Lopez"


# ---------------------------------------------------------------- running
async def test_utterances_from_text_and_report(tmp_path: Path) -> None:
    small = dataclasses.replace(TUNING, utterances=TUNING.utterances[:5])
    seen = []
    results = await run_utterances(small, audio=False, on_done=seen.append)
    assert [r.utterance.id for r in results] == [u.id for u in small.utterances] == [
        r.utterance.id for r in seen
    ]
    assert all(r.audio is None and r.transcript is None for r in results)
    summary = summarise(results, [])
    assert summary["utterances"]["count"] == 5
    assert summary["utterances"]["from_text"]["utterance_ok"]["of"] == 5
    report = tmp_path / "report.json"
    write_json(report, eval_set=describe(small), results=results, calls=[])
    data = json.loads(report.read_text())
    assert len(data["utterances"]) == 5 and "from_audio" not in data["utterances"][0]


@pytest.mark.local
async def test_utterances_from_audio_use_the_engine_recogniser() -> None:
    clean = [u for u in TUNING.utterances if u.noise_db is None][:2]
    results = await run_utterances(dataclasses.replace(TUNING, utterances=clean), audio=True)
    for r in results:
        assert r.transcript, r.utterance.id
        assert r.audio is not None and r.audio_score is not None


async def test_earlier_bookings_are_the_callers_own(tmp_path: Path) -> None:
    from tools.appointments import normalise_phone
    from tools.store import open_store

    script = next(s for s in load_scripts(TUNING.calls_dir) if s.name == "reschedule-to-friday")
    store = open_store(None, tmp_path)
    try:
        await seed_bookings(store, script, list(TUNING.bookings[script.name]))
        booked = await store.find_by_phone(normalise_phone(script.from_) or "")
    finally:
        await store.close()
    assert [(b.day.isoformat(), b.time, b.name) for b in booked] == [
        ("2027-01-13", "09:00", "Sam Taylor")
    ]


@pytest.mark.local
@pytest.mark.speech_call
async def test_one_whole_call() -> None:
    """The tuning set's keypad call: a request, digits on the keypad, a goodbye."""
    name = "order-keypad-after-asking"
    (outcome,) = await run_calls(TUNING, speed=SPEECH_CALL_SPEED, only=lambda s: s.name == name)
    if not outcome.ok:  # tiny.en's transcript depends on timing (see the e2e fixtures): once more
        warnings.warn(f"first run failed, retrying once: {outcome.failures}", stacklevel=1)
        (outcome,) = await run_calls(TUNING, speed=SPEECH_CALL_SPEED, only=lambda s: s.name == name)
    assert outcome.transcript and outcome.transcript[0]["role"] == "bot"
    assert outcome.ok, outcome.failures
    assert {"name": "lookup_order", "arguments": {"order_number": "4567"}} in outcome.tool_calls
