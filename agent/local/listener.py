"""The caller side of a session: decoded input audio, the turn detector, the current turn.

Holds PCM16 8 kHz since the last commit (plus a little history for prefix padding) and
maps the session's input clock (ms since the first append) onto it. The VAD step runs
in the VAD worker pool; everything else here is cheap bookkeeping.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .codec import InputDecoder
from .models import SpeechModels
from .stt import Transcript
from .vad import TurnDetector, VadEvent

PCM_BYTES_PER_MS = 16  # PCM16 at 8 kHz
MAX_BUFFER_MS = 5 * 60 * 1000  # without VAD, keep at most 5 minutes uncommitted


@dataclass
class Turn:
    """A caller turn the VAD has opened (speech started, not yet stopped)."""

    item_id: str
    start_ms: int
    speculative: asyncio.Future[Transcript] | None = None
    over_reply: bool = False  # opened while the bot's reply was playing (a barge-in)


SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 300}


class Listener:
    def __init__(self, models: SpeechModels, audio_input: dict[str, Any]) -> None:
        """`audio_input`: the session's `audio.input` (format, turn_detection)."""
        self._models = models
        self._loop = asyncio.get_running_loop()
        self._decoder = InputDecoder(audio_input["format"]["type"])
        self._buf = bytearray()
        self._buf_start = 0  # byte offset of _buf[0] in all PCM ever appended
        self._config: dict[str, Any] | None = audio_input["turn_detection"]
        self.turn: Turn | None = None
        # silero takes ~150 ms to load: start now, in the background
        self._detector = self._loop.run_in_executor(models.workers.vad, self._new_detector)

    def _new_detector(self) -> TurnDetector:
        return TurnDetector(
            self._models.new_vad(),
            threshold=float(self.setting("threshold", 0.5)),
            silence_ms=self.silence_ms(),
        )

    def setting(self, key: str, default: Any) -> Any:
        """A server_vad setting (OpenAI's default when unset)."""
        value = (self._config or {}).get(key)
        return default if value is None else value

    def silence_ms(self) -> int:
        """End of turn after this much quiet. semantic_vad has no such setting: we have
        no model of "sounds finished", so its eagerness picks the wait instead."""
        if (self._config or {}).get("type") == "semantic_vad":
            return SEMANTIC_SILENCE_MS.get(str(self.setting("eagerness", "auto")), 500)
        return int(self.setting("silence_duration_ms", 500))

    @property
    def vad_on(self) -> bool:
        return self._config is not None

    async def configure(self, audio_input: dict[str, Any]) -> None:
        """Apply the session's `audio.input` (format and turn_detection)."""
        fmt = audio_input["format"]["type"]
        if fmt != self._decoder.fmt:
            self._decoder = InputDecoder(fmt)
        self._config = audio_input["turn_detection"]
        detector = await self._detector
        detector.configure(
            threshold=float(self.setting("threshold", 0.5)),
            silence_ms=self.silence_ms(),
        )
        if not self.vad_on:
            await self.reset()

    async def append(self, raw: bytes, *, over_reply: bool = False) -> list[VadEvent]:
        """Buffer appended audio; with VAD on, return the turn events it caused.
        `over_reply`: the bot is speaking, so a short burst of voice opens a turn."""
        pcm = self._decoder.decode(raw)
        self._buf += pcm
        detector = await self._detector
        detector.fast_start = over_reply
        if not self.vad_on:
            detector.skip(len(pcm) // PCM_BYTES_PER_MS)
            self.trim(before_ms=self.end_ms - MAX_BUFFER_MS)
            return []
        return await self._loop.run_in_executor(self._models.workers.vad, detector.process, pcm)

    def trim_idle(self) -> None:
        """Between VAD turns keep only what prefix padding may still need (without VAD,
        everything stays until the client commits or clears)."""
        if self.vad_on and self.turn is None:
            self.trim(before_ms=self.end_ms - int(self.setting("prefix_padding_ms", 300)) - 500)

    def end_early(self, pause_at: int, quiet_ms: int) -> None:
        """The words up to the pause at `pause_at` finish the turn: `quiet_ms` ends it."""
        if self._detector.done():
            self._detector.result().end_early(pause_at, quiet_ms)

    @property
    def end_ms(self) -> int:
        return (self._buf_start + len(self._buf)) // PCM_BYTES_PER_MS

    @property
    def start_ms(self) -> int:
        return self._buf_start // PCM_BYTES_PER_MS

    def audio(self, start_ms: int, end_ms: int) -> bytes:
        a = max(start_ms * PCM_BYTES_PER_MS - self._buf_start, 0)
        b = max(end_ms * PCM_BYTES_PER_MS - self._buf_start, 0)
        return bytes(self._buf[a:b])

    def turn_audio(self, turn: Turn, end_ms: int) -> bytes:
        """The turn's speech with the configured prefix padding before it."""
        return self.audio(turn.start_ms - int(self.setting("prefix_padding_ms", 300)), end_ms)

    def trim(self, *, before_ms: int) -> None:
        cut = before_ms * PCM_BYTES_PER_MS - self._buf_start
        cut -= cut % 2
        if cut > 0:
            del self._buf[:cut]
            self._buf_start += cut

    def close(self) -> None:
        """The session is over: free its VAD model and audio now (the session itself may
        wait in a reference cycle for the garbage collector; 7 MB a call added up)."""
        if self._detector.done():
            _release_when_loaded(self._detector)
        else:
            self._detector.add_done_callback(_release_when_loaded)
        self._buf = bytearray()

    async def reset(self) -> None:
        """Drop buffered audio and any open turn (clear, manual commit, VAD switched off)."""
        self.trim(before_ms=self.end_ms)
        self.turn = None
        (await self._detector).reset_turn()


def _release_when_loaded(loading: asyncio.Future[TurnDetector]) -> None:
    if not loading.cancelled() and loading.exception() is None:
        loading.result().release()
