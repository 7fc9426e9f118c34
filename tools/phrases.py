"""Days, times and bookings as a caller hears them: "Friday, February 26 at 9 AM".

The business tools put one such sentence in every result that needs the caller to hear
something (`say`): what happened and, where there is one, the nearest thing we can do
instead. Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

__all__ = ["join_or", "say_day", "say_slot", "say_time"]


def say_day(day: dt.date) -> str:
    """2026-02-26 -> "Friday, February 26"."""
    return f"{day:%A}, {day:%B} {day.day}"


def say_time(hhmm: str) -> str:
    """ "09:00" -> "9 AM", "14:30" -> "2:30 PM", "12:00" -> "noon"."""
    try:
        hour, minute = (int(p) for p in hhmm.split(":")[:2])
    except ValueError:
        return hhmm
    if (hour, minute) == (12, 0):
        return "noon"
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def say_slot(day: dt.date, hhmm: str) -> str:
    return f"{say_day(day)} at {say_time(hhmm)}"


def join_or(parts: Sequence[str], word: str = "or") -> str:
    """["9 AM", "10 AM", "11 AM"] -> "9 AM, 10 AM or 11 AM"."""
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]
