"""The flow webhook's answer, checked and applied; each way a backend can fail, against a
real server; signatures; tool parameter schemas."""

from __future__ import annotations

import socket
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.devkit.stack import run_app
from agent.flow_webhook import AnswerError, CallFacts, apply_answer, parse_answer, resolve
from agent.flows import parse_flows
from agent.outbound_http import OutboundHttp
from agent.signing import signature, signed_headers, verify
from tools.json_params import check_schema, check_value

FLOWS = """\
default_flow: orders
flows:
  orders:
    greeting: "Hi {{name}}, Acme orders."
    instructions: "Help {{name}}. Their tier: {{tier}}."
    variables: {name: there, tier: standard}
    tools: [lookup_order, transfer_call, end_call]
    webhook: {url: "http://127.0.0.1:9/hook", secret_env: HOOK_SECRET}
  vip:
    greeting: "Welcome back, {{name}}."
    variables: {name: friend}
    tools: [lookup_order, find_my_appointments, end_call]
"""
CALL = CallFacts("CA" + "1" * 32, "+15551230001", "+15550002000", {"Direction": "inbound"})


def test_an_answer_overrides_picks_a_flow_narrows_tools_and_fills_variables() -> None:
    flows = parse_flows(FLOWS)
    orders = flows.flows["orders"]
    answer = parse_answer({"greeting": "Hello {{name}}!", "variables": {"name": "Maria", "tier": "gold"},
                           "tools": ["lookup_order", "end_call"], "transfer_number": "+15550100100",
                           "filler_phrases": ["Bear with me."], "voice": "cedar", "language": "de-DE"})
    flow = apply_answer(flows, orders, answer)
    assert flow.greeting == "Hello Maria!"
    assert flow.instructions == "Help Maria. Their tier: gold."
    assert flow.tools == ["lookup_order", "end_call"]
    assert (flow.transfer_number, flow.filler_phrases, flow.voice, flow.language) == (
        "+15550100100", ["Bear with me."], "cedar", "de-DE")
    vip = apply_answer(flows, orders, parse_answer({"flow": "vip", "variables": {"vip": True}}))
    assert vip.name == "vip" and vip.greeting == "Welcome back, friend."
    assert vip.variables["vip"] == "yes"


@pytest.mark.parametrize(("answer", "says"), [
    ([], "answer must be a JSON object, got list"),
    ({"greeting": "x", "colour": "red"}, "colour: unknown key (known: flow, greeting"),
    ({"greeting": 5}, "greeting: Input should be a valid string"),
    ({"tools": "lookup_order"}, "tools: Input should be a valid list"),
    ({"variables": {"bad name": "x"}}, "variables.bad name.[key]: String should match pattern"),
    ({"transfer_number": "555"}, "transfer_number: String should match pattern"),
    ({"greeting": ""}, "greeting: String should have at least 1 character"),
])  # fmt: skip
def test_an_answer_that_does_not_fit_the_schema_says_where(answer: object, says: str) -> None:
    with pytest.raises(AnswerError) as info:
        parse_answer(answer)
    assert says in str(info.value)


def test_an_answer_naming_a_missing_flow_or_tool_says_which() -> None:
    flows = parse_flows(FLOWS)
    with pytest.raises(AnswerError, match=r"flow: unknown flow 'gold' \(flows: orders, vip\)"):
        apply_answer(flows, flows.flows["orders"], parse_answer({"flow": "gold"}))
    with pytest.raises(AnswerError, match=r"tools: 'book_appointment' not among flow 'orders'"):
        apply_answer(flows, flows.flows["orders"], parse_answer({"tools": ["book_appointment"]}))


async def _resolve_against(handler, monkeypatch: pytest.MonkeyPatch, timeout_ms: int = 1500):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    async with run_app(Starlette(routes=[Route("/hook", handler, methods=["POST"])])) as base:
        flows = parse_flows(FLOWS.replace("http://127.0.0.1:9", base).replace(
            "secret_env: HOOK_SECRET}", f"secret_env: HOOK_SECRET, timeout_ms: {timeout_ms}}}"))
        http = OutboundHttp()
        try:
            return await resolve(flows, flows.flows["orders"], CALL, http)
        finally:
            await http.aclose()


async def test_a_5xx_falls_back_and_the_static_flow_still_gets_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(_request) -> Response:
        return JSONResponse({"greeting": "never used"}, status_code=503)

    resolution = await _resolve_against(failing, monkeypatch)
    assert resolution.outcome is not None
    assert (resolution.outcome.status, resolution.outcome.reason) == ("fallback", "http_status")
    assert resolution.outcome.detail == "answered HTTP 503"
    assert resolution.flow.greeting == "Hi there, Acme orders."  # defaults filled in


async def test_no_content_means_the_static_flow_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    async def nothing(request) -> Response:
        assert verify(b"s3cret", request.headers, await request.body())
        return Response(status_code=204)

    resolution = await _resolve_against(nothing, monkeypatch)
    assert resolution.outcome is not None and resolution.outcome.status == "used"
    assert resolution.flow.tools == ["lookup_order", "transfer_call", "end_call"]


async def test_an_answer_too_large_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    async def huge(_request) -> Response:
        return JSONResponse({"instructions": "x" * 100_000})

    resolution = await _resolve_against(huge, monkeypatch)
    assert resolution.outcome is not None and resolution.outcome.reason == "too_large"


async def test_a_backend_that_is_not_there_falls_back_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    flows = parse_flows(FLOWS.replace("127.0.0.1:9", f"127.0.0.1:{port}"))
    http = OutboundHttp()
    try:
        resolution = await resolve(flows, flows.flows["orders"], CALL, http)
    finally:
        await http.aclose()
    assert resolution.outcome is not None and resolution.outcome.reason == "connection"


async def test_without_its_secret_the_webhook_is_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    flows = parse_flows(FLOWS)
    resolution = await resolve(flows, flows.flows["orders"], CALL, OutboundHttp())
    assert resolution.outcome is not None and resolution.outcome.reason == "no_secret"
    assert "HOOK_SECRET is not set" in resolution.outcome.detail


def test_signatures_cover_timestamp_and_body_and_expire() -> None:
    now = time.time()
    headers = {k.lower(): v for k, v in signed_headers(b"key", b'{"a":1}', now).items()}
    assert verify(b"key", headers, b'{"a":1}', now=now)
    assert not verify(b"key", headers, b'{"a":2}', now=now)  # another body
    assert not verify(b"other", headers, b'{"a":1}', now=now)  # another secret
    assert not verify(b"key", headers, b'{"a":1}', now=now + 301)  # replayed too late
    moved = {**headers, "x-phone-agent-timestamp": str(int(now) + 1)}
    assert not verify(b"key", moved, b'{"a":1}', now=now)  # the timestamp is signed too
    assert signature(b"key", "1700000000", b"{}") == (
        "v1=" + __import__("hmac").new(b"key", b"1700000000.{}", "sha256").hexdigest())


def test_tool_parameter_schemas_are_checked_to_what_providers_take() -> None:
    assert check_schema({"type": "object", "properties": {"n": {"type": "integer"}}}) == []
    assert check_schema({"type": "string"}) == ['must be a JSON Schema object with "type": "object"']
    problems = check_schema({"type": "object", "properties": {
        "tags": {"type": "array"}, "when": {"type": "date"}, "n": {"type": "integer", "maxLength": 3}},
        "required": ["missing"]})
    assert "tags: an array needs items (Gemini refuses one without)" in problems
    assert "when: type must be one of" in " ".join(problems)
    assert "n: unknown keyword 'maxLength' for this type" in problems
    assert "(top): required names 'missing', which is not a property" in problems


def test_arguments_are_checked_against_the_schema() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["n"], "properties": {
        "n": {"type": "integer", "minimum": 1}, "kind": {"type": "string", "enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string"}}}}
    assert check_value(schema, {"n": 2, "kind": "a", "tags": ["x"]}) == []
    assert check_value(schema, {"n": 0, "kind": "c", "tags": [1], "extra": True}) == [
        "n: below the minimum 1", "kind: must be one of ['a', 'b'], got 'c'",
        "tags[0]: must be string, got int", "unexpected argument 'extra'; accepted: kind, n, tags"]
    assert check_value(schema, {"n": True}) == ["n: must be integer, got bool"]
    assert check_value(schema, {}) == ["missing required argument 'n'"]
