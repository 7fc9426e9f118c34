"""Call flows: what the agent says and can do, per named flow, and which number gets which.

A `flows.yaml` holds named flows and a map of phone numbers to flows. `load_flows` checks
the whole file and reports every problem with its line and field, so `phone-agent flows
check` can print them all at once.

A flow may name a `webhook` (its own, or the file's) that personalises each call, and
HTTP tools among its `tools` (agent/hook_config.py). Its greeting and instructions may
hold `{{name}}` placeholders, filled from the webhook's `variables` over the flow's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.hook_config import FlowWebhook, HttpToolConfig, missing_env

DEFAULT_FLOWS_FILE = Path(__file__).with_name("flows.example.yaml")

DEFAULT_FILLERS = (
    "One moment, let me check that.",
    "Just a second, I'm looking that up.",
)
DEFAULT_SECOND_FILLERS = ("Thanks for waiting, this is taking a little longer than usual.",)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _tool_kind(value: object) -> str:
    return "ref" if isinstance(value, str) else "http"


# A tool's name or import path, or an HTTP tool (a mapping).
FlowTool = Annotated[
    Annotated[str, Tag("ref")] | Annotated[HttpToolConfig, Tag("http")],
    Discriminator(_tool_kind),
]


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    provider: Literal["openai", "gemini", "local"] = "openai"
    model: str = ""
    voice: str = ""
    language: str = "en-US"
    instructions: str = "You are a helpful phone assistant. Keep answers short."
    greeting: str = "Hello! How can I help you today?"
    tools: list[FlowTool] = Field(default_factory=list)
    # Called as the call comes in, to personalise it (agent/flow_webhook.py).
    webhook: FlowWebhook | None = None
    # Defaults for `{{name}}` in greeting and instructions; a webhook's variables win.
    variables: dict[Annotated[str, Field(pattern=VARIABLE_NAME)], str] = Field(default_factory=dict)
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

    def with_variables(self, variables: dict[str, str]) -> Flow:
        """This flow with `{{name}}` filled in greeting and instructions (an unknown name
        becomes empty: `flows check` makes sure the flow's own defaults cover them)."""
        merged = {**self.variables, **variables}

        def fill(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: merged.get(m.group(1), ""), text)

        return self.model_copy(update={
            "greeting": fill(self.greeting), "instructions": fill(self.instructions),
            "variables": merged,
        })  # fmt: skip

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
    # The webhook of every flow that names none of its own.
    webhook: FlowWebhook | None = None
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


def _clean_loc(loc: tuple[str, ...]) -> tuple[str, ...]:
    """Drop pydantic's union tag ("http"/"ref") after a tools index: not a YAML key."""
    out: list[str] = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "tools" and part in ("http", "ref"):
            continue
        out.append(part)
    return tuple(out)


def parse_flows(text: str, source: str = "<flows>", *, check_env: bool = False) -> Flows:
    """The flows in `text`, or FlowsError with every problem. `check_env`: also require
    the environment variables webhooks and HTTP tools name (`flows check` does)."""
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
            loc = _clean_loc(tuple(str(p) for p in err["loc"]))
            problems.append(FlowProblem(_line_for(index, loc), ".".join(loc), err["msg"]))
        raise FlowsError(source, problems) from None

    flows = {
        name: _with_hooks(flow.model_copy(update={"name": name}), parsed.webhook)
        for name, flow in parsed.flows.items()
    }
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
    problems.extend(_check_placeholders(flows, index))
    if check_env:
        problems.extend(_check_env(flows, parsed.webhook, index))
    if problems:
        raise FlowsError(source, problems)
    return Flows(flows=flows, numbers=dict(parsed.numbers), default_flow=parsed.default_flow)


def _check_tools(flows: dict[str, Flow], index: dict[tuple[str, ...], int]) -> list[FlowProblem]:
    # Imported here: tool modules register themselves on import and may be user code.
    from agent.flow_tools import resolve_tool

    problems = []
    for name, flow in flows.items():
        seen: dict[str, int] = {}
        for i, ref in enumerate(flow.tools):
            line = _line_for(index, ("flows", name, "tools", str(i)))
            where = f"flows.{name}.tools.{i}"
            if isinstance(ref, HttpToolConfig):
                tool_name = ref.name
                if ref.secret_env is None:
                    problems.append(FlowProblem(line, f"{where}.secret_env", (
                        "required: HTTP tool requests are signed, and this flow has no "
                        "webhook whose secret_env it could use")))  # fmt: skip
            else:
                try:
                    tool_name = resolve_tool(ref).name
                except (KeyError, ImportError, AttributeError, TypeError, ValueError) as exc:
                    msg = exc.args[0] if exc.args else str(exc)
                    problems.append(FlowProblem(line, where, str(msg)))
                    continue
            if tool_name in seen:
                problems.append(FlowProblem(line, where, (
                    f"a second tool named {tool_name!r} (also tools.{seen[tool_name]}); "
                    "to replace a built-in tool, list only one of them")))  # fmt: skip
            seen.setdefault(tool_name, i)
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
        elif not any(isinstance(ref, HttpToolConfig) or ref not in CONTROL_SPECS
                      for ref in flow.tools):
            problems.append(FlowProblem(line, f"flows.{name}.keypad", (
                "sensitive keypad digits reach only tools, and this flow has none "
                "that could take them (list one under tools:)")))
    return problems


def _with_hooks(flow: Flow, file_webhook: FlowWebhook | None) -> Flow:
    """The file's webhook where the flow has none; HTTP tools signed with the webhook's
    secret where they name none of their own."""
    webhook = flow.webhook or file_webhook
    tools = [
        ref.model_copy(update={"secret_env": webhook.secret_env})
        if isinstance(ref, HttpToolConfig) and ref.secret_env is None and webhook is not None
        else ref
        for ref in flow.tools
    ]
    return flow.model_copy(update={"webhook": webhook, "tools": tools})


def _check_placeholders(flows: dict[str, Flow], index: dict[tuple[str, ...], int]) -> list[FlowProblem]:
    """Every `{{name}}` needs a default: a webhook that falls back gives no variables."""
    problems = []
    for name, flow in flows.items():
        for field in ("greeting", "instructions"):
            text: str = getattr(flow, field)
            for var in sorted({m.group(1) for m in PLACEHOLDER.finditer(text)} - set(flow.variables)):
                problems.append(FlowProblem(
                    _line_for(index, ("flows", name, field)), f"flows.{name}.{field}",
                    f"{{{{{var}}}}} has no default: add it under variables (said when the "
                    "flow webhook falls back, or when there is none)"))  # fmt: skip
    return problems


def _check_env(
    flows: dict[str, Flow], file_webhook: FlowWebhook | None, index: dict[tuple[str, ...], int]
) -> list[FlowProblem]:
    needed: list[tuple[tuple[str, ...], str]] = []  # (path of the field, variable)
    if file_webhook is not None:
        needed.append((("webhook", "secret_env"), file_webhook.secret_env))
    for name, flow in flows.items():
        if flow.webhook is not None and flow.webhook is not file_webhook:
            needed.append((("flows", name, "webhook", "secret_env"), flow.webhook.secret_env))
        for i, ref in enumerate(flow.tools):
            if isinstance(ref, HttpToolConfig):
                needed += [
                    (("flows", name, "tools", str(i), *field.split(".")), env)
                    for field, env in ref.env_names()
                ]
    problems, reported = [], set()
    for path, env in needed:  # each variable once, where it is first named
        if missing_env([("", env)]) and env not in reported:
            reported.add(env)
            problems.append(FlowProblem(_line_for(index, path), ".".join(path),
                                        f"environment variable {env} is not set"))
    return problems


def load_flows(path: Path | None, *, check_env: bool = False) -> Flows:
    path = path or DEFAULT_FLOWS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowsError(str(path), [FlowProblem(None, "file", exc.strerror or str(exc))]) from None
    return parse_flows(text, str(path), check_env=check_env)
