"""Business hours and slot arithmetic for appointments; spoken times -> "HH:MM".

Pure: no storage, no clock reads (the caller passes `now`), so every rule is testable.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.spoken import TEENS, TENS, UNITS, cardinal, tokenize

__all__ = ["WEEKDAYS", "AppointmentConfig", "normalise_time", "parse_days"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]?\d|2[0-3])[:.h]([0-5]\d)$")


def _minutes(hhmm: str) -> int:
    match = _HHMM.match(hhmm.strip())
    if not match:
        raise ValueError(f"expected a 24-hour time like 09:00, got {hhmm!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_days(text: str) -> frozenset[int]:
    """ "mon-fri", "mon,wed,fri", "tue-sat", "sun" -> weekday numbers (Monday = 0)."""

    def one(name: str) -> int:
        name = name.strip().lower()
        for i, day in enumerate(WEEKDAYS):
            if len(name) >= 2 and day.startswith(name):
                return i
        raise ValueError(f"unknown weekday {name!r} in {text!r} (use e.g. mon-fri or mon,wed)")

    days: set[int] = set()
    for part in text.split(","):
        if not part.strip():
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = one(first), one(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            days.add(one(part))
    if not days:
        raise ValueError(f"no weekdays in {text!r}")
    return frozenset(days)


@dataclass(frozen=True)
class AppointmentConfig:
    """When appointments can be booked. Times are local to `timezone`."""

    open: str = "09:00"
    close: str = "17:00"
    slot_minutes: int = 30
    days: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))  # Mon-Fri
    timezone: str = "UTC"
    max_days_ahead: int = 90

    def __post_init__(self) -> None:
        start, end = _minutes(self.open), _minutes(self.close)
        if start >= end:
            raise ValueError(f"opening time {self.open} must be before closing time {self.close}")
        if not 5 <= self.slot_minutes <= end - start:
            raise ValueError(
                f"slot_minutes must be between 5 and the opening hours, got {self.slot_minutes}"
            )
        if not self.days or not set(self.days) <= set(range(7)):
            raise ValueError(f"days must be weekday numbers 0-6, got {sorted(self.days)}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        # Normalise "9:00" to "09:00" so slot strings compare equal everywhere.
        object.__setattr__(self, "open", _hhmm(start))
        object.__setattr__(self, "close", _hhmm(end))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppointmentConfig:
        """APPT_OPEN, APPT_CLOSE, APPT_SLOT_MINUTES, APPT_DAYS, APPT_TIMEZONE, APPT_MAX_DAYS_AHEAD."""
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            open=env.get("APPT_OPEN", defaults.open),
            close=env.get("APPT_CLOSE", defaults.close),
            slot_minutes=int(env.get("APPT_SLOT_MINUTES", defaults.slot_minutes)),
            days=parse_days(env["APPT_DAYS"]) if env.get("APPT_DAYS") else defaults.days,
            timezone=env.get("APPT_TIMEZONE", defaults.timezone),
            max_days_ahead=int(env.get("APPT_MAX_DAYS_AHEAD", defaults.max_days_ahead)),
        )

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def slots(self) -> tuple[str, ...]:
        """Every slot start in an open day: 09:00, 09:30, ... (last one ends by closing)."""
        start, end = _minutes(self.open), _minutes(self.close)
        return tuple(_hhmm(m) for m in range(start, end - self.slot_minutes + 1, self.slot_minutes))

    def is_open_day(self, day: dt.date) -> bool:
        return day.weekday() in self.days

    def within_hours(self, hhmm: str) -> bool:
        return _minutes(self.open) <= _minutes(hhmm) < _minutes(self.close)

    def now(self, clock: dt.datetime | None = None) -> dt.datetime:
        """Local wall time; `clock` (any aware datetime) overrides the system clock."""
        return (clock or dt.datetime.now(dt.UTC)).astimezone(self.tz)

    def slot_start(self, day: dt.date, hhmm: str) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tzinfo=self.tz)

    def open_slots(self, day: dt.date, now: dt.datetime) -> list[str]:
        """Slots of `day` still in the future at `now` (empty on closed days)."""
        if not self.is_open_day(day):
            return []
        return [s for s in self.slots if self.slot_start(day, s) > now]

    def hours_text(self) -> str:
        names = [WEEKDAYS[d].capitalize() for d in sorted(self.days)]
        span = (
            f"{names[0]} to {names[-1]}"
            if sorted(self.days) == list(range(min(self.days), max(self.days) + 1))
            and len(names) > 2
            else ", ".join(names)
        )
        return f"{span}, {self.open} to {self.close}"


# Not \b: "10am" has no word boundary between the digit and the "a".
_MERIDIEM = re.compile(r"(?<![a-z])([ap])\.?\s?m(?![a-z])\.?")


def _hour_word(tok: str) -> int | None:
    if tok.isdigit():
        return int(tok)
    if tok in UNITS and UNITS[tok] > 0:
        return UNITS[tok]
    if tok in TEENS:
        return TEENS[tok]
    return None


def _parse(text: str) -> tuple[int, int, str | None] | None:
    """-> (hour, minute, "am"/"pm"/None) or None. Hour may still be 1-12 ambiguous."""
    text = text.strip().lower()
    if not text:
        return None
    if re.search(r"\b(noon|midday)\b", text):
        return 12, 0, "pm"
    if re.search(r"\bmidnight\b", text):
        return 0, 0, "am"
    meridiem: str | None = None
    m = _MERIDIEM.search(text)
    if m:
        meridiem = m.group(1) + "m"
        text = text[: m.start()] + " " + text[m.end() :]
    elif re.search(r"\b(afternoon|evening|tonight)\b", text):
        meridiem = "pm"
    elif re.search(r"\bmorning\b", text):
        meridiem = "am"
    text = re.sub(r"\bo'?\s?clock\b", " ", text)
    text = re.sub(r"\b(at|in|the|afternoon|evening|morning|tonight|about|around)\b", " ", text)
    text = text.strip()

    digits = re.fullmatch(r"(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?", text)
    if digits:
        return int(digits.group(1)), int(digits.group(2) or 0), meridiem
    compact = re.fullmatch(r"(\d{1,2})(\d{2})", text)  # "1030", "930"
    if compact:
        return int(compact.group(1)), int(compact.group(2)), meridiem

    tokens = [t for t in tokenize(text) if t != "and"]
    if not tokens:
        return None
    # "half past two", "quarter past ten", "quarter to three", "twenty past nine"
    for i, tok in enumerate(tokens):
        if tok in ("past", "after", "to", "before") and 0 < i < len(tokens) - 1:
            hour = _hour_word(tokens[i + 1]) if len(tokens) == i + 2 else None
            left = tokens[:i]
            if left == ["half"]:
                minutes = 30
            elif left in (["quarter"], ["a", "quarter"]):
                minutes = 15
            else:
                minutes = cardinal([t for t in left if t not in ("minutes", "minute")]) or -1
            if hour is None or not 0 < minutes < 60:
                return None
            if tok in ("past", "after"):
                return hour, minutes, meridiem
            return (hour - 1) % 12 or 12, 60 - minutes, meridiem
    # "two", "two thirty", "ten forty five", "nine oh five"
    hour = _hour_word(tokens[0])
    if hour is None:
        return None
    rest = tokens[1:]
    if not rest:
        return hour, 0, meridiem
    if rest[0] in ("oh", "o") and len(rest) == 2 and rest[1] in UNITS:
        return hour, UNITS[rest[1]], meridiem
    if all(t in TENS or t in TEENS or t in UNITS or t.isdigit() for t in rest):
        minute = cardinal(rest)
        if minute is not None and minute < 60:
            return hour, minute, meridiem
    return None


def normalise_time(text: str, config: AppointmentConfig | None = None) -> str | None:
    """ "10am", "10:30 AM", "2 pm", "14:00", "half past two", "noon" -> "HH:MM" (24 h).

    Without am/pm an hour of 1-12 is read as the one inside business hours ("2" is 14:00
    for a 9-to-5 business). None when the text is not a time.
    """
    parsed = _parse(text)
    if parsed is None:
        return None
    hour, minute, meridiem = parsed
    if not 0 <= minute < 60:
        return None
    if meridiem is not None:
        if hour == 0 or (hour > 12 and meridiem == "pm"):
            pass  # "0 am", "13:00 pm": already 24-hour, the suffix is redundant
        elif hour > 12:
            return None  # "14 am" contradicts itself
        else:
            hour = hour % 12 + (12 if meridiem == "pm" else 0)
    elif 1 <= hour <= 12:
        cfg = config or AppointmentConfig()
        candidates = [hour] if hour == 12 else [hour, hour + 12]
        hour = next((h for h in candidates if cfg.within_hours(_hhmm(h * 60 + minute))), hour)
    if not 0 <= hour <= 23:
        return None
    return _hhmm(hour * 60 + minute)
