"""Call flows: what the agent says and can do, per named flow, and which number gets which.

A `flows.yaml` holds named flows and a map of phone numbers to flows. `load_flows` checks
the whole file and reports every problem with its line and field, so `phone-agent flows
check` can print them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_FLOWS_FILE = Path(__file__).with_name("flows.example.yaml")

DEFAULT_FILLERS = (
    "One moment, let me check that.",
    "Just a second, I'm looking that up.",
)
DEFAULT_SECOND_FILLERS = ("Thanks for waiting, this is taking a little longer than usual.",)


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    provider: Literal["openai", "gemini", "local"] = "openai"
    model: str = ""
    voice: str = ""
    language: str = "en-US"
    instructions: str = "You are a helpful phone assistant. Keep answers short."
    greeting: str = "Hello! How can I help you today?"
    tools: list[str] = Field(default_factory=list)
    filler_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_FILLERS))
    second_filler_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_SECOND_FILLERS))
    filler_after_ms: int = Field(default=700, ge=0, le=60_000)
    second_filler_after_ms: int = Field(default=5000, ge=0, le=120_000)
    max_call_seconds: int = Field(default=900, ge=10, le=4 * 3600)
    transfer_number: str | None = None
    goodbye: str = "Thanks for calling. Goodbye!"
    # A caller who owes an answer and stays silent this long is asked `reprompt`; a second
    # silence as long ends the call with `silence_goodbye` (0 turns this off).
    reprompt_after_s: float = Field(default=6.0, ge=0, le=120)
    reprompt: str = "Are you still there?"
    silence_goodbye: str = (
        "I haven't heard anything, so I'll end the call now. Please call back any time. Goodbye!"
    )
    apology: str = "I'm sorry, I'm having technical trouble. Please call back in a moment. Goodbye."
    # Said when the phone network refuses a transfer (Twilio's API down or erroring).
    transfer_failed: str = (
        "I'm sorry, I couldn't connect you to a colleague just now. "
        "I can keep helping you here, or you can call back later."
    )
    audio_format: Literal["pcmu", "pcm24"] = "pcmu"
    # Listening. server_vad ends a turn after vad_silence_ms of quiet; raise vad_threshold
    # (0-1) on noisy lines so noise neither barges in nor holds turns open. semantic_vad
    # (OpenAI only) waits for the caller to sound finished, up to 8/4/2 s for
    # vad_eagerness low/medium/high. noise_reduction (OpenAI only): near_field for
    # handsets, far_field for speakerphones, off.
    turn_detection: Literal["server_vad", "semantic_vad"] = "server_vad"
    vad_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    vad_silence_ms: int = Field(default=500, ge=100, le=5000)
    vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    noise_reduction: Literal["near_field", "far_field", "off"] = "near_field"
    # sensitive: keypad digits (a PIN, a card number) reach the tools but never the model,
    # the record, the logs or the console; the model passes a reference (keypad_secrets.py).
    keypad: Literal["normal", "sensitive"] = "normal"

    @field_validator("transfer_number")
    @classmethod
    def _e164(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("+") and v[1:].isdigit() and 8 <= len(v) <= 16):
            raise ValueError(f"must be an E.164 number like +15551234567, got {v!r}")
        return v

    @model_validator(mode="after")
    def _semantic_vad_is_openai(self) -> Flow:
        if self.turn_detection == "semantic_vad" and self.provider == "gemini":
            raise ValueError(
                "turn_detection: semantic_vad is OpenAI's; Gemini finds turns itself "
                "(use server_vad with vad_threshold / vad_silence_ms)"
            )
        return self


class FlowsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_flow: str | None = None
    flows: dict[str, Flow]
    numbers: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class FlowProblem:
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.field}: {self.message}"


class FlowsError(ValueError):
    def __init__(self, source: str, problems: list[FlowProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Flows:
    flows: dict[str, Flow]
    numbers: dict[str, str]
    default_flow: str | None

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

    def choose(self, to: str | None, requested: str | None) -> Flow | None:
        """`?flow=` wins, then the called number, then the default flow."""
        if requested:
            return self.flows.get(requested)
        if to and to in self.numbers:
            return self.flows.get(self.numbers[to])
        if self.default_flow:
            return self.flows.get(self.default_flow)
        return None


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map each YAML key path to its 1-based line, for error messages."""
    index: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                index[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, str(i)))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return index


def _line_for(index: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None


def parse_flows(text: str, source: str = "<flows>") -> Flows:
    try:
        data: Any = yaml.safe_load(text)
        index = _line_index(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise FlowsError(source, [FlowProblem(line, "yaml", str(exc).splitlines()[0])]) from None
    if not isinstance(data, dict):
        raise FlowsError(source, [FlowProblem(1, "file", "must be a mapping with 'flows:'")])
    problems: list[FlowProblem] = []
    try:
        parsed = FlowsFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            problems.append(FlowProblem(_line_for(index, loc), ".".join(loc), err["msg"]))
        raise FlowsError(source, problems) from None

    flows = {name: flow.model_copy(update={"name": name}) for name, flow in parsed.flows.items()}
    for number, flow_name in parsed.numbers.items():
        if flow_name not in flows:
            line = _line_for(index, ("numbers", number))
            problems.append(FlowProblem(line, f"numbers.{number}", f"unknown flow {flow_name!r}"))
        if not (number.startswith("+") and number[1:].isdigit()):
            line = _line_for(index, ("numbers", number))
            problems.append(FlowProblem(line, f"numbers.{number}", "must be an E.164 number"))
    if parsed.default_flow and parsed.default_flow not in flows:
        problems.append(FlowProblem(_line_for(index, ("default_flow",)), "default_flow",
                                    f"unknown flow {parsed.default_flow!r}"))
    problems.extend(_check_tools(flows, index))
    problems.extend(_check_keypad(flows, index))
    if problems:
        raise FlowsError(source, problems)
    return Flows(flows=flows, numbers=dict(parsed.numbers), default_flow=parsed.default_flow)


def _check_tools(flows: dict[str, Flow], index: dict[tuple[str, ...], int]) -> list[FlowProblem]:
    # Imported here: tool modules register themselves on import and may be user code.
    from agent.flow_tools import resolve_tool

    problems = []
    for name, flow in flows.items():
        for i, ref in enumerate(flow.tools):
            try:
                resolve_tool(ref)
            except (KeyError, ImportError, AttributeError, TypeError, ValueError) as exc:
                line = _line_for(index, ("flows", name, "tools", str(i)))
                msg = exc.args[0] if exc.args else str(exc)
                problems.append(FlowProblem(line, f"flows.{name}.tools.{i}", str(msg)))
    return problems


def _check_keypad(flows: dict[str, Flow], index: dict[tuple[str, ...], int]) -> list[FlowProblem]:
    """A sensitive keypad needs a tool to pass the digits to, and a model that can."""
    from agent.flow_tools import CONTROL_SPECS

    problems = []
    for name, flow in flows.items():
        if flow.keypad != "sensitive":
            continue
        line = _line_for(index, ("flows", name, "keypad"))
        if flow.provider == "local":
            problems.append(FlowProblem(line, f"flows.{name}.keypad", (
                "the offline engine does not pass keypad references to tools; "
                "use keypad: sensitive with provider openai or gemini")))
        elif not any(ref not in CONTROL_SPECS for ref in flow.tools):
            problems.append(FlowProblem(line, f"flows.{name}.keypad", (
                "sensitive keypad digits reach only tools, and this flow has none "
                "that could take them (list one under tools:)")))
    return problems


def load_flows(path: Path | None) -> Flows:
    path = path or DEFAULT_FLOWS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowsError(str(path), [FlowProblem(None, "file", exc.strerror or str(exc))]) from None
    return parse_flows(text, str(path))
