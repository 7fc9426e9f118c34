"""A caller with two bookings cancels one, on a live call through each provider's test
server: real uvicorn, the Twilio emulator, the real tools on a real store. The model is
scripted to do what a careless one might (call the tool without saying which booking,
then name it, then confirm): the other booking must survive every step."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like
from tests.fakes.gemini_server import FakeGeminiLive
from tests.fakes.gemini_server import Scenario as GScenario
from tests.fakes.gemini_server import ScriptedTurn as GTurn
from tests.helpers.speed import BEHAVIOUR_SPEED
from tools.appointments import normalise_phone

TODAY = dt.date(2030, 1, 7)  # a Monday, far enough ahead to stay in the future
THU, FRI = dt.date(2030, 1, 10), dt.date(2030, 1, 11)
CALLER = "+15551234567"
FLOWS = """\
default_flow: t
flows:
  t:
    provider: {provider}
    greeting: "Hi."
    tools: [cancel_appointment]
"""
# What the model does, turn by turn: no hint at all, then the day, then the day confirmed.
STEPS: list[dict[str, Any]] = [{}, {"day": FRI.isoformat()}, {"day": FRI.isoformat(), "confirmed": True}]


def _flows(tmp_path: Path, provider: str) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(FLOWS.format(provider=provider))
    return path


async def _seed(store: Any) -> None:
    phone = normalise_phone(CALLER)
    await store.book(THU, "10:00", "Maria Garcia", phone, "seed:thu")
    await store.book(FRI, "14:00", "Maria Garcia", phone, "seed:fri")


def _outputs(record: Any) -> list[dict[str, Any]]:
    out = []
    for tc in record.tool_calls:
        result = tc.get("result") if "result" in tc else tc.get("output")
        out.append(json.loads(result) if isinstance(result, str) else result)
    return out


async def _check(store: Any, outputs: list[dict[str, Any]]) -> None:
    which, read_back, done = outputs
    assert which["error"] == "which_booking" and len(which["candidates"]) == 2
    assert read_back["status"] == "needs_confirmation" and read_back["day"] == FRI.isoformat()
    assert read_back["say"].startswith("Just to confirm: cancel your appointment on Friday, January 11")
    assert done["status"] == "cancelled" and done["booking_id"] == read_back["booking_id"]
    left = await store.find_by_phone(normalise_phone(CALLER))
    assert [(b.day, b.time) for b in left] == [(THU, "10:00")]  # Thursday's survived


async def test_openai_call_cancels_only_the_booking_named_and_confirmed(tmp_path: Path) -> None:
    scenario = Scenario(turns=[
        ScriptedTurn(transcript=said, tool=ToolStep("cancel_appointment", args, reply="Okay."))
        for said, args in zip(["cancel my appointment", "the Friday one", "yes"], STEPS, strict=True)
    ], max_reply_ms=600)  # fmt: skip
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, tools_today=TODAY.isoformat(),
                               flows_file=_flows(tmp_path, "openai")) as stack:  # fmt: skip
            stack.watch(record_collector(records))
            await _seed(stack.store)
            target, call = await dial(stack, records, to="+15550007777", from_=CALLER, speed=BEHAVIOUR_SPEED)
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                for _ in STEPS:
                    await call.say(speech_like(600))
                    await call.wait_for_bot_reply(timeout=15, quiet_ms=900)
            record = await asyncio.wait_for(records[target.call_sid], 10)
            assert [tc["name"] for tc in record.tool_calls] == ["cancel_appointment"] * 3
            await _check(stack.store, _outputs(record))
        fake.assert_clean()


async def test_gemini_call_cancels_only_the_booking_named_and_confirmed(tmp_path: Path) -> None:
    scenario = GScenario(turns=[
        GTurn(caller=said, tool="cancel_appointment", args=args, reply="{result}")
        for said, args in zip(["cancel my appointment", "the Friday one", "yes"], STEPS, strict=True)
    ])  # fmt: skip
    async with FakeGeminiLive(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, flows_file=_flows(tmp_path, "gemini"),
                               gemini_live_url=fake.url, gemini_api_key=scenario.api_key,
                               tools_today=TODAY.isoformat()) as stack:  # fmt: skip
            stack.watch(record_collector(records))
            await _seed(stack.store)
            target, call = await dial(stack, records, to="+15550007777", from_=CALLER, speed=BEHAVIOUR_SPEED)
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                for n in range(1, len(STEPS) + 1):
                    await call.say(speech_like(600))
                    await fake.wait_until(lambda n=n: len(fake.connections[0].tool_responses) >= n, 10)
                    await call.wait_for_bot_reply(timeout=15, quiet_ms=900)
            await asyncio.wait_for(records[target.call_sid], 10)
            responses = [r["response"] for r in fake.connections[0].tool_responses]
            await _check(stack.store, [r.get("output", r) for r in responses])
    assert fake.violations == []
