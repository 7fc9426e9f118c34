"""Active-response tracking for the OpenAI Realtime default conversation (sans-I/O).

Only one response may write to the default conversation at a time; a second
`response.create` gets `conversation_already_has_active_response` and is dropped by
the server, so a tool result queued behind a running reply is never spoken (the most
common field bug). The gate holds our `response.create`s until the conversation is
idle and releases one per idle window.

States: idle -> (we send) inflight -> (response.created) active -> (response.done) idle.
A response the server starts on its own (server VAD) also moves idle -> active.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["say", "respond"]

UNKNOWN_RESPONSE = "?"  # active, but the server did not tell us which one
_RESP_ID = re.compile(r"\bresp_[A-Za-z0-9_-]+")


@dataclass(slots=True)
class Pending:
    event: dict[str, Any]
    # "say": must be spoken as asked. "respond": any new response satisfies it, because
    # a response reads every item added before it (function outputs included).
    kind: Kind


class ResponseGate:
    def __init__(self) -> None:
        self.active: str | None = None
        self.inflight: Pending | None = None
        self._last_sent: Pending | None = None
        self._created_since_sent = False
        self._queue: deque[Pending] = deque()

    @property
    def busy(self) -> bool:
        return self.active is not None or self.inflight is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def push(self, event: dict[str, Any], kind: Kind) -> None:
        """Ask for a default-conversation response; `pop_ready` says when to send it."""
        if kind == "respond" and any(p.kind == "respond" for p in self._queue):
            return  # one response reads all outputs queued so far
        self._queue.append(Pending(event, kind))

    def pop_ready(self) -> dict[str, Any] | None:
        """The next `response.create` to send now, or None while busy/empty."""
        if self.busy or not self._queue:
            return None
        self.inflight = self._last_sent = self._queue.popleft()
        self._created_since_sent = False
        return self.inflight.event

    def on_created(self, response_id: str) -> None:
        """A default-conversation response started (ours or the server's VAD reply)."""
        self.active = response_id
        self.inflight = None
        self._created_since_sent = True
        # This response reads everything added so far: queued bare requests are satisfied.
        self._queue = deque(p for p in self._queue if p.kind != "respond")

    def on_done(self, response_id: str) -> bool:
        """A default response finished; True if the conversation became idle."""
        if self.active in (response_id, UNKNOWN_RESPONSE):
            self.active = None
            return True
        return False

    def on_active_error(self, message: str) -> None:
        """`conversation_already_has_active_response`: our last create was rejected.

        We only send while idle, at most one at a time, so the error is about the last
        create we sent: put it back at the front and wait for the running one to end.
        """
        self.inflight = None
        last, self._last_sent = self._last_sent, None
        if last is not None and not (last.kind == "respond" and self._created_since_sent):
            self._queue.appendleft(last)
        if self.active is None:
            match = _RESP_ID.search(message)
            self.active = match.group(0) if match else UNKNOWN_RESPONSE

    def reset(self) -> None:
        """The provider session was replaced: nothing is running there; keep the queue."""
        if self.inflight is not None and self.inflight.kind == "say":
            self._queue.appendleft(self.inflight)  # never reached a live session
        self.active = None
        self.inflight = None
        self._last_sent = None
