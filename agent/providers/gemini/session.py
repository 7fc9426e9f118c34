"""Gemini Live (BidiGenerateContent over WebSocket) as a `RealtimeSession`.

One object per call. It owns the call's two resamplers (μ-law 8 kHz -> PCM16 16 kHz in,
PCM16 24 kHz -> μ-law 8 kHz out), one reader task, and the connection, which it swaps
underneath the caller when Gemini says `goAway` or the socket drops: the new connection
resumes the same conversation with the latest session-resumption handle, and caller
audio sent during the swap is buffered and flushed into the new connection.

Wire details and field names: /work/shared/protocols/gemini-live.md; builders live in
`wire.py`.

(A little over 400 lines: the I/O half of one provider connection, including goAway
resumption; its pure halves are `wire` and `events`.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent.providers.gemini.events import GeminiTranslator
from agent.providers.gemini.wire import (
    DEFAULT_URL,
    FORGIVEN_NOTE,
    INPUT_RATE,
    audio_message,
    build_setup,
    client_content,
    decode_frame,
    heard_prefix,
    interruption_note,
    say_prompt,
    tool_response,
)
from agent.realtime import (
    ProviderError,
    RealtimeCapabilities,
    RealtimeEvent,
    Scheduling,
    SessionConfig,
    SessionReconnecting,
    SessionResumed,
    ToolCall,
    ToolCallCancelled,
)
from telephony.audio import UlawToPcm

__all__ = ["DEFAULT_URL", "GeminiLiveSession"]

log = logging.getLogger(__name__)

# Gemini pongs have been measured at 8-30 s; websockets' default 20 s ping timeout
# kills healthy calls with "1011 keepalive ping timeout".
PING_INTERVAL_S = 25.0
PING_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 2.0  # don't let a dying connection hold up the swap
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Caller audio kept while the connection is swapped: ~2 s of PCM16 16 kHz.
MAX_GAP_AUDIO_BYTES = 2 * INPUT_RATE * 2
GOAWAY_MARGIN_S = 1.0  # swap this long before the server's deadline at the latest
# More drops than this within the window means the provider is unhealthy: end the call.
MAX_DROPS, DROP_WINDOW_S = 3, 60.0


@dataclass(slots=True)
class _Outgoing:
    """A client message waiting for a connection (before connect, during a swap)."""

    text: str
    audio_bytes: int = 0
    call_id: str = ""


class GeminiLiveSession:
    """A Gemini Live session for one call. See `agent.realtime.RealtimeSession`."""

    # `interrupted` means the server already cut its reply: after a noise the bridge can
    # only replay what it had received ("replay").
    capabilities = RealtimeCapabilities(
        out_of_band_speech=False, truncates=False, reports_speech_stopped=False,
        false_interruptions="replay",
    )  # fmt: skip

    def __init__(
        self,
        config: SessionConfig,
        *,
        url: str = DEFAULT_URL,
        api_key: str,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.config = config
        self._url = url
        self._api_key = api_key
        self._connect_timeout_s = connect_timeout_s
        self._specs = {spec.name: spec for spec in config.tools}

        self._events: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._live = False  # sends go straight to self._ws (else into self._pending)
        self._closed = False
        self._finished = False
        self._pending: deque[_Outgoing] = deque()
        self._pending_audio = 0
        self._dropped_audio = 0  # bytes of caller audio dropped from an overlong gap

        self._to_pcm = UlawToPcm(INPUT_RATE)  # one per call: stateful resampler
        self._tr = GeminiTranslator()  # server messages -> events, turn/call/handle state
        self._goaway_deadline: float | None = None  # monotonic time to swap by
        self._drops: deque[float] = deque()
        self._orphaned: set[str] = set()  # tool calls lost with an old connection
        self._deferred_context: list[str] = []
        self._cut_noted = False  # interrupt() told the model the caller heard only part

    # ------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        if self._ws is not None or self._closed:
            raise RuntimeError("GeminiLiveSession.connect() called twice or after close()")
        self._ws = await self._open(None)
        await self._flush()
        self._live = True
        self._reader = asyncio.create_task(self._run(), name="gemini-live-reader")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._live = False
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if self._ws is not None:
            await _close_quietly(self._ws)
        self._finish()

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    # ------------------------------------------------------------ client -> server

    def hold_audio(self, ulaw: bytes) -> bool:
        return False  # every frame is resampled and sent (agent/realtime.py)

    async def send_audio(self, ulaw: bytes, encoded: str = "") -> None:
        if self._closed:
            return
        # Convert even while buffering, so the resampler's state stays continuous.
        pcm = self._to_pcm.convert(ulaw)
        if pcm:
            await self._send(_Outgoing(audio_message(pcm), audio_bytes=len(pcm)))

    async def say(self, text: str) -> None:
        await self._send_json(client_content(say_prompt(text), turn_complete=True))

    async def say_out_of_band(self, text: str) -> None:
        # Gemini has no out-of-band responses: this is an in-conversation `say`. The
        # agent prefers cached filler clips, so this is only the fallback.
        await self.say(text)

    async def add_context(self, text: str) -> None:
        # clientContent cuts any generation in progress, so a note waits until the
        # model has finished speaking rather than silencing it mid-sentence.
        if self._tr.speaking:
            self._deferred_context.append(text)
            return
        await self._send_json(client_content(text, turn_complete=False))

    async def send_text(self, text: str) -> None:
        # A caller turn as text (keypad digits): a complete user turn, so the model replies.
        await self._send_json(client_content(text, turn_complete=True))

    async def send_tool_result(
        self,
        call: ToolCall,
        result: dict[str, Any],
        *,
        respond: bool = True,
        scheduling: Scheduling | None = None,
    ) -> None:
        spec = self._specs.get(call.name)
        sched: Scheduling | None = None
        if spec is not None and spec.background:
            sched = "SILENT" if not respond else (scheduling or spec.scheduling)
        await self._respond(call, result, sched)

    async def acknowledge_background(self, call: ToolCall) -> None:
        # NON_BLOCKING: the model already carries on by itself; nothing to send.
        return

    async def send_background_result(
        self, call: ToolCall, result: dict[str, Any], scheduling: Scheduling = "WHEN_IDLE"
    ) -> None:
        await self._respond(call, result, scheduling)

    async def _respond(
        self, call: ToolCall, result: dict[str, Any], scheduling: Scheduling | None
    ) -> None:
        entry = self._tr.calls.pop(call.call_id, None)
        if entry is None:
            # Cancelled by the server, or lost with a resumed session: send nothing.
            log.info("dropping result for tool call %s (%s): not open", call.call_id, call.name)
            return
        name = entry[0]
        spec = self._specs.get(name)
        if spec is None or not spec.background:
            scheduling = None  # only NON_BLOCKING functions take `scheduling`
        msg = tool_response(call.call_id, name, result, scheduling)
        await self._send(_Outgoing(_dumps(msg), call_id=call.call_id))

    async def interrupt(self, item_id: str | None, heard_ms: int | None) -> None:
        # Gemini cannot truncate and has already cut the turn; what it lacks is what
        # the caller actually heard, so say it in a context note. clientContent also
        # stops any generation still running, which is what "interrupt" asks for.
        turn = self._tr.turn_for(item_id)
        if heard_ms is None or turn is None or not turn.transcript:
            return
        if heard_ms >= turn.received_ms:
            return  # they heard all of it
        note = interruption_note(heard_prefix(turn.transcript, heard_ms, turn.received_ms))
        await self._send_json(client_content(note, turn_complete=False))
        self._cut_noted = True

    async def forgive(self, caller_item: str | None) -> None:
        # The bridge replayed the rest of the cut reply after a noise: take back the note
        # that said the caller heard only part of it.
        if self._cut_noted:
            self._cut_noted = False
            await self.add_context(FORGIVEN_NOTE)

    async def _send_json(self, msg: dict[str, Any]) -> None:
        await self._send(_Outgoing(_dumps(msg)))

    async def _send(self, out: _Outgoing) -> None:
        if self._closed or self._finished:
            return  # closed, or the session ended (fatal): nowhere to send
        ws = self._ws
        if not self._live or ws is None:
            self._enqueue(out)
            return
        try:
            await ws.send(out.text)
        except ConnectionClosed:
            if self._closed:
                return
            if self._live and self._ws is not ws:
                await self._send(out)  # the swap finished while we were sending
            else:
                self._enqueue(out)  # the reader is about to resume; flushed after

    def _enqueue(self, out: _Outgoing) -> None:
        self._pending.append(out)
        self._pending_audio += out.audio_bytes
        while self._pending_audio > MAX_GAP_AUDIO_BYTES:
            # Drop the oldest audio, never control messages.
            for i, item in enumerate(self._pending):
                if item.audio_bytes:
                    del self._pending[i]
                    self._pending_audio -= item.audio_bytes
                    self._dropped_audio += item.audio_bytes
                    break

    async def _flush(self) -> None:
        ws = self._ws
        assert ws is not None
        while self._pending:
            out = self._pending[0]
            if out.call_id and out.call_id in self._orphaned:
                self._pending.popleft()
                continue
            await ws.send(out.text)  # ConnectionClosed: left queued for the next try
            self._pending.popleft()
            self._pending_audio -= out.audio_bytes
        if self._dropped_audio:
            ms = self._dropped_audio * 1000 // (INPUT_RATE * 2)
            log.warning("connection gap outlasted the buffer: %d ms of caller audio lost", ms)
            self._dropped_audio = 0

    # ------------------------------------------------------------ connection

    async def _open(self, handle: str | None) -> ClientConnection:
        """Connect, send setup, and wait for setupComplete; nothing else is sent first."""
        try:
            ws = await connect(
                self._url,
                additional_headers={"x-goog-api-key": self._api_key},
                open_timeout=self._connect_timeout_s,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_TIMEOUT_S,
                close_timeout=CLOSE_TIMEOUT_S,
                max_size=MAX_FRAME_BYTES,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"Gemini Live: cannot connect: {exc}") from exc
        except Exception as exc:  # InvalidStatus, InvalidHandshake, ...
            raise ConnectionError(f"Gemini Live: handshake failed: {exc}") from exc
        try:
            await ws.send(_dumps(build_setup(self.config, handle)))
            async with asyncio.timeout(self._connect_timeout_s):
                while True:
                    msg = decode_frame(await ws.recv())
                    if "setupComplete" in msg:
                        break
                    log.debug("ignoring %s before setupComplete", sorted(msg))
        except ConnectionClosed as exc:
            await _close_quietly(ws)
            raise ConnectionError(f"Gemini Live: closed during setup: {_close_desc(exc)}") from exc
        except TimeoutError as exc:
            await _close_quietly(ws)
            raise ConnectionError("Gemini Live: no setupComplete in time") from exc
        except ValueError as exc:
            await _close_quietly(ws)
            raise ConnectionError(f"Gemini Live: bad frame during setup: {exc}") from exc
        except BaseException:
            await _close_quietly(ws)
            raise
        return ws

    async def _run(self) -> None:
        """The reader: server frames -> events, and connection swaps."""
        try:
            while True:
                ws = self._ws
                assert ws is not None
                try:
                    async with asyncio.timeout_at(self._goaway_at()):
                        data = await ws.recv()
                except TimeoutError:
                    if not await self._swap("goaway"):
                        return
                    continue
                except ConnectionClosed as exc:
                    if self._closed or not await self._on_drop(exc):
                        return
                    continue
                try:
                    msg = decode_frame(data)
                except ValueError:
                    log.warning("undecodable Gemini frame: %.200r", data)
                    continue
                await self._on_message(msg)
                tr = self._tr
                if self._goaway_deadline is not None and tr.turn is None and tr.handle_fresh:
                    # Idle with a fresh handle: swap now, the caller won't hear a thing.
                    if not await self._swap("goaway"):
                        return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not leave events() hanging forever
            log.exception("Gemini reader failed")
            self._emit(
                ProviderError(f"Gemini session failed: {exc!r}", code="internal", fatal=True)
            )
        finally:
            self._finish()

    def _goaway_at(self) -> float | None:
        if self._goaway_deadline is None:
            return None
        loop = asyncio.get_running_loop()
        return loop.time() + max(0.0, self._goaway_deadline - time.monotonic())

    async def _on_drop(self, exc: ConnectionClosed) -> bool:
        now = time.monotonic()
        self._drops.append(now)
        while self._drops and now - self._drops[0] > DROP_WINDOW_S:
            self._drops.popleft()
        desc = _close_desc(exc)
        if len(self._drops) > MAX_DROPS:
            self._fatal(f"Gemini Live keeps dropping ({desc})", exc)
            return False
        log.warning("Gemini Live connection lost (%s); resuming", desc)
        return await self._swap(f"connection lost: {desc}")

    async def _swap(self, reason: str) -> bool:
        """Replace the connection, resuming the conversation; False when it failed (fatal)."""
        started = time.monotonic()
        self._live = False
        self._goaway_deadline = None
        self._emit(SessionReconnecting(reason))
        # The server rejects a resume (1011) while the session's old socket is open.
        if self._ws is not None:
            await _close_quietly(self._ws)
        handle = self._tr.handle
        for event in self._tr.connection_lost(resumed=handle is not None):
            if isinstance(event, ToolCallCancelled):
                self._orphaned.update(event.call_ids)  # their queued results must not go out
            self._emit(event)
        try:
            self._ws = await self._open(handle)
        except Exception as exc:
            self._fatal(f"Gemini Live: could not resume after {reason}: {exc}", exc)
            return False
        try:
            await self._flush()
        except ConnectionClosed:
            return True  # the new connection died at once; the reader will notice
        self._live = True
        gap_ms = (time.monotonic() - started) * 1000
        label = reason if handle else f"{reason} (new session: context lost)"
        log.info("Gemini Live resumed after %s in %.0f ms", label, gap_ms)
        self._emit(SessionResumed(label, gap_ms=gap_ms))
        return True

    async def _on_message(self, msg: dict[str, Any]) -> None:
        for event in self._tr.feed(msg):
            self._emit(event)
        if self._tr.go_away_s is not None:
            left, self._tr.go_away_s = self._tr.go_away_s, None
            # Swap as soon as the model is idle with a fresh handle; by the deadline anyway.
            self._goaway_deadline = time.monotonic() + max(0.0, left - GOAWAY_MARGIN_S)
        if self._deferred_context and not self._tr.speaking:
            notes, self._deferred_context = self._deferred_context, []
            for note in notes:
                await self._send_json(client_content(note, turn_complete=False))

    def _fatal(self, message: str, exc: BaseException | None = None) -> None:
        code = ""
        cause = exc.__cause__ if isinstance(exc, ConnectionError) else exc
        if isinstance(cause, ConnectionClosed) and cause.rcvd is not None:
            code = str(cause.rcvd.code)
        self._emit(ProviderError(message, code=code, fatal=True))

    def _emit(self, event: RealtimeEvent) -> None:
        if not self._finished:
            self._events.put_nowait(event)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._events.put_nowait(None)


def _dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False)


def _close_desc(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"{frame.code} {frame.reason}".strip() if frame is not None else "1006 no close frame"


async def _close_quietly(ws: ClientConnection) -> None:
    try:
        await ws.close()
    except Exception:  # already gone; nothing to tell anyone
        log.debug("error closing Gemini socket", exc_info=True)
