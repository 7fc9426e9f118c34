"""The dialog's state and what it hands the engine: tool calls and replies.

Shared by the policy (what the caller said -> the next step) and its tool-result half
(`outcomes`): plain data, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = ["CHANGES", "HINTS", "MAX_ATTEMPTS", "DialogState", "Pending", "Reply", "ToolCall"]

MAX_ATTEMPTS = 2
CHANGES = ("cancel_appointment", "reschedule_appointment")  # read back and confirmed first
HINTS = ("day", "time", "current_day", "current_time", "name")  # which booking, as said


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    text: str = ""
    calls: tuple[ToolCall, ...] = ()


@dataclass
class Pending:
    name: str
    arguments: dict[str, Any]
    attempts: int = 1


@dataclass
class DialogState:
    intent: str | None = None
    day: date | None = None
    time: str | None = None
    name: str | None = None
    order_number: str | None = None
    order_raw: str | None = None
    awaiting: str | None = None  # the slot (or yes/no) our last question asked for
    booking_id: str | None = None
    booked_day: date | None = None  # of the booking made (or moved) on this call
    checked_day: date | None = None
    offered: list[str] = field(default_factory=list)  # times we just offered ("09:00", ...)
    last_order: str | None = None  # the order looked up on this call
    asked: str = ""  # our last question when it was one of our own wording (read-backs)
    confirming: tuple[str, dict[str, Any]] | None = None  # the change to make on a yes
    candidates: list[dict[str, Any]] = field(default_factory=list)  # bookings we listed
    hint_day: date | None = None  # which booking to move: its current day and time
    hint_time: str | None = None
    day_options: tuple[date, ...] = ()  # "Friday the 4th or Thursday the 3rd?"
    history: list[tuple[str, str]] = field(default_factory=list)  # (role, text) as heard
