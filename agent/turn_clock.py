"""Voice-to-voice as the caller lives it, measured by the server: from the caller's last
speech to the first bot audio they hear.

Both ends are placed on one local clock, in the same way, so the network's one-way delay
cancels out:

- the end of speech. The provider says where in the caller's audio the turn ended
  (OpenAI and the offline engine: speech-stopped's `audio_end_ms`, which the provider
  maps onto the call's audio). That is a bound, not the moment: OpenAI documents it as
  the end of the silence that ended the turn, and a VAD lets go of a word's quiet tail a
  few windows late or early. So the last caller frame above the speech threshold at or
  before it is the end, as a caller-side measurement places it; that frame arrived from
  Twilio at a known local time. Gemini says nothing of the kind: there the last loud
  frame before the reply stands in (`reports_speech_stopped` is False).
- the first audio heard: the echo of the first mark after the reply's first frame
  arrives when the audio before it has played, so the first frame started playing that
  much audio earlier (`Playback.first_heard_at`). Until the echo is back (or when it
  never comes), the time the first frame was sent stands in, and the figure says so.

"The speech threshold" is the caller-side one (`telephony.audio.last_speech_frame`, as
the emulated phone uses), applied to the last few seconds of caller audio when a turn
ends: nothing is computed per frame but a deque append.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Literal

from telephony.audio import last_speech_frame

KEEP_S = 120  # how far back a speech end can be placed (a long tool call between)
LOOK_BACK_FRAMES = 250  # the caller audio (5 s) searched for the last speech frame
CATCH_UP_FRAMES = 50  # later frames (1 s) that may place a frame read late

EndPoint = Literal["heard", "sent"]


@dataclass(frozen=True, slots=True)
class TurnLatency:
    ms: float
    end: EndPoint  # first audio heard (mark echo), or sent (no echo yet)
    start: Literal["provider", "energy"]  # speech end bounded by the provider, or not
    at: float  # when the turn's first audio was heard (or sent): local clock


class TurnClock:
    def __init__(self) -> None:
        self.caller_ms = 0.0  # μ-law the caller sent so far, in ms
        self._ends: deque[float] = deque()  # caller_ms at the end of each frame
        self._arrived: deque[float] = deque()  # ... and when that frame arrived
        self._frames: deque[bytes] = deque(maxlen=LOOK_BACK_FRAMES)  # the latest audio
        self._speech_end_at: float | None = None
        self._start: Literal["provider", "energy"] = "provider"
        self._first_sent_at: float | None = None
        self._first_segment: str | None = None
        self._timed_ms = 0.0  # caller_ms of the speech end timed last (never twice)

    def caller_frame(self, ulaw: bytes, now: float) -> None:
        """A frame of caller audio arrived at local time `now`."""
        self.caller_ms += len(ulaw) / 8
        self._ends.append(self.caller_ms)
        self._arrived.append(now)
        self._frames.append(ulaw)
        if len(self._ends) > KEEP_S * 50:
            self._ends.popleft()
            self._arrived.popleft()

    def arrival_of(self, caller_ms: float) -> float | None:
        """Local time the caller's audio up to `caller_ms` had arrived.

        A frame read late (our loop busy, a TCP hiccup) is placed by the frames after it:
        the phone sends in real time, so a frame Δ ms later cannot have left less than
        Δ ms after it, and a later frame that was read on time bounds the earlier one's
        arrival. Only on a stream that runs in real time (an emulated phone may run
        faster, where the bound would not hold)."""
        if not self._ends or caller_ms > self._ends[-1] + 1 or caller_ms < self._ends[0] - 20:
            return None
        i = min(bisect.bisect_left(self._ends, caller_ms - 1e-6), len(self._arrived) - 1)
        arrived = self._arrived[i]
        if not self._real_time():
            return arrived
        end = self._ends[i]
        for j in range(i + 1, min(i + 1 + CATCH_UP_FRAMES, len(self._arrived))):
            arrived = min(arrived, self._arrived[j] - (self._ends[j] - end) / 1000)
        return arrived

    def _real_time(self) -> bool:
        """Does the caller's audio arrive at (about) its own pace?"""
        n = min(len(self._ends), LOOK_BACK_FRAMES)
        if n < 2:
            return False
        audio_s = (self._ends[-1] - self._ends[-n]) / 1000
        return self._arrived[-1] - self._arrived[-n] >= 0.8 * audio_s

    def _last_voiced(self, upto_ms: float) -> float | None:
        """caller_ms of the end of the last speech frame at or before `upto_ms` (within
        the audio kept), newer than the speech end timed last."""
        frames = list(self._frames)
        ends = list(self._ends)[-len(frames):] if frames else []
        cut = bisect.bisect_right(ends, upto_ms + 1e-6)
        index = last_speech_frame(frames[:cut])
        if index < 0 or ends[index] <= self._timed_ms:
            return None
        return ends[index]

    def speech_stopped(self, caller_ms: float | None, now: float) -> None:
        """The provider heard the caller's turn end at (or before) `caller_ms`."""
        bound = caller_ms if caller_ms is not None else self.caller_ms
        voiced = self._last_voiced(bound)
        at = self.arrival_of(voiced if voiced is not None else bound)
        self._speech_end_at = at if at is not None else now
        self._timed_ms = voiced if voiced is not None else bound
        self._start = "provider"
        self._first_sent_at = self._first_segment = None

    def caller_spoke(self) -> None:
        """The caller started again (barge-in): the turn being timed is over."""
        self._speech_end_at = None
        self._first_sent_at = self._first_segment = None

    def first_audio(self, segment: str, now: float, *, energy_fallback: bool) -> bool:
        """Bot audio goes out; True if it is the first of an answer being timed. With
        `energy_fallback` (no speech-stopped from this provider), an answer to speech
        since the last timed turn is timed from that speech's last loud frame."""
        if self._first_segment is not None:
            return False
        if self._speech_end_at is None and energy_fallback:
            voiced = self._last_voiced(self.caller_ms)
            if voiced is not None:
                self._speech_end_at, self._start = self.arrival_of(voiced), "energy"
                self._timed_ms = voiced
        if self._speech_end_at is None:
            return False
        self._first_sent_at, self._first_segment = now, segment
        return True

    @property
    def speech_end_at(self) -> float | None:
        """When the speech that the turn being timed answers ended (local clock)."""
        return self._speech_end_at

    @property
    def timing(self) -> str | None:
        """The segment whose first audio ends the turn being timed, if any."""
        return self._first_segment

    def close(self, heard_at: float | None) -> TurnLatency | None:
        """The figure for the turn being timed (then forgotten): to when its first audio
        was heard, or, without an echo, to when it was sent."""
        if self._speech_end_at is None or self._first_sent_at is None:
            return None
        end: EndPoint = "heard" if heard_at is not None else "sent"
        at = heard_at if heard_at is not None else self._first_sent_at
        latency = TurnLatency(max(0.0, (at - self._speech_end_at) * 1000), end, self._start, at)
        self._speech_end_at = self._first_sent_at = self._first_segment = None
        return latency
