"""Recorded call fixtures: a YAML call script plus the caller's audio as 8 kHz μ-law WAVs.

A script is a list of caller steps (say a line, wait for the bot, press keys, stay
silent, barge in, hang up) and the expectations a run must meet. Each spoken line is
rendered ahead of time by `phone-agent fixtures build` to `audio/<name>/<NN>.wav` next
to the YAML (NN = the step's index), with a `<NN>.txt` sidecar holding the hash of what
was rendered: a line whose text, voice or noise changed no longer matches its sidecar.

    name: booking
    flow: appointment-desk
    to: "+15550001000"
    from: "+15551230001"
    voice: piper-joe              # piper-joe | espeak:VOICE | flite:VOICE
    noise_db: null                # optional pink noise at this level (dBFS RMS)
    today: "2026-11-30"           # the day the offline engine treats as today
    steps:
      - wait_bot: {}
      - say: "I'd like to book an appointment for tomorrow at 10 am."
        voice: espeak:en-us+f3    # optional per-line voice
      - say: "My name is Ana Lopez."
        recording: recordings/ana.wav   # or a real person's recording (agent/devkit/recordings.py)
      - dtmf: "4567#"
      - pause_ms: 3000
      - interrupt: {after_ms: 1200, say: "Sorry, make it Friday."}
      - hangup: {}
    expect:
      tools: [{name: book_appointment, args: {day: "@tomorrow", time: "10:00"}}]
      no_tools: [cancel_appointment]   # fnmatch patterns: "*" = no tool call at all
      bot_says: ["booked"]             # whole words, case and punctuation ignored
      booking: {day: "@tomorrow", time: "10:00", name_contains: "lopez"}
      no_booking: false                # true: no active booking left (after a cancel)
      barge_in: true
      outcome: [bot_ended, caller_hung_up]

Days in expectations may be ISO dates or tokens (@today, @tomorrow, @today+N,
@friday) counted from the run's `today`: a runner moves `today` forward once the
pinned date has passed, and absolute dates would then never match.

The checks themselves (`check_expectations`) are a pure function over what a run
recorded, so the call runner, the load tester and unit tests share one definition.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AUDIO_DIR",
    "DEFAULT_VOICE",
    "OUTCOMES",
    "RENDER_VERSION",
    "BookingExpect",
    "CallScript",
    "PressKeys",
    "Expectations",
    "Hangup",
    "Interrupt",
    "ScriptLine",
    "Pause",
    "Say",
    "ScriptError",
    "Step",
    "ToolExpect",
    "WaitBot",
    "check_expectations",
    "resolve_day",
    "line_key",
    "load_script",
    "load_scripts",
    "read_sidecar",
    "unbuilt",
    "sidecar_path",
]

AUDIO_DIR = "audio"
DEFAULT_VOICE = "piper-joe"
RECORDED = "recording"  # a line's "voice" when it is a real recording, not synthesis
# Bump when the renderer's output changes (trim, level, noise): every sidecar goes stale.
RENDER_VERSION = 1
# What agent/call.py can end a call with; a typo in `expect.outcome` would never match.
OUTCOMES = frozenset(
    {"completed", "caller_hung_up", "bot_ended", "transferred", "max_duration",
     "provider_failed", "error"}
)  # fmt: skip
STEP_KINDS = ("wait_bot", "say", "dtmf", "pause_ms", "interrupt", "hangup")

_VOICE_RE = re.compile(r"^(piper-joe|espeak:[A-Za-z0-9_+\-]+|flite:[A-Za-z0-9_]+)$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PHONE_RE = re.compile(r"^\+?[0-9]{3,15}$")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class ScriptError(ValueError):
    """A call script that cannot be used; the message names the file, step and field."""


# ---------------------------------------------------------------------------- fields
def _check_voice(value: str) -> str:
    if not _VOICE_RE.match(value):
        raise ValueError(
            f"unknown voice {value!r}; use piper-joe, espeak:VOICE (e.g. espeak:en-us+f3) "
            "or flite:VOICE (e.g. flite:slt)"
        )
    return value


def _check_text(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("the line to say is empty")
    return value


Voice = Annotated[str, AfterValidator(_check_voice)]
Text = Annotated[str, AfterValidator(_check_text)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------- steps
class WaitBot(_Model):
    """Wait until the bot's turn (greeting, reply, filler + answer) has finished playing."""

    kind: ClassVar[str] = "wait_bot"
    timeout_s: float = Field(30.0, gt=0, le=600)


class Say(_Model):
    """Play the rendered line, then keep sending silence (the line never goes quiet)."""

    kind: ClassVar[str] = "say"
    text: Text
    voice: Voice | None = None  # None: the script's voice
    # A real person saying `text`, instead of a voice. Needed by `fixtures build` only:
    # runs play the imported audio, so built fixtures can be shared without it.
    recording: Path | None = None
    audio: Path


class PressKeys(_Model):
    """Keypad digits, one DTMF event per character (~150 ms apart)."""

    kind: ClassVar[str] = "dtmf"
    digits: Annotated[str, Field(pattern=r"^[0-9*#A-D]+$")]


class Pause(_Model):
    """The caller stays silent for `ms` (silence frames keep flowing)."""

    kind: ClassVar[str] = "pause_ms"
    ms: int = Field(gt=0, le=600_000)


class Interrupt(_Model):
    """Barge in: say `text` once `after_ms` of the bot's next reply has played."""

    kind: ClassVar[str] = "interrupt"
    after_ms: int = Field(ge=0, le=60_000)
    text: Text
    voice: Voice | None = None
    recording: Path | None = None
    audio: Path


class Hangup(_Model):
    """The caller hangs up (the media stream stops)."""

    kind: ClassVar[str] = "hangup"


Step = WaitBot | Say | PressKeys | Pause | Interrupt | Hangup


# ---------------------------------------------------------------------------- expectations
# Relative days, resolved against the run's `today` when checking: the runner moves
# `today` forward once a fixture's pinned date has passed, so expectations must move too.
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_TOKEN_RE = re.compile(rf"^@(today|tomorrow|today\+(\d{{1,3}})|{'|'.join(_WEEKDAYS)})$")
DAY_TOKENS_HELP = "@today, @tomorrow, @today+N or a weekday like @friday"


def resolve_day(token: str, today: dt.date) -> dt.date:
    """ "@tomorrow" -> today + 1; "@friday" -> the next Friday after today (never today,
    as the offline engine reads "Friday" said on a Friday); "@today+3" -> today + 3."""
    m = _DAY_TOKEN_RE.match(token.strip().lower())
    if m is None:
        raise ValueError(f"unknown day token {token!r}; use {DAY_TOKENS_HELP}")
    word = m[1]
    if word == "today":
        return today
    if word == "tomorrow":
        return today + dt.timedelta(days=1)
    if m[2]:
        return today + dt.timedelta(days=int(m[2]))
    ahead = (_WEEKDAYS.index(word) - today.weekday()) % 7 or 7
    return today + dt.timedelta(days=ahead)


def _check_day_tokens(value: Any) -> Any:
    """Reject a mistyped "@tomorow" at load time, wherever it sits in tool args."""
    if isinstance(value, str) and value.startswith("@"):
        resolve_day(value, dt.date(2000, 1, 3))
    elif isinstance(value, Mapping):
        for v in value.values():
            _check_day_tokens(v)
    elif isinstance(value, list):
        for v in value:
            _check_day_tokens(v)
    return value


class ToolExpect(_Model):
    name: str = Field(min_length=1)
    args: Annotated[dict[str, Any], AfterValidator(_check_day_tokens)] = Field(
        default_factory=dict
    )  # subset match; "@tomorrow"-style values are days


class BookingExpect(_Model):
    day: str | None = None  # "2026-12-01" or a day token ("@tomorrow")
    time: Annotated[str, Field(pattern=_TIME_RE.pattern)] | None = None
    name_contains: str | None = None
    status: Literal["active", "cancelled"] = "active"  # needs bookings with their status

    @field_validator("day", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        if isinstance(value, dt.date):  # unquoted YAML date
            return value.isoformat()
        if isinstance(value, str) and not value.startswith("@"):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a date (YYYY-MM-DD) or a day token ({DAY_TOKENS_HELP})"
                ) from None
        return _check_day_tokens(value)


class Expectations(_Model):
    tools: list[ToolExpect] = Field(default_factory=list)
    no_tools: list[str] = Field(default_factory=list)  # fnmatch patterns
    bot_says: list[str] = Field(default_factory=list)
    booking: BookingExpect | None = None
    no_booking: bool | None = None  # True: the caller has no active booking at the end
    barge_in: bool | None = None
    outcome: list[str] | None = None
    _today: dt.date | None = PrivateAttr(None)  # the script's `today`, for day tokens

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_shorthand(cls, value: Any) -> Any:
        # `tools: [lookup_order]` means "called, with any arguments".
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("no_tools", "bot_says", "outcome", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("outcome")
    @classmethod
    def _known_outcomes(cls, value: list[str] | None) -> list[str] | None:
        for outcome in value or []:
            if outcome not in OUTCOMES:
                raise ValueError(
                    f"unknown outcome {outcome!r}; one of {', '.join(sorted(OUTCOMES))}"
                )
        return value


# ---------------------------------------------------------------------------- script
@dataclass(frozen=True)
class ScriptLine:
    """One caller line to render: a `say` or the speech of an `interrupt`."""

    script: str
    index: int
    text: str
    voice: str
    noise_db: float | None
    audio: Path
    recording: Path | None = None  # a real recording to import instead of synthesis

    @property
    def key(self) -> str:
        recorded = None
        if self.recording is not None:  # a missing file makes the line stale; build says why
            found = self.recording.is_file()
            recorded = hashlib.sha256(self.recording.read_bytes()).hexdigest() if found else "missing"
        return line_key(self.text, self.voice, self.noise_db, recorded)


class CallScript(_Model):
    name: Annotated[str, Field(pattern=_NAME_RE.pattern)]
    description: str = ""
    flow: str = Field(min_length=1)
    to: str
    from_: str = Field(alias="from")
    voice: Voice = DEFAULT_VOICE
    noise_db: float | None = Field(None, ge=-90, le=0)
    today: dt.date | None = None
    # In-process runs only: make these tools slower (ms), e.g. to hang up during one.
    slow_tools: dict[str, Annotated[int, Field(ge=0, le=60_000)]] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    expect: Expectations = Field(default_factory=Expectations)
    path: Path

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("to", "from_", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> Any:
        # YAML reads an unquoted +15550001000 as an int and drops the "+".
        if not isinstance(value, str) or not _PHONE_RE.match(value):
            raise ValueError(
                f'{value!r} is not a phone number; write it quoted, like "+15550001000"'
            )
        return value

    @model_validator(mode="after")
    def _hangup_last(self) -> CallScript:
        for i, step in enumerate(self.steps[:-1]):
            if isinstance(step, Hangup):
                raise ValueError(f"steps[{i}]: hangup must be the last step")
        self.expect._today = self.today  # default for check_expectations' day tokens
        return self

    @property
    def audio_dir(self) -> Path:
        return self.path.parent / AUDIO_DIR / self.name

    def voice_of(self, step: Say | Interrupt) -> str:
        return step.voice or self.voice

    def lines(self) -> list[ScriptLine]:
        """Every line of caller speech, in step order (what the renderer must produce)."""
        out: list[ScriptLine] = []
        for index, step in enumerate(self.steps):
            if isinstance(step, Say | Interrupt):
                voice = RECORDED if step.recording else self.voice_of(step)
                out.append(
                    ScriptLine(self.name, index, step.text, voice, self.noise_db, step.audio, step.recording)
                )
        return out


def audio_path(yaml_path: Path, name: str, index: int) -> Path:
    return yaml_path.parent / AUDIO_DIR / name / f"{index:02d}.wav"


def _parse_step(raw: Any, index: int, yaml_path: Path, name: str) -> Step:
    """One YAML step -> a step model. Raises ValueError with a message (no location)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a step is a mapping like {{say: ...}}, got {raw!r}")
    kinds = [k for k in raw if k in STEP_KINDS]
    if len(kinds) != 1:
        unknown = [k for k in raw if k not in STEP_KINDS and k != "voice"]
        if unknown and not kinds:
            raise ValueError(
                f"unknown step {unknown[0]!r}; expected one of: {', '.join(STEP_KINDS)}"
            )
        found = ", ".join(map(str, kinds or list(raw))) or "nothing"
        raise ValueError(f"a step needs exactly one of {', '.join(STEP_KINDS)}; found {found}")
    kind = kinds[0]
    body = raw[kind]
    extra = {k: v for k, v in raw.items() if k != kind}
    audio = audio_path(yaml_path, name, index)
    if kind == "say":
        if body is None or (isinstance(body, str) and not body.strip()):
            raise ValueError("say: missing the text to say")
        if not isinstance(body, str):
            raise ValueError(f"say: the text must be a string, got {body!r}")
        return Say.model_validate({"text": body, **_with_recording(extra, yaml_path), "audio": audio})
    if extra:
        raise ValueError(f"{kind}: unexpected key(s) next to it: {', '.join(map(str, extra))}")
    if kind == "dtmf":
        return PressKeys.model_validate({"digits": str(body) if isinstance(body, int) else body})
    if kind == "pause_ms":
        return Pause.model_validate({"ms": body})
    body = {} if body is None else body
    if not isinstance(body, Mapping):
        raise ValueError(f"{kind}: expected a mapping (e.g. {kind}: {{}}), got {body!r}")
    if kind == "wait_bot":
        return WaitBot.model_validate(body)
    if kind == "hangup":
        return Hangup.model_validate(body)
    fields = dict(body)
    if "say" not in fields or not str(fields.get("say") or "").strip():
        raise ValueError("interrupt: missing `say` (what the caller says when barging in)")
    fields["text"] = fields.pop("say")
    return Interrupt.model_validate({**_with_recording(fields, yaml_path), "audio": audio})


def _with_recording(fields: dict[str, Any], yaml_path: Path) -> dict[str, Any]:
    """`recording:` is relative to the script's folder; it and `voice:` exclude each other."""
    if fields.get("recording") is None:
        return fields
    if fields.get("voice") is not None:
        raise ValueError("a line has a voice or a recording, not both")
    if not isinstance(fields["recording"], str) or not fields["recording"].strip():
        raise ValueError(f"recording: expected a WAV file's path, got {fields['recording']!r}")
    return {**fields, "recording": yaml_path.parent / fields["recording"].strip()}


def _loc(parts: Iterable[int | str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# Step models name some fields differently from the YAML keys the author wrote.
_YAML_NAMES = {"ms": "pause_ms", "digits": "dtmf", "text": "say", "from_": "from"}


def _messages(exc: ValidationError) -> list[str]:
    msgs = []
    for err in exc.errors():
        loc = _loc(_YAML_NAMES.get(p, p) if isinstance(p, str) else p for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        msgs.append(f"{loc}: {msg}" if loc else msg)
    return msgs


def _script_error(path: Path, errors: list[str]) -> ScriptError:
    if len(errors) == 1:
        return ScriptError(f"{path}: {errors[0]}")
    return ScriptError(f"{path}: {len(errors)} problems:\n  " + "\n  ".join(errors))


def load_script(path: Path | str) -> CallScript:
    """Read and validate one YAML call script. Raises ScriptError naming step and field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ScriptError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScriptError(f"{path}: a call script is a YAML mapping (name, flow, steps, ...)")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ScriptError(
            f"{path}: name: required, lower-case letters, digits, '-' or '_' (it names the "
            f"audio folder), got {name!r}"
        )
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScriptError(f"{path}: steps: a non-empty list of steps is required")
    errors: list[str] = []
    steps: list[Step] = []
    for i, item in enumerate(raw_steps):
        label = f"steps[{i}]"
        if isinstance(item, Mapping):
            kind = next((k for k in item if k in STEP_KINDS), None)
            label += f" ({kind})" if kind else ""
        try:
            steps.append(_parse_step(item, i, path, name))
        except ValidationError as exc:
            errors += [f"{label}: {m}" for m in _messages(exc)]
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
    if errors:
        raise _script_error(path, errors)
    try:
        return CallScript.model_validate({**raw, "steps": steps, "path": path})
    except ValidationError as exc:
        raise _script_error(path, _messages(exc)) from None


def unbuilt(scripts: Iterable[CallScript]) -> list[ScriptLine]:
    """Lines whose audio has not been rendered yet (`phone-agent fixtures build`)."""
    return [line for script in scripts for line in script.lines() if not line.audio.is_file()]


def load_scripts(directory: Path | str) -> list[CallScript]:
    """Every `*.yaml`/`*.yml` script in `directory` (not recursive), sorted by file name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScriptError(f"{directory}: not a directory")
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    scripts = [load_script(p) for p in paths]
    seen: dict[str, Path] = {}
    for script in scripts:
        if script.name in seen:  # two scripts would render into the same audio folder
            raise ScriptError(
                f"{script.path}: name {script.name!r} is already used by {seen[script.name]}"
            )
        seen[script.name] = script.path
    return scripts


# ---------------------------------------------------------------------------- render keys
def line_key(text: str, voice: str, noise_db: float | None, recording: str | None = None) -> str:
    """Hash of everything that decides a line's audio (for a recording: its bytes' hash);
    the sidecar stores it."""
    fields: dict[str, Any] = {"v": RENDER_VERSION, "text": text, "voice": voice, "noise_db": noise_db}
    if recording is not None:
        fields["recording"] = recording
    payload = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sidecar_path(audio: Path) -> Path:
    return audio.with_suffix(".txt")


def read_sidecar(audio: Path) -> dict[str, str]:
    """`key: value` lines of the sidecar (`key`, `wav_sha256`, `voice`, `text`, ...); {} if none."""
    try:
        text = sidecar_path(audio).read_text(encoding="utf-8")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value
    return out


# ---------------------------------------------------------------------------- checking
def _norm(text: str) -> str:
    text = text.casefold().replace("\u2019", "'")
    return " ".join(re.sub(r"[^\w\s:']", " ", text).split())


def _resolve(value: Any, today: dt.date) -> Any:
    """Day tokens in expected values -> ISO dates."""
    if isinstance(value, str) and value.startswith("@"):
        return resolve_day(value, today).isoformat()
    if isinstance(value, Mapping):
        return {k: _resolve(v, today) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, today) for v in value]
    return value


def _matches(expected: Any, actual: Any) -> bool:
    """Subset match: dicts by their expected keys, strings case-insensitively."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or expected is None:
        return actual == expected
    if isinstance(expected, int | float):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, dt.date):
        expected = expected.isoformat()
    return " ".join(str(expected).casefold().split()) == " ".join(str(actual).casefold().split())


def _tool_call(raw: Any) -> tuple[str, dict[str, Any]]:
    """(name, arguments) of a recorded call: a dict or an object, arguments maybe JSON."""
    get = raw.get if isinstance(raw, Mapping) else (lambda k, d=None: getattr(raw, k, d))
    args = get("arguments", None)
    if args is None:
        args = get("args", None)
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            args = {"_raw": args}
    return str(get("name", "")), dict(args) if isinstance(args, Mapping) else {}


def _show_call(name: str, args: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def check_expectations(
    expect: Expectations,
    tool_calls: Sequence[Mapping[str, Any] | Any],
    bot_text: str,
    outcome: str,
    bookings: Sequence[Mapping[str, Any]],
    barge_ins: int,
    *,
    today: dt.date | None = None,
) -> list[str]:
    """What a run got wrong, one readable line per failure ([] = passed).

    `tool_calls`: dicts (or objects) with `name` and `arguments` (a dict or JSON text).
    `bookings`: the caller's bookings as dicts (day, time, name, status; no status =
    active). `today`: what day tokens ("@tomorrow") count from; default the script's
    `today`, else the real date. A runner that moves `today` must pass the one it used.
    """
    today = today or expect._today or dt.date.today()
    failures: list[str] = []
    calls = [_tool_call(c) for c in tool_calls]
    shown = ", ".join(_show_call(n, a) for n, a in calls) or "none"
    for want in expect.tools:
        args = _resolve(want.args, today)
        if not any(n == want.name and _matches(args, a) for n, a in calls):
            failures.append(f"expected tool call {_show_call(want.name, args)}; calls: {shown}")
    for pattern in expect.no_tools:
        hits = [_show_call(n, a) for n, a in calls if fnmatch.fnmatchcase(n, pattern)]
        if hits:
            failures.append(f"unexpected tool call ({pattern}): {', '.join(hits)}")
    said = f" {_norm(bot_text)} "
    for phrase in expect.bot_says:
        if f" {_norm(phrase)} " not in said:
            failures.append(f"bot never said {phrase!r}; bot said: {bot_text.strip()[:300]!r}")
    if expect.booking is not None:
        failures += _check_booking(expect.booking, bookings, today)
    active = [b for b in bookings if str(b.get("status", "active")) == "active"]
    if expect.no_booking and active:
        failures.append(f"expected no active booking; store has: {_show_bookings(active)}")
    if expect.barge_in is True and barge_ins < 1:
        failures.append("expected a barge-in (a clear of the bot's audio), got none")
    if expect.barge_in is False and barge_ins > 0:
        failures.append(f"expected no barge-in, got {barge_ins}")
    if expect.outcome is not None and outcome not in expect.outcome:
        failures.append(f"outcome {outcome!r}, expected one of {', '.join(expect.outcome)}")
    return failures


def _show_bookings(bookings: Sequence[Mapping[str, Any]]) -> Any:
    return [{k: b.get(k) for k in ("day", "time", "name", "status")} for b in bookings] or "none"


def _check_booking(
    want: BookingExpect, bookings: Sequence[Mapping[str, Any]], today: dt.date
) -> list[str]:
    day = _resolve(want.day, today)

    def ok(b: Mapping[str, Any]) -> bool:
        if str(b.get("status", "active")) != want.status:
            return False
        if day is not None and str(b.get("day", ""))[:10] != day:
            return False
        if want.time is not None and str(b.get("time", ""))[:5] != want.time:
            return False
        name = str(b.get("name", "")).casefold()
        return want.name_contains is None or want.name_contains.casefold() in name

    if any(ok(b) for b in bookings):
        return []
    wanted = {**want.model_dump(exclude_none=True, mode="json"), **({"day": day} if day else {})}
    return [f"expected a booking {wanted}; store has: {_show_bookings(bookings)}"]
