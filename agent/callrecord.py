"""What happened on a call: timings per turn, transcripts, tool calls, outcome."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from telephony.numbers import mask_number


@dataclass
class CallRecord:
    call_sid: str
    flow: str
    caller: str
    called: str
    provider: str
    started_at: float
    ended_at: float | None = None
    outcome: str = "in_progress"
    first_audio_at: float | None = None
    # Voice-to-voice per turn: the caller's last speech -> the first bot audio heard
    # (agent/turn_clock.py); turn_latency_ends says, per turn, "heard" or "sent".
    turn_latencies_ms: list[float] = field(default_factory=list)
    turn_latency_ends: list[str] = field(default_factory=list)
    transcript_lines: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    # The caller is kept masked; this keyed hash of the number finds their records when
    # they ask for deletion (agent/service/caller_key.py). None: number withheld.
    caller_hash: str | None = None
    # Not a record field: live observers (console, `phone-agent call`) of this call.
    _listener: Callable[[str, dict[str, Any]], None] | None = field(
        default=None, repr=False, compare=False
    )

    @classmethod
    def begin(
        cls,
        *,
        call_sid: str,
        flow: str,
        caller: str,
        called: str,
        provider: str,
        listener: Callable[[str, dict[str, Any]], None] | None = None,
        caller_hash: str | None = None,
    ) -> CallRecord:
        record = cls(call_sid, flow, mask_number(caller), mask_number(called), provider, time.time(),
                     caller_hash=caller_hash)
        record._listener = listener
        return record

    def _tell(self, kind: str, data: dict[str, Any]) -> None:
        listener = self._listener
        if listener is not None:
            try:
                listener(kind, data)
            except Exception:  # an observer must never break a call
                logging.getLogger(__name__).exception("call listener failed")

    @property
    def duration_s(self) -> float:
        return round((self.ended_at or time.time()) - self.started_at, 3)

    def _t(self) -> float:
        return round(time.time() - self.started_at, 3)

    def transcript(self, role: str, text: str) -> None:
        line = {"t": self._t(), "role": role, "text": text}
        self.transcript_lines.append(line)
        self._tell("transcript", line)

    def event(self, kind: str, **data: Any) -> None:
        entry = {"t": self._t(), "kind": kind, **data}
        self.events.append(entry)
        self._tell(kind, entry)

    def turn_latency(self, ms: float, *, end: str = "heard") -> None:
        """Voice-to-voice of one turn; `end`: "heard" (to the first bot audio the caller
        heard, from mark echoes) or "sent" (no echo came: to when it was sent)."""
        self.turn_latencies_ms.append(round(ms, 1))
        self.turn_latency_ends.append(end)
        self._tell("turn_latency", {"t": self._t(), "ms": round(ms, 1), "end": end})

    def mark_first_audio(self) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = self._t()

    def finish(self, outcome: str, tool_records: list[Any]) -> None:
        self.outcome = outcome
        self.ended_at = time.time()
        self.tool_calls = [
            {
                "call_id": r.call_id,
                "name": r.name,
                "arguments": r.arguments,
                "result": r.result,
                "status": r.status,
                "duration_ms": round(r.duration_ms or 0.0, 1),
                "attempts": r.attempts,
                "fillers": r.fillers,
                "filler_onset_ms": [round(x, 2) for x in r.filler_onset_ms],
            }
            for r in tool_records
        ]

        self._tell("finished", {"t": self._t(), "outcome": outcome, "record": self})

    def to_dict(self) -> dict[str, Any]:
        """The record as stored and served (plain JSON types, a deep copy)."""
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if not f.name.startswith("_")
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        """A record read back from a store or the admin API (unknown keys ignored)."""
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        return cls(**{k: v for k, v in data.items() if k in known})
