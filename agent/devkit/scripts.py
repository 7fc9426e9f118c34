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
    today: "2026-11-30"           # the day the tools and the offline engine treat as today
    bookings:                     # the caller's appointments before the call (in-process runs)
      - {day: "@thursday", time: "10:00", name: "Ana Lopez"}
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
      active_bookings: 1               # how many active bookings the caller has at the end
      barge_in: true
      outcome: [bot_ended, caller_hung_up]

Days in expectations may be ISO dates or tokens (@today, @tomorrow, @today+N,
@friday) counted from the run's `today`: a runner moves `today` forward once the
pinned date has passed, and absolute dates would then never match.

The expectations and their check live in `agent.devkit.expectations`. (This module is a
little over 400 lines: the script format's fields, steps and loading read as one.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.devkit.expectations import BookingExpect, Expectations, StrictModel

__all__ = [
    "AUDIO_DIR",
    "DEFAULT_VOICE",
    "RENDER_VERSION",
    "CallScript",
    "PressKeys",
    "Hangup",
    "Interrupt",
    "ScriptLine",
    "Pause",
    "Say",
    "ScriptError",
    "Step",
    "WaitBot",
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


_Model = StrictModel


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


class PriorBooking(BookingExpect):
    """An appointment the caller already has when the call starts (seeded into the store
    of an in-process run, made from the script's `from` number)."""

    day: str  # ISO date or a day token ("@thursday"), counted from the run's today
    time: Annotated[str, Field(pattern=_TIME_RE.pattern)]
    name: str = Field(min_length=1)
    name_contains: None = None
    status: Literal["active"] = "active"


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
    bookings: list[PriorBooking] = Field(default_factory=list)
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

