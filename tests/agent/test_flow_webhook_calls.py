"""The flow webhook on real calls: the emulator dials a real server (uvicorn), which asks
the stand-in customer backend (uvicorn too) how to take the call, then bridges to the
fake OpenAI or Gemini server. A known caller is greeted by name with fewer tools; a
webhook that hangs or answers garbage leaves the static flow, with a log line, a record
entry and a metric, and the call goes on."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial
from tests.agent.hook_flows import KNOWN_CALLER, ORDERS_TO, SECRET_ENV, STRANGER, write_flows
from tests.fakes.customer_backend import customer_backend
from tests.fakes.gemini_server import FakeGeminiLive
from tests.fakes.gemini_server import Scenario as GScenario
from tests.helpers.speed import BEHAVIOUR_SPEED

STATIC_GREETING = "Hi, you've reached Acme orders."
MARIA_GREETING = "Hello Maria, welcome back to Acme. Is this about your order?"
ALL_TOOLS = ["lookup_order", "slow_lookup", "broken_lookup", "text_lookup", "transfer_call", "end_call"]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _configured(fake: FakeOpenAIRealtime) -> bool:
    return len(fake.sessions) == 1 and bool(fake.sessions[0].of_type("session.update"))


def _webhook_events(record) -> list[dict]:
    return [e for e in record.events if e["kind"] == "flow_webhook"]


async def _openai_call(tmp_path: Path, backend, *, hook: str, caller: str, timeout_ms: int = 1500):
    """One call that hears the greeting and hangs up: (fake, record, greeting turn, stack metrics)."""
    flows = write_flows(tmp_path, backend.base_url, hook=hook, timeout_ms=timeout_ms)
    async with FakeOpenAIRealtime(Scenario()) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key="test-key", flows_file=flows) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDERS_TO, from_=caller, speed=BEHAVIOUR_SPEED)
            # The model session opened while the webhook answered, before the stream.
            await fake.wait_for(lambda: _configured(fake), 5)
            async with call:
                greeting = await call.wait_for_bot_reply(timeout=10)
            record = await asyncio.wait_for(records[target.call_sid], 10)
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                metrics = (await http.get("/metrics")).text
        fake.assert_clean()
    return fake, record, greeting, metrics, target


async def test_a_known_caller_is_greeted_by_name_with_fewer_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        fake, record, greeting, metrics, target = await _openai_call(
            tmp_path, backend, hook="/flow", caller=KNOWN_CALLER)

    (session,) = fake.sessions  # the one opened during the webhook: resolved before it opened
    assert "You help Maria, a returning customer" in session.config["instructions"]
    assert [t["name"] for t in session.config["tools"]] == ["lookup_order", "end_call"]
    assert session.responses[0].text == MARIA_GREETING
    assert greeting.bot_audio_played_ms > 300
    assert record.transcript_lines[0]["text"] == MARIA_GREETING

    (request,) = backend.seen("/flow")
    assert request.verified  # the stand-in checked our signature with the README's lines
    body = request.body
    assert (body["call_sid"], body["from"], body["to"], body["flow"]) == (
        target.call_sid, KNOWN_CALLER, ORDERS_TO, "orders")
    assert body["parameters"]["Direction"] == "inbound"
    assert "resolution" in target.parameters  # the stream names what the webhook resolved

    (event,) = _webhook_events(record)
    assert event["status"] == "used" and event["reason"] == "ok" and event["flow"] == "orders"
    assert "variables=name" in event["detail"] and "tools=lookup_order,end_call" in event["detail"]
    assert 0 < event["latency_ms"] < 1500
    assert metric(metrics, 'phone_agent_flow_webhook_total{outcome="used",reason="ok"}') == 1
    assert metric(metrics, "phone_agent_flow_webhook_latency_ms_count") == 1


async def test_a_stranger_gets_the_static_flow_from_an_empty_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        fake, record, _, _, _ = await _openai_call(tmp_path, backend, hook="/flow", caller=STRANGER)
    (session,) = fake.sessions
    assert session.responses[0].text == STATIC_GREETING
    assert [t["name"] for t in session.config["tools"]] == ALL_TOOLS
    (event,) = _webhook_events(record)
    assert event["status"] == "used" and event["detail"] == "no changes"


async def test_a_webhook_that_times_out_falls_back_to_the_static_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.service.flow_resolver")
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        fake, record, greeting, metrics, _ = await _openai_call(
            tmp_path, backend, hook="/flow/hang", caller=KNOWN_CALLER, timeout_ms=400)
        assert not backend.release.is_set()  # still hanging when the call was over
    (session,) = fake.sessions
    assert session.responses[0].text == STATIC_GREETING and greeting.bot_audio_played_ms > 300
    assert [t["name"] for t in session.config["tools"]] == ALL_TOOLS
    (event,) = _webhook_events(record)
    assert (event["status"], event["reason"]) == ("fallback", "timeout")
    assert event["detail"] == "no answer within 400 ms" and event["latency_ms"] >= 400
    lines = [r.getMessage() for r in caplog.records if "flow webhook fell back" in r.getMessage()]
    assert len(lines) == 1 and "timeout: no answer within 400 ms" in lines[0]
    assert metric(metrics, 'phone_agent_flow_webhook_total{outcome="fallback",reason="timeout"}') == 1


async def test_a_webhook_answering_garbage_falls_back_and_says_what_was_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.service.flow_resolver")
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        fake, record, _, metrics, _ = await _openai_call(
            tmp_path, backend, hook="/flow/garbage", caller=KNOWN_CALLER)
    assert fake.sessions[0].responses[0].text == STATIC_GREETING
    (event,) = _webhook_events(record)
    assert (event["status"], event["reason"]) == ("fallback", "invalid_answer")
    # Every problem, each with where it is: the unknown key and the wrong type.
    assert "greting: unknown key" in event["detail"] and "voice: Input should be a valid string" in event["detail"]
    (line,) = [r.getMessage() for r in caplog.records if "flow webhook fell back" in r.getMessage()]
    assert "invalid_answer: " in line and "greting" in line
    assert metric(metrics, 'phone_agent_flow_webhook_total{outcome="fallback",reason="invalid_answer"}') == 1


async def test_a_webhook_answering_html_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        fake, record, _, _, _ = await _openai_call(tmp_path, backend, hook="/flow/not-json", caller=KNOWN_CALLER)
    assert fake.sessions[0].responses[0].text == STATIC_GREETING
    (event,) = _webhook_events(record)
    assert (event["status"], event["reason"]) == ("fallback", "invalid_json")


async def test_gemini_greets_a_known_caller_by_name_with_fewer_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with customer_backend() as backend, FakeGeminiLive(GScenario()) as fake:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        flows = write_flows(tmp_path, backend.base_url, provider="gemini")
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, flows_file=flows,
                               gemini_live_url=fake.url, gemini_api_key=fake.scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDERS_TO, from_=KNOWN_CALLER)
            async with call:
                greeting = await call.wait_for_bot_reply(timeout=10)
            record = await asyncio.wait_for(records[target.call_sid], 10)
    assert fake.violations == []
    (conn,) = fake.connections
    instruction = conn.setup["systemInstruction"]["parts"][0]["text"]
    assert "You help Maria, a returning customer" in instruction
    declared = [d["name"] for d in conn.setup["tools"][0]["functionDeclarations"]]
    assert declared == ["lookup_order", "end_call"]
    asked = json.dumps(conn.messages("clientContent"))
    assert "Hello Maria, welcome back to Acme" in asked  # the greeting the model was told to say
    assert greeting.bot_audio_played_ms > 300
    (event,) = _webhook_events(record)
    assert event["status"] == "used"
