"""OpenAI Realtime (GA) over WebSocket: one `RealtimeSession` per phone call.

Audio stays G.711 μ-law end to end by default (`audio/pcmu`); `pcm24` transcodes with
per-call stateful resamplers. The pieces:
- `wire`: client-event builders (pure),
- `gate`: one default-conversation response at a time (pure),
- `state`: server-event translation and call bookkeeping (pure),
- here: the socket, the reader task, and the session hand-over (OpenAI ends a session
  after 60 minutes; connections drop) with the transcript re-seeded into the new one.

(A little over 400 lines: the I/O half of one provider connection, including rollover
and reconnect; its pure halves are `wire`, `gate` and `state`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from agent.providers.openai import wire
from agent.providers.openai.connection import OpenAIRealtimeError, open_session
from agent.providers.openai.gate import UNKNOWN_RESPONSE, Kind
from agent.providers.openai.state import ConversationState, HistoryLine
from agent.providers.openai.uplink import QuietBatcher
from agent.realtime import (
    ProviderError,
    RealtimeCapabilities,
    RealtimeEvent,
    Scheduling,
    SessionConfig,
    SessionReconnecting,
    SessionResumed,
    SpeechStopped,
    ToolCall,
)
from telephony.audio import UlawToPcm

log = logging.getLogger(__name__)

SWAP_BUFFER_MS = 10_000  # caller audio kept while a session is being replaced
ROLLOVER_IDLE_WAIT_S = 20.0  # how long a planned hand-over waits for a quiet moment
ROLLOVER_RETRY_S = 30.0
SEED_MAX_LINES = 120  # transcript lines carried into a replacement session

__all__ = ["OpenAIRealtimeError", "OpenAIRealtimeSession"]


def _capabilities(*, hold: bool) -> RealtimeCapabilities:
    return RealtimeCapabilities(
        out_of_band_speech=True, truncates=True, reports_speech_stopped=True,
        false_interruptions="hold" if hold else "none",
    )  # fmt: skip


@dataclass(eq=False)
class _Conn:
    """One provider connection (= one provider session)."""

    ws: ClientConnection
    reader: asyncio.Task[None] | None = None
    retired: bool = False  # we are replacing or closing it: its end is expected
    # Where this connection's input buffer starts in the call's caller audio (ms): its
    # speech-stopped `audio_end_ms` maps onto the call from here.
    caller_base_ms: float | None = None
    dead: bool = False


class OpenAIRealtimeSession:
    """`RealtimeSession` for OpenAI Realtime (and the local engine: same protocol)."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        url: str = wire.DEFAULT_URL,
        api_key: str,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.config = config
        self._url = wire.realtime_url(url, config.model)
        self._api_key = api_key
        self._connect_timeout_s = connect_timeout_s
        self._bpm = wire.BYTES_PER_MS[config.audio_format]
        self._up = UlawToPcm(24000) if config.audio_format == "pcm24" else None  # one per call
        self.capabilities = _capabilities(hold=False)  # known once the server confirms
        self._uplink = QuietBatcher()
        self.state = ConversationState(config.audio_format)
        self._events: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()
        self._conn: _Conn | None = None
        self._conns: set[_Conn] = set()  # every open connection, closed by close()
        # Provider format, during a swap, with where each starts in the caller's audio.
        self._pending_audio: deque[tuple[bytes, float]] = deque()
        self._caller_ms = 0.0  # caller audio handed to send_audio so far (ms)
        self._pending_audio_bytes = 0
        self._swapping = False  # no live session: control events wait (history/gate)
        self._buffering = False  # caller audio is held until the new session is in place
        self._outage_since: float | None = None
        self._timer: asyncio.Task[None] | None = None
        self._replace_task: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._closed = False
        self._ended = False

    @property
    def rate_limits(self) -> list[dict[str, Any]]:
        """The latest `rate_limits.updated` payload."""
        return self.state.rate_limits

    @property
    def effective_session(self) -> dict[str, Any]:
        """The session config the server confirmed in `session.updated`."""
        return self.state.session

    # ------------------------------------------------------------ RealtimeSession

    async def connect(self) -> None:
        if self._conn is not None or self._closed:
            raise RuntimeError("connect() called twice or after close()")
        self._install(await self._open())
        await self._flush_audio(self._conn)  # anything fed before connect() finished

    def hold_audio(self, ulaw: bytes) -> bool:
        if self._up is not None or self._closed or self._ended or self._conn is None:
            return False
        tr = self.state.tracks
        if self._buffering or tr.caller_speaking or tr.awaiting_reply:
            return False
        if not self._uplink.would_hold(ulaw):
            return False
        start = self._caller_ms
        self._caller_ms += len(ulaw) / 8
        self._uplink.push(ulaw, start, speaking=False)  # held: nothing to send
        return True

    async def send_audio(self, ulaw: bytes, encoded: str = "") -> None:
        if self._closed or self._ended:
            return
        start = self._caller_ms
        self._caller_ms += len(ulaw) / 8
        if self._up is not None:
            data, encoded = self._up.convert(ulaw), ""
            if not data:
                return
        else:
            # Quiet stretches go in fewer, larger appends (agent/providers/openai/uplink.py).
            tr = self.state.tracks
            out = self._uplink.push(ulaw, start, tr.caller_speaking or tr.awaiting_reply)
            if out is None:
                return
            data, start = out
            if data is not ulaw:
                encoded = ""
        conn = self._conn
        if conn is None or self._buffering:
            self._buffer_audio(data, start)
            return
        if conn.caller_base_ms is None:
            conn.caller_base_ms = start
        # audio/pcmu takes Twilio's own base64 as it came (no decode, no re-encode).
        frame = wire.append_encoded_frame(encoded) if encoded else wire.append_audio_frame(data)
        try:
            await conn.ws.send(frame, text=True)
        except ConnectionClosed:
            self._buffer_audio(data, start)  # the reader notices and reconnects; keep it

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            ev = await self._events.get()
            if ev is None:
                self._events.put_nowait(None)  # a later iterator ends too
                return
            if not self.state.hidden(ev):
                yield ev

    async def say(self, text: str) -> None:
        await self._request(wire.response_say(text), "say")

    async def say_out_of_band(self, text: str) -> None:
        conn = self._live_conn()
        if conn is None:
            log.debug("filler dropped: no live session")
            return
        await self._send(conn, wire.response_filler(text))

    async def send_tool_result(
        self,
        call: ToolCall,
        result: dict[str, Any],
        *,
        respond: bool = True,
        scheduling: Scheduling | None = None,  # Gemini only
    ) -> None:
        event = self.state.tool_result_event(call, result)
        conn = self._live_conn()
        if conn is not None:  # while swapping, the history note goes out with the seed
            await self._send(conn, event)
        if respond:
            await self._request(wire.response_plain(), "respond")
        self._state_changed.set()

    async def send_text(self, text: str) -> None:
        self.state.history.append(HistoryLine("user", text))
        conn = self._live_conn()
        if conn is not None:  # while swapping, the history line goes out with the seed
            await self._send(conn, wire.item_create(wire.message_item("user", text)))
        await self._request(wire.response_plain(), "respond")

    async def acknowledge_background(self, call: ToolCall) -> None:
        # Answer the call at once so the model can carry on; the result comes later.
        await self.send_tool_result(call, wire.BACKGROUND_STARTED, respond=True)

    async def send_background_result(
        self, call: ToolCall, result: dict[str, Any], scheduling: Scheduling = "WHEN_IDLE"
    ) -> None:
        # The call already has its output ("started"): the result is a new item.
        text = f"The background task {call.name} has finished: {json.dumps(result)}"
        await self.add_context(text)
        if scheduling == "SILENT":
            return
        active = self.state.gate.active
        conn = self._live_conn()
        if scheduling == "INTERRUPT" and conn is not None and active and active != UNKNOWN_RESPONSE:
            if active not in self.state.tracks.cancelled:
                self.state.tracks.cancelled.add(active)
                await self._send(conn, wire.response_cancel(active))
        await self._request(wire.response_plain(), "respond")  # WHEN_IDLE: the gate waits

    async def interrupt(self, item_id: str | None, heard_ms: int | None) -> None:
        conn = self._live_conn()
        if conn is None:
            return
        for ev in self.state.interrupt_events(item_id, heard_ms):
            await self._send(conn, ev)
        if self.state.want_reply:
            await self._request(wire.response_plain(), "respond")

    async def forgive(self, caller_item: str | None) -> None:
        conn = self._live_conn()
        if conn is None:
            return
        for ev in self.state.forgive_events(caller_item):
            await self._send(conn, ev)

    async def add_context(self, text: str) -> None:
        self.state.note(text)
        conn = self._live_conn()
        if conn is not None:
            await self._send(conn, wire.item_create(wire.message_item("system", text)))

    async def close(self) -> None:
        if self._closed:
            return
        held, live = self._uplink.drain(), self._live_conn()
        self._closed = True
        if held is not None and live is not None:  # the caller's last (quiet) frames
            with contextlib.suppress(ConnectionClosed):
                await live.ws.send(wire.append_audio_frame(held[0]), text=True)
        tasks = [t for t in (self._timer, self._replace_task) if t is not None]
        for conn in self._conns:
            conn.retired = True
            if conn.reader is not None:
                tasks.append(conn.reader)
        tasks = [t for t in tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self._conns):
            await conn.ws.close()
        self._conns.clear()
        self._end()

    # ------------------------------------------------------------ connection

    async def _open(self) -> _Conn:
        ws, session = await open_session(
            self._url, self._api_key, self.config, timeout_s=self._connect_timeout_s
        )
        self.state.session = session
        # Hold the reply over caller sound only if the server agreed to (not the engine).
        self.state.hold = wire.holds_reply(self.config) and wire.server_holds(session)
        self.capabilities = _capabilities(hold=self.state.hold)
        conn = _Conn(ws=ws)
        self._conns.add(conn)
        return conn

    def _install(self, conn: _Conn) -> None:
        self._conn = conn
        conn.reader = asyncio.create_task(self._read(conn), name="openai-realtime-reader")
        self._arm_timer(self.config.max_session_s)

    async def _read(self, conn: _Conn) -> None:
        try:
            async for raw in conn.ws:
                if conn.retired:
                    break
                try:
                    events, action = self.state.handle(json.loads(raw))
                except Exception:  # one bad event must not end the call
                    log.exception("failed to handle an OpenAI Realtime event")
                    continue
                for ev in events:
                    if isinstance(ev, SpeechStopped) and ev.audio_end_ms is not None:
                        base = conn.caller_base_ms
                        if base is not None:
                            ev = dataclasses.replace(ev, caller_ms=base + ev.audio_end_ms)
                    self._emit(ev)
                while self.state.outbox:  # cancels and deletes the event called for
                    await self._send(conn, self.state.outbox.pop(0))
                if action == "pump":
                    self._state_changed.set()
                    await self._pump()
                elif action == "expired":
                    self._start_replace("session_expired", planned=False)
                elif events:
                    self._state_changed.set()
        except ConnectionClosed:
            pass
        except Exception:  # treat anything else as a lost connection, never a silent hang
            log.exception("OpenAI Realtime reader failed")
        conn.dead = True
        self._state_changed.set()
        if conn.retired or self._closed:
            return
        log.warning(
            "OpenAI Realtime connection lost (%s %s)", conn.ws.close_code, conn.ws.close_reason
        )
        self._start_replace("connection_lost", planned=False)

    async def _send(self, conn: _Conn, event: dict[str, Any]) -> None:
        try:
            await conn.ws.send(json.dumps(event))
        except ConnectionClosed:
            log.debug("dropped %s: connection closed", event.get("type"))

    def _live_conn(self) -> _Conn | None:
        if self._closed or self._ended or self._swapping:
            return None
        return self._conn

    def _emit(self, ev: RealtimeEvent) -> None:
        if not self._ended:
            self._events.put_nowait(ev)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._events.put_nowait(None)

    async def _request(self, event: dict[str, Any], kind: Kind) -> None:
        self.state.gate.push(event, kind)
        await self._pump()

    async def _pump(self) -> None:
        """Send the next queued response.create if the default conversation is idle."""
        conn = self._live_conn()
        if conn is not None and (ev := self.state.gate.pop_ready()) is not None:
            await self._send(conn, ev)

    # ------------------------------------------------------------ hand-over

    def _arm_timer(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.create_task(self._rollover_after(delay_s), name="openai-rollover")

    async def _rollover_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._start_replace("max_session", planned=True)

    def _start_replace(self, reason: str, *, planned: bool) -> None:
        if self._closed or self._ended or self._conn is None:
            return
        if not planned:
            self._begin_outage(self._conn, reason)  # the old session is gone: buffer now
        if self._replace_task is not None and not self._replace_task.done():
            self._state_changed.set()  # a planned hand-over stops waiting for idle
            return
        self._replace_task = asyncio.create_task(
            self._replace(reason, planned=planned), name="openai-replace"
        )

    def _begin_outage(self, old: _Conn, reason: str) -> None:
        if self._outage_since is not None:
            return
        old.retired = True
        self._outage_since = asyncio.get_running_loop().time()
        self._swapping = self._buffering = True
        self._emit(SessionReconnecting(reason))
        for ev in self.state.outage_events():
            self._emit(ev)

    async def _wait_idle(self, old: _Conn) -> None:
        try:
            async with asyncio.timeout(ROLLOVER_IDLE_WAIT_S):
                while not (old.dead or self._outage_since is not None or self.state.idle):
                    self._state_changed.clear()
                    await self._state_changed.wait()
        except TimeoutError:
            log.warning(
                "session hand-over: no quiet moment in %ss; going ahead", ROLLOVER_IDLE_WAIT_S
            )

    async def _replace(self, reason: str, *, planned: bool) -> None:
        """Open a new session, re-seed it, swap it in. Forced: one attempt, else fatal."""
        old = self._conn
        assert old is not None
        try:
            new = await self._open()
        except OpenAIRealtimeError as exc:
            if planned and self._outage_since is None:
                log.warning("session rollover failed; keeping the current session: %s", exc)
                self._arm_timer(ROLLOVER_RETRY_S)
            else:
                self._fail(
                    f"OpenAI Realtime reconnect failed: {exc}", exc.code or "reconnect_failed"
                )
            return
        if self._closed:  # close() raced the open
            await self._drop(new)
            return
        try:
            start = max(0, len(self.state.history) - SEED_MAX_LINES)
            await new.ws.send(json.dumps(wire.seed_items([])[0]))
            seeded = await self._seed(new, start)
            if planned:
                await self._wait_idle(old)  # the old session keeps the call going meanwhile
                self._begin_outage(old, reason)
            await self._seed(new, seeded)  # what was said while we waited
        except ConnectionClosed as exc:
            await self._drop(new)
            if self._outage_since is None:
                self._arm_timer(ROLLOVER_RETRY_S)
            else:
                self._fail(f"OpenAI Realtime reconnect failed: {exc}", "reconnect_failed")
            return
        # No await between the last seed check above and the swap: nothing is missed.
        self._swapping = False
        self.state.new_session()
        self._install(new)
        await self._flush_audio(new)
        await self._pump()
        gap_ms = (asyncio.get_running_loop().time() - (self._outage_since or 0.0)) * 1000
        self._outage_since = None
        if new.dead:
            self._fail(
                "OpenAI Realtime connection lost again right after reconnecting", "reconnect_failed"
            )
            return
        self._emit(SessionResumed(reason, gap_ms=gap_ms))
        log.info("OpenAI Realtime session replaced (%s); gap %.0f ms", reason, gap_ms)
        if old.reader is not None and old.reader is not asyncio.current_task():
            old.reader.cancel()
        await self._drop(old)

    async def _drop(self, conn: _Conn) -> None:
        conn.retired = True
        self._conns.discard(conn)
        await conn.ws.close()

    async def _seed(self, conn: _Conn, start: int) -> int:
        """Send history[start:] (as it grows) into `conn`; returns the index reached."""
        i = start
        while i < len(self.state.history):
            ev = self.state.seed_line(i)
            i += 1
            if ev is not None:
                await conn.ws.send(json.dumps(ev))
        return i

    def _buffer_audio(self, data: bytes, caller_ms: float) -> None:
        self._pending_audio.append((data, caller_ms))
        self._pending_audio_bytes += len(data)
        limit = SWAP_BUFFER_MS * self._bpm
        while self._pending_audio_bytes > limit:  # bounded: keep the newest audio
            self._pending_audio_bytes -= len(self._pending_audio.popleft()[0])

    async def _flush_audio(self, conn: _Conn | None) -> None:
        # Frames arriving during the flush are appended and sent by this same loop.
        while conn is not None and self._pending_audio:
            data, caller_ms = self._pending_audio.popleft()
            self._pending_audio_bytes -= len(data)
            if conn.caller_base_ms is None:
                conn.caller_base_ms = caller_ms
            try:
                await conn.ws.send(wire.append_audio_frame(data), text=True)
            except ConnectionClosed:
                break
        self._buffering = False

    def _fail(self, message: str, code: str) -> None:
        log.error("%s", message)
        self._emit(ProviderError(message, code, fatal=True))
        self._end()
        if self._timer is not None:
            self._timer.cancel()
