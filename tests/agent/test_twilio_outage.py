"""Issue 12: Twilio's REST API unreachable mid-call. A transfer that fails is told to the
model, the caller hears an apology and the call goes on; a hang-up that fails still ends
the call (the stream closes); both are in the record and the metrics, and no task dies
with a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.flows import Flow
from tests.agent.conftest import dial, speech_like

FLOWS = """\
default_flow: desk
flows:
  desk:
    provider: openai
    greeting: "Hello."
    tools: [transfer_call, end_call]
    transfer_number: "+15550100100"
    reprompt_after_s: 0
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on return: connections are refused


async def test_refused_transfer_and_hang_up_strand_nobody(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    scenario = Scenario(turns=[
        ScriptedTurn(transcript="a person please", reply="",
                     tool=ToolStep("transfer_call", {"reason": "asked for a person"}, reply="Connecting you.")),
        ScriptedTurn(transcript="ok never mind, bye", reply="",
                     tool=ToolStep("end_call", {"reason": "done"}, reply="Goodbye.")),
    ], ms_per_char=20)  # fmt: skip
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS)
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(
            data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key=scenario.api_key,
            flows_file=flows, twilio_account_sid="AC" + "0" * 32,
            twilio_api_base_url=f"http://127.0.0.1:{closed_port()}",
        ) as stack:  # fmt: skip
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550009999", from_="+15551112222")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(500))
                await call.wait_for_bot_reply(timeout=15)  # "Connecting you." ...
                # ...then the transfer is refused: the caller hears the apology
                apology = await call.wait_for_bot_reply(timeout=15)
                assert apology.bot_audio_played_ms > 1000
                await call.say(speech_like(500))
                await call.wait_closed(timeout=20)  # end_call: the REST hang-up fails too
            record = await asyncio.wait_for(records[target.call_sid], 10)
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                metrics = (await http.get("/metrics")).text
        fake.assert_clean()
    kinds = [e["kind"] for e in record.events]
    assert "transfer_failed" in kinds and "hangup_failed" in kinds
    bot = [line["text"] for line in record.transcript_lines if line["role"] == "bot"]
    assert Flow.model_fields["transfer_failed"].default in bot
    # The model was told, as a system note, before the apology.
    notes = [m for s in fake.sessions for m in s.of_type("conversation.item.create")
             if m["item"].get("role") == "system"]
    assert any("transfer to a person failed" in n["item"]["content"][0]["text"] for n in notes)
    assert record.outcome == "bot_ended"
    assert 'phone_agent_twilio_control_errors_total{op="transfer"} 1.0' in metrics
    assert 'phone_agent_twilio_control_errors_total{op="hangup"} 1.0' in metrics
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
