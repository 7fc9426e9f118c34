"""Sans-I/O outbound pacing and mark bookkeeping for one Media Stream.

Twilio plays whatever we send as fast as it arrives into an unbounded buffer, so the
only truth about what the caller has *heard* is the echo of a `mark` we put after the
audio. This object keeps that ledger:

    enqueue/end_segment -> [unsent frames] -> take_sendable() -> [sent, unacked] -> on_mark()

It never lets sent-but-unheard audio exceed `lead_ms` plus the measured round trip of
an echo (so a barge-in `clear` drops at most that much, and "heard" stays within
`mark_every_ms` of the truth). Why the round trip: an echo reaches us half a round trip
after its audio played, and our refill reaches Twilio half a round trip later, so with
a bare 200 ms lead and a mark every 100 ms any round trip over ~100 ms (a far region, a
busy host) would leave the caller hearing gaps. Counting it keeps ~`lead_ms` of audio
actually buffered at Twilio. It puts a mark
after every `mark_every_ms` of audio, at every segment end, and whenever the lead is
full, so sent audio always has a mark coming that will account for it (an open
segment's unmarked tail waits for more audio or `end_segment`).

Positions are on the *playback timeline*: audio discarded by `clear` is removed from it,
so `heard_ms <= sent_ms` always holds and `sent_ms - heard_ms` is what Twilio still
holds. No I/O, no clock except the optional injected `now`.

Between echoes (a mark every 100 ms), what the caller has heard is estimated with a
playout clock (`heard_now`): the last echo says its audio finished playing half a round
trip ago; from there Twilio plays the frames we sent back to back, each no earlier than
it can have arrived; a frame that has begun playing counts as heard. A `clear` reaches
Twilio half a round trip after we send it, so a barge-in's snapshot (and so the
truncation the model is told) is where playback stands then, bounded by what was sent,
instead of the last echo's position up to 100 ms behind.

(Over 400 lines on purpose: pacing, the mark ledger and the playout clock are three views
of one timeline and must move together on every send, echo and clear.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from telephony.audio import FRAME_BYTES, FRAME_MS, Framer
from telephony.protocol import mark_message, media_message


@dataclass(frozen=True, slots=True)
class ClearSnapshot:
    """Where playback stood when `clear` was sent (barge-in)."""

    heard_ms: int  # playback-timeline position the caller has heard (playout clock)
    heard_segment: str | None  # segment playing at that position, None if none yet
    heard_ms_in_segment: int  # how far into `heard_segment` the caller heard
    dropped_ms: int  # audio the caller will now never hear


FIRST_HEARD_SETTLE_MS = 400  # echoes this far into a segment still refine when it began


@dataclass(frozen=True, slots=True)
class _Heard:
    position_ms: float  # playback-timeline position
    segment: str | None
    in_segment_ms: float  # how far into `segment`


@dataclass(slots=True)
class _SentFrame:
    end_ms: int  # playback-timeline position once this frame has played
    segment: str
    segment_end_ms: int  # ms of `segment` sent up to the end of this frame
    sent_at: float


@dataclass(slots=True)
class _SentMark:
    name: str
    position_ms: int  # playback-timeline position once everything before it has played
    segment: str
    segment_ms: int  # ms of `segment` sent up to this mark
    sent_at: float | None
    ahead_ms: int  # audio queued at Twilio ahead of this mark when it was sent
    from_idle: bool  # sent before any echo of its run came back: its delay is all RTT


class Playback:
    """Paces one stream's outbound audio against the caller's ears (see module doc)."""

    def __init__(
        self,
        stream_sid: str,
        lead_ms: int = 200,
        mark_every_ms: int = 100,
        *,
        now: Callable[[], float] | None = None,
        max_rtt_allowance_ms: int = 200,
        message_ms: int = FRAME_MS,
    ) -> None:
        if lead_ms < FRAME_MS:
            raise ValueError(f"lead_ms must be at least one frame ({FRAME_MS} ms), got {lead_ms}")
        if mark_every_ms < FRAME_MS:
            raise ValueError(f"mark_every_ms must be at least {FRAME_MS} ms, got {mark_every_ms}")
        self.stream_sid = stream_sid
        # Most audio one `media` message carries: consecutive frames up to a mark go out
        # as one message (a socket write each, the largest cost of sending); marks, and
        # so what "heard" and `clear` can resolve, keep their own granularity.
        self.message_frames = max(1, message_ms // FRAME_MS)
        self.lead_ms = lead_ms
        self.mark_every_ms = mark_every_ms
        self._now = now
        # Extra lead for the echo round trip (needs `now`). Capped at 200 ms: round trips
        # up to ~300 ms play gap-free, and Twilio never holds more than ~400 ms, so a
        # stalled peer or a busy host cannot make the lead drift far from DESIGN's ~200.
        self.max_rtt_allowance_ms = max_rtt_allowance_ms
        self._rtt_estimate_ms = 0.0
        self.rtt_allowance_ms = 0
        # The playout clock's round trip: the least of the recent clean samples. The
        # allowance above errs high on purpose (a gap is worse than a longer lead); a
        # scheduling hiccup in a sample would push the clock ahead of what was heard.
        self._rtt_samples: deque[float] = deque(maxlen=8)
        self._run_from = -1  # heard position when the current run of audio began from idle
        self._probe: tuple[str, float] | None = None  # an audio-less mark in flight

        # Unsent frames in order: (frame, segment, is_last_frame_of_an_ended_segment).
        self._queue: deque[tuple[bytes, str, bool]] = deque()
        self._framer = Framer(FRAME_BYTES)
        self._open_segment: str | None = None  # segment whose remainder sits in _framer

        self._sent_ms = 0
        self._heard_ms = 0
        self._unmarked_ms = 0  # sent since the last mark
        self._last_segment = ""  # segment of the last frame sent
        self._outstanding: deque[_SentMark] = deque()
        self._outstanding_names: set[str] = set()
        self._discarded: set[str] = set()  # marks Twilio will echo back after a clear
        self._mark_seq = 0

        self._heard_segment: str | None = None
        # The playout clock (needs `now`): frames sent since the last echo, and when the
        # echoed position finished playing (local clock), None while a run starts idle.
        self._unheard: deque[_SentFrame] = deque()
        self._anchor_at: float | None = None
        # When each segment's first frame began to play (local clock, shifted by the
        # one-way delay like the caller's audio arriving): (its position, when sent).
        self._segment_first: dict[str, tuple[int, float]] = {}
        self._segment_heard_at: dict[str, float] = {}
        self._segment_sent_ms: dict[str, int] = {}
        self._segment_heard_ms: dict[str, int] = {}
        self._segment_received: dict[str, int] = {}  # raw bytes handed to enqueue

        # Counters for stream statistics.
        self.frames_sent = 0
        self.marks_sent = 0
        self.marks_acked = 0
        self.marks_discarded = 0  # echoes that came back because of a clear
        self.mark_rtt_ms: list[float] = []

    # ------------------------------------------------------------ input

    def enqueue(self, ulaw: bytes, segment: str) -> None:
        """Queue μ-law audio for `segment`. A new segment ends the previous open one."""
        if self._open_segment is not None and self._open_segment != segment:
            self.end_segment(self._open_segment)
        self._open_segment = segment
        self._segment_received[segment] = self._segment_received.get(segment, 0) + len(ulaw)
        queue = self._queue
        for frame in self._framer.push(ulaw):
            queue.append((frame, segment, False))

    def end_segment(self, segment: str) -> None:
        """Flush `segment`'s partial frame (padded with silence) and mark its end."""
        if self._open_segment != segment:
            return  # already ended (or never started): nothing is pending for it
        self._open_segment = None
        tail = self._framer.flush()
        if tail is not None:
            self._queue.append((tail, segment, True))
        elif self._queue and self._queue[-1][1] == segment:
            frame, _, _ = self._queue[-1]
            self._queue[-1] = (frame, segment, True)
        # else its frames are all sent (the next take_sendable marks them, the segment
        # being closed) or it never had any: nothing to queue.

    # ------------------------------------------------------------ output

    def take_sendable(self) -> list[str]:
        """Wire messages that may go out now without running > lead_ms ahead of the ear."""
        out: list[str] = []
        queue = self._queue
        limit = self._heard_ms + self.lead_ms + self.rtt_allowance_ms
        sid = self.stream_sid
        chunk: list[bytes] = []  # frames for the next media message
        most = self.message_frames
        if queue and self._sent_ms == self._heard_ms:
            self._run_from = self._heard_ms  # Twilio holds nothing: a run starts from idle
        while queue and self._sent_ms + FRAME_MS <= limit:
            frame, segment, ends = queue.popleft()
            if self._unmarked_ms and segment != self._last_segment:
                # Close the previous segment's books before its successor's audio.
                if chunk:
                    out.append(media_message(sid, b"".join(chunk)))
                    chunk = []
                out.append(self._mark(self._last_segment))
            chunk.append(frame)
            if len(chunk) >= most:
                out.append(media_message(sid, b"".join(chunk)))
                chunk = []
            self.frames_sent += 1
            self._sent_ms += FRAME_MS
            self._unmarked_ms += FRAME_MS
            self._segment_sent_ms[segment] = self._segment_sent_ms.get(segment, 0) + FRAME_MS
            self._last_segment = segment
            if self._now is not None:
                if segment not in self._segment_first and segment not in self._segment_heard_at:
                    self._segment_first[segment] = (self._sent_ms - FRAME_MS, self._now())
                if self._sent_ms - FRAME_MS == self._heard_ms:
                    self._anchor_at = None  # from idle: the first frame plays on arrival
                self._unheard.append(
                    _SentFrame(self._sent_ms, segment, self._segment_sent_ms[segment], self._now())
                )
            if ends or self._unmarked_ms >= self.mark_every_ms:
                if chunk:
                    out.append(media_message(sid, b"".join(chunk)))
                    chunk = []
                out.append(self._mark(segment))
        if chunk:
            out.append(media_message(sid, b"".join(chunk)))
        if self._unmarked_ms and (queue or self._open_segment != self._last_segment):
            # Blocked by the lead (an echo must come back to free room), or the segment
            # ended with its audio already sent: account for what is out there now. A
            # still-open segment that merely drained waits for more audio instead, so a
            # slow trickle does not cost a mark per frame.
            out.append(self._mark(self._last_segment))
        return out

    def probe(self) -> str | None:
        """A mark with no audio before it, while Twilio holds nothing: echoed after one
        network round trip, it sizes the allowance before the first reply plays. None
        when audio is out (its echoes measure instead) or without a clock."""
        if self._now is None or self._probe is not None or self._outstanding or self._queue:
            return None
        name = self._next_mark_name()
        self._probe = (name, self._now())
        return mark_message(self.stream_sid, name)

    def _next_mark_name(self) -> str:
        self._mark_seq += 1
        self.marks_sent += 1
        return f"s{self._mark_seq}"

    def _mark(self, segment: str) -> str:
        name = self._next_mark_name()
        self._outstanding.append(
            _SentMark(
                name=name,
                position_ms=self._sent_ms,
                segment=segment,
                segment_ms=self._segment_sent_ms.get(segment, 0),
                sent_at=self._now() if self._now is not None else None,
                ahead_ms=self._sent_ms - self._heard_ms,
                from_idle=self._heard_ms == self._run_from,
            )
        )
        self._outstanding_names.add(name)
        self._unmarked_ms = 0
        return mark_message(self.stream_sid, name)

    # ------------------------------------------------------------ echoes

    def on_mark(self, name: str) -> bool:
        """Twilio echoed mark `name`. True if it moved the heard position."""
        if name in self._discarded:
            self._discarded.discard(name)  # returned by a clear: never played
            self.marks_discarded += 1
            return False
        if self._probe is not None and name == self._probe[0]:
            sent_at, self._probe = self._probe[1], None
            assert self._now is not None  # probes need a clock
            rtt = max(0.0, (self._now() - sent_at) * 1000.0)
            self.marks_acked += 1
            self.mark_rtt_ms.append(rtt)
            self._set_estimate(rtt)
            return False  # nothing was heard: no audio preceded it
        if name not in self._outstanding_names:
            return False  # unknown or already seen
        now = self._now() if self._now is not None else None
        # Echoes come back in order; an echo implies every earlier mark has played too.
        while self._outstanding:
            mark = self._outstanding.popleft()
            self._outstanding_names.discard(mark.name)
            self._heard_ms = mark.position_ms
            self._heard_segment = mark.segment
            self._segment_heard_ms[mark.segment] = mark.segment_ms
            self.marks_acked += 1
            if mark.name == name:
                self._anchor(mark.position_ms, now)
                self._note_first_heard(mark.position_ms, now)
                if now is not None and mark.sent_at is not None:
                    # Echo delay minus the audio that had to play first ~ network round trip.
                    rtt = max(0.0, (now - mark.sent_at) * 1000.0 - mark.ahead_ms)
                    self.mark_rtt_ms.append(rtt)
                    # Only an echo of audio sent from idle shows the whole round trip:
                    # later in a run Twilio keeps playing while echoes travel, so their
                    # delay beyond the audio ahead is ~0 when the allowance suffices,
                    # and otherwise mixes the gap heard with every scheduling hiccup on
                    # the way (feeding those back ratchets the lead up under load). One
                    # clean sample per reply, plus the start probe, is enough.
                    if mark.from_idle:
                        self._set_estimate(rtt)
                return True
        return True  # unreachable: name was outstanding

    # ------------------------------------------------------------ the playout clock

    def _anchor(self, position_ms: int, now: float | None) -> None:
        """An echo: audio up to `position_ms` finished playing half a round trip ago."""
        while self._unheard and self._unheard[0].end_ms <= position_ms:
            self._unheard.popleft()
        if now is not None:
            self._anchor_at = now - self._one_way_s

    def _heard_at(self, at: float | None) -> _Heard:
        """Where playback stands at local time `at` (acked position without a clock)."""
        position: float = self._heard_ms
        segment = self._heard_segment
        in_segment: float = self._segment_heard_ms.get(segment, 0) if segment else 0
        if at is None or self._now is None:
            return _Heard(position, segment, in_segment)
        one_way = self._one_way_s
        clock = self._anchor_at  # when the acked position finished playing
        frame_s = FRAME_MS / 1000.0
        for frame in self._unheard:
            arrives = frame.sent_at + one_way
            starts = arrives if clock is None else max(clock, arrives)
            if starts >= at - 1e-6:  # (a frame starting exactly now has not been heard)
                break
            # A frame that has begun playing counts whole: the caller heard (part of)
            # it, and a phone accounts for audio by the frame, as Twilio's media does.
            position = frame.end_ms
            segment = frame.segment
            in_segment = frame.segment_end_ms
            clock = starts + frame_s
            if clock > at:
                break
        return _Heard(position, segment, in_segment)

    def _note_first_heard(self, position_ms: int, now: float | None) -> None:
        """An echo at `now` for audio up to `position_ms`: segments whose first frame lies
        before it began to play that much audio earlier, and no earlier than that frame
        could have arrived. Times are local, shifted by one one-way delay, as caller audio
        is when it reaches us, so the delay cancels in voice-to-voice.

        An echo can only come late (a busy peer, a busy loop), never early, so each echo
        within the first FIRST_HEARD_SETTLE_MS of the segment may lower the estimate and
        the least is kept; after that it is settled."""
        if now is None:
            return
        for segment, (start_ms, sent_at) in list(self._segment_first.items()):
            if start_ms >= position_ms:
                continue
            earliest = sent_at + 2 * self._one_way_s
            estimate = max(earliest, now - (position_ms - start_ms) / 1000)
            known = self._segment_heard_at.get(segment)
            self._segment_heard_at[segment] = estimate if known is None else min(known, estimate)
            if position_ms - start_ms >= FIRST_HEARD_SETTLE_MS:
                del self._segment_first[segment]

    def first_heard_at(self, segment: str) -> float | None:
        """When the caller began to hear `segment` (see `_note_first_heard`), once an echo
        has told; None before that (or without a clock)."""
        return self._segment_heard_at.get(segment)

    def first_heard_settled(self, segment: str) -> bool:
        """True once later echoes can no longer change `first_heard_at(segment)`."""
        return segment in self._segment_heard_at and segment not in self._segment_first

    def heard_now(self) -> int:
        """What the caller has heard by now, by the playout clock (ms of the timeline)."""
        return int(self._heard_at(self._now() if self._now else None).position_ms)

    @property
    def _one_way_s(self) -> float:
        return min(self._rtt_samples, default=0.0) / 2000.0

    def _set_estimate(self, need: float) -> None:
        self._rtt_samples.append(need)
        # Up at once (a gap is what we are avoiding), down gently.
        est = self._rtt_estimate_ms
        est = need if need > est else est + (need - est) * 0.25
        self._rtt_estimate_ms = est
        frames = -(-int(est) // FRAME_MS)  # whole frames, rounded up
        self.rtt_allowance_ms = min(self.max_rtt_allowance_ms, frames * FRAME_MS)

    def clear(self) -> ClearSnapshot:
        """Snapshot what was heard when the clear reaches Twilio (half a round trip from
        now, by the playout clock), then drop everything not yet heard (barge-in)."""
        at = None
        if self._now is not None:
            at = self._now() + self._one_way_s
        heard = self._heard_at(at)
        position = int(heard.position_ms)
        in_segment = 0
        if heard.segment is not None:
            in_segment = min(int(heard.in_segment_ms), self.received_ms_of(heard.segment))
        snapshot = ClearSnapshot(
            heard_ms=position,
            heard_segment=heard.segment if position > 0 else self._heard_segment,
            heard_ms_in_segment=in_segment,
            dropped_ms=(self._sent_ms - position) + self.queued_ms,
        )
        # The ledger itself stays on acknowledged positions: the estimate is for telling
        # the model what was heard; frames and marks go on being counted by echoes.
        self._unheard.clear()
        # Segments whose first frame was never played are dropped with it.
        self._segment_first = {
            s: v for s, v in self._segment_first.items() if v[0] < self._heard_ms
        }
        self._anchor_at = None
        # Twilio returns every pending mark on clear; those echoes mean "discarded".
        self._discarded.update(self._outstanding_names)
        if self._probe is not None:
            self._discarded.add(self._probe[0])
            self._probe = None
        self._outstanding.clear()
        self._outstanding_names.clear()
        self._queue.clear()
        self._framer.reset()
        self._open_segment = None
        self._unmarked_ms = 0
        self._sent_ms = self._heard_ms  # discarded audio leaves the playback timeline
        for segment, heard_ms in self._segment_heard_ms.items():
            self._segment_sent_ms[segment] = heard_ms
        for segment in self._segment_sent_ms.keys() - self._segment_heard_ms.keys():
            self._segment_sent_ms[segment] = 0
        return snapshot

    def resume_segment(self, segment: str, from_ms: int) -> None:
        """`segment`, cut by a `clear`, goes on from `from_ms` of its audio (the barge-in
        was only a noise): the audio enqueued for it next is counted from there, so its
        heard and received positions stay positions in the segment's own audio."""
        self._segment_sent_ms[segment] = from_ms
        self._segment_heard_ms[segment] = from_ms
        self._segment_received[segment] = from_ms * 8

    # ------------------------------------------------------------ state

    @property
    def heard_ms(self) -> int:
        return self._heard_ms

    @property
    def sent_ms(self) -> int:
        """Playback-timeline ms sent and not discarded by a clear."""
        return self._sent_ms

    @property
    def queued_ms(self) -> int:
        """Audio accepted but not yet sent (whole frames plus an open partial frame)."""
        return len(self._queue) * FRAME_MS + self._framer.pending // 8

    @property
    def outstanding_marks(self) -> int:
        return len(self._outstanding)

    @property
    def idle(self) -> bool:
        """Nothing queued and everything sent has been heard."""
        return not self._queue and not self._framer.pending and self._sent_ms == self._heard_ms

    @property
    def heard_segment(self) -> str | None:
        return self._heard_segment

    def heard_ms_of(self, segment: str) -> int:
        """Ms of `segment` the caller has heard (acked marks), clamped to the audio
        received for it."""
        return self._heard_in(segment)

    def heard_now_of(self, segment: str) -> int:
        """Ms of `segment` heard by now by the playout clock, clamped to audio received."""
        heard = self._heard_at(self._now() if self._now else None)
        if heard.segment == segment:
            return min(int(heard.in_segment_ms), self.received_ms_of(segment))
        return self._heard_in(segment)

    def received_ms_of(self, segment: str) -> int:
        """Ms of audio handed to `enqueue` for `segment` (before padding)."""
        return self._segment_received.get(segment, 0) // 8

    def _heard_in(self, segment: str | None) -> int:
        if segment is None:
            return 0
        # The last frame is padded with silence; never claim more than we were given.
        return min(self._segment_heard_ms.get(segment, 0), self.received_ms_of(segment))
