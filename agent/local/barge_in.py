"""The caller speaks over the bot's reply: stop at once, and forgive noise.

While a reply is still playing at the caller's end, the turn detector opens a turn on
`BARGE_SPEECH_MS` of voice (not the usual 200 ms), so `speech_started` reaches the
client, and Twilio's `clear` the phone, within about a tenth of a second. That also
stops the bot for a cough, a "mm" or a click. So the interruption stays undecided until
its turn ends: if it was short (under `FORGIVE_MS` of voice) and had no words, it was
noise, and the reply goes on from the piece the caller was hearing, as a new response
(LiveKit Agents calls this resuming after a false interruption). A real interruption is
answered as usual, the policy told what the caller actually heard.

The engine cannot see the caller's playback. It estimates it from the audio it sent: a
client plays a response in real time from its first delta, so the reply is "playing"
until first delta + audio length (+ `PLAYBACK_SLACK_S` for the client's own buffering).
What the caller heard comes from the client's `conversation.item.truncate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dialog import Reply
from .tts import speech_chunks

if TYPE_CHECKING:
    from .responses import ResponseRun

__all__ = ["FORGIVE_MS", "BargeIns", "Interrupted", "is_noise"]

# Voice shorter than this, with no words, does not take the turn. Measured by the VAD,
# whose hangover adds ~100 ms: a 200 ms "mm" measures 300-320 ms, a 300 ms one ~420.
FORGIVE_MS = 420
PLAYBACK_SLACK_S = 0.4


def is_noise(voiced_ms: int, transcript: str, says: Callable[[str], bool]) -> bool:
    """A cough, a click, a "mm": too short to be a turn and nothing said in it (no
    words, or a stray one whisper made of a hum). `says`: does the text say anything
    where the dialog stands (`DialogPolicy.says_something`)."""
    return voiced_ms < FORGIVE_MS and not says(transcript)


@dataclass
class Interrupted:
    """A reply the caller spoke over, until we know whether they meant to."""

    run: ResponseRun
    heard: str | None = None  # what the caller heard of its message (from the truncate)
    end_ms: int | None = None  # where in the message audio they stopped hearing it

    @property
    def item_id(self) -> str | None:
        return self.run.message_id

    def remainder(self) -> Reply | None:
        """The rest of the reply, from the piece the caller was hearing when it stopped
        (so no word is lost or cut in half); None when nothing is left to say."""
        reply = self.run.reply
        if reply is None:
            return None
        chunks = speech_chunks(reply.text)
        segments = self.run.record.segments if self.run.record is not None else []
        if self.end_ms is None:  # no truncate: everything sent was heard
            heard = len(segments)
        else:
            heard = sum(1 for _, _, end in segments if end <= self.end_ms)
        calls = reply.calls[self.run.calls_sent :]
        rest = " ".join(chunks[heard:])
        if not rest and not calls:
            return None
        return Reply(rest, calls)


class BargeIns:
    """One session's view of its reply playback and of the interruption under way."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._first_audio: dict[str, float] = {}  # response id -> when its first audio went
        self._playing_until = 0.0
        self._last: ResponseRun | None = None  # the latest reply with audio
        self.pending: Interrupted | None = None

    def audio_sent(self, run: ResponseRun, ms: int) -> None:
        """`run` has sent `ms` of audio so far."""
        now = self._clock()
        start = self._first_audio.setdefault(run.id, now)
        self._playing_until = max(self._playing_until, start + ms / 1000 + PLAYBACK_SLACK_S)
        if run.in_conversation:
            self._last = run

    def finished(self, run: ResponseRun) -> None:
        self._first_audio.pop(run.id, None)

    def playing(self) -> bool:
        """Is a reply (probably) still playing at the caller's end?"""
        return self._clock() < self._playing_until

    def interrupt(self) -> Interrupted | None:
        """The caller started speaking over the reply: keep what may have to go on."""
        self.pending = Interrupted(self._last) if self._last is not None else None
        return self.pending

    def defer_truncate(self, item_id: str, heard: str, end_ms: int) -> bool:
        """The client says the caller heard `heard` of `item_id`: True when that belongs
        to the undecided interruption (the policy is told only if it was real)."""
        pending = self.pending
        if pending is None or pending.item_id != item_id:
            return False
        pending.heard, pending.end_ms = heard, end_ms
        return True

    def take(self) -> Interrupted | None:
        """The interrupting turn has ended: hand over the interruption to decide."""
        pending, self.pending = self.pending, None
        return pending
