"""The offline engine's WebSocket server: OpenAI Realtime (GA) at `/v1/realtime?model=...`.

Point the OpenAI provider (or the official SDK, via `websocket_base_url`) at
`ws://HOST:PORT/v1` and it talks to local speech models instead of api.openai.com.

    server = await serve_engine("127.0.0.1", 0)      # in-process, port 0 = any free port
    port = engine_port(server)
    ...
    server.close(); await server.wait_closed()

    run_engine("127.0.0.1", 8765)                     # blocking: `phone-agent engine --port N`

Each connection gets its own `EngineSession`; the only shared things are the speech
models (read-only) and their worker pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import signal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .models import SpeechModels, load_models, warm_up
from .protocol import ProtocolError, error_event
from .session import EngineSession

log = logging.getLogger(__name__)

MAX_MESSAGE = 16 * 1024 * 1024  # OpenAI accepts appends up to 15 MiB of base64
DEFAULT_MODEL = "gpt-realtime"


def _is_realtime_path(path: str) -> bool:
    return urlsplit(path).path.rstrip("/") in ("/v1/realtime", "/realtime")


def _check_request(
    connection: ServerConnection, request: Request, token: str | None
) -> Response | None:
    if not _is_realtime_path(request.path):
        return connection.respond(HTTPStatus.NOT_FOUND, "Not found: the engine serves /v1/realtime\n")
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            log.warning("engine: refused a connection without the engine token")
            return connection.respond(
                HTTPStatus.UNAUTHORIZED, "Unauthorized: send Authorization: Bearer $LOCAL_ENGINE_TOKEN\n"
            )
    return None


async def _handler(connection: ServerConnection, models: SpeechModels) -> None:
    request = connection.request
    assert request is not None
    if "realtime=v1" in request.headers.get("OpenAI-Beta", ""):
        # Same as OpenAI since the beta shutdown: a beta client must not silently "work" here.
        err = ProtocolError("beta_api_shutdown", "The Realtime Beta API is no longer supported. "
                            "Please use the GA interface (no 'OpenAI-Beta: realtime=v1' header).")  # fmt: skip
        await connection.send(json.dumps({"event_id": "event_beta", **error_event(err, None)}))
        await connection.close(1008, "beta interface not supported")
        return
    model = parse_qs(urlsplit(request.path).query).get("model", [DEFAULT_MODEL])[0]
    session = EngineSession(connection, models, model)
    try:
        await session.run()
    except ConnectionClosed:
        pass  # the client went away mid-send: normal end of a call
    except Exception:
        log.exception("engine session failed")


async def serve_engine(
    host: str = "127.0.0.1", port: int = 0, *, warm: bool = True, token: str | None = None
) -> Server:
    """Load the models (once per process), then listen. Returns the running websockets Server.

    `port=0` picks a free port (see `engine_port`). `warm` runs every model once and
    pre-renders common prompts so the first caller does not pay for it. With `token`, a
    client must send `Authorization: Bearer <token>` (401 otherwise).
    """
    loop = asyncio.get_running_loop()
    models = await loop.run_in_executor(None, load_models)
    if warm:
        await loop.run_in_executor(None, warm_up, models)

    async def handler(connection: ServerConnection) -> None:
        await _handler(connection, models)

    server = await serve(
        handler,
        host,
        port,
        process_request=lambda connection, request: _check_request(connection, request, token),
        max_size=MAX_MESSAGE,
        compression=None,  # audio does not compress; deflate only costs CPU
    )
    log.info("local engine listening on ws://%s:%d/v1/realtime", host, engine_port(server))
    return server


def engine_port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def run_engine(host: str = "127.0.0.1", port: int = 8765, token: str = "") -> None:
    """Blocking entry point: serve until SIGINT/SIGTERM (`phone-agent engine --port N`).

    Without `token` (LOCAL_ENGINE_TOKEN) it makes one and prints it for the server's
    settings: the engine never listens unauthenticated.
    """
    made = not token
    token = token or secrets.token_urlsafe(32)

    async def main() -> None:
        server = await serve_engine(host, port, token=token)
        print(f"local engine listening on ws://{host}:{engine_port(server)}/v1/realtime", flush=True)
        if made:
            print(f"its token (set LOCAL_ENGINE_TOKEN={token} for phone-agent serve)", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
        await server.wait_closed()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
