"""OpenAI Realtime (GA) over WebSocket: one `RealtimeSession` per phone call.

Audio stays G.711 μ-law end to end by default (`audio/pcmu`); `pcm24` transcodes with
per-call stateful resamplers. Wire builders live in `openai_wire`, active-response
tracking in `openai_gate`; this module owns the socket, the event translation, barge-in
bookkeeping and the session hand-over (60-minute limit, dropped connections).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent.providers import openai_wire as wire
from agent.providers.openai_gate import UNKNOWN_RESPONSE, Kind, ResponseGate
from agent.realtime import (
    AudioDone,
    AudioOut,
    ProviderError,
    RealtimeEvent,
    ResponseDone,
    ResponseStarted,
    Scheduling,
    SessionConfig,
    SessionReconnecting,
    SessionResumed,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)
from telephony.audio import PcmToUlaw, UlawToPcm

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # audio deltas and session.updated can be large
SWAP_BUFFER_MS = 10_000  # caller audio kept while a session is replaced
ROLLOVER_IDLE_WAIT_S = 20.0  # how long a planned hand-over waits for a quiet moment
ROLLOVER_RETRY_S = 30.0
SEED_MAX_LINES = 120  # transcript lines carried into a replacement session
_TRUNCATED_NOTE = " [cut off: the caller interrupted]"


class OpenAIRealtimeError(RuntimeError):
    """The session could not be opened or configured."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class _Conn:
    """One provider connection (= one provider session)."""

    ws: ClientConnection
    session: dict[str, Any]  # effective config from session.updated
    reader: asyncio.Task[None] | None = None
    retired: bool = False  # we are replacing or closing it: its end is expected
    dead: bool = False


@dataclass(eq=False)
class _Tracks:
    """Per-provider-session bookkeeping; a replacement session starts empty."""

    oob_responses: set[str] = field(default_factory=set)
    oob_active: set[str] = field(default_factory=set)
    oob_items: set[str] = field(default_factory=set)
    rx_bytes: dict[str, int] = field(default_factory=dict)  # item -> provider audio bytes
    item_response: dict[str, str] = field(default_factory=dict)
    done_items: set[str] = field(default_factory=set)
    call_ids: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)  # response.cancel already sent
    converters: dict[str, PcmToUlaw] = field(default_factory=dict)
    caller_speaking: bool = False
    awaiting_reply: bool = False  # VAD committed a turn; its response has not started


@dataclass(eq=False)
class _Line:
    role: wire.Role
    text: str


class OpenAIRealtimeSession:
    """`RealtimeSession` for OpenAI Realtime (and the local engine, same protocol)."""

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
        self._fmt = config.audio_format
        self._bpm = wire.BYTES_PER_MS[self._fmt]
        self._up = UlawToPcm(24000) if self._fmt == "pcm24" else None  # one per call
        self._events: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue()
        self._gate = ResponseGate()
        self._tracks = _Tracks()
        self._conn: _Conn | None = None
        self._history: list[_Line] = []
        self._bot_lines: dict[str, _Line] = {}
        self._heard: dict[str, float] = {}  # item -> fraction heard, for cut-off replies
        self._pending_calls: set[str] = set()
        self._pending_audio: deque[bytes] = deque()
        self._pending_audio_bytes = 0
        self._swapping = False
        self._outage_since: float | None = None
        self._timer: asyncio.Task[None] | None = None
        self._replace_task: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._closed = False
        self._ended = False
        self.rate_limits: list[dict[str, Any]] = []  # latest rate_limits.updated

    # ------------------------------------------------------------ public API

    @property
    def effective_session(self) -> dict[str, Any]:
        """The session config the server confirmed in `session.updated`."""
        return self._conn.session if self._conn else {}

    async def connect(self) -> None:
        if self._conn is not None or self._closed:
            raise RuntimeError("connect() called twice or after close()")
        self._install(await self._open())
        await self._flush_audio(self._conn)

    async def send_audio(self, ulaw: bytes) -> None:
        if self._closed or self._ended:
            return
        data = self._up.convert(ulaw) if self._up is not None else ulaw
        if not data:
            return
        conn = self._conn
        if conn is None or self._swapping:
            self._buffer_audio(data)
            return
        try:
            await conn.ws.send(wire.append_audio_frame(data), text=True)
        except ConnectionClosed:
            self._buffer_audio(data)  # the reader notices and reconnects; keep the frame

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            ev = await self._events.get()
            if ev is None:
                self._events.put_nowait(None)  # later iterators end too
                return
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
        self._pending_calls.discard(call.call_id)
        self._note(f"Result of {call.name}: {json.dumps(result)}")
        conn = self._live_conn()
        if conn is not None:
            if call.call_id in self._tracks.call_ids:
                item = wire.function_output_item(call.call_id, result)
            else:  # the call was made in a session since replaced: the new one can't know it
                item = wire.message_item("system", f"Result of {call.name}: {json.dumps(result)}")
            await self._send(conn, wire.item_create(item))
        # While swapping, the history note above reaches the new session in the seed.
        if respond:
            await self._request(wire.response_plain(), "respond")
        self._state_changed.set()

    async def interrupt(self, item_id: str | None, heard_ms: int | None) -> None:
        conn = self._live_conn()
        if conn is None:
            return
        tr = self._tracks
        out: list[dict[str, Any]] = []
        # Server VAD (interrupt_response) usually cancelled it already: only cancel what
        # we still believe is running, once, to avoid response_cancel_not_active spam.
        active = self._gate.active
        if active and active != UNKNOWN_RESPONSE and active not in tr.cancelled:
            tr.cancelled.add(active)
            out.append(wire.response_cancel(active))
        for rid in sorted(tr.oob_active - tr.cancelled):  # a filler must not outlive barge-in
            tr.cancelled.add(rid)
            out.append(wire.response_cancel(rid))
        end = self._truncate_point(item_id, heard_ms)
        if item_id and end is not None:
            out.append(wire.truncate(item_id, end))
            received = tr.rx_bytes[item_id] // self._bpm
            self._heard[item_id] = end / received if received else 0.0
            self._trim_bot_line(item_id)
        for ev in out:
            await self._send(conn, ev)

    async def add_context(self, text: str) -> None:
        self._note(text)
        conn = self._live_conn()
        if conn is not None:
            await self._send(conn, wire.item_create(wire.message_item("system", text)))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._timer, self._replace_task) if t is not None]
        conn = self._conn
        if conn is not None:
            conn.retired = True
            if conn.reader is not None:
                tasks.append(conn.reader)
        current = asyncio.current_task()
        tasks = [t for t in tasks if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if conn is not None:
            await conn.ws.close()
        self._end()

    # ------------------------------------------------------------ connection

    async def _open(self) -> _Conn:
        """Open a socket, configure the session, return once `session.updated` arrived."""
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                ws = await connect(
                    self._url,
                    additional_headers={"Authorization": f"Bearer {self._api_key}"},
                    compression=None,  # base64 audio barely compresses; save the CPU
                    max_size=MAX_MESSAGE_BYTES,
                    open_timeout=None,  # covered by the timeout above
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                )
                first = await _recv_json(ws)
                if first.get("type") != "session.created":
                    raise OpenAIRealtimeError(*_error_of(first, "expected session.created"))
                await ws.send(json.dumps(wire.session_update(self.config)))
                while True:
                    ev = await _recv_json(ws)
                    kind = ev.get("type")
                    if kind == "session.updated":
                        session = ev.get("session") or {}
                        break
                    if kind == "error":
                        # A rejected update leaves the defaults (wrong format, no tools).
                        msg, code = _error_of(ev, "session.update rejected")
                        raise OpenAIRealtimeError(f"session.update rejected: {msg}", code)
                    log.debug("ignoring %s before session.updated", kind)
            _check_format(session, self._fmt)
            return _Conn(ws=ws, session=session)
        except BaseException as exc:
            if ws is not None:
                await ws.close()
            if isinstance(exc, OpenAIRealtimeError) or not isinstance(exc, Exception):
                raise
            if isinstance(exc, TimeoutError):
                raise OpenAIRealtimeError("timed out opening the OpenAI Realtime session") from exc
            raise OpenAIRealtimeError(f"could not open OpenAI Realtime session: {exc}") from exc

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
                    await self._on_event(json.loads(raw), conn)
                except Exception:  # one bad event must not end the call
                    log.exception("failed to handle an OpenAI Realtime event")
        except ConnectionClosed:
            pass
        conn.dead = True
        self._state_changed.set()
        if conn.retired or self._closed:
            return
        log.warning(
            "OpenAI Realtime connection lost (code %s %s)", conn.ws.close_code, conn.ws.close_reason
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

    # ------------------------------------------------------------ responses

    async def _request(self, event: dict[str, Any], kind: Kind) -> None:
        self._gate.push(event, kind)
        await self._pump()

    async def _pump(self) -> None:
        conn = self._live_conn()
        if conn is None:
            return
        ev = self._gate.pop_ready()
        if ev is not None:
            await self._send(conn, ev)

    def _truncate_point(self, item_id: str | None, heard_ms: int | None) -> int | None:
        """Where to cut `item_id`: what the caller heard, never past what we received."""
        tr = self._tracks
        if not item_id or heard_ms is None or item_id in tr.oob_items:
            return None
        rx = tr.rx_bytes.get(item_id)
        if rx is None:
            return None  # unknown here (or from a replaced session)
        received_ms = rx // self._bpm
        heard = max(0, heard_ms)
        if heard >= received_ms and item_id in tr.done_items:
            return None  # played to the end: nothing to cut
        # Still streaming: the server has (or will have) more than we got, cut at ours.
        return min(heard, received_ms)

    # ------------------------------------------------------------ server events

    async def _on_event(self, ev: dict[str, Any], conn: _Conn) -> None:
        kind = ev.get("type")
        tr = self._tracks
        if kind == "response.output_audio.delta":
            self._on_audio(ev)
        elif kind == "response.output_audio.done":
            item, rid = ev.get("item_id", ""), ev.get("response_id", "")
            conv = tr.converters.pop(item, None)
            tail = conv.convert(b"") if conv is not None else b""
            if tail:
                self._emit(AudioOut(tail, item, rid, rid in tr.oob_responses))
            tr.done_items.add(item)
            self._emit(AudioDone(item, rid))
        elif kind == "response.output_audio_transcript.delta":
            if ev.get("delta"):
                self._emit(Transcript("bot", ev["delta"], False, ev.get("item_id", "")))
        elif kind == "response.output_audio_transcript.done":
            item, text = ev.get("item_id", ""), ev.get("transcript", "")
            if ev.get("response_id") not in tr.oob_responses:
                self._bot_lines[item] = line = _Line("assistant", text)
                self._history.append(line)
                self._trim_bot_line(item)
            self._emit(Transcript("bot", text, True, item))
        elif kind == "input_audio_buffer.speech_started":
            tr.caller_speaking = True
            # interrupt_response=true: the server cancels a running default response.
            interrupted = self._gate.active is not None
            self._emit(SpeechStarted(ev.get("audio_start_ms"), interrupted=interrupted))
        elif kind == "input_audio_buffer.speech_stopped":
            tr.caller_speaking = False
            tr.awaiting_reply = True  # create_response=true: a reply is coming
            self._state_changed.set()
            self._emit(SpeechStopped(ev.get("audio_end_ms")))
        elif kind == "conversation.item.input_audio_transcription.delta":
            if ev.get("delta"):
                self._emit(Transcript("caller", ev["delta"], False, ev.get("item_id", "")))
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = ev.get("transcript", "")
            self._history.append(_Line("user", text))
            self._emit(Transcript("caller", text, True, ev.get("item_id", "")))
        elif kind == "response.function_call_arguments.done":
            raw = ev.get("arguments") or ""
            args = wire.parse_arguments(raw)
            if args is None:
                log.warning("tool %s: arguments are not a JSON object: %.200s", ev.get("name"), raw)
            call_id = ev.get("call_id", "")
            tr.call_ids.add(call_id)
            self._pending_calls.add(call_id)
            self._emit(ToolCall(call_id, ev.get("name", ""), args or {}, raw))
        elif kind == "response.created":
            self._on_response_created(ev.get("response") or {})
        elif kind == "response.done":
            await self._on_response_done(ev.get("response") or {})
        elif kind == "error":
            self._on_error(ev.get("error") or {})
        elif kind == "rate_limits.updated":
            self.rate_limits = ev.get("rate_limits") or []
            log.debug("rate limits: %s", self.rate_limits)
        elif kind == "session.updated":
            conn.session = ev.get("session") or conn.session
        else:
            log.debug("ignoring server event %s", kind)

    def _on_audio(self, ev: dict[str, Any]) -> None:
        tr = self._tracks
        item, rid = ev.get("item_id", ""), ev.get("response_id", "")
        data = binascii.a2b_base64(ev.get("delta", ""))
        tr.rx_bytes[item] = tr.rx_bytes.get(item, 0) + len(data)
        oob = rid in tr.oob_responses
        if item not in tr.item_response:
            tr.item_response[item] = rid
            if oob:
                tr.oob_items.add(item)
        if self._fmt == "pcm24":
            # One converter per item: a filler may stream alongside a reply.
            conv = tr.converters.get(item)
            if conv is None:
                conv = tr.converters[item] = PcmToUlaw(24000)
            data = conv.convert(data)
        if data:
            self._emit(AudioOut(data, item, rid, oob))

    def _on_response_created(self, resp: dict[str, Any]) -> None:
        rid = resp.get("id", "")
        tr = self._tracks
        meta = resp.get("metadata") or {}
        oob = meta.get("kind") == wire.FILLER_KIND
        if oob:
            tr.oob_responses.add(rid)
            tr.oob_active.add(rid)
        else:
            self._gate.on_created(rid)
            tr.awaiting_reply = False
        self._emit(ResponseStarted(rid, out_of_band=oob))

    async def _on_response_done(self, resp: dict[str, Any]) -> None:
        rid = resp.get("id", "")
        status = resp.get("status") or "completed"
        tr = self._tracks
        oob = rid in tr.oob_responses
        if oob:
            tr.oob_active.discard(rid)
        else:
            self._gate.on_done(rid)
            tr.awaiting_reply = False
        self._state_changed.set()
        self._emit(ResponseDone(rid, status, out_of_band=oob))
        if status == "failed":
            err = (resp.get("status_details") or {}).get("error") or {}
            msg = err.get("message") or "response failed"
            self._emit(ProviderError(msg, err.get("code") or "response_failed"))
        await self._pump()  # a queued say()/tool reply may go now

    def _on_error(self, err: dict[str, Any]) -> None:
        code, msg = err.get("code") or "", err.get("message") or ""
        if code == "conversation_already_has_active_response":
            log.info("response.create raced an active response; queued again: %s", msg)
            self._gate.on_active_error(msg)
        elif code == "response_cancel_not_active":
            log.debug("cancel after the server already stopped: %s", msg)
        elif code == "session_expired":
            log.info("OpenAI Realtime session expired: %s", msg)
            self._start_replace("session_expired", planned=False)
        else:
            log.warning("OpenAI Realtime error %s: %s", code or err.get("type"), msg)
            self._emit(ProviderError(msg, code))

    # ------------------------------------------------------------ history

    def _note(self, text: str) -> None:
        self._history.append(_Line("system", text))

    def _trim_bot_line(self, item_id: str) -> None:
        """Keep only the part of a cut-off reply the caller heard (as the server does)."""
        line, frac = self._bot_lines.get(item_id), self._heard.get(item_id)
        if line is None or frac is None or line.text.endswith(_TRUNCATED_NOTE):
            return
        words = line.text.split()
        line.text = " ".join(words[: round(len(words) * frac)]) + _TRUNCATED_NOTE

    # ------------------------------------------------------------ hand-over

    def _arm_timer(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.create_task(self._rollover_after(delay_s), name="openai-rollover")

    async def _rollover_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._start_replace("max_session", planned=True)

    def _start_replace(self, reason: str, *, planned: bool) -> None:
        if self._closed or self._ended:
            return
        running = self._replace_task is not None and not self._replace_task.done()
        if not planned and self._conn is not None:
            self._begin_outage(self._conn, reason)  # the old session is gone: buffer now
        if running:
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
        self._swapping = True
        self._emit(SessionReconnecting(reason))
        tr = self._tracks
        # What was streaming on the old session will never finish there.
        for item, rid in tr.item_response.items():
            if item not in tr.done_items and (rid == self._gate.active or rid in tr.oob_active):
                self._emit(AudioDone(item, rid))
        if self._gate.active and self._gate.active != UNKNOWN_RESPONSE:
            self._emit(ResponseDone(self._gate.active, "cancelled"))
        for rid in sorted(tr.oob_active):
            self._emit(ResponseDone(rid, "cancelled", out_of_band=True))

    def _idle(self, old: _Conn) -> bool:
        tr = self._tracks
        return (
            old.dead
            or self._outage_since is not None
            or not (
                self._gate.busy
                or tr.oob_active
                or tr.caller_speaking
                or tr.awaiting_reply
                or self._pending_calls
            )
        )

    async def _wait_idle(self, old: _Conn) -> None:
        try:
            async with asyncio.timeout(ROLLOVER_IDLE_WAIT_S):
                while not self._idle(old):
                    self._state_changed.clear()
                    await self._state_changed.wait()
        except TimeoutError:
            log.warning("session hand-over: no quiet moment in %ss, going ahead", ROLLOVER_IDLE_WAIT_S)

    async def _replace(self, reason: str, *, planned: bool) -> None:
        old = self._conn
        assert old is not None
        try:
            new = await self._open()
        except OpenAIRealtimeError as exc:
            if planned and self._outage_since is None:
                log.warning("session rollover failed, keeping the current session: %s", exc)
                self._arm_timer(ROLLOVER_RETRY_S)
                return
            self._fail(f"OpenAI Realtime reconnect failed: {exc}", exc.code or "reconnect_failed")
            return
        try:
            start = max(0, len(self._history) - SEED_MAX_LINES)
            seeded = await self._seed(new, start, preamble=True)
            if planned:
                await self._wait_idle(old)  # the old session keeps talking meanwhile
                self._begin_outage(old, reason)
            # No await between the last seed check and the swap: nothing is missed.
            await self._seed(new, seeded, preamble=False)
        except ConnectionClosed as exc:
            await new.ws.close()
            if self._outage_since is None:  # planned and nothing lost yet: try later
                self._arm_timer(ROLLOVER_RETRY_S)
                return
            self._fail(f"OpenAI Realtime reconnect failed: {exc}", "reconnect_failed")
            return
        if self._closed:
            await new.ws.close()
            return
        self._tracks = _Tracks()
        self._gate.reset()
        self._install(new)
        await self._flush_audio(new)
        await self._pump()
        gap_ms = (asyncio.get_running_loop().time() - (self._outage_since or 0.0)) * 1000
        self._outage_since = None
        self._emit(SessionResumed(reason, gap_ms=gap_ms))
        log.info("OpenAI Realtime session replaced (%s), gap %.0f ms", reason, gap_ms)
        if old.reader is not None:
            old.reader.cancel()
        await old.ws.close()

    async def _seed(self, conn: _Conn, start: int, *, preamble: bool) -> int:
        """Send history[start:] (as it grows) into `conn`; returns the index reached."""
        if preamble:
            await conn.ws.send(json.dumps(wire.seed_items([])[0]))
        i = start
        while i < len(self._history):
            line = self._history[i]
            i += 1
            if line.text:
                item = wire.message_item(line.role, line.text)
                await conn.ws.send(json.dumps(wire.item_create(item)))
        return i

    def _buffer_audio(self, data: bytes) -> None:
        self._pending_audio.append(data)
        self._pending_audio_bytes += len(data)
        limit = SWAP_BUFFER_MS * self._bpm
        while self._pending_audio_bytes > limit:  # keep the newest audio
            self._pending_audio_bytes -= len(self._pending_audio.popleft())

    async def _flush_audio(self, conn: _Conn | None) -> None:
        # Frames arriving during the flush are appended and sent by this same loop.
        while conn is not None and self._pending_audio:
            data = self._pending_audio.popleft()
            self._pending_audio_bytes -= len(data)
            try:
                await conn.ws.send(wire.append_audio_frame(data), text=True)
            except ConnectionClosed:
                break
        self._swapping = False

    def _fail(self, message: str, code: str) -> None:
        log.error("%s", message)
        self._emit(ProviderError(message, code, fatal=True))
        self._end()
        if self._timer is not None:
            self._timer.cancel()


# ---------------------------------------------------------------- helpers


async def _recv_json(ws: ClientConnection) -> dict[str, Any]:
    ev = json.loads(await ws.recv())
    if not isinstance(ev, dict):
        raise OpenAIRealtimeError("server sent a non-object JSON message")
    return ev


def _error_of(ev: dict[str, Any], fallback: str) -> tuple[str, str]:
    if ev.get("type") == "error":
        err = ev.get("error") or {}
        return err.get("message") or fallback, err.get("code") or ""
    return f"{fallback}, got {ev.get('type')!r}", ""


def _check_format(session: dict[str, Any], fmt: str) -> None:
    """session.updated must echo our audio format; anything else means a silent reject."""
    want = wire.audio_format(fmt)["type"]
    got = (((session.get("audio") or {}).get("input") or {}).get("format") or {}).get("type")
    if got is not None and got != want:
        raise OpenAIRealtimeError(f"session kept input format {got!r}, asked for {want!r}")
