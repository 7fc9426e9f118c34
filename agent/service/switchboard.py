"""The live calls of one process: each media stream answered with a `Call`, ended on
request, watched by observers, and entered in the registry of which instance holds which
call (so an admin request on any instance reaches it)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from agent.call import Call, CallDeps
from agent.callrecord import CallRecord
from agent.flow_tools import tools_for
from agent.flows import Flows
from agent.phone_line import PhoneLine
from agent.service.flow_resolver import FlowResolver
from agent.service.live_calls import LiveCall, LiveCalls, open_live_calls
from agent.service.prewarm import WarmSessions
from agent.service.sessions import SessionFactory, provider_of, today_of
from agent.service.settings import Settings
from agent.service.shared import Shared
from agent.tracing import NO_TRACE

log = logging.getLogger(__name__)

APOLOGY_PLAYED_S = 15.0  # an apology that has not played by then is cut off
# (call_sid, kind, data): the console's live feed, `phone-agent call`, the tests.
Listener = Callable[[str, str, dict[str, Any]], None]


class Switchboard:
    def __init__(
        self,
        settings: Settings,
        flows: Flows,
        shared: Shared,
        session_factory: SessionFactory,
        warm: WarmSessions,
        instance_id: str,
        resolver: FlowResolver,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.flows = flows
        self.shared = shared
        self.session_factory = session_factory
        self.warm = warm
        self.instance_id = instance_id
        self.calls: dict[str, Call] = {}
        self.listeners: list[Listener] = []
        self.registry: LiveCalls = open_live_calls(
            shared.redis, self, instance_id, prefix=settings.redis_prefix
        )
        self._idle = asyncio.Event()  # set while no call is live (drain waits on it)
        self._idle.set()

    # ---------------------------------------------------------------- answering

    async def answer(self, stream: PhoneLine) -> None:
        """Run one call on `stream` to its end (the media stream route's handler)."""
        # The flow as the voice webhook resolved it (its flow webhook), maybe on another instance.
        resolution = await self.resolver.for_stream(stream.call_sid, stream.parameters)
        if resolution is None:
            log.error("call %s: no flow %r", stream.call_sid, stream.parameters.get("flow"))
            await stream.close(1008, "unknown flow")
            return
        flow = resolution.flow
        runnable, specs = tools_for(flow.tools, self.settings.tool_delays_ms, self.resolver.http)
        warm = self.warm.take(stream.call_sid, flow.name)
        session = warm.session if warm else self.session_factory(flow, specs, self.settings)
        provider = provider_of(flow, self.settings)
        control = self.shared.control
        deps = CallDeps(
            tools=runnable,
            fillers=self.shared.fillers,
            store=self.shared.store,
            hangup=control.hangup if control else None,
            transfer=control.transfer if control else None,
            save_record=self._save_record,
            on_event=self.shared.metrics.for_call(runnable),
            live=self._publish,
            clock=self._clock,
            provider_name=provider,
            caller_hash=self.shared.caller_keys.current(self.shared.store),
            trace=(self.shared.tracing.call(stream.call_sid, flow.name, provider)
                   if self.shared.tracing is not None else NO_TRACE),
        )
        call = Call(stream, session, flow, deps)
        if resolution.outcome is not None:
            call.record.event("flow_webhook", **resolution.outcome.to_event())
        self.calls[stream.call_sid] = call
        self._idle.clear()
        try:
            record = call.record
            await self.registry.add(
                LiveCall(stream.call_sid, self.instance_id, record.started_at, flow.name, record.caller)
            )
            try:
                if warm is not None:
                    await warm.connecting  # opened (or still opening) since the webhook
                else:
                    await session.connect()
            except Exception as exc:
                log.error("call %s: %s session failed to open: %s", stream.call_sid, provider, exc)
                await call.fail_before_start(f"connect failed: {exc}")
                return
            await call.run()
        finally:
            self.calls.pop(stream.call_sid, None)
            # After the record is saved: whoever waits for "ended" can then read it.
            await self.registry.remove(stream.call_sid, call.record.outcome)
            if not self.calls:
                self._idle.set()

    def _clock(self) -> dt.datetime:
        if not self.settings.tools_today:
            return dt.datetime.now(dt.UTC)
        # 08:00 UTC on the pinned day: before opening hours, so the whole day is bookable.
        return dt.datetime.combine(today_of(self.settings), dt.time(8, 0), tzinfo=dt.UTC)

    def _publish(self, call_sid: str, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(call_sid, kind, data)

    async def _save_record(self, record: CallRecord) -> None:
        await self.shared.records.save(record.call_sid, record.to_dict())

    async def apologise(self, stream: PhoneLine) -> None:
        """A call that cannot be taken safely (its stream token cannot be checked while
        the shared store is down): the caller hears an apology, the call ends, and it
        gets a record like any other."""
        flow = self.flows.get(stream.parameters.get("flow", "")) or self.flows.choose(None, None)
        hasher = self.shared.caller_keys.current(self.shared.store)
        record = CallRecord.begin(
            call_sid=stream.call_sid, flow=flow.name if flow else "",
            caller=stream.parameters.get("from", ""), called=stream.parameters.get("to", ""),
            provider="none",
            caller_hash=hasher(stream.parameters.get("from")) if hasher else None,
        )  # fmt: skip
        self.shared.metrics.calls_rejected.labels("token_uncheckable").inc()
        reader = asyncio.create_task(_drain(stream), name=f"apology-reader:{stream.call_sid}")
        try:
            clip = await self.shared.fillers.apology(flow.apology if flow else "")
            if clip:
                await stream.send_audio(clip, "apology")
                await stream.end_segment("apology")
                await stream.wait_played(APOLOGY_PLAYED_S)
            record.event("apology", reason="stream token cannot be checked (store down)")
        finally:
            reader.cancel()
            await stream.close(1000, "service unavailable")
            record.finish("service_unavailable", [])
            await self._save_record(record)

    # ---------------------------------------------------------------- ending calls

    async def hang_up_local(self, call_sid: str, outcome: str) -> bool:
        """End a call this process holds; False if it holds no such call."""
        call = self.calls.get(call_sid)
        if call is None:
            return False
        log.info("call %s: hanging up (%s)", call_sid, outcome)
        await call.hang_up(outcome)
        return True

    def snapshot_local(self, call_sid: str) -> dict[str, Any] | None:
        """The current record of a call this process holds, or None."""
        call = self.calls.get(call_sid)
        if call is None:
            return None
        return {**call.record.to_dict(), "state": call.state.value}

    async def wait_idle(self, timeout_s: float) -> bool:
        """Until no call is live; False if `timeout_s` passed first."""
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def end_all(self, outcome: str, wait_s: float = 5.0) -> None:
        """Hang up every live call (drain deadline) and give their records time to save."""
        for call in list(self.calls.values()):
            await call.hang_up(outcome)
        with contextlib.suppress(TimeoutError):
            await self.wait_idle(wait_s)


async def _drain(stream: PhoneLine) -> None:
    """Read the caller's side while nothing else does: mark echoes must keep playback going."""
    async for _event in stream:
        pass
