"""A Twilio Media Streams client that treats our server exactly as Twilio does.

Used by the tests, by `phone-agent call` (recorded fixtures) and by `phone-agent
loadtest` (hundreds of concurrent calls), so a call costs two tasks:

- the media clock: every 20 ms (/ `speed`) of call time it finishes a frame of bot
  playout (echoing marks whose audio has now played) and sends one caller frame:
  queued speech from `say()`, else μ-law silence, as Twilio sends continuously.
  Deadlines are absolute (`t0 + n * period`), so the clock never drifts; how late each
  frame went out is recorded for the load test.
- the receiver: validates every server message, queues bot audio into the playout
  buffer, queues marks behind it, and handles `clear` at once.

    target = await dial_webhook(base, token, to="+15550001111", from_="+15552223333")
    async with EmulatedCall(target, speed=4) as call:
        await call.say(ulaw)
        turn = await call.wait_for_bot_reply(timeout=10)

(About 500 lines, one idea: the I/O half of an emulated phone, its script API and what
it measured; the sans-I/O brain is `core.py`, playout `playout.py`, dialing `dial.py`.)
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from telephony.audio import FRAME_MS
from telephony.protocol import DTMF_DIGITS
from telephony.testing.core import LATE_S, BargeIn, CallCore, ReplyWaiter, Segment
from telephony.testing.dial import (
    CallHungUp,
    CallRejected,
    EmulatorError,
    NoStreamError,
    StreamTarget,
    TwimlError,
    WebhookError,
    WebhookForbidden,
    dial_webhook,
    new_sid,
    parse_twiml,
)
from telephony.testing.metrics import (
    CallSummary,
    MarkRecord,
    StreamViolation,
    TimelineEvent,
    TurnMetrics,
)
from telephony.wav import write_pcm_wav

__all__ = [
    "CallEnded",
    "CallHungUp",
    "CallRejected",
    "CallSummary",
    "EmulatedCall",
    "EmulatorError",
    "MarkRecord",
    "NoStreamError",
    "StreamConnectError",
    "StreamTarget",
    "TimelineEvent",
    "TurnMetrics",
    "TwimlError",
    "StreamViolation",
    "WebhookError",
    "WebhookForbidden",
    "dial_webhook",
    "parse_twiml",
]


class CallEnded(EmulatorError):
    """The call is over (hung up, or closed by the server) while something waited on it."""


class StreamConnectError(EmulatorError):
    """The media WebSocket could not be opened (e.g. the server answered 403)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class EmulatedCall:
    """One emulated phone call on a Media Streams socket; `async with` owns its tasks.

    `speed` scales call time: at 4.0 a 20 ms frame goes out every 5 ms and bot audio
    plays 4x as fast. Latencies (`*_latency_ms`, mark echo delays) stay wall-clock ms.
    """

    def __init__(
        self,
        target: StreamTarget,
        *,
        speed: float = 1.0,
        ws_url: str | None = None,
        record_audio: bool = True,
        on_event: Callable[[TimelineEvent], None] | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.target = target
        self.speed = speed
        self.ws_url = ws_url or target.ws_url
        self.stream_sid = new_sid("MZ")
        self.record_audio = record_audio
        self._core = CallCore(target, self.stream_sid, record_audio=record_audio, on_event=on_event)
        self._open_timeout = open_timeout
        self._period = FRAME_MS / 1000 / speed
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._closed_event = asyncio.Event()
        self._hanging_up = False
        self._error: BaseException | None = None
        self._conditions: list[tuple[Callable[[EmulatedCall], bool], asyncio.Future[None]]] = []
        self.ended_at: float | None = None
        # What happened, for tests, fixtures and the load test (shared with the core).
        self.turns: list[TurnMetrics] = self._core.turns
        self.marks: list[MarkRecord] = self._core.marks
        self.violations: list[StreamViolation] = self._core.violations
        self.timeline: list[TimelineEvent] = self._core.timeline
        self.closed_by_server = False
        self.close_code: int | None = None
        self.close_reason = ""

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> EmulatedCall:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hangup()
        if exc is None and self._error is not None:
            raise self._error

    async def open(self) -> None:
        try:
            self._ws = await connect(
                self.ws_url,
                compression=None,  # Twilio does not deflate; it would cost CPU per frame
                ping_interval=None,
                open_timeout=self._open_timeout,
                close_timeout=2,
                max_size=1 << 20,
                user_agent_header="Twilio.TmeWs/1.0",
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            raise StreamConnectError(f"{self.ws_url}: handshake answered {code}", code) from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise StreamConnectError(f"{self.ws_url}: cannot connect ({exc})") from None
        core = self._core
        core.begin(asyncio.get_running_loop().time())
        # Twilio's opening: `connected`, then `start` with the TwiML's <Parameter>s.
        try:
            await self._ws.send(core.builder.connected())
            await self._ws.send(core.builder.start(dict(self.target.parameters)))
        except ConnectionClosed:  # the server hung up at once: a call, just a short one
            self._finish(by_server=True)
            return
        self._event("start", f"call {self.target.call_sid} stream {self.stream_sid}")
        self._tasks = [
            asyncio.create_task(self._run_clock(), name=f"emulator-clock-{self.stream_sid}"),
            asyncio.create_task(self._run_receiver(), name=f"emulator-recv-{self.stream_sid}"),
        ]

    async def hangup(self) -> None:
        """Hang up as Twilio does when the caller hangs up: `stop`, then close."""
        if self._ws is None:
            return
        if not self._closed:
            self._hanging_up = True
            await self._cancel_clock()  # no media after `stop`
            try:
                await self._ws.send(self._core.builder.stop())
                self._event("stop")
                await self._ws.close()
            except ConnectionClosed:
                pass
            self._finish(by_server=False)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_closed(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Until the socket is closed (by either side)."""
        await asyncio.wait_for(self._closed_event.wait(), timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------ script API

    async def say(self, ulaw: bytes) -> None:
        """Queue caller speech (μ-law 8 kHz); returns once its last frame has been sent."""
        if ulaw:
            await self._send(Segment.of(ulaw, True, self._future()))

    async def pause(self, ms: float) -> None:
        """The caller stays silent for `ms` of call time (silence frames keep flowing)."""
        n = math.ceil(ms / FRAME_MS)
        if n > 0:
            await self._send(Segment.silence(n, self._future()))

    async def dtmf(self, digit: str) -> None:
        """Press a key: Twilio's `dtmf` event (media frames keep flowing meanwhile)."""
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ValueError(f"{digit!r} is not a DTMF digit (0-9 * # A-D)")
        self._check_open()
        assert self._ws is not None
        try:
            await self._ws.send(self._core.builder.dtmf(digit))
        except ConnectionClosed:
            raise CallEnded("call ended before the DTMF digit was sent") from None
        self._event("dtmf", digit)

    async def wait_for_bot_reply(
        self,
        timeout: float = 30.0,  # noqa: ASYNC109 - a script-level limit, named in the error
        *,
        quiet_ms: float = 700,
    ) -> TurnMetrics:
        """Until the current turn's bot audio has started, played out, and been followed
        by `quiet_ms` of call time with nothing to play. Returns that turn's metrics."""
        turn = self.turn
        waiter = ReplyWaiter(turn, math.ceil(quiet_ms / FRAME_MS) + 1, self._future())
        self._core.reply_waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"turn {turn.index}: no complete bot reply within {timeout} s "
                f"(bot audio received {turn.bot_audio_received_ms:.0f} ms, "
                f"queued {self.queued_ms:.0f} ms)"
            ) from None
        finally:
            if waiter in self._core.reply_waiters:
                self._core.reply_waiters.remove(waiter)

    async def interrupt_after(
        self,
        ms_into_reply: float,
        ulaw: bytes,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - bounds the wait for the reply to get there
    ) -> TurnMetrics:
        """Barge in: start saying `ulaw` once `ms_into_reply` of the current turn's bot
        audio has been played; returns the interrupted turn once `ulaw` has been sent."""
        if not ulaw:
            raise ValueError("interrupt_after needs some audio to say")
        turn = self.turn
        barge = BargeIn(turn, ms_into_reply, Segment.of(ulaw, True, self._future()), self._future())
        self._core.barge_ins.append(barge)
        try:
            await asyncio.wait_for(barge.triggered, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"turn {turn.index}: bot reply never reached {ms_into_reply} ms played "
                f"(played {turn.bot_audio_played_ms:.0f} ms in {timeout} s)"
            ) from None
        finally:
            if barge in self._core.barge_ins:
                self._core.barge_ins.remove(barge)
        await barge.segment.done
        return turn

    # ------------------------------------------------------------ results

    @property
    def started_at(self) -> float:
        """loop.time() when the socket opened; timeline `t_ms` counts from here."""
        return self._core.started_at

    @property
    def turn(self) -> TurnMetrics:
        """The current turn (opened by the last end of caller speech)."""
        self._check_open()
        return self.turns[-1]

    @property
    def queued_ms(self) -> float:
        """Bot audio waiting to be played right now."""
        return self._core.playout.queued_ms

    @property
    def frames_sent(self) -> int:
        return self._core.frames_sent

    @property
    def speech_frames_sent(self) -> int:
        return self._core.speech_frames_sent

    @property
    def frames_late(self) -> int:
        return self._core.frames_late

    @property
    def max_lateness_ms(self) -> float:
        return self._core.max_lateness_ms

    @property
    def played_audio(self) -> bytes:
        """What the caller's speaker played, in real time (silence where nothing played)."""
        return bytes(self._core.played)

    @property
    def received_audio(self) -> bytes:
        """Every byte of bot audio received, including what `clear` discarded."""
        return bytes(self._core.received)

    @property
    def caller_audio(self) -> bytes:
        """Every caller frame sent, in real time."""
        return bytes(self._core.caller)

    def save_wav(self, path: str | Path, track: str = "played") -> None:
        """Write a PCM16 8 kHz WAV: `played`, `received`, `caller`, or `both`
        (stereo: caller left, played bot audio right, aligned in time)."""
        if not self.record_audio:
            raise RuntimeError("this call was made with record_audio=False")
        write_pcm_wav(path, self._core.track(track))

    def summary(self) -> CallSummary:
        end = self.ended_at if self.ended_at is not None else asyncio.get_running_loop().time()
        return self._core.summary(
            speed=self.speed,
            duration_ms=(end - self.started_at) * 1000,
            closed_by_server=self.closed_by_server,
            close_code=self.close_code,
            close_reason=self.close_reason,
        )

    # ------------------------------------------------------------ the two tasks

    async def _run_clock(self) -> None:
        assert self._ws is not None
        loop = asyncio.get_running_loop()
        send = self._ws.send
        core = self._core
        media = core.builder.media_b64
        period = self._period
        t0 = loop.time()
        n = 0
        try:
            while True:
                # Absolute deadlines: lateness never accumulates into drift.
                deadline = t0 + n * period
                now = loop.time()
                if deadline > now:
                    await asyncio.sleep(deadline - now)
                    now = loop.time()
                late = now - deadline
                if late > LATE_S:
                    core.note_lateness(late)
                    if late > period:
                        await asyncio.sleep(0)  # catching up: never starve the other calls
                finished, payload, segment = core.tick(now, deadline)
                for mark in finished:
                    await send(core.echo(mark, now))
                await send(media(payload, n * FRAME_MS))
                core.frames_sent += 1
                if segment is not None and not segment.done.done():
                    segment.done.set_result(None)
                if self._conditions:
                    self._check_conditions()
                n += 1
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug here must not leave the call hanging silently
            self._crash(exc)

    async def _run_receiver(self) -> None:
        assert self._ws is not None
        ws = self._ws
        core = self._core
        loop = asyncio.get_running_loop()
        try:
            async for message in ws:
                now = loop.time()
                echoes = core.on_message(message, now)
                if echoes:
                    for mark in echoes:
                        await ws.send(core.echo(mark, now))
        except ConnectionClosed:
            pass
        except Exception as exc:
            self._crash(exc)
            return
        self._finish(by_server=not self._hanging_up)

    def end_of_input(self, why: str = "keypad") -> None:
        """Open a new turn now, e.g. after a keypad entry ending in '#', so the next
        `wait_for_bot_reply` waits for the answer to it (speech opens turns by itself)."""
        self._check_open()
        self._core.open_turn(asyncio.get_running_loop().time(), why)

    async def wait_until(
        self,
        predicate: Callable[[EmulatedCall], bool],
        timeout: float = 30.0,  # noqa: ASYNC109 - a script-level limit, named in the error
    ) -> None:
        """Until `predicate(call)` holds, checked on every 20 ms tick of the call clock
        (e.g. `lambda c: c.turn.bot_audio_played_ms >= 600`)."""
        if predicate(self):
            return
        fut = self._future()
        entry = (predicate, fut)
        self._conditions.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout} s") from None
        finally:
            if entry in self._conditions:
                self._conditions.remove(entry)

    def _check_conditions(self) -> None:
        for predicate, fut in list(self._conditions):
            if not fut.done():
                try:
                    if predicate(self):
                        fut.set_result(None)
                except Exception as exc:  # a broken predicate fails its waiter, not the call
                    fut.set_exception(exc)

    # ------------------------------------------------------------ plumbing

    def _future(self) -> asyncio.Future[Any]:
        self._check_open()
        return asyncio.get_running_loop().create_future()

    async def _send(self, segment: Segment) -> None:
        self._core.segments.append(segment)
        await segment.done

    def _check_open(self) -> None:
        if self._ws is None:
            raise EmulatorError("the call is not open; use `async with EmulatedCall(...)`")
        if self._closed:
            raise CallEnded(self._ended_why())

    def _ended_why(self) -> str:
        if self._error is not None:
            return f"the emulator failed: {self._error!r}"
        if self.closed_by_server:
            return f"the server closed the stream ({self.close_code} {self.close_reason!r})"
        return "the call was hung up"

    async def _cancel_clock(self) -> None:
        clock = self._tasks[0] if self._tasks else None
        if clock is not None and clock is not asyncio.current_task() and not clock.done():
            clock.cancel()
            await asyncio.gather(clock, return_exceptions=True)

    def _finish(self, *, by_server: bool) -> None:
        if self._closed:
            return
        assert self._ws is not None
        self._closed = True
        self.ended_at = asyncio.get_running_loop().time()
        self.closed_by_server = by_server
        self.close_code = self._ws.close_code
        self.close_reason = self._ws.close_reason or ""
        who = "server" if by_server else "caller"
        self._event("closed", f"{who} {self.close_code} {self.close_reason}")
        self._core.end(CallEnded(self._ended_why()))
        self._closed_event.set()
        clock = self._tasks[0] if self._tasks else None
        if clock is not None and clock is not asyncio.current_task():
            clock.cancel()

    def _crash(self, exc: Exception) -> None:
        self._error = exc
        self._event("error", repr(exc))
        if self._ws is not None:
            self._ws.transport.abort()
        self._finish(by_server=False)

    def _event(self, kind: str, detail: str = "") -> None:
        self._core.event(kind, detail, asyncio.get_running_loop().time())
