"""The service, assembled in one visible place: `create_app(settings)`.

Telephony (webhook, media stream) and the agent (flows, sessions, calls, tools) meet
here. `Service` composes one process's parts, each with one role:

- `Shared`: what every call shares (store, stream tokens, filler clips, Twilio control,
  metrics), opened in the lifespan;
- `Reception`: the voice webhook's side (which flow answers, the model session warmed);
- `Admission`: whether a new call is taken now (draining, capacity, overload);
- `Switchboard`: the live calls, answered on the media stream and ended on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from agent.flows import Flows, load_flows
from agent.service.admin import admin_routes
from agent.service.admin_callers import caller_routes
from agent.service.admission import Admission
from agent.service.console import console_routes
from agent.service.flow_resolver import FlowResolver
from agent.service.live_calls import new_instance_id
from agent.service.prewarm import WarmSessions
from agent.service.reception import Reception
from agent.service.retention import Retention
from agent.service.sessions import SessionFactory, make_session
from agent.service.settings import Settings
from agent.service.shared import Shared
from agent.service.softphone import softphone_routes
from agent.service.switchboard import Switchboard
from telephony.media_route import media_stream_route
from telephony.webhook import WebhookConfig, voice_routes

log = logging.getLogger(__name__)


class Service:
    """One server process: its parts, and their lifecycle (never per-call state)."""

    def __init__(self, settings: Settings, flows: Flows, session_factory: SessionFactory) -> None:
        self.settings = settings
        self.flows = flows
        self.instance_id = new_instance_id()
        self.shared = Shared(settings)
        self.warm = WarmSessions(
            settings.prewarm_ttl_s, settings.max_concurrent_calls,
            lambda outcome: self.shared.metrics.prewarmed.labels(outcome).inc(),
        )
        # The flow each call gets (its flow webhook), from the voice webhook to the stream.
        self.resolver = FlowResolver(flows, self.shared.http, lambda: self.shared.store,
                                     self.shared.metrics, settings.stream_token_ttl_s)
        self.switchboard = Switchboard(
            settings, flows, self.shared, session_factory, self.warm, self.instance_id,
            self.resolver,
        )
        self.admission = Admission(settings, self.shared.metrics, lambda: len(self.switchboard.calls))
        self.reception = Reception(settings, flows, session_factory, self.warm, self.admission,
                                   self.resolver)
        self.retention = Retention(lambda: self.shared.store, booking_days=settings.booking_retention_days,
                                   interval_s=settings.purge_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.shared.open()
        await self.switchboard.registry.start()
        lag_task = asyncio.create_task(self.admission.lag.run(), name="loop-lag")
        spool_task = asyncio.create_task(self.shared.records.run(), name="record-spool")
        purge_task = asyncio.create_task(self.retention.run(), name="retention")
        if not self.settings.admin_token:
            log.warning("admin API and console disabled: set ADMIN_TOKEN to enable /admin and /console")
        log.info("phone-agent ready: %d flows, store=%s, instance %s",
                 len(self.flows.flows), type(self.shared.store).__name__, self.instance_id)
        try:
            yield
        finally:
            lag_task.cancel()
            purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge_task  # a purge in flight must not meet a closed store
            await self.drain_then_end()
            spool_task.cancel()
            await asyncio.gather(spool_task, return_exceptions=True)
            await self.shared.records.flush()  # a last try; what is left waits on disk
            await self.warm.close_all()
            await self.switchboard.registry.close()
            await self.shared.close()

    async def drain_then_end(self) -> bool:
        """Stop taking calls, wait for the live ones up to the drain deadline, then hang
        up what is left. True if every call ended by itself."""
        self.admission.begin_drain()
        if await self.switchboard.wait_idle(self.admission.drain_left_s()):
            return True
        log.warning("drain deadline passed with %d live calls", len(self.switchboard.calls))
        await self.switchboard.end_all("drain_deadline")
        return False

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        lag = self.admission.lag
        store_ok = await self.shared.store_answers()
        # Overloaded: a balancer should send new calls elsewhere; live ones stay here.
        ready = store_ok and not self.admission.draining and not lag.overloaded
        return ready, {
            "ready": ready,
            "store": "ok" if store_ok else "not answering",
            "active_calls": len(self.switchboard.calls),
            "draining": self.admission.draining,
            "overloaded": lag.overloaded,
            "loop_lag_ms": round(lag.lag_ms, 1),
        }


async def healthz(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def create_app(
    settings: Settings | None = None,
    *,
    flows: Flows | None = None,
    session_factory: SessionFactory | None = None,
    unsigned_webhooks: bool = False,
) -> Starlette:
    """The app Twilio talks to. With `settings.admin_port` set, the admin API, console and
    /metrics are not in it but in `app.state.admin_app` (served on that port by `serve`).

    Without a Twilio auth token it refuses (ValueError) unless `unsigned_webhooks`: local
    experiments only, every unsigned webhook is then accepted with a warning.
    """
    settings = settings or Settings()
    flows = flows or load_flows(settings.flows_file)
    service = Service(settings, flows, session_factory or make_session)

    async def readyz(_request: Request) -> JSONResponse:
        ready, body = await service.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    media_path = "/twilio/media"
    webhook = WebhookConfig(
        public_url=settings.public_url,
        auth_token=settings.twilio_auth_token,
        tokens=service.shared.tokens,
        trust_forwarded_headers=settings.trust_forwarded_headers,
        busy=service.admission.turn_away,
        # Named after this instance, so the proxy sends the stream where the session warms.
        media_path=f"{media_path}/{settings.stream_route}" if settings.stream_route else media_path,
        unsigned=unsigned_webhooks,
    )
    health = [Route("/healthz", healthz), Route("/readyz", readyz)]
    public = [
        *health,
        *voice_routes(webhook, service.reception.choose_flow, service.reception.on_status),
        # Any instance takes any route's stream: the proxy's fallback when one is down.
        *(
            media_stream_route(
                path, service.switchboard.answer, service.shared.tokens,
                uncheckable=service.switchboard.apologise, message_ms=settings.media_message_ms,
            )  # fmt: skip
            for path in (media_path, media_path + "/{route}")
        ),
    ]
    private = [
        Route("/metrics", service.shared.metrics.endpoint),
        *admin_routes(settings.admin_token, service.switchboard, service.admission),
        *caller_routes(settings.admin_token, service.shared),
        # The console's softphone: a call placed the way the voice webhook answers one.
        *softphone_routes(settings.admin_token, webhook, service.reception.choose_flow, flows,
                          separate_admin=settings.admin_port is not None),
        *console_routes(settings.admin_token, _stream_origin(settings)),
    ]
    if settings.admin_port is None:
        app = Starlette(routes=public + private, lifespan=service.lifespan)
        app.state.admin_app = None
    else:
        app = Starlette(routes=public, lifespan=service.lifespan)
        # No lifespan of its own: it serves the same service, opened by the public app's.
        app.state.admin_app = Starlette(routes=health + private)
    app.state.service = service
    return app


def _stream_origin(settings: Settings) -> str | None:
    """The media stream's origin when the console is served elsewhere (ADMIN_PORT)."""
    if settings.admin_port is None or not settings.public_url:
        return None
    scheme, _, host = settings.public_url.rstrip("/").partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}"
