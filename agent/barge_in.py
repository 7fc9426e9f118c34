"""Barge-in for one call: stop at once, and forgive noise.

The caller hears the bot stop the moment the provider hears them (Twilio `clear` first,
always). What happens to the reply depends on the provider
(`RealtimeCapabilities.false_interruptions`):

- "none": interrupted at once, as it always was: the model is told what the caller heard
  (OpenAI: cancel + truncate; Gemini: a note). The offline engine is here: it resumes
  after noise on its own side.
- "hold" / "replay": the unheard rest of the reply is held, and `agent.interruption`
  judges the sound. Real: the model is told what was heard at the pause, exactly as
  before. Noise: the rest plays from where it stopped (paced, marked, like any audio),
  the record gets a `false_interruption` event, and the provider is asked to `forgive`
  (OpenAI: the noise's own answer is cancelled and deleted, never heard).

While undecided, model events that belong to another reply (the server answering the
noise, or the caller) are held too and handled once the verdict is in.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.callrecord import CallRecord
from agent.interruption import FRAME_MS, InterruptionJudge, Paused, ReplyTape, Verdict
from agent.phone_line import PhoneLine
from agent.realtime import (
    AudioDone,
    AudioOut,
    RealtimeEvent,
    RealtimeSession,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)
from telephony.audio import frame_level_db, speech_threshold

PRE_ROLL_FRAMES = 50  # caller audio before the pause: the line's quiet level ("replay")
LOOK_BACK_FRAMES = 10
MAX_LEVELS = 500


@dataclass
class Settled:
    """A verdict, and the model events held meanwhile that the call must handle now."""

    verdict: Verdict
    replay: list[RealtimeEvent] = field(default_factory=list)


class BargeIn:
    def __init__(
        self,
        line: PhoneLine,
        session: RealtimeSession,
        record: CallRecord,
        emit: Callable[[str, dict[str, Any]], None],
        *,
        stop_window_ms: int,
    ) -> None:
        self._line = line
        self._session = session
        self._record = record
        self._emit = emit
        self._stop_window_ms = stop_window_ms
        self._judge: InterruptionJudge | None = None
        self._replay = False
        self._tape = ReplyTape()
        self._paused: Paused | None = None
        self._held: list[RealtimeEvent] = []
        self._caller_ms = 0.0
        self._paused_at = 0.0
        # "replay": the caller's loudness per frame (dB), from a little before the pause.
        self._levels: deque[float] = deque(maxlen=MAX_LEVELS)

    def start(self) -> None:
        """The session is open: what it can do is known now (OpenAI: once the server
        confirmed its turn detection)."""
        mode = self._session.capabilities.false_interruptions
        window = self._stop_window_ms
        self._judge = None if mode == "none" else InterruptionJudge(mode, stop_window_ms=window)
        self._replay = mode == "replay"

    @property
    def pending(self) -> bool:
        return self._paused is not None

    # ------------------------------------------------------------ what the call saw

    def played(self, event: AudioOut) -> None:
        """Reply audio the call sent to the line (kept: it may have to be replayed)."""
        if self._judge is not None:
            self._tape.record(event.item_id, event.audio, event.response_id)

    def reply_ended(self, item: str) -> None:
        self._tape.finish(item)

    async def speech_started(self, event: SpeechStarted, item: str | None) -> bool:
        """Caller sound while bot audio plays: clear now. True when the reply is held
        for a verdict; False when it was interrupted at once (the old way)."""
        t0 = time.perf_counter()
        snapshot = await self._line.clear()  # first: stop what the caller hears
        self._emit("barge_in", {"clear_ms": (time.perf_counter() - t0) * 1000})
        heard: int | None = None
        if item is not None:
            # Where playback stood when the clear reached Twilio (the playout clock
            # between echoes), or, if that was past this item, all of it that was heard.
            in_item = snapshot.heard_segment == item
            heard = snapshot.heard_ms_in_segment if in_item else self._line.heard_ms_of(item)
        paused = None
        if self._judge is not None and item is not None and heard is not None:
            paused = self._tape.pause(item, heard)
        if paused is None:
            self._record.event(
                "barge_in", item=item, heard_ms=heard, dropped_ms=snapshot.dropped_ms
            )
            if item is not None:
                await self._session.interrupt(item, heard)
            return False
        assert self._judge is not None
        self._paused, self._held, self._paused_at = paused, [], self._caller_ms
        self._judge.pause(self._caller_ms, event.item_id)
        if self._replay:
            # The server already cut it: tell the model what was heard now, as before
            # (taken back by `forgive` if the sound was noise).
            await self._session.interrupt(item, heard)
        return True

    def count(self, ulaw: bytes) -> bool:
        """A caller frame while no verdict is pending: advance the clock, no await.
        False (and nothing counted) when one is pending: `caller_frame` must judge it."""
        if self._paused is not None:
            return False
        self._caller_ms += len(ulaw) / 8
        if self._replay:
            self._levels.append(frame_level_db(ulaw))
            if len(self._levels) > PRE_ROLL_FRAMES:
                self._levels.popleft()
        return True

    async def caller_frame(self, ulaw: bytes) -> Settled | None:
        """One frame of caller audio: the clock the verdict is timed by."""
        if self.count(ulaw) or self._judge is None:
            return None  # nothing pending: counted
        self._caller_ms += len(ulaw) / 8
        if self._replay:
            self._levels.append(frame_level_db(ulaw))
        verdict = self._judge.tick(self._caller_ms, self._loud_span() if self._replay else None)
        return await self._settle(verdict)

    async def observe(self, event: RealtimeEvent) -> Settled | None:
        """A model event while undecided: evidence, or a reason to decide now."""
        judge = self._judge
        paused = self._paused
        if judge is None or paused is None:
            return None
        verdict = Verdict.PENDING
        if isinstance(event, SpeechStopped):
            verdict = judge.speech_stopped(event.speech_ms, self._caller_ms)
        elif isinstance(event, Transcript) and event.role == "caller":
            verdict = judge.words(event.text, event.item_id, final=event.final)
        elif isinstance(event, SpeechStarted):
            verdict = judge.real("spoke again")
        elif isinstance(event, ToolCall):
            verdict = judge.real("tool call")
        elif isinstance(event, AudioOut) and not event.out_of_band and event.item_id != paused.item:
            verdict = judge.model_took_turn()
        return await self._settle(verdict)

    def hold(self, event: RealtimeEvent) -> bool:
        """While undecided: keep the paused reply's audio with its rest, and every event
        of another reply for later. True when the call must not handle `event` now."""
        paused = self._paused
        if paused is None:
            return False
        if isinstance(event, AudioOut) and not event.out_of_band:
            if event.item_id == paused.item:
                paused.rest += event.audio
                self._tape.record(event.item_id, event.audio, event.response_id)
            else:
                self._held.append(event)
            return True
        if isinstance(event, AudioDone):
            if event.item_id == paused.item:
                paused.more = False
                self._tape.finish(event.item_id)
            else:
                self._held.append(event)
            return True
        other_line = (
            isinstance(event, Transcript) and event.role == "bot" and event.item_id != paused.item
        )
        other_response = (
            isinstance(event, (ResponseStarted, ResponseDone))
            and event.response_id != paused.response_id
        )
        if (other_line or other_response) and not getattr(event, "out_of_band", False):
            self._held.append(event)
            return True
        return False  # the paused reply's own lines and end, and everything else

    # ------------------------------------------------------------ the verdict

    async def _settle(self, verdict: Verdict) -> Settled | None:
        paused, judge = self._paused, self._judge
        if verdict is Verdict.PENDING or paused is None or judge is None:
            return None
        self._paused = None
        held, self._held = self._held, []
        after_ms = round(self._caller_ms - self._paused_at)
        if verdict is Verdict.REAL:
            self._record.event(
                "barge_in", item=paused.item, heard_ms=paused.heard_ms,
                dropped_ms=len(paused.rest) // 8, decided_after_ms=after_ms, why=judge.why,
            )  # fmt: skip
            if not self._replay:  # "replay" told the model at the pause
                await self._session.interrupt(paused.item, paused.heard_ms)
            return Settled(verdict, held)
        # Noise: the reply goes on from where the caller stopped hearing it.
        line = self._line
        line.resume_segment(paused.item, paused.heard_ms)
        if paused.rest:
            await line.send_audio(bytes(paused.rest), paused.item)
        if not paused.more:
            await line.end_segment(paused.item)
        self._record.event(
            "false_interruption", item=paused.item, heard_ms=paused.heard_ms,
            resumed_ms=len(paused.rest) // 8, speech_ms=judge.speech_ms,
            decided_after_ms=after_ms, why=judge.why,
        )  # fmt: skip
        self._emit("false_interruption", {"decided_after_ms": after_ms})
        await self._session.forgive(judge.caller_item or None)
        return Settled(verdict)  # what was held answered the noise: never heard

    def _loud_span(self) -> tuple[float, float] | None:
        """Where the caller's loud frames since the pause begin and end (caller ms): loud
        = well above the line's own level (`telephony.audio.last_speech_frame`'s rule)."""
        levels = list(self._levels)
        if not levels:
            return None
        threshold = speech_threshold(levels)
        # From a little before the pause: the provider heard the sound after it began.
        since = int((self._caller_ms - self._paused_at) // FRAME_MS) + LOOK_BACK_FRAMES
        recent = levels[-since:] if since else []
        loud = [i for i, level in enumerate(recent) if level > threshold]
        if not loud:
            return None
        start = self._caller_ms - len(recent) * FRAME_MS
        return start + loud[0] * FRAME_MS, start + (loud[-1] + 1) * FRAME_MS
