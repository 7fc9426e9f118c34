"""Fillers on the phone line: "One moment, let me check that" while a slow tool runs.

A clip in the session's own voice plays straight into the line (instant, tracked by
marks, stoppable by `clear`); where none exists yet and the model can speak out of band,
it is asked for the line once and its audio is kept for the next time. Never two fillers
at once, never over the model's own speech, and cut the moment the result is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.callrecord import CallRecord
from agent.fillers import FillerCache
from agent.phone_line import PhoneLine
from agent.realtime import AudioOut, RealtimeSession, ResponseDone


@dataclass
class Filler:
    segment: str
    phrase: str
    deadline: float = 0.0  # when the tool crossed filler_after_ms (monotonic)
    onsets: list[float] | None = None  # where to report the first frame's lateness
    capture: bytearray | None = None  # audio being captured for the cache

    def first_frame_sent(self) -> float | None:
        if self.onsets is None:
            return None
        onset = (time.monotonic() - self.deadline) * 1000
        self.onsets.append(onset)
        self.onsets = None
        return onset


class FillerPlayer:
    """One call's fillers (the ToolRunner's `FillerPlayer`)."""

    def __init__(
        self,
        line: PhoneLine,
        session: RealtimeSession,
        cache: FillerCache,
        voice_key: str,
        record: CallRecord,
        emit: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self._line = line
        self._session = session
        self._cache = cache
        self._voice_key = voice_key
        self._record = record
        self._emit = emit
        self._seq = 0
        self.current: Filler | None = None

    def owns(self, segment: str) -> bool:
        return self.current is not None and self.current.segment == segment

    def forget(self) -> None:
        """The line was cleared (barge-in): whatever was playing is gone."""
        self.current = None

    async def play_filler(self, phrase: str, deadline: float, onsets: list[float]) -> bool:
        if self.current is not None or not self._line.playback.idle:
            return False  # never two fillers, never over the model's own speech
        self._seq += 1
        segment = f"filler-{self._seq}"
        out_of_band = self._session.capabilities.out_of_band_speech
        # A model that cannot speak out of band gets the bundled clip in a stock voice.
        clip = await self._cache.get(self._voice_key, phrase, allow_generic=not out_of_band)
        if clip is not None:
            self.current = filler = Filler(segment, phrase, deadline, onsets)
            await self._line.send_audio(clip, segment)
            self._started(filler)
            await self._line.end_segment(segment)
        else:
            # No clip in this voice yet: ask the model out-of-band and keep the audio.
            self.current = Filler(segment, phrase, deadline, onsets, capture=bytearray())
            await self._session.say_out_of_band(phrase)
        self._record.event("filler", phrase=phrase, cached=clip is not None)
        self._emit("filler", {"cached": clip is not None})
        return True

    async def on_audio(self, event: AudioOut) -> None:
        """Out-of-band audio from the model: the filler being rendered."""
        filler = self.current
        if filler is None or filler.capture is None:
            return  # a filler we already cut: drop its late audio
        filler.capture += event.audio
        await self._line.send_audio(event.audio, filler.segment)
        self._started(filler)

    async def on_response_done(self, event: ResponseDone) -> None:
        """An out-of-band response ended: keep its audio as this voice's clip."""
        filler = self.current
        if filler is None or filler.capture is None:
            return
        await self._line.end_segment(filler.segment)
        if event.status == "completed" and filler.capture:
            await self._cache.store(self._voice_key, filler.phrase, bytes(filler.capture))
        filler.capture = None

    def _started(self, filler: Filler) -> None:
        onset = filler.first_frame_sent()
        if onset is not None:
            self._record.event("filler_started", phrase=filler.phrase, onset_ms=round(onset, 2))
            self._emit("filler_onset", {"ms": onset})

    async def cut_filler(self) -> None:
        filler, self.current = self.current, None
        if filler is None:
            return
        if self._line.heard_ms_of(filler.segment) < self._line.received_ms_of(filler.segment):
            await self._line.clear()
