"""The emulated phone's brain, sans-I/O: what to send each tick, what a message means.

`CallCore` never touches a socket or a clock. The I/O layer (`EmulatedCall`) calls
`tick(now, deadline)` once per 20 ms of call time and sends what it returns, and feeds every
server message to `on_message(text, now)`, sending back the marks it returns. All the
bookkeeping (turns, marks, violations, timeline, recordings) lives here, so per-frame
cost is a handful of attribute updates.

(A little over 400 lines: the per-tick and per-message halves of one phone read as one;
playout and metrics are already in modules of their own.)
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from telephony.audio import FRAME_BYTES, FRAME_MS, first_speech_frame, last_speech_frame
from telephony.protocol import (
    ProtocolError,
)
from telephony.testing.dial import StreamTarget
from telephony.testing.messages import (
    InboundBuilder,
    OutMark,
    OutMedia,
    parse_outbound,
)
from telephony.testing.metrics import (
    CallSummary,
    MarkRecord,
    StreamViolation,
    TimelineEvent,
    TurnMetrics,
)
from telephony.testing.playout import PendingMark, Playout

LATE_S = 0.005  # a frame sent more than 5 ms after its deadline counts as late
STOPPED_TICKS = 5  # 100 ms with no bot audio after a barge-in: the bot has gone quiet

SILENCE = b"\xff" * FRAME_BYTES
SILENCE_B64 = base64.b64encode(SILENCE).decode("ascii")


@dataclass(slots=True)
class FastBuilder(InboundBuilder):
    def media_b64(self, payload_b64: str, timestamp_ms: int) -> str:
        """`InboundBuilder.media` for a payload already in base64 (encoded once per say())."""
        self._chunk += 1
        return (
            f'{{"event":"media","sequenceNumber":"{self._next()}","streamSid":"{self.stream_sid}",'
            f'"media":{{"track":"inbound","chunk":"{self._chunk}","timestamp":"{timestamp_ms}",'
            f'"payload":"{payload_b64}"}}}}'
        )


@dataclass(slots=True)
class Segment:
    """Caller audio queued by say()/pause(), sent one frame per tick."""

    payloads: list[str]  # base64, encoded once up front
    frames: list[bytes]  # raw, for the caller recording
    speech: bool
    done: asyncio.Future[None]
    pos: int = 0
    # The frame where the caller's speech ends (`last_speech_frame`): voice-to-voice is
    # timed from there, not from the end of the line's trailing silence.
    last_voiced: int = -1
    first_voiced: int = 0  # where the words begin: a barge-in is timed from here

    @classmethod
    def of(cls, ulaw: bytes, speech: bool, done: asyncio.Future[None]) -> Segment:
        """Cut into 20 ms frames (the last padded with silence, as a phone would)."""
        frames = [bytes(ulaw[i : i + FRAME_BYTES]) for i in range(0, len(ulaw), FRAME_BYTES)]
        if frames and len(frames[-1]) < FRAME_BYTES:
            frames[-1] += SILENCE[len(frames[-1]) :]
        last = (last_speech_frame(frames) if speech else -1)
        if speech and last < 0:
            last = len(frames) - 1  # nothing stands out: the whole line counts
        first = max(first_speech_frame(frames), 0) if speech else 0
        return cls(
            [base64.b64encode(f).decode("ascii") for f in frames], frames, speech, done,
            last_voiced=last, first_voiced=first,
        )  # fmt: skip

    @classmethod
    def silence(cls, n_frames: int, done: asyncio.Future[None]) -> Segment:
        return cls([SILENCE_B64] * n_frames, [SILENCE] * n_frames, False, done)


@dataclass(slots=True)
class ReplyWaiter:
    turn: TurnMetrics
    quiet_ticks: int
    future: asyncio.Future[TurnMetrics]


@dataclass(slots=True)
class BargeIn:
    turn: TurnMetrics
    after_ms: float
    segment: Segment
    triggered: asyncio.Future[None]


class CallCore:
    def __init__(
        self,
        target: StreamTarget,
        stream_sid: str,
        *,
        record_audio: bool = True,
        on_event: Callable[[TimelineEvent], None] | None = None,
    ) -> None:
        self.builder = FastBuilder(stream_sid, target.call_sid, target.account_sid)
        self.stream_sid = stream_sid
        self.record_audio = record_audio
        self.on_event = on_event
        self.playout = Playout()
        self.started_at = 0.0
        self.segments: deque[Segment] = deque()
        self.reply_waiters: list[ReplyWaiter] = []
        self.barge_ins: list[BargeIn] = []
        self.barge_turn: TurnMetrics | None = None  # barged in, no `clear` seen yet
        self._stopping: TurnMetrics | None = None  # barged in, bot not yet quiet
        self._stop_heard_until = 0.0  # end of the last bot frame played since the onset
        self.quiet_ticks = 0  # ticks since bot audio last played
        self._audio_turn: TurnMetrics | None = None  # owner of the last frame played
        self._gap_ticks = 0  # quiet ticks since then
        self._gap_ticks_late = 0  # ... of which this phone ran late
        self.audio_end_at: float | None = None
        self.turns: list[TurnMetrics] = []
        self.marks: list[MarkRecord] = []
        self.violations: list[StreamViolation] = []
        self.timeline: list[TimelineEvent] = []
        self.frames_sent = 0
        self.speech_frames_sent = 0
        self.frames_late = 0
        self.max_lateness_ms = 0.0
        self.caller = bytearray()  # what we sent, in real time
        self.played = bytearray()  # what the phone's speaker played, in real time
        self.received = bytearray()  # every byte of bot audio received

    def begin(self, now: float) -> None:
        self.started_at = now
        self.turns.append(TurnMetrics(index=0, opened_at=now))  # the greeting turn

    # ------------------------------------------------------------ each 20 ms

    def tick(self, now: float, deadline: float) -> tuple[list[PendingMark], str, Segment | None]:
        """One frame of call time, scheduled at `deadline`, running at `now`: finish/start
        playout, fire barge-ins, pick the caller frame. Returns (marks to echo now, base64
        payload to send, the segment this frame completes)."""
        result = self.playout.tick(deadline)
        if self.barge_ins:  # before this frame counts: N ms must have *finished* playing
            self._trigger_barge_ins()
        audio = result.audio
        if audio:
            self.quiet_ticks = 0
            owner = result.shares[0][0]
            if self._gap_ticks and owner is self._audio_turn and owner is not None:
                owner.underrun_ms += self._gap_ticks * FRAME_MS
                owner.underrun_while_late_ms += self._gap_ticks_late * FRAME_MS
            self._gap_ticks = self._gap_ticks_late = 0
            self._audio_turn = owner
            if self._stopping is not None:
                self._stop_heard_until = deadline + FRAME_MS / 1000
            for turn, n in result.shares:
                turn.bot_audio_played_ms += n / 8
                if turn.first_bot_played_at is None:
                    self._first_heard(turn, deadline)
            if self.record_audio:
                self.played += audio
                if len(audio) < FRAME_BYTES:
                    self.played += SILENCE[len(audio) :]
        else:
            self.quiet_ticks += 1
            if self._audio_turn is not None:
                self._gap_ticks += 1  # a gap if this turn's audio resumes; else its end
                if now - deadline > LATE_S:
                    self._gap_ticks_late += 1
            if self.quiet_ticks == 1:
                self.audio_end_at = now
            if self._stopping is not None and self.quiet_ticks >= STOPPED_TICKS:
                self._bot_stopped()
            if self.record_audio:
                self.played += SILENCE
        if self.reply_waiters:
            self._check_reply_waiters(now)

        segments = self.segments
        while segments and segments[0].done.done():  # its say() was cancelled
            segments.popleft()
        if not segments:
            if self.record_audio:
                self.caller += SILENCE
            return result.finished_marks, SILENCE_B64, None
        segment = segments[0]
        pos = segment.pos
        if self.record_audio:
            self.caller += segment.frames[pos]
        if segment.speech:
            self.speech_frames_sent += 1
            if pos == 0:
                self._speech_starts(now)
            if pos == segment.first_voiced:
                self._speech_onset(deadline, heard=bool(audio))
        segment.pos = pos + 1
        if pos == segment.last_voiced:
            # The caller's last word is in this frame: what the bot says next answers it.
            self._speech_ends(deadline)
        if segment.pos < len(segment.payloads):
            return result.finished_marks, segment.payloads[pos], None
        segments.popleft()
        return result.finished_marks, segment.payloads[pos], segment

    def note_lateness(self, late_s: float) -> None:
        self.frames_late += 1
        if late_s * 1000 > self.max_lateness_ms:
            self.max_lateness_ms = late_s * 1000

    def _speech_starts(self, now: float) -> None:
        turn = self.turns[-1]
        playout = self.playout
        if (playout.busy or playout.queued_bytes) and turn.barge_in_at is None:
            turn.barge_in_at = now
            self.barge_turn = turn
            self.event("barge-in", f"over {playout.queued_ms:.0f} ms of queued bot audio", now)
        else:
            self.event("speech", "caller starts speaking", now)

    def _speech_onset(self, at: float, *, heard: bool) -> None:
        """The caller's first word goes out in the slot at `at`: over bot audio, time
        how long the bot is still heard from here."""
        turn = self.turns[-1]
        if turn.barge_in_at is None or turn.barge_in_onset_at is not None:
            return
        turn.barge_in_onset_at = at
        self._stopping = turn
        self._stop_heard_until = at + FRAME_MS / 1000 if heard else at
        if not heard and self.quiet_ticks >= STOPPED_TICKS:
            self._bot_stopped()

    def _bot_stopped(self) -> None:
        turn, self._stopping = self._stopping, None
        if turn is not None and turn.barge_in_onset_at is not None:
            turn.barge_in_stop_ms = max(self._stop_heard_until - turn.barge_in_onset_at, 0.0) * 1000

    def open_turn(self, now: float, why: str) -> None:
        """The caller finished an input that is not speech (a keypad entry): what the
        bot says next is the answer to it, a new turn."""
        self.turns.append(TurnMetrics(len(self.turns), now, caller_speech_end_at=now))
        self.event("turn", f"turn {len(self.turns) - 1} opens ({why})", now)

    def _speech_ends(self, now: float) -> None:
        # The caller's last speech frame goes out now: the next turn is the bot's answer.
        self.turns.append(TurnMetrics(len(self.turns), now, caller_speech_end_at=now))
        self.event("speech-end", f"turn {len(self.turns) - 1} opens", now)

    def _trigger_barge_ins(self) -> None:
        for barge in list(self.barge_ins):
            if barge.turn.bot_audio_played_ms >= barge.after_ms:
                self.barge_ins.remove(barge)
                if not barge.triggered.done():
                    barge.triggered.set_result(None)
                    self.segments.append(barge.segment)

    def _check_reply_waiters(self, now: float) -> None:
        if self.playout.queued_bytes:
            return
        for waiter in list(self.reply_waiters):
            turn = waiter.turn
            if turn.first_bot_media_at is not None and self.quiet_ticks >= waiter.quiet_ticks:
                self.reply_waiters.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_result(turn)
                if turn.reply_done_at is None:
                    turn.reply_done_at = self.audio_end_at
                    played = turn.bot_audio_played_ms
                    self.event("reply-done", f"turn {turn.index}: {played:.0f} ms played", now)

    # ------------------------------------------------------------ server messages

    def on_message(self, message: str | bytes, now: float) -> list[PendingMark] | None:
        """Validate and apply one server message; returns marks to echo right away."""
        if not isinstance(message, str):
            detail = f"{len(message)} bytes; Twilio expects JSON text frames"
            self._violation("binary-frame", detail, now)
            return None
        try:
            event = parse_outbound(message)
        except ProtocolError as exc:
            self._violation("bad-message", f"{exc}: {message[:80]!r}", now)
            return None
        if event.stream_sid != self.stream_sid:
            detail = f"{event.stream_sid[:40]!r} in {type(event).__name__}"
            self._violation("wrong-stream-sid", detail, now)
            return None
        turn = self.turns[-1]
        if type(event) is OutMedia:
            self._on_media(event.payload, turn, now)
            return None
        if type(event) is OutMark:
            turn.marks_received += 1
            record = MarkRecord(event.name, now, self.playout.queued_ms, turn=turn.index)
            self.marks.append(record)
            due = self.playout.add_mark(event.name, now, record)
            return [due] if due is not None else None
        return self._on_clear(turn, now)

    def _first_heard(self, turn: TurnMetrics, at: float) -> None:
        """The turn's first bot audio starts playing (slot `at`): voice-to-voice ends here."""
        turn.first_bot_played_at = at
        if turn.caller_speech_end_at is not None:
            turn.response_latency_ms = (at - turn.caller_speech_end_at) * 1000

    def _on_media(self, payload: bytes, turn: TurnMetrics, now: float) -> None:
        if payload[:4] == b"RIFF":
            self._violation("wav-header", "media payload starts with a WAV header (noise)", now)
        if turn.first_bot_media_at is None:
            turn.first_bot_media_at = now
            self.event("bot-audio", f"turn {turn.index} reply starts", now)
        turn.bot_audio_received_ms += len(payload) / 8
        self.playout.push(payload, turn, now)
        lead = self.playout.queued_bytes / 8
        if lead > turn.max_playback_lead_ms:
            turn.max_playback_lead_ms = lead
        if self.record_audio:
            self.received += payload

    def _on_clear(self, turn: TurnMetrics, now: float) -> list[PendingMark]:
        # Drop everything unplayed and hand back every pending mark at once, in order.
        marks, dropped = self.playout.clear()
        self._audio_turn, self._gap_ticks = None, 0  # what plays next starts afresh
        dropped_ms = 0.0
        for owner, n in dropped:
            owner.bot_audio_discarded_ms += n / 8
            dropped_ms += n / 8
        target = self.barge_turn or turn  # the clear answers the barge-in, if any
        self.barge_turn = None
        if target.clear_at is None:
            target.clear_at = now
            if target.barge_in_at is not None:
                target.clear_latency_ms = (now - target.barge_in_at) * 1000
        for mark in marks:
            mark.owner.cleared = True
        self.event("clear", f"dropped {dropped_ms:.0f} ms, echoing {len(marks)} marks", now)
        return marks

    def echo(self, mark: PendingMark, now: float) -> str:
        """The inbound `mark` for a finished mark; build it right before sending it so
        sequence numbers go out in order."""
        record: MarkRecord = mark.owner
        record.echoed_at = now
        self.turns[record.turn].mark_echo_delays_ms.append((now - record.received_at) * 1000)
        return self.builder.mark(mark.name)

    # ------------------------------------------------------------ results

    def track(self, name: str) -> bytes | list[bytes]:
        """A recording: `played`, `received`, `caller`, or `both` ([caller, played])."""
        if name == "both":
            return [bytes(self.caller), bytes(self.played)]
        tracks = {"played": self.played, "received": self.received, "caller": self.caller}
        if name not in tracks:
            raise ValueError(f"unknown track {name!r}; use played, received, caller or both")
        return bytes(tracks[name])

    def summary(
        self,
        *,
        speed: float,
        duration_ms: float,
        closed_by_server: bool,
        close_code: int | None,
        close_reason: str,
    ) -> CallSummary:
        turns = self.turns
        delays = [d for t in turns for d in t.mark_echo_delays_ms]
        return CallSummary(
            call_sid=self.builder.call_sid,
            stream_sid=self.stream_sid,
            speed=speed,
            duration_ms=duration_ms,
            frames_sent=self.frames_sent,
            speech_frames_sent=self.speech_frames_sent,
            frames_late=self.frames_late,
            max_lateness_ms=self.max_lateness_ms,
            bot_audio_received_ms=sum(t.bot_audio_received_ms for t in turns),
            bot_audio_played_ms=sum(t.bot_audio_played_ms for t in turns),
            bot_audio_discarded_ms=sum(t.bot_audio_discarded_ms for t in turns),
            max_playback_lead_ms=max((t.max_playback_lead_ms for t in turns), default=0.0),
            marks_received=len(self.marks),
            marks_echoed=len(delays),
            max_mark_echo_delay_ms=max(delays, default=None),
            violations=len(self.violations),
            closed_by_server=closed_by_server,
            close_code=close_code,
            close_reason=close_reason,
            turns=list(turns),
        )

    # ------------------------------------------------------------ ending

    def end(self, error: Exception) -> None:
        """The call is over: fail whatever still waits on it."""
        for segment in self.segments:
            if not segment.done.done():
                segment.done.set_exception(error)
        self.segments.clear()
        for barge in self.barge_ins:
            if not barge.triggered.done():
                barge.triggered.set_exception(error)
        self.barge_ins.clear()
        for waiter in self.reply_waiters:
            if not waiter.future.done():
                # A reply cut short by the hang-up is still the reply.
                if waiter.turn.first_bot_media_at is not None:
                    waiter.future.set_result(waiter.turn)
                else:
                    waiter.future.set_exception(error)
        self.reply_waiters.clear()

    def _violation(self, kind: str, detail: str, now: float) -> None:
        self.violations.append(StreamViolation(round((now - self.started_at) * 1000, 1), kind, detail))
        self.event("violation", f"{kind}: {detail}", now)

    def event(self, kind: str, detail: str, at: float) -> None:
        event = TimelineEvent(round((at - self.started_at) * 1000, 1), kind, detail)
        self.timeline.append(event)
        if self.on_event is not None:
            self.on_event(event)
