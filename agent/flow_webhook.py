"""The flow webhook: the customer's backend personalises a call as it comes in.

While the voice webhook answers Twilio, we POST (signed, agent/signing.py)

    {"call_sid", "from", "to", "flow", "parameters": {Twilio's other fields and the voice
     URL's query parameters}}

and the answer may pick another flow, override the greeting, instructions, voice,
language, transfer number and filler phrases, narrow the tools, and pass `variables`
for `{{name}}` in greeting and instructions. It must fit `WebhookAnswer`, published as
JSON Schema (`phone-agent flows schema`, agent/schemas/flow-webhook-answer.schema.json).

Whatever goes wrong (no answer in `timeout_ms`, no connection, a non-2xx status, a body
that is not JSON or does not fit) leaves the static flow in place: the call goes on, and
the `WebhookOutcome` says why, for the log, the call record and the metrics.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.flow_tools import tool_name
from agent.flows import VARIABLE_NAME, Flow, Flows
from agent.outbound_http import OutboundHttp, ReplyTooLarge
from agent.signing import signed_headers

SCHEMA_ID = "urn:phone-agent:schema:flow-webhook-answer:1"
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "phone-agent/1 (+flow-webhook)"
# The fields of Twilio's webhook the request names on its own.
_TOP_LEVEL = {"CallSid", "From", "To", "flow"}

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Literal[
    "ok", "timeout", "connection", "http_status", "invalid_json", "invalid_answer",
    "too_large", "no_secret", "lost",
]  # fmt: skip


class WebhookAnswer(BaseModel):
    """What the flow webhook may answer; every key is optional, no other key is allowed."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, title="phone-agent flow webhook answer"
    )

    flow: str | None = Field(default=None, description="Use this flow (by name) instead.")
    greeting: Text | None = Field(default=None, description="The first thing the bot says.")
    instructions: Annotated[str, Field(min_length=1, max_length=20_000)] | None = Field(
        default=None, description="The model's instructions for this call."
    )
    voice: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    language: Annotated[str, Field(min_length=2, max_length=35)] | None = None
    transfer_number: Annotated[str, Field(pattern=r"^\+[0-9]{7,15}$")] | None = Field(
        default=None, description="E.164 number transfer_call connects to."
    )
    filler_phrases: Annotated[list[Text], Field(min_length=1, max_length=20)] | None = None
    tools: Annotated[list[str], Field(max_length=64)] | None = Field(
        default=None, description="Only these of the flow's tools (by name) for this call."
    )
    variables: Annotated[
        dict[
            Annotated[str, Field(pattern=VARIABLE_NAME)],
            Annotated[str, Field(max_length=2000)] | int | float | bool,
        ],
        Field(max_length=100),
    ] = Field(default_factory=dict, description="Fill {{name}} in greeting and instructions.")


def answer_schema() -> dict[str, Any]:
    """The published JSON Schema of the answer (draft 2020-12)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **WebhookAnswer.model_json_schema(),
    }


class AnswerError(ValueError):
    """The answer is JSON but not one we can use; the message names what and where."""


@dataclass(frozen=True)
class CallFacts:
    """The incoming call, as the voice webhook saw it."""

    call_sid: str
    from_: str
    to: str
    parameters: Mapping[str, str]

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> CallFacts:
        rest = {k: v for k, v in form.items() if k not in _TOP_LEVEL}
        return cls(form.get("CallSid", ""), form.get("From", ""), form.get("To", ""), rest)


@dataclass(frozen=True)
class WebhookOutcome:
    """How the flow webhook went: for the log, the call record and the metrics."""

    status: Literal["used", "fallback"]
    reason: Reason
    detail: str  # a sentence for people: what was wrong, or what the answer changed
    latency_ms: float
    requested_flow: str
    flow: str  # the flow the call got

    def to_event(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency_ms"] = round(self.latency_ms, 1)
        return data


@dataclass(frozen=True)
class Resolution:
    """The flow a call gets (variables filled in) and how the webhook went (None: the
    flow has no webhook)."""

    flow: Flow
    outcome: WebhookOutcome | None = None


def static(flow: Flow) -> Resolution:
    return Resolution(flow.with_variables({}))


async def resolve(
    flows: Flows, flow: Flow, call: CallFacts, http: OutboundHttp,
    env: Mapping[str, str] | None = None,
) -> Resolution:  # fmt: skip
    """`flow` as the webhook personalises it for `call`; the static flow if it cannot."""
    hook = flow.webhook
    if hook is None:
        return static(flow)
    env = os.environ if env is None else env
    started = time.monotonic()

    def fallback(reason: Reason, detail: str) -> Resolution:
        ms = (time.monotonic() - started) * 1000
        outcome = WebhookOutcome("fallback", reason, detail, ms, flow.name, flow.name)
        return Resolution(flow.with_variables({}), outcome)

    secret = env.get(hook.secret_env)
    if not secret:
        return fallback("no_secret", f"environment variable {hook.secret_env} is not set")
    body = json.dumps({
        "call_sid": call.call_sid, "from": call.from_, "to": call.to, "flow": flow.name,
        "parameters": dict(call.parameters),
    }, separators=(",", ":")).encode()  # fmt: skip
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               **signed_headers(secret.encode(), body)}  # fmt: skip
    try:
        reply = await http.send(
            "POST", hook.url, body, headers, timeout_s=hook.timeout_ms / 1000,
            kind="webhook", name=flow.name, max_bytes=MAX_ANSWER_BYTES,
        )  # fmt: skip
    except TimeoutError:
        return fallback("timeout", f"no answer within {hook.timeout_ms} ms")
    except httpx.TransportError as exc:
        return fallback("connection", f"cannot reach {hook.url}: {_short(exc)}")
    except ReplyTooLarge:
        return fallback("too_large", f"answer longer than {MAX_ANSWER_BYTES} bytes")
    if not reply.ok:
        return fallback("http_status", f"answered HTTP {reply.status}")
    if reply.status == 204 or not reply.body.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(reply.body)
        except ValueError as exc:
            return fallback("invalid_json", f"answer is not JSON ({exc})")
    try:
        answer = parse_answer(data)
        resolved = apply_answer(flows, flow, answer)
    except AnswerError as exc:
        return fallback("invalid_answer", str(exc))
    ms = (time.monotonic() - started) * 1000
    detail = _changes(answer)
    return Resolution(resolved, WebhookOutcome("used", "ok", detail, ms, flow.name, resolved.name))


def parse_answer(data: Any) -> WebhookAnswer:
    if not isinstance(data, dict):
        raise AnswerError(f"answer must be a JSON object, got {type(data).__name__}")
    try:
        return WebhookAnswer.model_validate(data)
    except ValidationError as exc:
        raise AnswerError("; ".join(_describe(err) for err in exc.errors())) from None


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "answer"
    if err["type"] == "extra_forbidden":
        known = ", ".join(WebhookAnswer.model_fields)
        return f"{loc}: unknown key (known: {known})"
    return f"{loc}: {err['msg']}"


def apply_answer(flows: Flows, flow: Flow, answer: WebhookAnswer) -> Flow:
    """The flow the answer describes, variables filled in; AnswerError if it names a flow
    or tool that does not exist."""
    target = flow
    if answer.flow is not None and answer.flow != flow.name:
        chosen = flows.get(answer.flow)
        if chosen is None:
            raise AnswerError(f"flow: unknown flow {answer.flow!r} (flows: {', '.join(flows.flows)})")
        target = chosen
    updates: dict[str, Any] = {
        key: value
        for key in ("greeting", "instructions", "voice", "language", "transfer_number", "filler_phrases")
        if (value := getattr(answer, key)) is not None
    }
    if answer.tools is not None:
        names = [tool_name(ref) for ref in target.tools]
        unknown = [t for t in answer.tools if t not in names]
        if unknown:
            raise AnswerError(
                f"tools: {', '.join(map(repr, unknown))} not among flow {target.name!r}'s tools "
                f"({', '.join(names) or 'none'})"
            )
        updates["tools"] = [ref for ref, name in zip(target.tools, names, strict=True) if name in answer.tools]
    variables = {k: _text(v) for k, v in answer.variables.items()}
    return target.model_copy(update=updates).with_variables(variables)


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _changes(answer: WebhookAnswer) -> str:
    said = [
        f"{key}={value!r}" if key == "flow" else
        f"tools={','.join(value)}" if key == "tools" else
        f"variables={','.join(sorted(value))}" if key == "variables" else key
        for key, value in answer.model_dump(exclude_defaults=True).items()
    ]  # fmt: skip
    return ", ".join(said) or "no changes"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
