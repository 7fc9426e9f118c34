"""The console, in headless Chromium, shows a call's flow webhook outcome and its HTTP tool
call: one call whose webhook answered (and called an HTTP tool), one whose webhook hung."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep, tone
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.agent.hook_flows import KNOWN_CALLER, ORDERS_TO, SECRET_ENV, write_flows
from tests.fakes.customer_backend import customer_backend
from tests.ops.test_console_browser import TOKEN, run_chromium


async def _one_call(stack, records: dict, *, talk: bool) -> str:
    target = await dial_webhook(stack.base_url, stack.auth_token, to=ORDERS_TO, from_=KNOWN_CALLER)
    records[target.call_sid] = asyncio.get_running_loop().create_future()
    async with EmulatedCall(target, speed=4) as call:
        await call.wait_for_bot_reply(timeout=10)
        if talk:
            await call.say(tone(700, hz=300.0, amplitude=6000))
            await call.wait_for_bot_reply(timeout=15)
    await asyncio.wait_for(records[target.call_sid], 10)
    return target.call_sid


async def _timeline(base: str, call_sid: str) -> str:
    dom = await run_chromium(f"{base}/console/#token={TOKEN}&call={call_sid}", "--dump-dom")
    return dom.split('id="timeline"')[1].split("</ol>")[0]


async def test_the_console_shows_the_flow_webhook_and_http_tool_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="Where is 4567?", tool=ToolStep(
        "lookup_order", {"order_number": "4567"}, reply="Your order {output}"))])
    async with customer_backend() as backend, FakeOpenAIRealtime(scenario) as fake:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        used = write_flows(tmp_path, backend.base_url)
        async with local_stack(data_dir=tmp_path / "a", engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, admin_token=TOKEN, flows_file=used) as stack:
            records: dict = {}
            stack.watch(record_collector(records))
            sid = await _one_call(stack, records, talk=True)
            timeline = await _timeline(stack.base_url, sid)
        assert "flow webhook answered in" in timeline and "tools=lookup_order,end_call" in timeline
        assert "lookup_order → ok in" in timeline and "Acme Express" in timeline

        hung = write_flows(tmp_path, backend.base_url, hook="/flow/hang", timeout_ms=300)
        async with local_stack(data_dir=tmp_path / "b", engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, admin_token=TOKEN, flows_file=hung) as stack:
            records = {}
            stack.watch(record_collector(records))
            sid = await _one_call(stack, records, talk=False)
            timeline = await _timeline(stack.base_url, sid)
        assert "flow webhook fell back to flow orders after" in timeline
        assert "(timeout): no answer within 300 ms" in timeline
