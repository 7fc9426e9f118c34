"""`keypad: sensitive` on a real call: real uvicorn, the Twilio emulator pressing keys,
the fake OpenAI server (which records every client event) calling a tool with the
reference. The digits reach the tool and nothing else: not the model, the stored record,
the admin API (what the console shows), the live feed or the logs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.keypad_secrets import model_text
from tests.agent import secret_tools
from tests.agent.conftest import dial, speech_like

PIN = "907153"
TOKEN = "admin-" + "k" * 24
FLOWS = """\
default_flow: bank
flows:
  bank:
    provider: openai
    greeting: "Hi. Please type your PIN, then press hash."
    keypad: sensitive
    tools: [tests.agent.secret_tools:check_pin]
"""


async def test_sensitive_keypad_digits_reach_the_tool_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret_tools.RECEIVED.clear()
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS)
    scenario = Scenario(ms_per_char=15, turns=[
        ScriptedTurn(transcript="check it", tool=ToolStep("check_pin", {"pin": "keypad:1"}, reply="Got: {output}")),
        # A reference the caller never typed: the model is told, the tool never runs.
        ScriptedTurn(transcript="and again", tool=ToolStep("check_pin", {"pin": "keypad:2"}, reply="Got: {output}")),
    ])  # fmt: skip
    live: list[str] = []
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, flows_file=flows,
                               admin_token=TOKEN) as stack:
            stack.watch(record_collector(records))
            stack.watch(lambda _sid, _kind, data: live.append(json.dumps(data, default=repr)))
            target, call = await dial(stack, records, to="+15550007777", from_="+15551230042")
            async with call:
                await call.wait_for_bot_reply(timeout=10)  # the greeting
                for digit in PIN + "#":
                    await call.dtmf(digit)
                call.end_of_input("keypad")
                await call.wait_for_bot_reply(timeout=10)  # the model's answer to the entry
                for _ in range(2):
                    await call.say(speech_like(600))
                    await call.wait_for_bot_reply(timeout=15, quiet_ms=900)
            await asyncio.wait_for(records[target.call_sid], 10)
            assert await stack.service.switchboard.wait_idle(10)  # the record is saved
            stored = await stack.store.get_record("call", target.call_sid)
            async with httpx.AsyncClient(base_url=stack.base_url,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                served = (await http.get(f"/admin/calls/{target.call_sid}")).json()
    fake.assert_clean()

    # The tool got the digits, once: the made-up reference never reached it.
    assert secret_tools.RECEIVED == [PIN]

    # The model was told of the entry by reference only...
    sess = fake.sessions[0]
    told = [part["text"] for item in sess.created_items if item.get("type") == "message"
            for part in item["content"]]  # fmt: skip
    assert told == [model_text("keypad:1", PIN)]
    # ...the tool's echo of the PIN came back to it as the reference...
    first, second = (json.loads(o["output"]) for o in sess.function_outputs)
    assert first == {"verified": True, "echo": "keypad:1", "note": "PIN keypad:1 checked"}
    assert second["retryable"] is False
    assert "unknown keypad reference 'keypad:2'; the caller has typed: keypad:1" in second["error"]
    # ...and no event it received holds the digits (caller audio aside: base64 may
    # contain any run of digits by chance).
    for event in sess.received:
        if event["type"] != "input_audio_buffer.append":
            assert PIN not in json.dumps(event), event

    # The stored record, and the admin API the console reads, show it masked.
    assert stored is not None and served["record"] == stored
    assert {"role": "caller", "text": "[keypad] ****** (keypad:1)"} in [
        {k: line[k] for k in ("role", "text")} for line in stored["transcript_lines"]]
    keys = [e["digit"] for e in stored["events"] if e["kind"] == "dtmf"]
    assert keys == ["•"] * len(PIN + "#")
    assert [tc["arguments"] for tc in stored["tool_calls"]] == [{"pin": "keypad:1"}, {"pin": "keypad:2"}]
    assert stored["tool_calls"][0]["result"]["echo"] == "keypad:1"
    assert PIN not in json.dumps(stored)
    # The live feed (console, `phone-agent call`) and the logs never carried it either.
    assert live and not [line for line in live if PIN in line]
    assert caplog.records and PIN not in caplog.text
