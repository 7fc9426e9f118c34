"""`phone-agent serve`: uvicorn with a drain on SIGTERM instead of an abrupt stop, on
one port, or two when the admin API, console and /metrics have their own (ADMIN_PORT)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.service.app import Service

SHUTDOWN_GRACE_S = 10  # after the drain: how long uvicorn lets connections close
log = logging.getLogger("uvicorn.error")


@dataclass
class Listeners:
    """The sockets `serve` listens on, bound before the app starts (port 0: any free one)."""

    host: str
    public: socket.socket
    admin: socket.socket | None = None

    @property
    def sockets(self) -> list[socket.socket]:
        return [self.public] + ([self.admin] if self.admin is not None else [])

    @property
    def admin_port(self) -> int | None:
        return None if self.admin is None else int(self.admin.getsockname()[1])

    def url(self, sock: socket.socket) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{sock.getsockname()[1]}"


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound as uvicorn binds its own (SO_REUSEADDR; IPv6 for an IPv6 host)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_listeners(host: str, port: int, admin_port: int | None) -> Listeners:
    public = bind(host, port)
    try:
        admin = bind(host, admin_port) if admin_port is not None else None
    except OSError:
        public.close()
        raise
    return Listeners(host, public, admin)


class PortSplit:
    """The admin app on the admin socket, the public app (and the lifespan) elsewhere.

    Chosen by the local port of the connection (`scope["server"]`), which no request
    header can change: a request to the public port never reaches an admin route.
    """

    def __init__(self, public: ASGIApp, admin: ASGIApp, admin_port: int) -> None:
        self.public = public
        self.admin = admin
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] != "lifespan" and server is not None and server[1] == self.admin_port:
            await self.admin(scope, receive, send)
        else:
            await self.public(scope, receive, send)


class DrainingServer(uvicorn.Server):
    """SIGTERM drains instead of stopping at once.

    uvicorn's own shutdown closes the listening socket first, so Twilio would get
    connection errors instead of a busy answer. Here SIGTERM makes the service stop taking
    calls (the webhook answers busy, /readyz 503) while it keeps serving; once the live
    calls end, or DRAIN_DEADLINE_S passes (they are then hung up), uvicorn shuts down as
    usual. A second signal, or Ctrl+C, exits at once.
    """

    def __init__(
        self, config: uvicorn.Config, service: Service, listeners: Listeners | None = None
    ) -> None:
        super().__init__(config)
        self.service = service
        self.listeners = listeners
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        ours = self.listeners
        if self.started and ours is not None:
            # uvicorn says where it listens only for sockets it binds itself; we bound ours
            # (so the admin port could be one of them): say it the same way, once serving.
            log.info("Uvicorn running on %s (Press CTRL+C to quit)", ours.url(ours.public))
            if ours.admin is not None:
                log.info("admin API, console and /metrics on %s", ours.url(ours.admin))

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first_term = sig == signal.SIGTERM and self._drain_task is None and not self.should_exit
        if first_term and self._loop is not None:
            # We are in a signal handler: hand over to the loop, do nothing else here.
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self.service.admission.begin_drain()
            self._drain_task = asyncio.create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.service.drain_then_end()
        finally:
            self.should_exit = True
