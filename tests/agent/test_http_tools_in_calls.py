"""HTTP tools on real calls: the model calls a tool declared in the flows file, the server
POSTs it (signed) to the stand-in customer backend under uvicorn, and the answer, or a
spoken recovery, goes back to the model. Emulator + real server + fake OpenAI / Gemini."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like
from tests.agent.hook_flows import ORDERS_TO, SECRET_ENV, STRANGER, write_flows
from tests.fakes.customer_backend import customer_backend
from tests.fakes.gemini_server import FakeGeminiLive
from tests.fakes.gemini_server import Scenario as GScenario
from tests.fakes.gemini_server import ScriptedTurn as GTurn
from tests.helpers.speed import BEHAVIOUR_SPEED

SHIPPED = {"found": True, "order_number": "4567", "status": "shipped", "eta": "2026-12-03",
           "carrier": "Acme Express"}


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def _call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, turns: list[ScriptedTurn], speed: float = BEHAVIOUR_SPEED
):
    """Greeting, then one caller turn per scripted turn: (fake, record, call, backend, metrics).
    Real time (`speed` 1) where a filler's onset against the backend's delay matters."""
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        flows = write_flows(tmp_path, backend.base_url, hook=None)
        scenario = Scenario(turns=turns)
        async with FakeOpenAIRealtime(scenario) as fake:
            records: dict = {}
            async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                                   openai_api_key=scenario.api_key, flows_file=flows) as stack:
                stack.watch(record_collector(records))
                target, call = await dial(stack, records, to=ORDERS_TO, from_=STRANGER, speed=speed)
                async with call:
                    await call.wait_for_bot_reply(timeout=10)
                    for _ in turns:
                        await call.say(speech_like(600))
                        await call.wait_for_bot_reply(timeout=20, quiet_ms=900)
                record = await asyncio.wait_for(records[target.call_sid], 10)
                async with httpx.AsyncClient(base_url=stack.base_url) as http:
                    metrics = (await http.get("/metrics")).text
            fake.assert_clean()
    return fake, record, call, backend, metrics


def _output(fake: FakeOpenAIRealtime, n: int = 0) -> dict:
    return json.loads(fake.sessions[0].function_outputs[n]["output"])


async def test_an_http_tool_answers_and_the_model_gets_its_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [ScriptedTurn(transcript="where is 4567",
                          tool=ToolStep("lookup_order", {"order_number": "4567"}, reply="Found: {output}"))]
    fake, record, call, backend, metrics = await _call(tmp_path, monkeypatch, turns)
    assert _output(fake) == SHIPPED
    (request,) = backend.seen("/tools/order")
    assert request.verified
    (tc,) = record.tool_calls
    assert tc["name"] == "lookup_order" and tc["status"] == "ok" and tc["result"] == SHIPPED
    body = request.body
    assert body["arguments"] == {"order_number": "4567"}
    assert body["call_sid"] == record.call_sid and body["caller"] == STRANGER
    assert body["tool_call_id"] == tc["call_id"]
    assert body["idempotency_key"] == f"{record.call_sid}:{tc['call_id']}" == request.headers["idempotency-key"]
    assert (body["tool"], body["flow"]) == ("lookup_order", "orders")
    assert call.turns[-1].bot_audio_played_ms > 300  # the model spoke the answer
    # The console and the record show it like any tool call.
    kinds = [(e["kind"], e.get("name")) for e in record.events]
    assert ("tool_call", "lookup_order") in kinds and ("tool_result", "lookup_order") in kinds
    assert metric(metrics, 'phone_agent_http_tool_requests_total{result="2xx",tool="lookup_order"}') == 1
    assert metric(metrics, 'phone_agent_tool_latency_ms_count{tool="lookup_order"}') == 1


async def test_a_slow_http_tool_plays_a_filler_then_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [ScriptedTurn(transcript="check the archive",
                          tool=ToolStep("slow_lookup", {"order_number": "4567"}, reply="Found: {output}"))]
    fake, record, call, backend, _ = await _call(tmp_path, monkeypatch, turns, speed=1.0)
    (tc,) = record.tool_calls
    assert tc["status"] == "ok" and tc["fillers"] == ["One moment please."]
    assert tc["duration_ms"] >= 1000  # the stand-in took 1.2 s; the filler came at 0.3 s
    assert _output(fake) == SHIPPED
    fillers = [r for r in fake.sessions[0].responses if r.conversation == "none"]
    assert fillers and fillers[0].text  # the filler was said, out of band
    assert call.turns[-1].bot_audio_played_ms > 300
    assert backend.seen("/tools/slow-order")[0].verified


async def test_an_http_tool_failing_with_500_is_retried_then_spoken_and_the_call_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [
        ScriptedTurn(transcript="where is 12",
                     tool=ToolStep("broken_lookup", {"order_number": "12"}, reply="Sorry: {output}")),
        ScriptedTurn(transcript="ok thanks", reply="Anything else?"),
    ]
    fake, record, call, backend, metrics = await _call(tmp_path, monkeypatch, turns)
    (tc,) = record.tool_calls
    assert tc["status"] == "error" and tc["attempts"] == 3  # idempotent: tried three times
    out = _output(fake)
    assert out == {"error": "The broken_lookup service had a problem (HTTP 500).", "retryable": True}
    tries = backend.seen("/tools/broken")
    assert len(tries) == 3 and len({t.body["idempotency_key"] for t in tries}) == 1
    assert call.turns[-2].bot_audio_played_ms > 300 and call.turns[-1].bot_audio_played_ms > 300
    assert record.outcome != "error"
    assert metric(metrics, 'phone_agent_http_tool_requests_total{result="5xx",tool="broken_lookup"}') == 3
    assert metric(metrics, 'phone_agent_tool_errors_total{status="error",tool="broken_lookup"}') == 1


async def test_an_http_tool_answering_plain_text_is_a_spoken_error_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [ScriptedTurn(transcript="where is 4567",
                          tool=ToolStep("text_lookup", {"order_number": "4567"}, reply="Sorry: {output}"))]
    fake, record, call, backend, _ = await _call(tmp_path, monkeypatch, turns)
    (tc,) = record.tool_calls
    assert tc["status"] == "error" and tc["attempts"] == 1  # a second try would read the same
    assert _output(fake) == {"error": "The text_lookup service sent an answer that is not JSON.",
                             "retryable": False}
    assert len(backend.seen("/tools/text")) == 1
    assert call.turns[-1].bot_audio_played_ms > 300


async def test_arguments_that_do_not_fit_the_schema_go_back_to_the_model_unsent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [ScriptedTurn(transcript="where is it",
                          tool=ToolStep("lookup_order", {"order": 4567}, reply="Hmm: {output}"))]
    fake, record, _, backend, _ = await _call(tmp_path, monkeypatch, turns)
    out = _output(fake)
    assert out["retryable"] is False and "missing required argument 'order_number'" in out["error"]
    assert "unexpected argument 'order'" in out["error"]
    assert backend.seen("/tools/order") == []


async def test_an_http_tool_answers_on_gemini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = GScenario(turns=[GTurn(caller="order", tool="lookup_order", args={"order_number": "4567"},
                                      reply="Your order: {result}")])
    async with customer_backend() as backend, FakeGeminiLive(scenario) as fake:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        flows = write_flows(tmp_path, backend.base_url, provider="gemini", hook=None)
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, flows_file=flows,
                               gemini_live_url=fake.url, gemini_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to=ORDERS_TO, from_=STRANGER)
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await call.wait_for_bot_reply(timeout=15)
            record = await asyncio.wait_for(records[target.call_sid], 10)
    assert fake.violations == []
    conn = fake.connections[0]
    declared = {d["name"]: d for d in conn.setup["tools"][0]["functionDeclarations"]}
    assert declared["lookup_order"]["parametersJsonSchema"]["required"] == ["order_number"]
    (response,) = conn.tool_responses
    assert response["response"] == SHIPPED
    assert backend.seen("/tools/order")[0].verified
    assert record.tool_calls[0]["status"] == "ok"
