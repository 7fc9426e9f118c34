"""A whole phone-agent in this process: server on a free port, optionally the offline engine.

Used by `phone-agent call` (no --url), `loadtest`, `make demo` and the tests.

    async with local_stack(data_dir=tmp) as stack:
        target = await dial_webhook(stack.base_url, stack.auth_token, to=..., from_=...)

The listening socket is bound before uvicorn starts (port 0), so there is no race for
the port; readiness is an event set after uvicorn's own startup, not a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from agent.service.app import Service, create_app
from agent.service.sessions import SessionFactory
from agent.service.settings import Settings
from agent.service.switchboard import Listener
from tools.store import Store


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the embedding program owns Ctrl+C


@contextlib.asynccontextmanager
async def run_app(
    app: Any, sock: socket.socket | None = None, **uvicorn_options: Any
) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1:<free port> (or on `sock`) until the block exits;
    yields the base URL."""
    sock = sock or bind_free()
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "auto",
        "timeout_graceful_shutdown": 2,
        "ws_max_size": 64 * 1024,
        # Compressing base64 μ-law costs ~12% of the server's CPU and saves nothing useful.
        "ws_per_message_deflate": False,
        "log_config": None,
    }
    options.update(uvicorn_options)
    server = _Server(uvicorn.Config(app, **options))
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


def bind_free() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Stack:
    base_url: str
    auth_token: str
    service: Service
    settings: Settings

    def watch(self, listener: Listener) -> None:
        """Hear every event of every call (`record_collector`, a live printer)."""
        self.service.switchboard.listeners.append(listener)

    @property
    def store(self) -> Store:
        return self.service.shared.store


@contextlib.asynccontextmanager
async def local_stack(
    *,
    data_dir: Path | None = None,
    engine: bool = True,
    realtime_url: str | None = None,
    session_factory: SessionFactory | None = None,
    **settings: Any,
) -> AsyncIterator[Stack]:
    """Server (+ offline engine unless `engine=False`) with a fresh store and auth token.

    `realtime_url` points every flow at another OpenAI-protocol server (e.g. a fake).
    """
    auth_token = secrets.token_hex(16)
    # Every flow runs on the "local" provider here, which authenticates with the engine
    # token: our own engine's, or the key of the server at `realtime_url` (a fake's).
    engine_token = settings.pop("local_engine_token", None) or (
        settings.get("openai_api_key") if realtime_url else None
    ) or secrets.token_urlsafe(24)
    async with contextlib.AsyncExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="phone-agent-")))
        url = realtime_url
        if engine and url is None:
            from agent.local.server import engine_port, serve_engine

            server = await serve_engine("127.0.0.1", 0, token=engine_token)
            stack.push_async_callback(_close_engine, server)
            url = f"ws://127.0.0.1:{engine_port(server)}/v1/realtime"
        # Bound first: PUBLIC_URL (what webhook signatures cover) must name this port.
        sock = bind_free()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        cfg = Settings(
            public_url=base,
            twilio_auth_token=auth_token,
            data_dir=data_dir,
            redis_url=settings.pop("redis_url", None),
            # Off unless asked for: in-process, the test or emulator shares this loop and
            # its own work would count as the server's load.
            overload_lag_ms=settings.pop("overload_lag_ms", 0.0),
            force_local=url is not None,
            local_engine_url=url or Settings().local_engine_url,
            local_engine_token=engine_token,
            stream_token_secret=secrets.token_hex(16),
            **settings,
        )
        app = create_app(cfg, session_factory=session_factory)
        if not cfg.twilio_account_sid:
            # No Twilio here: hang-ups and transfers end the emulated stream like Twilio would.
            from agent.devkit.loopback_control import LoopbackControl

            service = app.state.service
            service.shared.control = LoopbackControl(service.switchboard.calls.get)
        served = await stack.enter_async_context(run_app(app, sock))
        yield Stack(base_url=served, auth_token=auth_token, service=app.state.service, settings=cfg)


async def _close_engine(server: Any) -> None:
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 5)
