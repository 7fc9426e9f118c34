"""The states of a call and the moves allowed between them, written down in one place.

    GREETING -> LISTENING <-> THINKING <-> SPEAKING, TOOL while a tool runs,
    any live state -> ENDING -> ENDED (a call that fails to start goes straight to ENDED)

Providers send events in their own order (Gemini has no speech-stopped; a barge-in may
come before any audio), so the live states reach each other freely; what the table
forbids is coming back from the end. A move it does not list raises `CallStateError`,
h11-style: a bug in the bridge, named, not a silent wrong state.
"""

from __future__ import annotations

import enum


class CallState(enum.Enum):
    GREETING = "greeting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    TOOL = "tool running"
    ENDING = "ending"
    ENDED = "ended"


_LIVE = frozenset(
    {CallState.GREETING, CallState.LISTENING, CallState.THINKING, CallState.SPEAKING, CallState.TOOL}
)
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.GREETING: frozenset(_LIVE - {CallState.GREETING} | {CallState.ENDING, CallState.ENDED}),
    CallState.LISTENING: frozenset(_LIVE - {CallState.GREETING} | {CallState.ENDING, CallState.ENDED}),
    CallState.THINKING: frozenset(_LIVE - {CallState.GREETING} | {CallState.ENDING, CallState.ENDED}),
    CallState.SPEAKING: frozenset(_LIVE - {CallState.GREETING} | {CallState.ENDING, CallState.ENDED}),
    CallState.TOOL: frozenset(_LIVE - {CallState.GREETING} | {CallState.ENDING, CallState.ENDED}),
    CallState.ENDING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class CallStateError(RuntimeError):
    """A state change the table above does not allow."""


class CallStates:
    """The current state; `to()` is the only way to change it."""

    def __init__(self, initial: CallState = CallState.GREETING) -> None:
        self.current = initial

    def to(self, new: CallState) -> None:
        if new is self.current:
            return
        if new not in TRANSITIONS[self.current]:
            raise CallStateError(f"a call cannot go from {self.current.value!r} to {new.value!r}")
        self.current = new

    @property
    def live(self) -> bool:
        return self.current in _LIVE
