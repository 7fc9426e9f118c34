"""Caller audio for the model in fewer messages while the line is quiet (pure, no I/O).

Twilio sends a 20 ms frame 50 times a second; forwarding each one as its own
`input_audio_buffer.append` is a WebSocket frame and a socket write per frame, the
largest single cost of a bridged call. Most of a call the caller is silent (listening
to the bot, thinking), and the model gains nothing from hearing silence 20 ms sooner,
so quiet frames are held and sent `frames` at a time (at most 180 ms late).

Nothing that timing depends on waits: a frame with any sample above `QUIET_PEAK`
goes out at once, together with the quiet ones held before it (so the model's VAD sees
speech onset as soon as it is loud enough to count), and from the moment the model
says the caller started speaking until its reply has begun every frame goes out at
once, so the silence that ends a turn (server VAD's silence, semantic VAD's pause)
reaches it in real time. The audio itself is the same bytes in the same order; only
message boundaries move.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # stdlib audioop up to 3.12
    import audioop

QUIET_PEAK = 256  # |sample| of PCM16 (~ -42 dBFS): below any speech, above line hiss
BATCH_FRAMES = 10  # 200 ms per message while quiet

# μ-law codes whose sample is quieter than QUIET_PEAK: a frame made only of these is
# quiet. bytes.translate(None, QUIET_CODES) deletes them in one C pass.
_LINEAR = audioop.ulaw2lin(bytes(range(256)), 2)
QUIET_CODES = bytes(
    code
    for code in range(256)
    if abs(int.from_bytes(_LINEAR[2 * code : 2 * code + 2], "little", signed=True)) < QUIET_PEAK
)


def is_quiet(ulaw: bytes) -> bool:
    """True when no sample of this μ-law audio reaches QUIET_PEAK."""
    return not ulaw.translate(None, QUIET_CODES)


class QuietBatcher:
    """Holds quiet caller frames and releases them `frames` at a time (see module doc)."""

    def __init__(self, frames: int = BATCH_FRAMES) -> None:
        self.frames = max(1, frames)
        self._held: list[bytes] = []
        self._start_ms = 0.0  # where the first held frame starts in the caller's audio

    def push(self, ulaw: bytes, start_ms: float, speaking: bool) -> tuple[bytes, float] | None:
        """The audio to send now and where it starts in the caller's audio (ms), or None
        while it is held. `speaking`: the model is listening to a turn (frames must not
        wait)."""
        held = self._held
        if not speaking and is_quiet(ulaw):
            if not held:
                self._start_ms = start_ms
            held.append(ulaw)
            if len(held) < self.frames:
                return None
        elif not held:
            return ulaw, start_ms  # the common loud case: as it came, no copy
        else:
            held.append(ulaw)
        audio = b"".join(held)
        held.clear()
        return audio, self._start_ms

    def would_hold(self, ulaw: bytes) -> bool:
        """Would `push` (not speaking) hold this frame rather than release a message?"""
        return len(self._held) + 1 < self.frames and is_quiet(ulaw)

    def drain(self) -> tuple[bytes, float] | None:
        """Whatever is held (the connection is going away: keep it for the next one)."""
        if not self._held:
            return None
        audio = b"".join(self._held)
        self._held.clear()
        return audio, self._start_ms

    @property
    def held_frames(self) -> int:
        return len(self._held)
