"""The phone's side of bot audio: a sans-I/O playout buffer with Twilio's mark semantics.

Twilio queues the audio a server sends and plays it in real time. A `mark` is echoed
once all audio queued before it has finished playing; `clear` drops what is still
queued and echoes every pending mark at once. `Playout` models exactly that, one
20 ms frame per `tick()`, with no clock and no socket, so it is unit-testable with
plain bytes. The emulator drives `tick()` from its media clock.

Every chunk carries an `owner` (the emulator passes the turn that received it) so
played/discarded audio is attributed to the reply it belongs to, not to whatever
turn happens to be current when it plays.

Time is the frame's *scheduled* start (its deadline on the call's clock), not when the
tick happened to run: audio can only play in a slot that starts after it arrived. So
when the clock catches up after a stall, audio that came in during the stall is not
"played" in the past, and a mark is never echoed before its audio could have played.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from telephony.audio import FRAME_BYTES


@dataclass(slots=True)
class PendingMark:
    name: str
    offset: int  # cumulative audio bytes queued before this mark
    received_at: float
    owner: Any


@dataclass(slots=True)
class TickResult:
    """What one 20 ms frame of playout did."""

    finished_marks: list[PendingMark]  # their audio finished playing before this frame
    audio: bytes  # played in this frame; shorter than a frame (or empty) on underrun
    shares: list[tuple[Any, int]]  # (owner, bytes) of `audio`


_IDLE = TickResult([], b"", [])  # shared, never mutated: the cheap common case


class Playout:
    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self.frame_bytes = frame_bytes
        self._chunks: deque[tuple[bytes, Any, float]] = deque()  # (audio, owner, arrived)
        self._head = 0  # bytes already played from _chunks[0]
        self._marks: deque[PendingMark] = deque()
        self.queued_bytes = 0
        self._tail = 0  # position of the end of the queue on the played timeline
        self.played_bytes = 0
        self.discarded_bytes = 0
        # True while the frame taken by the last tick is still coming out of the speaker.
        self.busy = False

    @property
    def queued_ms(self) -> float:
        return self.queued_bytes / 8

    @property
    def pending_marks(self) -> int:
        return len(self._marks)

    def push(self, audio: bytes, owner: Any = None, at: float = -math.inf) -> None:
        """Queue audio that arrived at `at`."""
        if audio:
            self._chunks.append((audio, owner, at))
            self.queued_bytes += len(audio)
            self._tail += len(audio)

    def add_mark(self, name: str, received_at: float, owner: Any = None) -> PendingMark | None:
        """Queue a mark; returns it when it is already due (nothing left to play)."""
        mark = PendingMark(name, self._tail, received_at, owner)
        if not self.queued_bytes and not self.busy and not self._marks:
            return mark
        self._marks.append(mark)
        return None

    def tick(self, at: float = math.inf) -> TickResult:
        """Advance one frame slot starting at `at`: finish the previous frame, then start
        playing the next from audio that had arrived by then."""
        if not self.queued_bytes and not self._marks:
            self.busy = False
            return _IDLE
        finished: list[PendingMark] = []
        marks = self._marks
        while marks and marks[0].offset <= self.played_bytes:
            finished.append(marks.popleft())
        need = self.frame_bytes
        parts: list[bytes] = []
        shares: list[tuple[Any, int]] = []
        chunks = self._chunks
        while need and chunks:
            data, owner, arrived = chunks[0]
            if arrived > at:
                break
            start = self._head
            avail = len(data) - start
            if avail <= need:
                part = data[start:] if start else data
                chunks.popleft()
                self._head = 0
            else:
                part = data[start : start + need]
                self._head = start + need
            parts.append(part)
            shares.append((owner, len(part)))
            need -= len(part)
        if not parts:
            self.busy = False
            return TickResult(finished, b"", []) if finished else _IDLE
        audio = parts[0] if len(parts) == 1 else b"".join(parts)
        self.queued_bytes -= len(audio)
        self.played_bytes += len(audio)
        self.busy = bool(audio)
        return TickResult(finished, audio, shares)

    def clear(self) -> tuple[list[PendingMark], list[tuple[Any, int]]]:
        """Drop all unplayed audio; returns every pending mark and (owner, bytes) dropped."""
        dropped: list[tuple[Any, int]] = []
        head = self._head
        for data, owner, _ in self._chunks:
            dropped.append((owner, len(data) - head))
            head = 0
        self._chunks.clear()
        self._head = 0
        self.discarded_bytes += self.queued_bytes
        # Dropped audio never plays: keep the cumulative offsets consistent with played.
        self._tail -= self.queued_bytes
        self.queued_bytes = 0
        marks = list(self._marks)
        self._marks.clear()
        return marks, dropped
