"""Which of a caller's bookings a change is about, from what the caller said.

Callers name a booking by its day and time ("my Thursday one", "the 10 o'clock"), by the
name it is under, or, rarely, by its reference. A change (cancel, move) must never hit
a booking the caller did not mean: unless exactly one of the caller's own upcoming
bookings fits what they said, nothing changes and the result lists the candidates, each
with a sentence, so the agent can ask which one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from tools.offers import Result, error, slot
from tools.phrases import join_or, say_day, say_slot, say_time
from tools.schedule import AppointmentConfig, normalise_time
from tools.spoken import spoken_code
from tools.store import Booking, NotFound, Store
from tools.store.base import BOOKING_ID_LENGTH

__all__ = ["Wanted", "describe", "normalise_booking_id", "normalise_phone", "resolve", "upcoming"]


def normalise_phone(number: str | None) -> str | None:
    """ "+1 (555) 010-0199" -> "+15550100199"; withheld/anonymous callers -> None."""
    if not number:
        return None
    digits = re.sub(r"\D", "", number)
    if len(digits) < 5:  # "anonymous", "client:alice", short codes: not an identity
        return None
    return ("+" if number.strip().startswith("+") else "") + digits


def normalise_booking_id(text: str) -> str:
    """ "k7-m4qx", "K 7 M 4 Q X", "kilo seven mike four quebec x-ray" -> "K7M4QX"."""
    compact = re.sub(r"[^A-Za-z0-9]", "", text).upper()
    if len(compact) == BOOKING_ID_LENGTH:
        return compact
    return spoken_code(text) or compact


def describe(b: Booking, *, name: bool = True) -> str:
    """ "Thursday, December 3 at 10 AM, under Ana Lopez"."""
    return f"{say_slot(b.day, b.time)}, under {b.name}" if b.name and name else say_slot(b.day, b.time)


def listing(bookings: list[Booking], word: str = "and") -> str:
    """Several bookings read out; the name only where it tells them apart."""
    names = len({b.name for b in bookings}) > 1
    return join_or([describe(b, name=names) for b in bookings], word)


def candidate(b: Booking) -> Result:
    return {
        "booking_id": b.booking_id,
        **slot(b.day, b.time),
        "name": b.name,
        "spoken": describe(b),
    }


@dataclass(frozen=True)
class Wanted:
    """What the caller said about the booking they mean (any of it may be missing)."""

    booking_id: str | None = None
    day: dt.date | None = None
    time: str | None = None  # as said: "10", "10:30 am"
    name: str | None = None

    def blank(self) -> bool:
        return (
            not (self.booking_id or "").strip()
            and self.day is None
            and not (self.time or "").strip()
            and not (self.name or "").strip()
        )


async def upcoming(
    store: Store, phone: str, now: dt.datetime, config: AppointmentConfig
) -> list[Booking]:
    """Active bookings for `phone` that have not started yet, soonest first."""
    bookings = await store.find_by_phone(phone)
    return [b for b in bookings if config.slot_start(b.day, b.time) > now]


def _name_words(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", name.lower()) if len(w) > 1}


def _said(wanted: Wanted, hhmm: str | None) -> str:
    """ "on Thursday, December 3 at 10 AM under Ana": what the caller asked for, spoken."""
    parts = []
    if wanted.day is not None:
        parts.append(f"on {say_day(wanted.day)}")
    if hhmm is not None:
        parts.append(f"at {say_time(hhmm)}")
    if wanted.name and wanted.name.strip():
        parts.append(f"under {wanted.name.strip()}")
    return " ".join(parts)


async def resolve(
    store: Store, caller: str | None, config: AppointmentConfig, now: dt.datetime, wanted: Wanted
) -> tuple[Booking | None, Result | None]:
    """The one booking the caller means, or (None, a result that says why not)."""
    if wanted.booking_id and wanted.booking_id.strip():
        return await _by_reference(store, caller, config, now, wanted.booking_id)
    if caller is None:
        return None, error(
            "need_booking_id",
            "I can't see your phone number, so I need the booking reference to find it. "
            "What's the reference?",
        )
    mine = await upcoming(store, caller, now, config)
    if not mine:
        return None, error(
            "no_bookings",
            "I couldn't find any upcoming appointments for this phone number. "
            "If it was booked from another phone, the booking reference will find it.",
        )
    hhmm = None
    if wanted.time and wanted.time.strip():
        hhmm = normalise_time(wanted.time, config)
        if hhmm is None:
            return None, error(
                "invalid_time",
                f"I couldn't understand the time {wanted.time!r}. Which appointment do you mean: "
                f"{listing(mine, 'or')}?",
                candidates=[candidate(b) for b in mine],
            )
    words = _name_words(wanted.name or "")
    matches = [
        b for b in mine
        if (wanted.day is None or b.day == wanted.day)
        and (hhmm is None or b.time == hhmm)
        and (not words or words & _name_words(b.name))
    ]  # fmt: skip
    if not matches:
        listed = listing(mine)
        return None, error(
            "no_match",
            f"I don't see an appointment {_said(wanted, hhmm)}. "
            f"You have {_count(len(mine))}: {listed}. Which one do you mean?",
            candidates=[candidate(b) for b in mine],
        )
    if len(matches) > 1:
        said = _said(wanted, hhmm)
        return None, error(
            "which_booking",
            f"You have {_count(len(matches))}{' ' + said if said else ''}: "
            f"{listing(matches)}. Which one do you mean?",
            candidates=[candidate(b) for b in matches],
        )
    return matches[0], None


def _count(n: int) -> str:
    return "one appointment" if n == 1 else f"{n} appointments"


async def _by_reference(
    store: Store, caller: str | None, config: AppointmentConfig, now: dt.datetime, reference: str
) -> tuple[Booking | None, Result | None]:
    ref = normalise_booking_id(reference)
    try:
        booking = await store.get(ref)
    except NotFound:
        mine = await upcoming(store, caller, now, config) if caller else []
        say = f"I couldn't find a booking with the reference {' '.join(ref) or reference}."
        if mine:
            say += f" You have {_count(len(mine))}: {listing(mine)}."
            say += " Is it one of those?"
        return None, error("not_found", say, candidates=[candidate(b) for b in mine])
    # A reference overheard or guessed must not let one caller change another's slot.
    if caller and booking.phone and booking.phone != caller:
        return None, error(
            "not_your_booking",
            "That booking was made from a different phone number, so I can't change it from "
            "this one. Please call from the number it was booked with.",
        )
    return booking, None
