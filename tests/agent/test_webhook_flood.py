"""Issue 13: bursts of forged webhooks beside a live call. Each forged request is as big
as a webhook may be (64 KiB) and is refused with 403; the call hears its whole reply
without a gap. (Before the form was read in linear time, one such request held the
event loop for 2 s.)

The emulated phone shares the server's event loop here, so any event-loop time the
forged requests cost the server shows as lost or late frames in the call. The flood
comes from another process, so the client's own work does not count."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from tests.agent.conftest import dial, speech_like

FORGED_BODIES = {
    # thousands of short fields: once quadratic in starlette's FormData.getlist
    "8000 fields": urlencode([(f"f{i}", "x") for i in range(8000)]).encode()[: 64 * 1024],
    # as many fields as a form may have, each long: the most signature work allowed
    "256 long fields": urlencode([(f"f{i}", "y" * 240) for i in range(256)]).encode()[: 64 * 1024],
}


# Posts bursts of 10 forged bodies until its stdin closes; prints the status counts.
FLOOD = f"""
import asyncio, collections, json, sys, httpx
BODIES = {list(FORGED_BODIES.values())!r}
async def main():
    counts = collections.Counter()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read() or done.set())
    headers = {{"content-type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": "Zm9yZ2VkIHNpZ25hdHVyZQ=="}}
    async with httpx.AsyncClient(base_url=sys.argv[1]) as http:
        print("flooding", flush=True)
        while not done.is_set():
            replies = await asyncio.gather(*(http.post("/twilio/voice", content=b, headers=headers)
                                             for b in BODIES for _ in range(5)))
            await asyncio.sleep(0.25)  # a burst every quarter second, not a saturating stream
            counts.update(str(r.status_code) for r in replies)
    print(json.dumps(counts))
asyncio.run(main())
"""


async def test_forged_webhook_flood_costs_a_live_call_no_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.webhook")
    scenario = Scenario(turns=[ScriptedTurn(transcript="Tell me", reply="x", reply_ms=4000)])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550002000", from_="+15551230001")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                flood = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", FLOOD, stack.base_url,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                assert flood.stdout is not None and flood.stdin is not None
                assert await flood.stdout.readline() == b"flooding\n"
                await call.say(speech_like(600))
                turn = await call.wait_for_bot_reply(timeout=15)
                flood.stdin.close()
                counts = json.loads(await flood.stdout.read())
                await flood.wait()
            await asyncio.wait_for(records[target.call_sid], 10)
    assert sum(counts.values()) >= 40 and set(counts) == {"403"}, counts
    assert turn.bot_audio_played_ms >= 3900
    # Silence inside the reply that this phone did not cause by running late itself
    # (under a loaded machine its own ticks can be late: those are counted apart).
    gaps = turn.underrun_ms - turn.underrun_while_late_ms
    assert gaps == 0, f"{gaps} ms of silence inside the reply"
    # How late single frames went out depends on the machine's load, not on this server
    # alone, so lateness is not asserted; what the caller hears is (underrun above).
    # Each forged request costs well under a millisecond: make bench (bench_webhook).
    assert "not a Twilio form" in caplog.text
