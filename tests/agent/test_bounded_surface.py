"""What the service exposes stays bounded: metric labels from fixed sets whatever a model
invents, and the offline engine authenticated with its own token, never the OpenAI key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client import generate_latest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.flows import Flow
from agent.service.metrics import Metrics, reconnect_reason
from agent.service.sessions import make_session
from agent.service.settings import Settings
from tests.agent.conftest import dial, speech_like


def test_undeclared_tool_names_count_as_unknown() -> None:
    metrics = Metrics()
    hook = metrics.for_call({"lookup_order"})
    for name in ("lookup_order", "drop_database", "drop_database_2"):
        hook("tool_done", {"name": name, "status": "error", "ms": 5.0})
    text = generate_latest(metrics.registry).decode()
    assert 'tool="lookup_order"' in text and 'tool="unknown"' in text
    assert "drop_database" not in text
    assert 'phone_agent_tool_latency_ms_count{tool="unknown"} 2.0' in text


def test_reconnect_reasons_come_from_a_fixed_set() -> None:
    assert reconnect_reason("connection lost: 1006 (abnormal closure) at 12:00:01") == "connection_lost"
    assert reconnect_reason("goaway") == "goaway"
    assert reconnect_reason("max_session") == "max_session"
    assert reconnect_reason("session_expired") == "session_expired"
    assert reconnect_reason("the server said: <anything at all>") == "other"
    metrics = Metrics()
    for i in range(50):
        metrics.on_event("provider_reconnect", {"reason": f"connection lost: code {i}"})
    text = generate_latest(metrics.registry).decode()
    assert text.count("phone_agent_provider_reconnects_total{") == 1


async def test_a_tool_the_model_made_up_is_unknown_on_metrics(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="x", tool=ToolStep("exfiltrate_everything", {}))])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550002000", from_="+15551234567")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await fake.wait_for(lambda: bool(fake.sessions[0].function_outputs), 10)
            await asyncio.wait_for(records[target.call_sid], 10)
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                text = (await http.get("/metrics")).text
    assert 'phone_agent_tool_latency_ms_count{tool="unknown"} 1.0' in text
    assert "exfiltrate_everything" not in text


async def test_the_engine_gets_its_own_token_never_the_openai_key(tmp_path: Path) -> None:
    scenario = Scenario(api_key="engine-token")
    async with FakeOpenAIRealtime(scenario) as engine:  # stands in for the offline engine
        settings = Settings(_env_file=None, data_dir=tmp_path, force_local=True,  # type: ignore[call-arg]
                            local_engine_url=engine.url, local_engine_token="engine-token",
                            openai_api_key="sk-the-real-openai-key")
        session = make_session(Flow(name="f", provider="openai"), (), settings)
        await session.connect()
        await session.close()
    (seen,) = engine.sessions
    assert seen.headers.get("Authorization") == "Bearer engine-token"
    assert all("sk-the-real" not in value for value in seen.headers.values())
