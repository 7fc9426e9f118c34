"""Run a real ASGI app under uvicorn on a free port, inside the test's event loop.

    async with run_app(app) as base_url:      # "http://127.0.0.1:54321"
        ...

The listening socket is bound before uvicorn starts (port 0), so there is no race for
the port; readiness is an event set after uvicorn's own startup, not a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


def free_port() -> int:
    """A port that was free a moment ago (prefer `run_app`, which cannot race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _TestServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Leave Ctrl+C to pytest.
        yield


@contextlib.asynccontextmanager
async def run_app(app: Any, **uvicorn_options: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1:<free port> until the block exits; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "auto",
        "timeout_graceful_shutdown": 2,
    }
    options.update(uvicorn_options)
    server = _TestServer(uvicorn.Config(app, **options))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    try:
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            await serving  # re-raise why startup failed
            raise RuntimeError("uvicorn exited before it started")
        yield f"http://127.0.0.1:{port}"
    finally:
        ready.cancel()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        sock.close()
