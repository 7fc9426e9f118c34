"""What the emulator measures and records: turns, marks, violations, timeline, WAV.

Times named `*_at` are `loop.time()` seconds (the same monotonic clock a test server
in the same process sees); `*_ms` durations are wall-clock milliseconds except the
`*_audio_*` and lead figures, which are milliseconds of audio (1 byte = 1/8 ms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class TurnMetrics:
    """One exchange: opened by the end of caller speech (turn 0: the call start).

    Bot audio is attributed to the turn during which it was *received*.
    """

    index: int
    opened_at: float
    caller_speech_end_at: float | None = None  # slot of the last speech frame (None: greeting)
    first_bot_media_at: float | None = None  # the first bot audio of the turn arrived
    first_bot_played_at: float | None = None  # ... and began to play (slot start)
    # Voice-to-voice, one definition everywhere: from the caller's last speech (the last
    # frame above the speech threshold, not the end of the line's audio) to the first bot
    # audio the caller hears (its frame starts playing).
    response_latency_ms: float | None = None
    barge_in_at: float | None = None  # first caller speech frame sent over bot audio
    clear_at: float | None = None
    clear_latency_ms: float | None = None  # barge-in speech -> `clear` received
    # The caller's first word over bot audio (slot of the first speech frame), and how long
    # the bot was still heard after it: to the end of the last bot frame played before
    # playback went quiet (100 ms of nothing). What a caller calls "it stopped at once".
    barge_in_onset_at: float | None = None
    barge_in_stop_ms: float | None = None
    reply_done_at: float | None = None  # set when wait_for_bot_reply() saw the bot go quiet
    bot_audio_received_ms: float = 0.0
    bot_audio_played_ms: float = 0.0
    bot_audio_discarded_ms: float = 0.0
    # Silence the caller heard between two frames of this turn's bot audio: 20 ms ticks
    # with nothing to play (audio late from the server, or a deliberate pause).
    underrun_ms: float = 0.0
    # The part of it this phone may have caused: ticks that ran late (its own loop was
    # busy, so it may have read the audio late too). A clean run has both at 0.
    underrun_while_late_ms: float = 0.0
    max_playback_lead_ms: float = 0.0  # most audio queued ahead of playout
    marks_received: int = 0
    mark_echo_delays_ms: list[float] = field(default_factory=list)

    @property
    def max_mark_echo_delay_ms(self) -> float | None:
        return max(self.mark_echo_delays_ms) if self.mark_echo_delays_ms else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["max_mark_echo_delay_ms"] = self.max_mark_echo_delay_ms
        return data


@dataclass(slots=True)
class MarkRecord:
    name: str
    received_at: float
    queued_ahead_ms: float  # audio that had to play before it, when it arrived
    echoed_at: float | None = None
    cleared: bool = False  # echoed because of `clear`, its audio was discarded
    turn: int = 0


@dataclass(frozen=True, slots=True)
class StreamViolation:
    t_ms: float
    kind: str  # bad-message | binary-frame | wrong-stream-sid | wav-header
    detail: str


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    t_ms: float  # since the socket opened
    kind: str
    detail: str = ""


@dataclass(slots=True)
class CallSummary:
    call_sid: str
    stream_sid: str
    speed: float
    duration_ms: float
    frames_sent: int
    speech_frames_sent: int
    frames_late: int  # sent more than 5 ms after their deadline
    max_lateness_ms: float
    bot_audio_received_ms: float
    bot_audio_played_ms: float
    bot_audio_discarded_ms: float
    max_playback_lead_ms: float
    marks_received: int
    marks_echoed: int
    max_mark_echo_delay_ms: float | None
    violations: int
    closed_by_server: bool
    close_code: int | None
    close_reason: str
    turns: list[TurnMetrics]

    def as_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "turns"}
        data["turns"] = [t.as_dict() for t in self.turns]
        return data
