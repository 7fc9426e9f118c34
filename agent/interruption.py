"""Was the caller's sound over the bot's reply an interruption, or noise? (sans-I/O)

LiveKit Agents' false-interruption resume, for the bridge. The caller hears the reply
stop at once (Twilio `clear` at speech start, as always); what changes is that the rest
of the reply is held instead of thrown away until the evidence is in:

    pause() -> PENDING -> REAL   the caller meant it: cancel + truncate, drop what is held
                       -> NOISE  a cough, a hum, a click: play the held rest from where
                                 the caller stopped hearing it

Evidence, whichever comes first:
- words: the provider transcribed the sound and it says something (not a hum, a
  backchannel like "mm-hmm", or a "(coughs)" note) -> REAL;
- length: the provider's VAD measured the sound (speech-stopped) at >= `min_speech_ms`
  -> REAL; shorter -> wait up to `words_wait_ms` for its transcript, then NOISE;
- still going: no speech-stopped `min_speech_ms` + the VAD's silence window after the
  pause -> REAL (a shorter sound would have been reported stopped by then);
- "replay" providers (the server cut its reply at speech start and says nothing of when
  the caller stops): the model takes the turn (new reply, tool call) -> REAL; the
  caller's own loud frames span >= `min_speech_ms` -> REAL; `replay_wait_ms` after the
  pause with the caller quiet for `quiet_ms` -> NOISE.

Time is the caller-audio clock (ms of audio the caller has sent), driven by `tick`: no
timers, and a run faster than real time judges the same.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

MIN_SPEECH_MS = 300  # shorter than this, with no words, is noise
STOP_MARGIN_MS = 200  # a VAD reports the stop a little after its silence window
WORDS_WAIT_MS = 1500  # a short sound's transcript comes within this, or never
REPLAY_WAIT_MS = 1500  # "replay": the model takes the turn within this, or does not
QUIET_MS = 400  # "replay": the caller quiet this long counts as done
FRAME_MS = 20
MAX_HELD_MS = 120_000  # no reply is longer; bounds the memory of one call

Mode = Literal["hold", "replay"]


class Verdict(enum.Enum):
    PENDING = "pending"
    REAL = "real"
    NOISE = "noise"


# Not words: a hum, a backchannel ("mm-hmm" while the bot talks means "go on"), and the
# sound notes transcribers write for a cough or noise ("(coughs)", "[noise]").
NOT_WORDS = frozenset("hmm hm mm mmm mhm mm-hmm uh-huh uh um umm uhm er erm ah oh huh".split())
_NOTE = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*")
_HUM = re.compile(r"m+|h+m+|u+h+|u+m+")  # "M", "Mmmm", "Hmmm", "Uhh": drawn-out hums
_TOKEN = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


def has_words(text: str) -> bool:
    """Does a transcript say anything, beyond hums, backchannels and sound notes?"""
    tokens = _TOKEN.findall(_NOTE.sub(" ", text.lower()))
    return any(token not in NOT_WORDS and not _HUM.fullmatch(token) for token in tokens)


@dataclass
class Paused:
    """The reply the caller spoke over, and what they have not heard of it."""

    item: str
    heard_ms: int  # where in the item's audio the caller stopped hearing it
    rest: bytearray  # μ-law from there on, growing while the provider still sends
    more: bool  # the provider may still send audio for the item
    response_id: str = ""


class ReplyTape:
    """The audio of the reply now playing, kept so its unheard rest can be played later."""

    def __init__(self) -> None:
        self.item: str | None = None
        self.response_id = ""
        self.done = False  # the provider sent all of it
        self._audio = bytearray()

    def record(self, item: str, audio: bytes, response_id: str = "") -> None:
        if item != self.item:
            self.item, self.response_id, self.done = item, response_id, False
            self._audio = bytearray()
        if len(self._audio) < MAX_HELD_MS * 8:
            self._audio += audio

    def finish(self, item: str) -> None:
        if item == self.item:
            self.done = True

    def pause(self, item: str, heard_ms: int) -> Paused | None:
        """What of `item` the caller has not heard, from `heard_ms` on; None when there
        is nothing to hold (another item, or all of it heard and no more coming)."""
        if item != self.item:
            return None
        rest = bytearray(self._audio[heard_ms * 8 :])
        if not rest and self.done:
            return None
        return Paused(item, heard_ms, rest, not self.done, self.response_id)


class InterruptionJudge:
    """One call's pending interruption, if any: fed evidence, says REAL or NOISE once."""

    def __init__(
        self,
        mode: Mode,
        *,
        stop_window_ms: int = 500,  # the VAD's silence window ("hold")
        min_speech_ms: int = MIN_SPEECH_MS,
        words_wait_ms: int = WORDS_WAIT_MS,
        replay_wait_ms: int = REPLAY_WAIT_MS,
        quiet_ms: int = QUIET_MS,
    ) -> None:
        self.mode = mode
        self.min_speech_ms = min_speech_ms
        self.deadline_ms = min_speech_ms + stop_window_ms + STOP_MARGIN_MS
        self.words_wait_ms = words_wait_ms
        self.replay_wait_ms = replay_wait_ms
        self.quiet_ms = quiet_ms
        self.pending = False
        self.caller_item = ""  # the caller item the sound becomes, when the provider says
        self.why = ""  # what settled it, for the call record
        self.speech_ms: int | None = None
        self._paused_at = 0.0
        self._stopped_at: float | None = None

    def pause(self, now_ms: float, caller_item: str = "") -> None:
        """The caller's sound started over the reply: undecided from here."""
        self.pending = True
        self.caller_item = caller_item
        self.why, self.speech_ms = "", None
        self._paused_at = now_ms
        self._stopped_at = None

    def tick(self, now_ms: float, loud: tuple[float, float] | None = None) -> Verdict:
        """The caller's audio reached `now_ms`; `loud` ("replay"): where the caller's
        loud frames since the pause begin and end (ms), None while quiet."""
        if not self.pending:
            return Verdict.PENDING
        since = now_ms - self._paused_at
        if self.mode == "hold":
            if self._stopped_at is None and since >= self.deadline_ms:
                return self._settle(Verdict.REAL, "still speaking")
            if self._stopped_at is not None and now_ms - self._stopped_at >= self.words_wait_ms:
                return self._settle(Verdict.NOISE, "short, no transcript")
            return Verdict.PENDING
        if loud is not None and loud[1] - loud[0] + FRAME_MS >= self.min_speech_ms:
            return self._settle(Verdict.REAL, "long sound")
        quiet_since = max(loud[1], self._paused_at) if loud is not None else self._paused_at
        if since >= self.replay_wait_ms and now_ms - quiet_since >= self.quiet_ms:
            return self._settle(Verdict.NOISE, "short, model kept quiet")
        return Verdict.PENDING

    def speech_stopped(self, speech_ms: int | None, now_ms: float) -> Verdict:
        """The provider's VAD says the sound ended, and how long it lasted."""
        if not self.pending:
            return Verdict.PENDING
        self.speech_ms = speech_ms
        if speech_ms is None or speech_ms >= self.min_speech_ms:
            return self._settle(Verdict.REAL, "long sound")
        self._stopped_at = now_ms
        return Verdict.PENDING

    def words(self, text: str, item_id: str = "", *, final: bool = True) -> Verdict:
        """A transcript of the caller: words make it real; an empty final one for the
        sound itself ends the wait for words."""
        if not self.pending:
            return Verdict.PENDING
        ours = not self.caller_item or not item_id or item_id == self.caller_item
        if not ours:
            return Verdict.PENDING  # a late transcript of an earlier turn
        if has_words(text):
            return self._settle(Verdict.REAL, "words")
        if final and self._stopped_at is not None:
            return self._settle(Verdict.NOISE, "short, no words")
        return Verdict.PENDING

    def model_took_turn(self) -> Verdict:
        """New reply audio or a tool call while undecided. A provider that cut its reply
        ("replay") answered the caller: real. One that kept it ("hold") may be answering
        the noise itself: that audio is held until the verdict."""
        if self.pending and self.mode == "replay":
            return self._settle(Verdict.REAL, "model took the turn")
        return Verdict.PENDING

    def real(self, why: str) -> Verdict:
        """Settle it as real from outside (the caller typed, the call is ending...)."""
        return self._settle(Verdict.REAL, why) if self.pending else Verdict.PENDING

    def _settle(self, verdict: Verdict, why: str) -> Verdict:
        self.pending = False
        self.why = why
        return verdict
