"""Appointment tools: availability, book, cancel, reschedule, list a caller's bookings.

Every result is a small JSON-serialisable dict the model can read out. Problems the
caller can fix (closed day, taken slot, unknown reference) come back as
`{"error": <code>, "message": <speakable>, ...}` with alternatives, not as exceptions:
the model should offer the next free slots, not apologise for a crash.

What they need from `ToolContext`: `store` (required), `appointments` (optional; default
from APPT_* env vars) and `clock` (optional: a pinned "now" for demos and tests).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tools.registry import ToolContext, tool
from tools.schedule import AppointmentConfig, normalise_time
from tools.spoken import spoken_code
from tools.store import Booking, NotFound, SlotTaken, Store
from tools.store.base import BOOKING_ID_LENGTH

__all__ = [
    "book_appointment",
    "cancel_appointment",
    "check_availability",
    "config_of",
    "find_my_appointments",
    "normalise_booking_id",
    "normalise_phone",
    "reschedule_appointment",
    "store_of",
]

Result = dict[str, Any]
_ALTERNATIVES = 3


# -- wiring ------------------------------------------------------------------------------
def store_of(ctx: ToolContext) -> Store:
    if ctx.store is None:
        raise RuntimeError("no store for appointment tools: the agent must set ToolContext.store")
    return ctx.store


def config_of(ctx: ToolContext) -> AppointmentConfig:
    return ctx.appointments or AppointmentConfig.from_env()


def _now(ctx: ToolContext, config: AppointmentConfig) -> dt.datetime:
    return config.now(ctx.clock() if ctx.clock is not None else None)


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


# -- speakable pieces --------------------------------------------------------------------
def _weekday(day: dt.date) -> str:
    return day.strftime("%A")


def _slot(day: dt.date, time: str) -> Result:
    return {"day": day.isoformat(), "weekday": _weekday(day), "time": time}


def _booking_result(status: str, b: Booking, **more: Any) -> Result:
    return {
        "status": status,
        "booking_id": b.booking_id,
        **_slot(b.day, b.time),
        "name": b.name,
        **more,
    }


def _error(code: str, message: str, **more: Any) -> Result:
    return {"error": code, "message": message, **more}


async def _free_after(
    store: Store, config: AppointmentConfig, now: dt.datetime, after: dt.datetime | None = None
) -> list[Result]:
    """The next few free slots strictly after `after` (default: now), within the horizon."""
    after = max(now, after or now)
    day = after.date()
    last = now.date() + dt.timedelta(days=config.max_days_ahead)
    limit = _ALTERNATIVES
    out: list[Result] = []
    while day <= last and len(out) < limit:
        candidates = config.open_slots(day, after)
        if candidates:
            taken = set(await store.booked_times(day))
            for time in candidates:
                if time not in taken:
                    out.append(_slot(day, time))
                    if len(out) >= limit:
                        break
        day += dt.timedelta(days=1)
    return out


async def _check_request(
    store: Store, config: AppointmentConfig, now: dt.datetime, day: dt.date, time_text: str
) -> tuple[str | None, Result | None]:
    """-> ("HH:MM", None) when the slot may be booked, else (None, error result)."""
    hhmm = normalise_time(time_text, config)
    if hhmm is None:
        return None, _error(
            "invalid_time",
            f"I couldn't understand the time {time_text!r}. A time like 10:30 or 2 pm works.",
        )
    today = now.date()
    if day < today:
        return None, _error(
            "day_in_past",
            f"{_weekday(day)} {day.isoformat()} has already passed.",
            alternatives=await _free_after(store, config, now),
        )
    if day > today + dt.timedelta(days=config.max_days_ahead):
        return None, _error(
            "too_far_ahead",
            f"We only take bookings up to {config.max_days_ahead} days ahead.",
        )
    day_start = max(now, config.slot_start(day, "00:00"))
    if not config.is_open_day(day):
        return None, _error(
            "closed",
            f"We're closed on {_weekday(day)}s. Our hours are {config.hours_text()}.",
            alternatives=await _free_after(store, config, now, day_start),
        )
    if not config.within_hours(hhmm):
        return None, _error(
            "outside_hours",
            f"{hhmm} is outside our hours ({config.hours_text()}).",
            alternatives=await _free_after(store, config, now, day_start),
        )
    if hhmm not in config.slots:
        return None, _error(
            "not_a_slot_start",
            f"Appointments are {config.slot_minutes} minutes long and start at "
            f"{', '.join(config.slots[:3])} and so on.",
            alternatives=await _free_after(
                store, config, now, config.slot_start(day, hhmm) - _slot_len(config)
            ),
        )
    if config.slot_start(day, hhmm) <= now:
        return None, _error(
            "time_in_past",
            f"{hhmm} today has already passed.",
            alternatives=await _free_after(store, config, now),
        )
    return hhmm, None


def _slot_len(config: AppointmentConfig) -> dt.timedelta:
    return dt.timedelta(minutes=config.slot_minutes)


async def _upcoming(
    store: Store, phone: str, now: dt.datetime, config: AppointmentConfig
) -> list[Booking]:
    """Active bookings for `phone` that have not started yet, soonest first."""
    bookings = await store.find_by_phone(phone)
    return [b for b in bookings if config.slot_start(b.day, b.time) > now]


async def _resolve_booking(
    store: Store, ctx: ToolContext, config: AppointmentConfig, now: dt.datetime,
    booking_id: str | None,
) -> tuple[Booking | None, Result | None]:  # fmt: skip
    """The booking the caller means: by reference, or else their next one by phone."""
    caller = normalise_phone(ctx.caller)
    if booking_id and booking_id.strip():
        ref = normalise_booking_id(booking_id)
        try:
            booking = await store.get(ref)
        except NotFound:
            return None, _error(
                "not_found",
                f"I couldn't find a booking with the reference {' '.join(ref) or booking_id}.",
            )
        # A reference overheard or guessed must not let one caller cancel another's slot.
        if caller and booking.phone and booking.phone != caller:
            return None, _error(
                "not_your_booking",
                "That booking was made from a different phone number, so I can't change it.",
            )
        return booking, None
    if caller is None:
        return None, _error(
            "need_booking_id",
            "I can't see your phone number. What's the booking reference?",
        )
    upcoming = await _upcoming(store, caller, now, config)
    if not upcoming:
        return None, _error(
            "no_bookings", "I couldn't find any upcoming appointments for this phone number."
        )
    return upcoming[0], None


# -- the tools ---------------------------------------------------------------------------
@tool(
    timeout_s=5.0,
    idempotent=True,
    filler_phrases=("Let me check the calendar.", "One moment, I'll look at what's free."),
)
async def check_availability(day: dt.date, ctx: ToolContext) -> Result:
    """List the free appointment times on a day.

    Args:
        day: The day to check, as an ISO date (YYYY-MM-DD).
    """
    store, config = store_of(ctx), config_of(ctx)
    now = _now(ctx, config)
    result: Result = {"day": day.isoformat(), "weekday": _weekday(day), "free_slots": []}
    if day < now.date():
        return {**result, **_error("day_in_past", f"{day.isoformat()} has already passed.")}
    if day > now.date() + dt.timedelta(days=config.max_days_ahead):
        return {
            **result,
            **_error("too_far_ahead", f"We only book up to {config.max_days_ahead} days ahead."),
        }
    day_start = max(now, config.slot_start(day, "00:00"))
    if not config.is_open_day(day):
        return {
            **result,
            "closed": True,
            "message": f"We're closed on {_weekday(day)}s. Our hours are {config.hours_text()}.",
            "alternatives": await _free_after(store, config, now, day_start),
        }
    taken = set(await store.booked_times(day))
    free = [s for s in config.open_slots(day, now) if s not in taken]
    result["free_slots"] = free
    if not free:
        result["message"] = f"{_weekday(day)} is fully booked."
        result["alternatives"] = await _free_after(store, config, now, day_start)
    return result


@tool(
    timeout_s=10.0,
    idempotent=True,  # safe to retry: the idempotency key makes a replay return the same booking
    filler_phrases=("Let me book that for you.", "One moment while I put that in."),
)
async def book_appointment(day: dt.date, time: str, name: str, ctx: ToolContext) -> Result:
    """Book an appointment for the caller.

    Args:
        day: The appointment day, as an ISO date (YYYY-MM-DD).
        time: The start time as said, e.g. "10:00", "10am", "2:30 pm".
        name: The name the booking is under.
    """
    store, config = store_of(ctx), config_of(ctx)
    now = _now(ctx, config)
    name = " ".join(name.split())
    if not name:
        return _error("missing_name", "I need a name for the booking.")
    # A replay after the slot passed, or after validation rules changed, still answers.
    prior = await store.get_by_idem(ctx.idempotency_key)
    if prior is not None:
        return _booking_result("booked", prior)
    hhmm, problem = await _check_request(store, config, now, day, time)
    if problem is not None:
        return problem
    assert hhmm is not None
    try:
        booking = await store.book(
            day, hhmm, name, normalise_phone(ctx.caller), ctx.idempotency_key
        )
    except SlotTaken:
        return _error(
            "slot_taken",
            f"Sorry, {hhmm} on {_weekday(day)} is already taken.",
            alternatives=await _free_after(store, config, now, config.slot_start(day, hhmm)),
        )
    return _booking_result("booked", booking)


@tool(timeout_s=10.0, idempotent=True, filler_phrases=("Let me cancel that for you.",))
async def cancel_appointment(ctx: ToolContext, booking_id: str | None = None) -> Result:
    """Cancel an appointment. Without a booking reference, cancels the caller's next one.

    Args:
        booking_id: The booking reference, if the caller gave one.
    """
    store, config = store_of(ctx), config_of(ctx)
    now = _now(ctx, config)
    # Checked before resolving "the next booking": a replay must not cancel a second one.
    prior = await store.get_by_idem(ctx.idempotency_key)
    if prior is not None:
        return _booking_result("cancelled", prior)
    booking, problem = await _resolve_booking(store, ctx, config, now, booking_id)
    if problem is not None:
        return problem
    assert booking is not None
    if not booking.active:
        return _error(
            "already_cancelled",
            f"That booking for {booking.time} on {_weekday(booking.day)} was already cancelled.",
            booking_id=booking.booking_id,
        )
    try:
        cancelled = await store.cancel(booking.booking_id, ctx.idempotency_key)
    except NotFound:
        return _error("not_found", "I couldn't find that booking any more.")
    return _booking_result("cancelled", cancelled)


@tool(
    timeout_s=10.0,
    idempotent=True,
    filler_phrases=("Let me move that for you.", "One moment while I change the booking."),
)
async def reschedule_appointment(
    new_day: dt.date, new_time: str, ctx: ToolContext, booking_id: str | None = None
) -> Result:
    """Move an appointment to a new day and time. Without a reference, moves the caller's next one.

    Args:
        new_day: The new day, as an ISO date (YYYY-MM-DD).
        new_time: The new start time as said, e.g. "11:30" or "3 pm".
        booking_id: The booking reference, if the caller gave one.
    """
    store, config = store_of(ctx), config_of(ctx)
    now = _now(ctx, config)
    prior = await store.get_by_idem(ctx.idempotency_key)
    if prior is not None:
        return _booking_result("rescheduled", prior)
    booking, problem = await _resolve_booking(store, ctx, config, now, booking_id)
    if problem is not None:
        return problem
    assert booking is not None
    if not booking.active:
        return _error(
            "already_cancelled",
            "That booking was cancelled; I can make a new one instead.",
            booking_id=booking.booking_id,
        )
    hhmm, problem = await _check_request(store, config, now, new_day, new_time)
    if problem is not None:
        return problem
    assert hhmm is not None
    try:
        moved = await store.reschedule(booking.booking_id, new_day, hhmm, ctx.idempotency_key)
    except SlotTaken:
        return _error(
            "slot_taken",
            f"Sorry, {hhmm} on {_weekday(new_day)} is already taken; "
            f"your booking is still at {booking.time} on {_weekday(booking.day)}.",
            alternatives=await _free_after(store, config, now, config.slot_start(new_day, hhmm)),
        )
    except NotFound as exc:
        return _error("not_found", f"I couldn't change that booking: {exc.reason}.")
    return _booking_result("rescheduled", moved, previous=_slot(booking.day, booking.time))


@tool(timeout_s=5.0, idempotent=True, filler_phrases=("Let me look up your appointments.",))
async def find_my_appointments(ctx: ToolContext) -> Result:
    """List the caller's upcoming appointments, found by their phone number."""
    store, config = store_of(ctx), config_of(ctx)
    caller = normalise_phone(ctx.caller)
    if caller is None:
        return _error(
            "caller_unknown", "I can't see your phone number, so I can't look up bookings."
        )
    upcoming = await _upcoming(store, caller, _now(ctx, config), config)
    return {
        "count": len(upcoming),
        "appointments": [
            {"booking_id": b.booking_id, **_slot(b.day, b.time), "name": b.name} for b in upcoming
        ],
    }
