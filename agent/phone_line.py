"""What a call needs from the phone side: the seam between `agent.call` and telephony.

`telephony.stream.TwilioStream` is the real one; tests may hand a `Call` anything that
fits. Bot audio goes out in named segments; the line knows how much of each the caller
has really heard (Twilio's mark echoes), which barge-in truncation depends on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from telephony.playback import ClearSnapshot
from telephony.stream import MediaSink, StreamEvent


class Playing(Protocol):
    @property
    def idle(self) -> bool:
        """True when no bot audio is queued or playing."""
        ...


class PhoneLine(Protocol):
    @property
    def call_sid(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, str]:
        """The stream's custom parameters (flow, from, to, ...)."""
        ...

    @property
    def closed(self) -> bool: ...

    @property
    def playback(self) -> Playing: ...

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        """What the caller sends: audio frames, keypad digits, mark echoes, stop."""
        ...

    def set_media_sink(self, sink: MediaSink | None) -> None:
        """Offer caller frames to `sink(frame, received_at)` as they are read; a frame it
        takes (True) is not yielded by the iterator. It must not block."""

    @property
    def received_at(self) -> float:
        """When (time.monotonic) the event the iterator last yielded came off the socket."""
        ...

    async def send_audio(self, ulaw: bytes, segment: str) -> None:
        """Queue bot audio (μ-law 8 kHz) as part of `segment`; paced by the line."""

    async def end_segment(self, segment: str) -> None:
        """No more audio for `segment`: flush what is buffered."""

    def resume_segment(self, segment: str, from_ms: int) -> None:
        """After `clear`, `segment` goes on from `from_ms` of its audio (a noise, not an
        interruption): audio sent for it next continues its books from there."""

    async def clear(self) -> ClearSnapshot:
        """Stop what the caller hears now (Twilio `clear`)."""
        ...

    async def wait_played(self, timeout: float) -> bool:  # noqa: ASYNC109 - a deadline, not sync
        """Until everything sent has been heard; False if `timeout` passed first."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """End the stream (which ends the Twilio call: no TwiML follows `<Connect>`)."""

    def first_heard_settled(self, segment: str) -> bool:
        """True once `first_heard_at(segment)` is final (more echoes cannot lower it)."""
        ...

    def first_heard_at(self, segment: str) -> float | None:
        """`time.monotonic()` the caller began to hear `segment`, once Twilio has told
        (mark echoes); shifted by the network's one-way delay like caller audio arriving."""
        ...

    def heard_ms_of(self, segment: str) -> int:
        """Milliseconds of `segment` the caller has heard."""
        ...

    def received_ms_of(self, segment: str) -> int:
        """Milliseconds of `segment` handed to the line so far."""
        ...


class CallControl(Protocol):
    """The phone network's side of a call (Twilio's REST API, or a stand-in)."""

    async def hangup(self, call_sid: str) -> None: ...

    async def transfer(self, call_sid: str, number: str, caller_id: str | None = None) -> None: ...
