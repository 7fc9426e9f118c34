"""Opening one OpenAI Realtime session: socket, `session.created`, `session.update`,
`session.updated`. A rejected update silently leaves OpenAI's defaults (24 kHz PCM,
no tools, default prompt), so anything but `session.updated` is an error here."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from agent.providers.openai import wire
from agent.realtime import SessionConfig

log = logging.getLogger("agent.providers.openai.session")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # audio deltas and session.updated can be large


class OpenAIRealtimeError(RuntimeError):
    """The session could not be opened or configured."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


async def open_session(
    url: str, api_key: str, config: SessionConfig, *, timeout_s: float
) -> tuple[ClientConnection, dict[str, Any]]:
    """A configured session: the socket and the effective config from `session.updated`."""
    ws: ClientConnection | None = None
    try:
        async with asyncio.timeout(timeout_s):
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {api_key}"},  # GA: no OpenAI-Beta
                compression=None,  # base64 audio barely compresses; save the CPU
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=None,  # the timeout above covers the whole handshake
                ping_interval=20,
                ping_timeout=20,
                close_timeout=2,
            )
            first = wire.parse_object(await ws.recv())
            if first.get("type") != "session.created":
                raise OpenAIRealtimeError(*wire.error_of(first, "expected session.created"))
            await ws.send(json.dumps(wire.session_update(config)))
            while True:
                ev = wire.parse_object(await ws.recv())
                kind = ev.get("type")
                if kind == "session.updated":
                    break
                if kind == "error":
                    msg, code = wire.error_of(ev, "session.update rejected")
                    raise OpenAIRealtimeError(f"session.update rejected: {msg}", code)
                log.debug("ignoring %s before session.updated", kind)
        session = ev.get("session") or {}
        if problem := wire.format_problem(session, config.audio_format):
            raise OpenAIRealtimeError(problem)
        return ws, session
    except BaseException as exc:
        if ws is not None:
            await ws.close()
        if isinstance(exc, OpenAIRealtimeError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, TimeoutError):
            raise OpenAIRealtimeError("timed out opening the OpenAI Realtime session") from exc
        raise OpenAIRealtimeError(f"could not open an OpenAI Realtime session: {exc}") from exc
