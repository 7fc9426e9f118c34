"""One call's Media Stream: what the caller sends in, paced bot audio, marks and clear out.

`telephony.media_route` accepts and authenticates the socket. One `TwilioStream` per call
holds all of that call's state: the socket, its
`Playback` ledger, a send lock and statistics. The handler owns the call:

    async def handler(stream: TwilioStream) -> None:
        async for event in stream:          # Media / Dtmf / Mark / Stop
            ...
        # other tasks: await stream.send_audio(ulaw, segment); await stream.clear()

Pacing is event-driven: outbound audio is pumped when audio is enqueued and when a
mark echo frees room under the lead limit. The socket is read by a task of its own (as
websockets' own connection does), which applies mark echoes at once and hands the rest
to the iterator through a bounded inbox: a handler that stalls (its model's upload
pushing back) never holds up playback, and if it falls more than `inbox_ms` of caller
audio behind, the oldest frames are dropped and counted instead of blocking the reader.

The ASGI server's own frame cap (uvicorn `ws_max_size`) should be set to
`max_message_bytes`; it is checked here again because the route cannot set it.

(A little over 400 lines: the socket's reader task, the inbox and the outbound pump share
one call's state and its locks; split apart they would pass it all back and forth.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.websockets import WebSocket, WebSocketDisconnect

from telephony.audio import FRAME_MS
from telephony.playback import ClearSnapshot, Playback
from telephony.protocol import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    clear_message,
    parse_inbound,
)

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
StreamEvent = Media | Dtmf | Mark | Stop
Handler = Callable[["TwilioStream"], Awaitable[None]]
# Offered each caller frame where it is read (with when); True: taken, the iterator
# never sees it. Must not block: see TwilioStream.set_media_sink.
MediaSink = Callable[[Media, float], bool]
SEND_ERRORS = (WebSocketDisconnect, RuntimeError, OSError)


@dataclass(frozen=True, slots=True)
class StreamStats:
    frames_in: int
    frames_out: int
    marks_sent: int
    marks_acked: int
    malformed: int
    sequence_gaps: int
    last_inbound_seq: int
    mark_rtt_ms: tuple[float, ...]  # echo delay minus audio queued ahead of the mark
    frames_dropped: int = 0  # caller frames dropped because the handler fell behind


class PeerGone(Exception):
    """The peer disconnected."""


class TwilioStream:
    """One call's Media Stream: inbound events, paced outbound audio, marks, clear."""

    def __init__(
        self,
        websocket: WebSocket,
        start: Start,
        *,
        max_message_bytes: int = 64 * 1024,
        malformed_limit: int = 50,
        on_malformed: Literal["skip", "close"] = "skip",
        lead_ms: int = 200,
        mark_every_ms: int = 100,
        inbox_ms: int = 2000,
        message_ms: int = FRAME_MS,
    ) -> None:
        self.start = start
        self.call_sid = start.call_sid
        self.stream_sid = start.stream_sid
        self.parameters: dict[str, str] = dict(start.custom_parameters)
        self._ws = websocket
        self._max_message_bytes = max_message_bytes
        self._malformed_limit = malformed_limit
        self._on_malformed = on_malformed
        self._playback = Playback(
            start.stream_sid, lead_ms, mark_every_ms, now=time.monotonic, message_ms=message_ms
        )
        self._log_extra = {"call_sid": start.call_sid, "stream_sid": start.stream_sid}

        # Single writer: every send goes through this lock so batches never interleave.
        self._send_lock = asyncio.Lock()
        self._clears_pending = 0  # while > 0, pumps hold back so `clear` goes out first
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False  # we sent close, or the peer is gone
        self._peer_gone = False

        # What the reader hands the iterator; media beyond `inbox_ms` drops the oldest.
        # (event, local time the reader took it off the socket); None: no more events
        self._inbox: deque[tuple[StreamEvent | None, float]] = deque()
        self.received_at = 0.0  # when the event the iterator last yielded was read
        self._inbox_ready = asyncio.Event()
        self._inbox_media = 0
        self._inbox_limit = max(1, inbox_ms // 20)
        self._reader: asyncio.Task[None] | None = None
        self._media_sink: MediaSink | None = None
        self.frames_dropped = 0

        self.frames_in = 0
        self.malformed = 0
        self.sequence_gaps = 0
        self.last_inbound_seq = start.sequence_number

    # ------------------------------------------------------------ inbound

    def start_reading(self) -> None:
        """Start the reader task (once); the iterator starts it too."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name=f"stream-reader:{self.call_sid}")

    async def stop_reading(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)

    def set_media_sink(self, sink: MediaSink | None) -> None:
        """Offer caller frames to `sink` where the reader reads them, before the inbox.

        A frame the handler would only stash (no I/O: a model's batch of quiet audio)
        then costs no hand-over to the iterator's task, 50 times a second per call. The
        sink is asked only while nothing waits in the inbox, so frames it takes and
        frames the iterator yields stay in the caller's order; it must not block."""
        self._media_sink = sink

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        self.start_reading()
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        inbox = self._inbox
        while True:
            while not inbox:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
            event, received_at = inbox.popleft()
            if event is None:
                inbox.appendleft((None, received_at))  # a later iterator ends too
                return
            if isinstance(event, Media):
                self._inbox_media -= 1
            self.received_at = received_at
            yield event

    def _deliver(self, event: StreamEvent | None) -> None:
        if isinstance(event, Media):
            if self._inbox_media >= self._inbox_limit:
                self._drop_oldest_media()
            self._inbox_media += 1
        self._inbox.append((event, time.monotonic()))
        self._inbox_ready.set()

    def _drop_oldest_media(self) -> None:
        for index, (queued, _) in enumerate(self._inbox):
            if isinstance(queued, Media):
                del self._inbox[index]
                self._inbox_media -= 1
                self.frames_dropped += 1
                if self.frames_dropped == 1 or self.frames_dropped % 50 == 0:
                    logger.warning("call %s: handler behind by %d ms of caller audio; "
                                   "dropped %d frames so far", self.call_sid,
                                   self._inbox_limit * 20, self.frames_dropped,
                                   extra=self._log_extra)
                return

    async def _read(self) -> None:
        # A failed send (the peer hung up) does not end reading: what it sent before its
        # close is still queued here (its last frames, `stop`), and the caller's last words
        # are the caller's; the inbox ends with the disconnect.
        try:
            while not self._closed or self._peer_gone:
                try:
                    raw = await receive_message(self._ws)
                except PeerGone:
                    self._on_peer_gone()
                    return
                event = self._parse(raw)
                if event is None:
                    if not await self._count_malformed():
                        return
                    continue
                self._check_sequence(event.sequence_number)
                if isinstance(event, Media):
                    self.frames_in += 1
                    if self._media_sink is not None and not self._inbox and self._sink(event):
                        continue
                elif isinstance(event, Mark):
                    # Echoes advance playback here, whatever the handler is waiting on.
                    if self._playback.on_mark(event.name):
                        await self._pump()
                    self._update_idle()
                self._deliver(event)
                if isinstance(event, Stop):
                    return
        finally:
            self._deliver(None)

    def _sink(self, event: Media) -> bool:
        assert self._media_sink is not None
        try:
            return self._media_sink(event, time.monotonic())
        except Exception:  # the frame still reaches the iterator; the call goes on
            logger.exception("call %s: media sink failed", self.call_sid, extra=self._log_extra)
            return False

    def _parse(self, raw: str | bytes) -> StreamEvent | None:
        """A valid event for this stream, or None after logging why not."""
        if isinstance(raw, bytes):
            return self._reject_message(f"binary frame of {len(raw)} bytes")
        if len(raw) > self._max_message_bytes:
            return self._reject_message(
                f"message of {len(raw)} chars exceeds {self._max_message_bytes}"
            )
        try:
            event = parse_inbound(raw)
        except ValueError as exc:  # ProtocolError, or a stray ValueError from parsing
            return self._reject_message(str(exc))
        if isinstance(event, Connected | Start):
            return self._reject_message(f"unexpected {type(event).__name__.lower()} mid-stream")
        if event.stream_sid != self.stream_sid:
            return self._reject_message(f"streamSid {event.stream_sid[:40]!r} is not this stream's")
        return event

    def _reject_message(self, why: str) -> StreamEvent | None:
        self.malformed += 1
        logger.warning(
            "call %s: skipping malformed message %d/%d: %s",
            self.call_sid,
            self.malformed,
            self._malformed_limit,
            why,
            extra=self._log_extra,
        )
        return None

    async def _count_malformed(self) -> bool:
        """False (after closing 1008) when this call has had too many bad messages."""
        if self._on_malformed == "skip" and self.malformed < self._malformed_limit:
            return True
        logger.warning(
            "call %s: closing after %d malformed messages", self.call_sid, self.malformed
        )
        await self.close(POLICY_VIOLATION, "too many malformed messages")
        return False

    def _check_sequence(self, seq: int) -> None:
        expected = self.last_inbound_seq + 1
        if seq != expected:
            self.sequence_gaps += 1
            logger.warning(
                "call %s: inbound sequence gap: expected %d, got %d",
                self.call_sid,
                expected,
                seq,
                extra=self._log_extra,
            )
        self.last_inbound_seq = max(seq, self.last_inbound_seq)

    # ------------------------------------------------------------ outbound

    async def send_audio(self, ulaw: bytes, segment: str) -> None:
        """Queue μ-law 8 kHz audio for `segment` and send what pacing allows now."""
        if self._closed:
            return
        self._playback.enqueue(ulaw, segment)
        await self._pump()
        self._update_idle()

    async def end_segment(self, segment: str) -> None:
        """No more audio for `segment`: flush its last partial frame and mark its end."""
        if self._closed:
            return
        self._playback.end_segment(segment)
        await self._pump()
        self._update_idle()

    def resume_segment(self, segment: str, from_ms: int) -> None:
        """After a `clear`, `segment` goes on from `from_ms` (see Playback.resume_segment)."""
        self._playback.resume_segment(segment, from_ms)

    async def probe_round_trip(self) -> None:
        """Send an audio-less mark: its echo times the network before any audio plays,
        so the first reply is paced for this caller's round trip (see Playback)."""
        if self._closed:
            return
        message = self._playback.probe()
        if message is not None:
            async with self._send_lock:
                await self._send(message)

    async def clear(self) -> ClearSnapshot:
        """Barge-in: stop playback now. Returns what the caller had heard before it."""
        snapshot = self._playback.clear()
        if not self._closed:
            self._clears_pending += 1
            try:
                async with self._send_lock:
                    await self._send(clear_message(self.stream_sid))
            finally:
                self._clears_pending -= 1
            await self._pump()  # audio enqueued while the clear was waiting
        self._update_idle()
        return snapshot

    # A timeout parameter (not asyncio.timeout) because a timeout is an answer here, not an error.
    async def wait_played(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Until playback is idle: all sent audio heard (or dropped by `clear`).

        False on timeout or if the call ended first. Event-driven: it wakes on the mark
        echo that completes playback, so call it from a task other than the iterator's.
        """
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return self._playback.idle

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._idle.set()  # wake wait_played: nothing more will play
        if self._peer_gone:
            return
        async with self._send_lock:
            try:
                await self._ws.close(code, close_reason(reason))
            except SEND_ERRORS:
                pass  # already gone: closing is all we wanted

    async def _pump(self) -> None:
        if self._clears_pending:
            return  # `clear` pumps once it is on the wire
        async with self._send_lock:
            if self._clears_pending or self._closed:
                return
            for message in self._playback.take_sendable():
                if not await self._send(message):
                    return

    async def _send(self, message: str) -> bool:
        try:
            await self._ws.send_text(message)
        except SEND_ERRORS:
            self._on_peer_gone()
            return False
        return True

    def _on_peer_gone(self) -> None:
        self._peer_gone = True
        self._closed = True
        self._idle.set()

    def _update_idle(self) -> None:
        if self._closed or self._playback.idle:
            self._idle.set()
        else:
            self._idle.clear()

    # ------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def playback(self) -> Playback:
        return self._playback

    @property
    def heard_ms(self) -> int:
        return self._playback.heard_ms

    def first_heard_settled(self, segment: str) -> bool:
        return self._playback.first_heard_settled(segment)

    def first_heard_at(self, segment: str) -> float | None:
        """Local time the caller began to hear `segment` (mark echoes), None until known."""
        return self._playback.first_heard_at(segment)

    def heard_ms_of(self, segment: str) -> int:
        return self._playback.heard_ms_of(segment)

    def received_ms_of(self, segment: str) -> int:
        return self._playback.received_ms_of(segment)

    @property
    def stats(self) -> StreamStats:
        pb = self._playback
        return StreamStats(
            frames_in=self.frames_in,
            frames_out=pb.frames_sent,
            marks_sent=pb.marks_sent,
            marks_acked=pb.marks_acked,
            malformed=self.malformed,
            sequence_gaps=self.sequence_gaps,
            last_inbound_seq=self.last_inbound_seq,
            mark_rtt_ms=tuple(pb.mark_rtt_ms),
            frames_dropped=self.frames_dropped,
        )


async def receive_message(websocket: WebSocket) -> str | bytes:
    try:
        message = await websocket.receive()
    except SEND_ERRORS:
        raise PeerGone from None
    if message["type"] == "websocket.disconnect":
        raise PeerGone
    text = message.get("text")
    return text if text is not None else (message.get("bytes") or b"")


def close_reason(reason: str) -> str:
    # A close reason is limited to 123 bytes on the wire.
    return reason.encode("utf-8")[:120].decode("utf-8", "ignore")
