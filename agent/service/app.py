"""The service, assembled in one visible place: `create_app(settings)`.

Telephony (webhook, media stream) and the agent (flows, sessions, calls, tools) meet
here and nowhere else. Shared resources (store, Redis, Twilio client) are opened in the
lifespan; everything per call lives in the `Call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from agent.call import Call, CallDeps
from agent.callrecord import CallRecord
from agent.fillers import FillerCache
from agent.flow_tools import tools_for
from agent.flows import Flows, load_flows
from agent.realtime import RealtimeSession, ToolSpec
from agent.service.admin import admin_routes, console_routes
from agent.service.live_calls import LiveCall, Registry, new_instance_id, open_registry
from agent.service.metrics import Metrics
from agent.service.overload import LoopLag
from agent.service.prewarm import WarmSessions
from agent.service.sessions import make_session, provider_of, today_of
from agent.service.settings import Settings
from agent.service.used_tokens import RedisUsedTokens
from telephony.control import TwilioControl
from telephony.stream import media_stream_route
from telephony.tokens import MemoryUsedTokens, StreamTokens
from telephony.webhook import WebhookConfig, voice_routes
from tools.store import open_store

log = logging.getLogger(__name__)

SessionFactory = Callable[[Any, tuple[ToolSpec, ...], Settings], RealtimeSession]


class Service:
    """Shared state of one server process (never per-call state)."""

    def __init__(self, settings: Settings, flows: Flows, session_factory: SessionFactory) -> None:
        self.settings = settings
        self.flows = flows
        self.session_factory = session_factory
        secret = settings.stream_token_secret or secrets.token_hex(32)
        # Single use across instances needs the shared Redis (nothing connects until used).
        self.used_tokens: Any = (
            RedisUsedTokens(settings.redis_url, settings.redis_prefix) if settings.redis_url else MemoryUsedTokens()
        )
        self.tokens = StreamTokens(secret.encode(), ttl_s=settings.stream_token_ttl_s, used=self.used_tokens)
        self.store: Any = None
        self.fillers = FillerCache()
        self.control: TwilioControl | None = None
        self.loopback: Any = None  # in-process runs: stands in for Twilio's REST control
        self.calls: dict[str, Call] = {}
        self.warm = WarmSessions(settings.prewarm_ttl_s, settings.max_concurrent_calls)
        self._idle = asyncio.Event()  # set while no call is live (drain waits on it)
        self._idle.set()
        self.draining = False
        self._drain_deadline: float | None = None  # loop time when draining gives up
        self.instance_id = new_instance_id()
        # Which instance holds which call + the admin control channel (Redis or in-process).
        self.registry: Registry = open_registry(
            settings.redis_url, self, self.instance_id, prefix=settings.redis_prefix
        )
        self.call_status: dict[str, str] = {}
        self.metrics = Metrics()
        self.lag = LoopLag(settings.overload_lag_ms, on_sample=self.metrics.loop_lag.set)
        # Live observers of every call (console, `phone-agent call`): (call_sid, kind, data).
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []

    # ---------------------------------------------------------------- lifecycle

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        self.store = open_store(s.redis_url, s.data_dir, prefix=s.redis_prefix)
        self.fillers = FillerCache(self.store)
        if s.twilio_account_sid and s.twilio_auth_token:
            self.control = TwilioControl(s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base_url)
        await self.registry.start()
        lag_task = asyncio.create_task(self.lag.run(), name="loop-lag")
        if not s.admin_token:
            log.warning("admin API and console disabled: set ADMIN_TOKEN to enable /admin and /console")
        log.info("phone-agent ready: %d flows, store=%s, instance %s",
                 len(self.flows.flows), type(self.store).__name__, self.instance_id)
        try:
            yield
        finally:
            lag_task.cancel()
            if not await self.drain():
                await self.end_calls("drain_deadline")
            await self.warm.close_all()
            await self.registry.close()
            await self.store.close()
            if hasattr(self.used_tokens, "close"):
                await self.used_tokens.close()

    def begin_drain(self) -> None:
        """Stop taking calls (the webhook answers busy, /readyz 503); live calls go on."""
        if self.draining:
            return
        self.draining = True
        self._drain_deadline = asyncio.get_running_loop().time() + self.settings.drain_deadline_s
        log.info("draining: %d live calls, deadline %.0fs", len(self.calls), self.settings.drain_deadline_s)

    async def drain(self) -> bool:
        """Wait until no call is live or the drain deadline (counted from the first
        `begin_drain`) passes. True if every call ended by itself."""
        self.begin_drain()
        assert self._drain_deadline is not None
        remaining = self._drain_deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                await self._idle.wait()
        except TimeoutError:
            log.warning("drain deadline passed with %d live calls", len(self.calls))
            return False
        return True

    async def end_calls(self, outcome: str, wait_s: float = 5.0) -> None:
        """Hang up every live call (drain deadline) and give their records time to save."""
        for call in list(self.calls.values()):
            await call.hang_up(outcome)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._idle.wait()

    # ---------------------------------------------------------------- registry Holder

    async def hang_up_local(self, call_sid: str, outcome: str) -> bool:
        call = self.calls.get(call_sid)
        if call is None:
            return False
        log.info("call %s: hanging up (%s)", call_sid, outcome)
        await call.hang_up(outcome)
        return True

    def snapshot_local(self, call_sid: str) -> dict[str, Any] | None:
        call = self.calls.get(call_sid)
        if call is None:
            return None
        return {**call.record.to_dict(), "state": call.state.value}

    def busy_reason(self) -> str | None:
        """Why a new call would be turned away now, or None."""
        if self.draining:
            return "draining"
        if len(self.calls) >= self.settings.max_concurrent_calls:
            return "capacity"
        if self.lag.overloaded:
            return "overloaded"
        return None

    def busy(self) -> bool:
        return self.busy_reason() is not None

    def turn_away(self) -> bool:
        """The voice webhook's question: True (and counted, and logged why) to answer busy."""
        reason = self.busy_reason()
        if reason is None:
            return False
        self.metrics.calls_rejected.labels(reason).inc()
        log.warning("turning a new call away: %s (%d live, loop lag %.0f ms)",
                    reason, len(self.calls), self.lag.lag_ms)
        return True

    # ---------------------------------------------------------------- webhook hooks

    def choose_flow(self, form: Any) -> str | None:
        flow = self.flows.choose(form.get("To"), form.get("flow"))
        if flow is None:
            return None
        if self.settings.prewarm_sessions and not self.busy():
            # Twilio has yet to fetch this TwiML and dial the stream: open the model now.
            _, specs = tools_for(flow.tools, self.settings.tool_delays_ms)
            session = self.session_factory(flow, specs, self.settings)
            self.warm.start(form.get("CallSid", ""), flow.name, session)
        return flow.name

    def on_status(self, form: dict[str, Any]) -> None:
        sid, status = form.get("CallSid", ""), form.get("CallStatus", "")
        self.call_status[sid] = status
        log.info("call %s status %s", sid, status)

    # ---------------------------------------------------------------- media stream

    async def handle_stream(self, stream: Any) -> None:
        flow = self.flows.get(stream.parameters.get("flow", "")) or self.flows.choose(None, None)
        if flow is None:
            log.error("call %s: no flow %r", stream.call_sid, stream.parameters.get("flow"))
            await stream.close(1008, "unknown flow")
            return
        runnable, specs = tools_for(flow.tools, self.settings.tool_delays_ms)
        control = self.control or self.loopback
        warm = self.warm.take(stream.call_sid, flow.name)
        session = warm.session if warm else self.session_factory(flow, specs, self.settings)
        provider = provider_of(flow, self.settings)
        deps = CallDeps(
            tools=runnable,
            fillers=self.fillers,
            hangup=control.hangup if control else None,
            transfer=control.transfer if control else None,
            store=self.store,
            save_record=self._save_record,
            on_event=self.metrics.on_event,
            live=self._publish,
            clock=self._clock,
            provider_name=provider,
        )
        call = Call(stream, session, flow, deps)
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
        await self.store.put_record("call", record.call_sid, record.to_dict(), ttl_s=30 * 86400)


SHUTDOWN_GRACE_S = 10  # after the drain: how long uvicorn lets connections close


class DrainingServer(uvicorn.Server):
    """`phone-agent serve`: SIGTERM drains instead of stopping at once.

    uvicorn's own shutdown closes the listening socket first, so Twilio would get
    connection errors instead of a busy answer. Here SIGTERM makes the service stop taking
    calls (the webhook answers busy, /readyz 503) while it keeps serving; once the live
    calls end, or DRAIN_DEADLINE_S passes (they are then hung up), uvicorn shuts down as
    usual. A second signal, or Ctrl+C, exits at once.
    """

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        first_term = sig == signal.SIGTERM and self._drain_task is None and not self.should_exit
        if first_term and self._loop is not None:
            # We are in a signal handler: hand over to the loop, do nothing else here.
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self.service.begin_drain()
            self._drain_task = asyncio.create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            if not await self.service.drain():
                await self.service.end_calls("drain_deadline")
        finally:
            self.should_exit = True


async def healthz(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(
    settings: Settings | None = None,
    *,
    flows: Flows | None = None,
    session_factory: SessionFactory | None = None,
) -> Starlette:
    settings = settings or Settings()
    flows = flows or load_flows(settings.flows_file)
    service = Service(settings, flows, session_factory or make_session)

    async def readyz(_request: Request) -> JSONResponse:
        # Overloaded: a balancer should send new calls elsewhere; live ones stay here.
        ready = service.store is not None and not service.draining and not service.lag.overloaded
        body = {"ready": ready, "active_calls": len(service.calls), "draining": service.draining,
                "overloaded": service.lag.overloaded, "loop_lag_ms": round(service.lag.lag_ms, 1)}
        return JSONResponse(body, status_code=200 if ready else 503)

    webhook = WebhookConfig(
        public_url=settings.public_url,
        auth_token=settings.twilio_auth_token,
        tokens=service.tokens,
        trust_forwarded_headers=settings.trust_forwarded_headers,
        busy=service.turn_away,
    )
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", service.metrics.endpoint),
        *voice_routes(webhook, service.choose_flow, service.on_status),
        media_stream_route("/twilio/media", service.handle_stream, service.tokens),
        *admin_routes(service, settings.admin_token),
        *console_routes(settings.admin_token),
    ]
    app = Starlette(routes=routes, lifespan=service.lifespan)
    app.state.service = service
    return app
