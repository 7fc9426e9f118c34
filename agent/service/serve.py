"""`phone-agent serve`: uvicorn with a drain on SIGTERM instead of an abrupt stop."""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn

from agent.service.app import Service

SHUTDOWN_GRACE_S = 10  # after the drain: how long uvicorn lets connections close


class DrainingServer(uvicorn.Server):
    """SIGTERM drains instead of stopping at once.

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

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

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
