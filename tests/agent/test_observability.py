"""Metrics, health and logs after a real call through the bridge."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.service.logs import JsonFormatter
from tests.agent.conftest import dial, speech_like
from tests.helpers.speed import BEHAVIOUR_SPEED


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_metrics_health_and_readiness_after_a_call(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="x", tool=ToolStep("lookup_order", {"order_number": "4567"}))])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550002000", from_="+15551234567",
                                      speed=BEHAVIOUR_SPEED)
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                async with call:
                    await call.wait_for_bot_reply(timeout=10)
                    live = (await http.get("/metrics")).text
                    assert metric(live, "phone_agent_active_calls") == 1
                    await call.say(speech_like(600))
                    await call.wait_for_bot_reply(timeout=10)
                await asyncio.wait_for(records[target.call_sid], 10)
                text = (await http.get("/metrics")).text
                assert (await http.get("/healthz")).text == "ok"
                ready = await http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["ready"] is True
    assert metric(text, "phone_agent_active_calls") == 0
    assert metric(text, 'phone_agent_calls_total{outcome="caller_hung_up"}') == 1
    assert metric(text, "phone_agent_turn_latency_ms_count") >= 1
    assert metric(text, 'phone_agent_tool_latency_ms_count{tool="lookup_order"}') == 1
    assert "phone_agent_filler_onset_ms_bucket" in text and "phone_agent_barge_in_clear_ms" in text


def test_json_logs_carry_the_call_sid_and_mask_numbers() -> None:
    sid = "CA" + "0123456789abcdef" * 2
    record = logging.LogRecord("agent.call", logging.WARNING, __file__, 1,
                               "call %s from %s: provider failed", (sid, "+15551234567"), None)
    out = json.loads(JsonFormatter().format(record))
    assert out["call_sid"] == sid
    assert "+15551234567" not in out["msg"] and "+1555***4567" in out["msg"]
    assert out["level"] == "warning"
