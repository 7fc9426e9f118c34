"""Issue 14: playback never waits on the provider's upload.

A model whose socket stops taking caller audio for 2 s in the middle of a reply (its
upload pushes back) must not stall what the caller hears: mark echoes are read by the
stream's own reader, so the reply plays on without a gap, and the caller audio that
waited is delivered (or, beyond the inbox's bound, dropped and counted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack
from agent.providers.openai.session import OpenAIRealtimeSession
from agent.realtime import AudioOut, RealtimeEvent
from agent.service.sessions import make_session
from tests.agent.conftest import dial, speech_like

STALL_S = 2.0


class StallingSession(OpenAIRealtimeSession):
    """Once the second reply starts playing, the next caller frame's upload hangs 2 s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items: list[str] = []
        self.stalled = asyncio.Event()

    async def events(self) -> AsyncIterator[RealtimeEvent]:  # type: ignore[override]
        async for event in super().events():
            if isinstance(event, AudioOut) and event.item_id not in self.items:
                self.items.append(event.item_id)
            yield event

    async def send_audio(self, ulaw: bytes, encoded: str = "") -> None:
        if len(self.items) >= 2 and not self.stalled.is_set():
            self.stalled.set()
            await asyncio.sleep(STALL_S)  # the provider's socket pushes back (a stall, not sync)
        await super().send_audio(ulaw, encoded)


async def test_a_stalled_upload_does_not_stall_the_reply(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript="tell me", reply="x", reply_ms=5000)])
    sessions: list[StallingSession] = []

    def factory(flow, specs, settings):  # noqa: ANN001, ANN202
        base = make_session(flow, specs, settings)
        assert isinstance(base, OpenAIRealtimeSession)
        session = StallingSession(base.config, url=base._url, api_key=base._api_key)
        sessions.append(session)
        return session

    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, session_factory=factory,
                               prewarm_sessions=False) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550002000", from_="+15551230001")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                reply = await call.wait_for_bot_reply(timeout=20)
            await asyncio.wait_for(records[target.call_sid], 10)
    assert sessions[0].stalled.is_set(), "the upload never stalled: the test proves nothing"
    assert reply.bot_audio_played_ms >= 4900
    gaps = reply.underrun_ms - reply.underrun_while_late_ms
    assert gaps == 0, f"the caller heard {gaps} ms of silence inside the reply"
