"""Filler onset: filler_after_ms deadline -> first filler frame sent to Twilio (target < 50 ms).

Real server + Twilio emulator + the fake OpenAI server; a real tool that takes 1 s. The
first call renders the clip through the model (out-of-band); later calls play the stored
clip. Run: python -m tests.bench.bench_filler [--calls 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like

FLOWS = """\
default_flow: t
flows:
  t:
    greeting: "Hi."
    filler_after_ms: 400
    filler_phrases: ["One moment please."]
    tools: [tests.agent.slow_tools:slow_lookup]
"""


async def main(calls: int) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="x", tool=ToolStep("slow_lookup", {"seconds": 1.0}))])
    onsets: list[tuple[bool, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        flows = Path(tmp) / "flows.yaml"
        flows.write_text(FLOWS)
        async with FakeOpenAIRealtime(scenario) as fake:
            records: dict = {}
            async with local_stack(data_dir=Path(tmp), engine=False, realtime_url=fake.url,
                                   openai_api_key=scenario.api_key, flows_file=flows) as stack:
                stack.watch(record_collector(records))
                for _ in range(calls):
                    target, call = await dial(stack, records, to="+15550007777", from_="+15551234567")
                    async with call:
                        await call.wait_for_bot_reply(timeout=10)
                        await call.say(speech_like(500))
                        await call.wait_for_bot_reply(timeout=15, quiet_ms=900)
                    record = await asyncio.wait_for(records[target.call_sid], 10)
                    cached = any(e.get("cached") for e in record.events if e["kind"] == "filler")
                    for tc in record.tool_calls:
                        onsets += [(cached, ms) for ms in tc["filler_onset_ms"]]
    print(f"{'filler onset (deadline -> first frame to Twilio)':52} {'n':>3} {'p50 ms':>8} {'max ms':>8}")
    for label, want in (("stored clip in the session's voice", True), ("first render via the model", False)):
        values = [ms for cached, ms in onsets if cached is want]
        if values:
            print(f"{label:52} {len(values):3} {statistics.median(values):8.2f} {max(values):8.2f}")
    print("target: < 50 ms for stored clips")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=6)
    asyncio.run(main(parser.parse_args().calls))
