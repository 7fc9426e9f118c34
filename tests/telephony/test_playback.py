"""Sans-I/O playback pacing and mark bookkeeping: no loop, no socket, a Twilio model."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from telephony.audio import FRAME_BYTES
from telephony.playback import ClearSnapshot, Playback
from telephony.testing.messages import (
    OutClear,
    OutMark,
    OutMedia,
    parse_outbound,
)

SID = "MZ00000000000000000000000000000001"


@dataclass
class FakeTwilio:
    """What Twilio does with our messages: buffer audio, echo marks once played."""

    audio: bytearray = field(default_factory=bytearray)  # everything received, in order
    buffered_ms: int = 0  # received and not yet played
    pending: list[tuple[str, int]] = field(default_factory=list)  # (mark, buffered ms before it)

    def receive(self, messages: list[str]) -> tuple[int, int]:
        frames = marks = 0
        for text in messages:
            msg = parse_outbound(text)
            assert msg.stream_sid == SID
            if isinstance(msg, OutMedia):
                assert len(msg.payload) == FRAME_BYTES
                self.audio += msg.payload
                self.buffered_ms += 20
                frames += 1
            elif isinstance(msg, OutMark):
                self.pending.append((msg.name, self.buffered_ms))
                marks += 1
            else:  # pragma: no cover - Playback never emits clear itself
                assert isinstance(msg, OutClear)
        return frames, marks

    def play_to_next_mark(self) -> str:
        name, ahead = self.pending.pop(0)
        self.buffered_ms -= ahead
        self.pending = [(n, a - ahead) for n, a in self.pending]
        return name

    def clear(self) -> list[str]:
        names = [n for n, _ in self.pending]
        self.pending.clear()
        self.buffered_ms = 0
        return names


def frames_of(messages: list[str]) -> list[bytes]:
    return [m.payload for m in map(parse_outbound, messages) if isinstance(m, OutMedia)]


def marks_of(messages: list[str]) -> list[str]:
    return [m.name for m in map(parse_outbound, messages) if isinstance(m, OutMark)]


def tone(ms: int, value: int = 0x55) -> bytes:
    return bytes([value]) * (ms * 8)


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(("lead", "every"), [(19, 100), (200, 0), (0, 20)])
def test_rejects_settings_that_could_never_send_or_mark(lead: int, every: int) -> None:
    with pytest.raises(ValueError):
        Playback(SID, lead_ms=lead, mark_every_ms=every)


def test_fresh_playback_is_idle_and_empty() -> None:
    pb = Playback(SID)
    assert pb.idle
    assert (pb.heard_ms, pb.sent_ms, pb.queued_ms) == (0, 0, 0)
    assert pb.take_sendable() == []
    assert pb.heard_ms_of("x") == 0 and pb.received_ms_of("x") == 0


# ---------------------------------------------------------------- pacing


def test_first_batch_stops_at_lead_with_marks_every_100ms() -> None:
    pb = Playback(SID, lead_ms=200, mark_every_ms=100)
    pb.enqueue(tone(1000), "a")
    out = pb.take_sendable()
    kinds = ["m" if isinstance(parse_outbound(t), OutMedia) else "k" for t in out]
    assert kinds == ["m"] * 5 + ["k"] + ["m"] * 5 + ["k"]
    assert pb.sent_ms == 200 and pb.heard_ms == 0 and pb.queued_ms == 800
    assert pb.take_sendable() == []  # nothing more until the caller hears something
    assert not pb.idle


def test_each_echo_releases_exactly_the_audio_it_acknowledged() -> None:
    pb = Playback(SID)
    twilio = FakeTwilio()
    pb.enqueue(tone(1000), "a")
    twilio.receive(pb.take_sendable())
    assert pb.on_mark(twilio.play_to_next_mark())
    assert pb.heard_ms == 100
    frames, marks = twilio.receive(pb.take_sendable())
    assert (frames, marks) == (5, 1)
    assert pb.sent_ms == 300


def test_whole_segment_arrives_byte_exact_and_then_idle() -> None:
    pb = Playback(SID)
    twilio = FakeTwilio()
    audio = bytes(range(256)) * 25 + b"\x01\x02\x03"  # 6403 bytes: not a frame multiple
    pb.enqueue(audio, "a")
    pb.end_segment("a")
    twilio.receive(pb.take_sendable())
    while twilio.pending:
        assert pb.on_mark(twilio.play_to_next_mark())
        twilio.receive(pb.take_sendable())
    pad = FRAME_BYTES - len(audio) % FRAME_BYTES
    assert bytes(twilio.audio) == audio + b"\xff" * pad
    assert pb.idle
    assert pb.heard_ms == pb.sent_ms == (len(audio) + pad) // 8
    # Heard never claims the padding: clamp to what the provider gave us.
    assert pb.heard_ms_of("a") == pb.received_ms_of("a") == len(audio) // 8


def test_partial_frames_carry_over_between_enqueues() -> None:
    pb = Playback(SID)
    pb.enqueue(b"\x01" * 100, "a")
    assert pb.take_sendable() == []
    assert pb.queued_ms == 12  # 100 bytes, still in the framer
    pb.enqueue(b"\x02" * 100, "a")
    frames = frames_of(pb.take_sendable())
    assert frames == [b"\x01" * 100 + b"\x02" * 60]
    assert pb.queued_ms == 5  # 40 bytes left over


def test_end_segment_pads_with_ulaw_silence_and_marks_the_end() -> None:
    pb = Playback(SID, mark_every_ms=1000)
    pb.enqueue(b"\x10" * 200, "a")
    pb.take_sendable()
    pb.end_segment("a")
    out = pb.take_sendable()
    assert frames_of(out) == [b"\x10" * 40 + b"\xff" * 120]
    assert len(marks_of(out)) == 1


def test_segment_end_on_an_exact_frame_boundary_still_gets_a_mark() -> None:
    pb = Playback(SID, lead_ms=20, mark_every_ms=1000)
    twilio = FakeTwilio()
    pb.enqueue(tone(60), "a")
    pb.end_segment("a")  # no partial frame: the last queued frame carries the end
    pb.enqueue(tone(40, 0x22), "b")
    names = []
    twilio.receive(pb.take_sendable())
    while twilio.pending:
        names.append(twilio.play_to_next_mark())
        pb.on_mark(names[-1])
        if pb.heard_segment == "a" and pb.heard_ms == 60:
            assert pb.heard_ms_of("a") == 60 and pb.heard_ms_of("b") == 0
        twilio.receive(pb.take_sendable())
    assert pb.heard_ms_of("a") == 60


def test_a_new_segment_ends_the_previous_one() -> None:
    pb = Playback(SID, lead_ms=1000, mark_every_ms=1000)
    pb.enqueue(b"\x11" * 170, "a")
    pb.enqueue(b"\x22" * 160, "b")
    out = pb.take_sendable()
    assert frames_of(out) == [b"\x11" * 160, b"\x11" * 10 + b"\xff" * 150, b"\x22" * 160]
    # A mark at the end of a; b is still open, so its frame waits for more or its end.
    assert len(marks_of(out)) == 1


def test_an_empty_segment_does_not_steal_the_previous_segments_end() -> None:
    pb = Playback(SID, lead_ms=20, mark_every_ms=20)
    twilio = FakeTwilio()
    pb.enqueue(b"\x01" * 168, "a")  # one frame out now, 8 bytes waiting
    pb.end_segment("a")
    pb.enqueue(b"", "b")
    pb.end_segment("b")
    twilio.receive(pb.take_sendable())
    while twilio.pending:
        pb.on_mark(twilio.play_to_next_mark())
        twilio.receive(pb.take_sendable())
    assert pb.heard_ms_of("a") == pb.received_ms_of("a") == 21
    assert pb.heard_segment == "a" and pb.heard_ms_of("b") == 0


def test_end_segment_of_an_unknown_or_finished_segment_is_harmless() -> None:
    pb = Playback(SID)
    pb.end_segment("never")
    pb.enqueue(tone(20), "a")
    pb.end_segment("a")
    pb.end_segment("a")
    assert len(frames_of(pb.take_sendable())) == 1


def test_mark_every_longer_than_lead_still_marks_each_batch() -> None:
    # Otherwise nothing would ever be echoed and playback would stall forever.
    pb = Playback(SID, lead_ms=100, mark_every_ms=1000)
    twilio = FakeTwilio()
    pb.enqueue(tone(500), "a")
    pb.end_segment("a")
    twilio.receive(pb.take_sendable())
    rounds = 0
    while twilio.pending:
        pb.on_mark(twilio.play_to_next_mark())
        twilio.receive(pb.take_sendable())
        rounds += 1
    assert pb.idle and pb.heard_ms == 500 and rounds == 5


def test_a_trickle_into_an_open_segment_is_marked_every_100ms_not_per_chunk() -> None:
    pb = Playback(SID, lead_ms=10_000)
    twilio = FakeTwilio()
    for _ in range(10):
        pb.enqueue(tone(20), "a")
        twilio.receive(pb.take_sendable())
    assert twilio.buffered_ms == 200 and len(twilio.pending) == 2
    assert not pb.idle  # sent, not yet heard
    pb.enqueue(tone(40), "a")
    assert twilio.receive(pb.take_sendable()) == (2, 0)  # open segment: no mark yet
    pb.end_segment("a")
    assert twilio.receive(pb.take_sendable()) == (0, 1)  # the end marks what is out there
    while twilio.pending:
        pb.on_mark(twilio.play_to_next_mark())
    assert pb.idle and pb.heard_ms == 240 and pb.heard_ms_of("a") == 240


def test_switching_segments_after_a_drain_marks_the_old_one_first() -> None:
    pb = Playback(SID, lead_ms=10_000)
    twilio = FakeTwilio()
    pb.enqueue(tone(40), "a")
    twilio.receive(pb.take_sendable())
    pb.enqueue(tone(40), "b")  # a's frames are out, unmarked
    out = pb.take_sendable()
    kinds = ["m" if isinstance(parse_outbound(t), OutMedia) else "k" for t in out]
    assert kinds == ["k", "m", "m"]
    twilio.receive(out)
    pb.on_mark(twilio.play_to_next_mark())
    assert pb.heard_ms_of("a") == 40 and pb.heard_ms_of("b") == 0


def test_mark_names_are_unique_across_the_stream() -> None:
    pb = Playback(SID, lead_ms=10_000)
    names: list[str] = []
    for i in range(20):
        pb.enqueue(tone(60), f"seg{i}")
        pb.end_segment(f"seg{i}")
        names += marks_of(pb.take_sendable())
        if i == 10:
            pb.clear()
    assert len(names) == len(set(names)) >= 20


# ---------------------------------------------------------------- echoes


def test_unknown_duplicate_and_out_of_order_echoes() -> None:
    pb = Playback(SID)
    pb.enqueue(tone(200), "a")
    first, second = marks_of(pb.take_sendable())
    assert not pb.on_mark("nope")
    assert pb.on_mark(second)  # later echo implies the earlier one played too
    assert pb.heard_ms == 200 and pb.marks_acked == 2
    assert not pb.on_mark(first)
    assert not pb.on_mark(second)
    assert pb.heard_ms == 200


def test_heard_ms_of_tracks_each_segment() -> None:
    pb = Playback(SID, lead_ms=1000)
    twilio = FakeTwilio()
    pb.enqueue(tone(100), "a")
    pb.end_segment("a")
    pb.enqueue(tone(300), "b")
    twilio.receive(pb.take_sendable())
    pb.on_mark(twilio.play_to_next_mark())  # end of a
    assert (pb.heard_ms_of("a"), pb.heard_ms_of("b")) == (100, 0)
    pb.on_mark(twilio.play_to_next_mark())  # 100 ms into b
    assert (pb.heard_ms_of("a"), pb.heard_ms_of("b"), pb.heard_ms) == (100, 100, 200)
    assert pb.received_ms_of("b") == 300


def test_mark_round_trip_subtracts_audio_queued_ahead() -> None:
    clock = [0.0]
    pb = Playback(SID, now=lambda: clock[0])
    pb.enqueue(tone(200), "a")
    first, second = marks_of(pb.take_sendable())
    clock[0] = 0.130  # 100 ms of audio ahead of the first mark + 30 ms of network
    pb.on_mark(first)
    clock[0] = 0.150  # early echo (a phone that acks too fast): clamped, never negative
    pb.on_mark(second)
    assert pb.mark_rtt_ms == [pytest.approx(30.0), 0.0]


# ---------------------------------------------------------------- clear


def test_clear_snapshots_heard_before_dropping_and_ignores_stale_echoes() -> None:
    pb = Playback(SID)
    twilio = FakeTwilio()
    pb.enqueue(tone(1000), "a")
    twilio.receive(pb.take_sendable())
    assert pb.on_mark(twilio.play_to_next_mark())

    snap = pb.clear()
    assert snap == ClearSnapshot(
        heard_ms=100, heard_segment="a", heard_ms_in_segment=100, dropped_ms=900
    )
    assert pb.queued_ms == 0 and pb.sent_ms == pb.heard_ms == 100 and pb.idle

    # Twilio answers a clear by returning every pending mark: none of them was heard.
    stale = twilio.clear()
    for name in stale:
        assert not pb.on_mark(name)
    assert pb.heard_ms == 100 and pb.heard_ms_of("a") == 100
    assert pb.marks_discarded == len(stale) == 1
    assert not pb.on_mark(stale[0])  # a second copy is simply unknown
    assert pb.marks_discarded == 1


def test_audio_after_clear_is_paced_from_the_heard_position() -> None:
    pb = Playback(SID)
    twilio = FakeTwilio()
    pb.enqueue(tone(1000), "a")
    twilio.receive(pb.take_sendable())
    stale = twilio.clear()
    pb.clear()
    pb.enqueue(tone(60, 0x33), "b")
    pb.end_segment("b")
    twilio.receive(pb.take_sendable())
    for name in stale:  # echoes of the clear arrive after the new audio was sent
        assert not pb.on_mark(name)
    assert pb.heard_ms == 0 and pb.sent_ms == 60
    assert pb.on_mark(twilio.play_to_next_mark())
    assert pb.heard_ms == 60 and pb.heard_ms_of("b") == 60 and pb.idle


def test_clear_drops_the_partial_frame_and_closes_the_segment() -> None:
    pb = Playback(SID)
    pb.enqueue(b"\x01" * 100, "a")
    snap = pb.clear()
    assert snap.dropped_ms == 12 and snap.heard_segment is None
    pb.end_segment("a")
    assert pb.take_sendable() == [] and pb.idle


# ---------------------------------------------------------------- properties


class PlaybackMachine(RuleBasedStateMachine):
    """Random enqueues, echoes, clears and junk against the Twilio model."""

    def __init__(self) -> None:
        super().__init__()
        self.lead = 200
        self.pb = Playback(SID, lead_ms=self.lead, mark_every_ms=100)
        self.twilio = FakeTwilio()
        self.stale: list[str] = []
        self.last_heard = 0
        self.expected = bytearray()  # audio we expect Twilio to have received, in order
        self.open: str | None = None
        self.segment_no = 0
        self.cut: set[str] = set()  # segments a clear interrupted

    @initialize(
        lead=st.sampled_from([20, 60, 200, 250]), every=st.sampled_from([20, 100, 130, 1000])
    )
    def configure(self, lead: int, every: int) -> None:
        self.lead = lead
        self.pb = Playback(SID, lead_ms=lead, mark_every_ms=every)

    def _pump(self) -> None:
        self.twilio.receive(self.pb.take_sendable())

    @rule(
        size=st.one_of(st.integers(0, 900), st.sampled_from([160, 320, 800])),
        new_segment=st.booleans(),
    )
    def enqueue(self, size: int, new_segment: bool) -> None:
        if new_segment or self.open is None:
            self._end_open()
            self.segment_no += 1
            self.open = f"seg{self.segment_no}"
        data = bytes((self.segment_no * 7 + i) % 251 for i in range(size))
        self.pb.enqueue(data, self.open)
        self.expected += data
        self._pump()

    def _end_open(self) -> None:
        if self.open is not None:
            self.pb.end_segment(self.open)
            rest = len(self.expected) % FRAME_BYTES
            if rest:
                self.expected += b"\xff" * (FRAME_BYTES - rest)
            self.open = None

    @rule()
    def end_segment(self) -> None:
        self._end_open()
        self._pump()

    @precondition(lambda self: self.twilio.pending)
    @rule()
    def echo(self) -> None:
        before = self.pb.heard_ms
        assert self.pb.on_mark(self.twilio.play_to_next_mark())
        assert self.pb.heard_ms > before
        self._pump()

    @precondition(lambda self: self.stale)
    @rule()
    def stale_echo(self) -> None:
        heard, discarded = self.pb.heard_ms, self.pb.marks_discarded
        assert not self.pb.on_mark(self.stale.pop(0))
        assert self.pb.heard_ms == heard
        assert self.pb.marks_discarded == discarded + 1

    @rule(name=st.text(min_size=1, max_size=8))
    def junk_echo(self, name: str) -> None:
        if name in {n for n, _ in self.twilio.pending}:
            return
        heard = self.pb.heard_ms
        self.pb.on_mark(name)
        assert self.pb.heard_ms == heard

    @rule()
    def clear(self) -> None:
        heard, sent, queued = self.pb.heard_ms, self.pb.sent_ms, self.pb.queued_ms
        snap_heard_of = [self.pb.heard_ms_of(f"seg{i}") for i in range(1, self.segment_no + 1)]
        snap = self.pb.clear()
        assert snap.heard_ms == heard
        assert snap.dropped_ms == sent - heard + queued
        self.stale += self.twilio.clear()
        self.cut |= {
            f"seg{i}"
            for i in range(1, self.segment_no + 1)
            if snap_heard_of[i - 1] < self.pb.received_ms_of(f"seg{i}")
        }
        # What Twilio got so far is the new baseline; the rest is gone.
        self.expected = bytearray(self.twilio.audio)
        self.open = None
        self._pump()

    @rule()
    def drain(self) -> None:
        # Liveness: end the segment and play everything out; playback must go idle.
        self._end_open()
        self._pump()
        while self.twilio.pending:
            self.pb.on_mark(self.twilio.play_to_next_mark())
            self._pump()
        assert self.pb.idle and self.pb.heard_ms == self.pb.sent_ms
        assert bytes(self.twilio.audio) == bytes(self.expected)
        for i in range(1, self.segment_no + 1):
            seg = f"seg{i}"
            if seg not in self.cut:  # every uninterrupted segment was heard in full
                assert self.pb.heard_ms_of(seg) == self.pb.received_ms_of(seg), seg

    @invariant()
    def heard_never_exceeds_sent(self) -> None:
        assert 0 <= self.pb.heard_ms <= self.pb.sent_ms

    @invariant()
    def lead_holds(self) -> None:
        assert self.pb.sent_ms - self.pb.heard_ms <= self.lead
        assert self.twilio.buffered_ms == self.pb.sent_ms - self.pb.heard_ms

    @invariant()
    def heard_is_monotonic(self) -> None:
        assert self.pb.heard_ms >= self.last_heard
        self.last_heard = self.pb.heard_ms

    @invariant()
    def audio_arrives_in_order_unaltered(self) -> None:
        got = bytes(self.twilio.audio)
        assert bytes(self.expected[: len(got)]) == got

    @invariant()
    def idle_means_everything_heard(self) -> None:
        if self.pb.idle:
            assert self.pb.queued_ms == 0 and self.pb.sent_ms == self.pb.heard_ms
            assert not self.twilio.pending

    @invariant()
    def segment_heard_within_received(self) -> None:
        for i in range(1, self.segment_no + 1):
            seg = f"seg{i}"
            assert self.pb.heard_ms_of(seg) <= self.pb.received_ms_of(seg)


PlaybackMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)
TestPlaybackProperties = PlaybackMachine.TestCase


# ---------------------------------------------------------------- round trip


def gaps_heard(pb: Playback, clock: list[float], one_way_ms: float, replies: int) -> list[float]:
    """Silence the caller hears inside each of `replies` 3 s replies when every message
    takes `one_way_ms` each way and Twilio plays in real time (a discrete-event run)."""
    gaps = []
    for n in range(replies):
        pb.enqueue(tone(3000), f"r{n}")
        pb.end_segment(f"r{n}")
        phone = _PlayingPhone(one_way_ms)
        phone.receive(pb.take_sendable(), clock[0])
        while phone.echoes:
            phone.echoes.sort()
            t, name = phone.echoes.pop(0)
            clock[0] = t
            pb.on_mark(name)
            phone.receive(pb.take_sendable(), t)
        assert pb.idle and phone.first is not None and phone.play_end is not None
        gaps.append(phone.play_end - phone.first - 3000)
        clock[0] += 2000  # the caller talks; the next reply starts from idle
    return gaps


@dataclass
class _PlayingPhone:
    """Twilio playing one reply in real time, `one_way_ms` away (times in ms)."""

    one_way_ms: float
    first: float | None = None  # when the first frame started playing
    play_end: float | None = None  # when the audio received so far stops playing
    echoes: list[tuple[float, str]] = field(default_factory=list)  # (reaches the server, mark)

    def receive(self, messages: list[str], sent_at: float) -> None:
        arrive = sent_at + self.one_way_ms
        for text in messages:
            msg = parse_outbound(text)
            if isinstance(msg, OutMedia):
                if self.first is None or self.play_end is None:
                    self.first = self.play_end = arrive
                self.play_end = max(self.play_end, arrive) + 20
            elif isinstance(msg, OutMark):
                played = max(arrive, self.play_end or arrive)
                self.echoes.append((played + self.one_way_ms, msg.name))


def test_a_far_twilio_region_hears_no_gaps_once_the_round_trip_is_known() -> None:
    # A 150 ms round trip is more than the 100 ms a bare 200 ms lead leaves for a refill.
    clock = [0.0]
    pb = Playback(SID, now=lambda: clock[0] / 1000)
    first, second, third = gaps_heard(pb, clock, one_way_ms=75, replies=3)
    assert 0 < first <= 60  # learned on the first refill: one short gap
    assert second == third == 0
    assert 140 <= pb.rtt_allowance_ms <= 160
    # The same line without the allowance: a gap at every refill of every reply.
    clock = [0.0]
    bare = Playback(SID, now=lambda: clock[0] / 1000, max_rtt_allowance_ms=0)
    assert all(g >= 500 for g in gaps_heard(bare, clock, one_way_ms=75, replies=2))


def test_a_near_twilio_needs_no_allowance_and_a_slow_spell_wears_off() -> None:
    clock = [0.0]
    pb = Playback(SID, now=lambda: clock[0] / 1000)
    assert gaps_heard(pb, clock, one_way_ms=5, replies=2) == [0, 0]
    assert pb.rtt_allowance_ms <= 20
    gaps_heard(pb, clock, one_way_ms=120, replies=1)  # a busy spell
    high = pb.rtt_allowance_ms
    assert high >= 200
    gaps_heard(pb, clock, one_way_ms=5, replies=8)
    assert pb.rtt_allowance_ms < high / 2  # the lead comes back down


def test_the_allowance_is_capped() -> None:
    clock = [0.0]
    pb = Playback(SID, now=lambda: clock[0] / 1000, max_rtt_allowance_ms=300)
    gaps_heard(pb, clock, one_way_ms=400, replies=1)
    assert pb.rtt_allowance_ms == 300


def test_a_probe_before_the_first_reply_spares_it_the_gap() -> None:
    clock = [0.0]
    pb = Playback(SID, now=lambda: clock[0] / 1000)
    probe = parse_outbound(pb.probe() or "")
    assert isinstance(probe, OutMark)
    assert pb.probe() is None  # one at a time
    clock[0] = 150.0  # Twilio echoes a mark with nothing before it at once: one round trip
    assert pb.on_mark(probe.name) is False  # nothing was heard
    assert (pb.heard_ms, pb.heard_segment, pb.rtt_allowance_ms) == (0, None, 160)
    assert gaps_heard(pb, clock, one_way_ms=75, replies=1) == [0]
    assert pb.heard_ms_of("r0") == 3000


def test_a_probe_returned_by_clear_is_not_a_round_trip() -> None:
    clock = [0.0]
    pb = Playback(SID, now=lambda: clock[0] / 1000)
    probe = parse_outbound(pb.probe() or "")
    assert isinstance(probe, OutMark)
    pb.enqueue(tone(300), "a")
    pb.take_sendable()
    pb.clear()
    clock[0] = 900.0
    assert pb.on_mark(probe.name) is False
    assert pb.rtt_allowance_ms == 0 and pb.marks_discarded == 1
    # Audio out: its own echoes measure; no probe then, nor without a clock.
    pb.enqueue(tone(100), "b")
    pb.take_sendable()
    assert pb.probe() is None
    assert Playback(SID).probe() is None


# ---------------------------------------------------------------- the playout clock


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def at(self, ms: float) -> Clock:
        self.t = 100.0 + ms / 1000
        return self


def test_between_echoes_heard_advances_with_the_playout_clock() -> None:
    clock = Clock()
    pb = Playback(SID, lead_ms=200, mark_every_ms=100, now=clock)
    pb.enqueue(b"\x01" * 8 * 1000, "reply")  # 1 s
    first, second = marks_of(pb.take_sendable())  # 200 ms out at t=0, from idle
    assert pb.heard_now() == 0
    # Playing since it arrived; the frame playing at 50 ms (40-60) counts whole.
    assert clock.at(50) and pb.heard_now() == 60
    assert pb.heard_ms == 0 and pb.heard_now_of("reply") == 60  # the ledger waits for echoes
    clock.at(100)
    assert pb.on_mark(first) and pb.heard_ms == 100
    assert clock.at(135) and pb.heard_now() == 140
    assert clock.at(260) and pb.heard_now() == 200  # never past what was sent


def test_the_clock_restarts_from_each_echo_and_waits_for_late_frames() -> None:
    clock = Clock()
    pb = Playback(SID, lead_ms=200, mark_every_ms=100, now=clock)
    pb.enqueue(b"\x01" * 8 * 100, "reply")  # 100 ms, then a slow model
    (mark,) = marks_of(pb.take_sendable())
    clock.at(100)
    pb.on_mark(mark)  # all 100 ms played; Twilio now holds nothing
    clock.at(300)
    pb.enqueue(b"\x02" * 8 * 100, "reply")  # arrives 200 ms later: plays from then
    pb.take_sendable()
    assert clock.at(340) and pb.heard_now() == 140
    assert pb.heard_now_of("reply") == 140


def test_a_round_trip_shifts_the_clock_by_half_of_it() -> None:
    clock = Clock()
    pb = Playback(SID, lead_ms=200, mark_every_ms=100, now=clock)
    probe = parse_outbound(pb.probe() or "")
    assert isinstance(probe, OutMark)
    clock.at(60)
    pb.on_mark(probe.name)  # a 60 ms round trip: 30 ms each way
    clock.at(100)
    pb.enqueue(b"\x01" * 8 * 1000, "reply")
    first = marks_of(pb.take_sendable())[0]
    assert clock.at(150) and pb.heard_now() == 20  # arrived at 130 ms
    clock.at(260)  # the echo of 100 ms played left Twilio at 230 ms
    pb.on_mark(first)
    assert clock.at(280) and pb.heard_now() == 160
    # A clear sent now reaches Twilio 30 ms later: that is where the caller stops hearing.
    snapshot = pb.clear()
    assert snapshot.heard_ms == 180 and snapshot.heard_segment == "reply"
    assert snapshot.heard_ms_in_segment == 180


def test_clear_without_a_clock_reports_the_acknowledged_position() -> None:
    pb = Playback(SID, lead_ms=200, mark_every_ms=100)
    pb.enqueue(b"\x01" * 8 * 1000, "reply")
    first = marks_of(pb.take_sendable())[0]
    pb.on_mark(first)
    snapshot = pb.clear()
    assert (snapshot.heard_ms, snapshot.heard_ms_in_segment, snapshot.dropped_ms) == (100, 100, 900)


def test_first_heard_is_told_by_the_first_echo_and_kept() -> None:
    clock = Clock()
    pb = Playback(SID, lead_ms=200, mark_every_ms=100, now=clock)
    pb.enqueue(b"\x01" * 8 * 400, "reply")  # 400 ms from idle at t=0
    first, _ = marks_of(pb.take_sendable())
    assert pb.first_heard_at("reply") is None  # no echo yet
    clock.at(130)  # the echo of 100 ms: playing began 30 ms after it went out
    pb.on_mark(first)
    assert pb.first_heard_at("reply") == pytest.approx(100.030)
    for name in marks_of(pb.take_sendable()):  # more of the same reply: still when it began
        clock.at(clock.t * 1000 - 100_000 + 100)
        pb.on_mark(name)
    assert pb.first_heard_at("reply") == pytest.approx(100.030)


# ---------------------------------------------------------------- larger media messages


def drain(pb: Playback) -> tuple[bytes, list[int], list[int]]:
    """Play everything out like Twilio: (audio received, media sizes, heard_ms per echo)."""
    audio, sizes, heard = bytearray(), [], []
    pending: list[str] = []
    while True:
        for text in pb.take_sendable():
            msg = parse_outbound(text)
            if isinstance(msg, OutMedia):
                audio += msg.payload
                sizes.append(len(msg.payload))
            elif isinstance(msg, OutMark):
                pending.append(msg.name)
        if not pending:
            return bytes(audio), sizes, heard
        pb.on_mark(pending.pop(0))
        heard.append(pb.heard_ms)


def test_frames_between_marks_go_out_as_one_message() -> None:
    pb = Playback(SID, lead_ms=200, mark_every_ms=100, message_ms=100)
    pb.enqueue(tone(1000), "a")
    out = pb.take_sendable()
    kinds = ["m" if isinstance(parse_outbound(t), OutMedia) else "k" for t in out]
    assert kinds == ["m", "k", "m", "k"]  # marks as often as with 20 ms messages
    assert frames_of(out) == [tone(100), tone(100)]
    assert pb.sent_ms == 200 and pb.frames_sent == 10 and pb.queued_ms == 800


@pytest.mark.parametrize("message_ms", [40, 100, 1000])
def test_larger_messages_carry_the_same_audio_and_marks(message_ms: int) -> None:
    def feed(pb: Playback) -> tuple[bytes, list[int], list[int]]:
        pb.enqueue(b"\x11" * 1234, "a")
        pb.enqueue(b"\x22" * 800, "b")  # a new segment ends a (padded)
        pb.end_segment("b")
        pb.enqueue(b"\x33" * 170, "c")
        pb.end_segment("c")
        return drain(pb)

    frames = feed(Playback(SID, lead_ms=200, mark_every_ms=100))
    larger = feed(Playback(SID, lead_ms=200, mark_every_ms=100, message_ms=message_ms))
    assert larger[0] == frames[0]  # byte for byte, in order
    assert larger[2] == frames[2]  # the same marks at the same positions
    assert set(frames[1]) == {FRAME_BYTES}
    assert max(larger[1]) == min(message_ms, 100) * 8 and len(larger[1]) < len(frames[1])


def test_segments_never_share_a_message() -> None:
    pb = Playback(SID, lead_ms=1000, mark_every_ms=1000, message_ms=1000)
    pb.enqueue(b"\x11" * 170, "a")
    pb.enqueue(b"\x22" * 160, "b")
    out = pb.take_sendable()
    assert frames_of(out) == [b"\x11" * 170 + b"\xff" * 150, b"\x22" * 160]
    assert len(marks_of(out)) == 1  # a's end; b is still open
