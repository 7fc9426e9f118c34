"""`WS /twilio/media`: the Media Streams endpoint.

Accepts the socket, reads `connected` and `start` (anything else, or nothing in time, is
a policy violation), checks the stream token before any model session is opened, then
hands a `TwilioStream` to the service's handler. `echo_handler` plays the caller back to
themselves: the whole path proven with no model.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from telephony.audio import FRAME_MS
from telephony.protocol import Connected, InboundEvent, Media, Start, Stop, parse_inbound
from telephony.stream import (
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    SEND_ERRORS,
    Handler,
    PeerGone,
    TwilioStream,
    close_reason,
    receive_message,
)
from telephony.tokens import TOKEN_PARAMETER, StreamTokens, TokenError, TokenUncheckable

logger = logging.getLogger(__name__)


class _Rejected(Exception):
    """The socket did not open like a Twilio Media Stream; close with this reason."""


async def _read_event(websocket: WebSocket, max_message_bytes: int) -> InboundEvent:
    raw = await receive_message(websocket)
    if isinstance(raw, bytes):
        raise _Rejected("binary frame before start")
    if len(raw) > max_message_bytes:
        raise _Rejected("oversized message before start")
    try:
        return parse_inbound(raw)
    except ValueError as exc:  # ProtocolError, or a stray ValueError from parsing
        raise _Rejected(f"invalid message before start: {exc}") from None


async def _handshake(websocket: WebSocket, max_message_bytes: int) -> Start:
    """`connected`, then `start`; anything else is a policy violation."""
    first = await _read_event(websocket, max_message_bytes)
    if not isinstance(first, Connected):
        raise _Rejected(f"expected 'connected', got '{type(first).__name__.lower()}'")
    second = await _read_event(websocket, max_message_bytes)
    if not isinstance(second, Start):
        raise _Rejected(f"expected 'start', got '{type(second).__name__.lower()}'")
    return second


def media_stream_route(
    path: str,
    handler: Handler,
    tokens: StreamTokens,
    *,
    max_message_bytes: int = 64 * 1024,
    malformed_limit: int = 50,
    on_malformed: Literal["skip", "close"] = "skip",
    start_timeout_s: float = 10.0,
    lead_ms: int = 200,
    mark_every_ms: int = 100,
    message_ms: int = FRAME_MS,
    uncheckable: Handler | None = None,
) -> WebSocketRoute:
    """The Media Streams endpoint: authenticates `start`, then runs `handler(stream)`.

    A genuine token whose single use cannot be checked (the used-token store is down)
    does not open the call: `uncheckable(stream)` runs instead (the service apologises to
    the caller and records it); without one the stream closes with 1011."""
    if on_malformed not in ("skip", "close"):
        raise ValueError(f"on_malformed must be 'skip' or 'close', got {on_malformed!r}")

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            start = await asyncio.wait_for(
                _handshake(websocket, max_message_bytes), start_timeout_s
            )
        except TimeoutError:
            logger.warning("media stream: no start within %.1f s", start_timeout_s)
            await _close(websocket, POLICY_VIOLATION, "no start message in time")
            return
        except _Rejected as exc:
            logger.warning("media stream: rejected before start: %s", exc)
            await _close(websocket, POLICY_VIOLATION, str(exc))
            return
        except PeerGone:
            logger.info("media stream: peer left before start")
            return

        extra = {"call_sid": start.call_sid, "stream_sid": start.stream_sid}
        run = handler
        try:
            params = start.custom_parameters
            await tokens.verify(params.get(TOKEN_PARAMETER, ""), start.call_sid, params)
        except TokenError as exc:
            logger.warning(
                "call %s: stream token rejected: %s", start.call_sid, exc.reason, extra=extra
            )
            await _close(websocket, POLICY_VIOLATION, f"stream token {exc.reason}")
            return
        except TokenUncheckable as exc:
            logger.error("call %s: %s", start.call_sid, exc, extra=extra)
            if uncheckable is None:
                await _close(websocket, INTERNAL_ERROR, "stream token cannot be checked")
                return
            run = uncheckable

        stream = TwilioStream(
            websocket,
            start,
            max_message_bytes=max_message_bytes,
            malformed_limit=malformed_limit,
            on_malformed=on_malformed,
            lead_ms=lead_ms,
            mark_every_ms=mark_every_ms,
            message_ms=message_ms,
        )
        logger.info("call %s: media stream started", start.call_sid, extra=extra)
        stream.start_reading()
        try:
            await stream.probe_round_trip()
            await run(stream)
        except Exception:
            logger.exception("call %s: stream handler failed", start.call_sid, extra=extra)
            await stream.close(INTERNAL_ERROR, "internal error")
        finally:
            await stream.close()
            await stream.stop_reading()
            s = stream.stats
            logger.info(
                "call %s: media stream ended: in=%d out=%d marks=%d/%d malformed=%d gaps=%d",
                start.call_sid,
                s.frames_in,
                s.frames_out,
                s.marks_acked,
                s.marks_sent,
                s.malformed,
                s.sequence_gaps,
                extra=extra,
            )

    return WebSocketRoute(path, endpoint, name="twilio_media")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code, close_reason(reason))
    except SEND_ERRORS:
        pass


async def echo_handler(stream: TwilioStream, *, frames_per_segment: int = 25) -> None:
    """Play the caller's audio back to them: proof of the whole path, no model needed."""
    count = 0
    index = 0
    segment = "echo-0"
    async for event in stream:
        if isinstance(event, Media):
            await stream.send_audio(event.payload, segment)
            count += 1
            if count >= frames_per_segment:
                await stream.end_segment(segment)
                index += 1
                count = 0
                segment = f"echo-{index}"
        elif isinstance(event, Stop):
            return
