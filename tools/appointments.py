"""Appointment tools: availability, book, cancel, reschedule, list a caller's bookings.

Every result is a small JSON-serialisable dict the model can read out. Problems the
caller can fix (closed day, taken slot, unknown reference) come back as
`{"error": <code>, "say": <a sentence for the caller>, ...}` with the nearest thing we
can do instead, not as exceptions: the model should offer the next free slots, not
apologise for a crash.

Cancel and reschedule change a booking only when exactly one of the caller's upcoming
bookings fits what they said (day, time, name or reference) and only once the caller
has confirmed it: a call without `confirmed=true` changes nothing and answers with the
read-back sentence to ask (`"status": "needs_confirmation"`).

What they need from `ToolContext`: `store` (required), `appointments` (optional; default
from APPT_* env vars) and `clock` (optional: a pinned "now" for demos and tests).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tools.offers import (
    Result,
    check_day,
    check_request,
    error,
    free_after,
    nearest_on_day,
    offer_sentence,
    slot,
)
from tools.phrases import say_slot
from tools.registry import ToolContext, tool
from tools.schedule import AppointmentConfig
from tools.store import Booking, NotFound, SlotTaken, Store
from tools.which_booking import (
    Wanted,
    candidate,
    describe,
    normalise_booking_id,
    normalise_phone,
    resolve,
    upcoming,
)

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


# -- wiring ------------------------------------------------------------------------------
def store_of(ctx: ToolContext) -> Store:
    if ctx.store is None:
        raise RuntimeError("no store for appointment tools: the agent must set ToolContext.store")
    return ctx.store


def config_of(ctx: ToolContext) -> AppointmentConfig:
    return ctx.appointments or AppointmentConfig.from_env()


def _now(ctx: ToolContext, config: AppointmentConfig) -> dt.datetime:
    return config.now(ctx.clock() if ctx.clock is not None else None)


def _booking_result(status: str, b: Booking, **more: Any) -> Result:
    return {
        "status": status,
        "booking_id": b.booking_id,
        **slot(b.day, b.time),
        "name": b.name,
        **more,
    }


def _inactive(b: Booking, say: str) -> Result:
    return error("already_cancelled", say, booking_id=b.booking_id)


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
    result: Result = {"day": day.isoformat(), "weekday": day.strftime("%A"), "free_slots": []}
    problem = await check_day(store, config, now, day)
    if problem is not None:
        if problem["error"] == "closed":  # not a mistake: the answer to "what's free?"
            problem = {
                "closed": True,
                "say": problem["say"],
                "alternatives": problem["alternatives"],
            }
        return {**result, **problem}
    taken = set(await store.booked_times(day))
    free = [s for s in config.open_slots(day, now) if s not in taken]
    result["free_slots"] = free
    if not free:
        day_start = max(now, config.slot_start(day, "00:00"))
        alternatives = await free_after(store, config, now, day_start)
        result["alternatives"] = alternatives
        offer = offer_sentence(alternatives[:1], "The next free time is")
        result["say"] = f"{day:%A} is fully booked. {offer}".strip()
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
        return error(
            "missing_name", "I need a name for the booking. What name should I put it under?"
        )
    # A replay after the slot passed, or after validation rules changed, still answers.
    prior = await store.get_by_idem(ctx.idempotency_key)
    if prior is not None:
        return _booking_result("booked", prior)
    hhmm, problem = await check_request(store, config, now, day, time)
    if problem is not None:
        return problem
    assert hhmm is not None
    try:
        booking = await store.book(
            day, hhmm, name, normalise_phone(ctx.caller), ctx.idempotency_key
        )
    except SlotTaken:
        return await _taken(store, config, now, day, hhmm)
    return _booking_result("booked", booking)


async def _taken(
    store: Store,
    config: AppointmentConfig,
    now: dt.datetime,
    day: dt.date,
    hhmm: str,
    still: str = "",
) -> Result:

    alternatives = await nearest_on_day(store, config, now, day, hhmm)
    offer = offer_sentence(alternatives, "The nearest free times are")
    return error(
        "slot_taken",
        f"Sorry, {say_slot(day, hhmm)} is already taken{still}. {offer}".strip(),
        alternatives=alternatives,
    )


def _wanted(
    booking_id: str | None, day: dt.date | None, time: str | None, name: str | None
) -> Wanted:
    return Wanted(booking_id=booking_id, day=day, time=time, name=name)


def _confirm(b: Booking, what: str, **more: Any) -> Result:
    """Nothing changed yet: the sentence to read back, and how to go ahead on a yes."""
    return {
        **_booking_result("needs_confirmation", b),
        "say": f"Just to confirm: {what}?",
        "next": "If the caller says yes, call again with this booking_id and confirmed=true.",
        **more,
    }


@tool(timeout_s=10.0, idempotent=True, filler_phrases=("Let me cancel that for you.",))
async def cancel_appointment(
    ctx: ToolContext,
    booking_id: str | None = None,
    day: dt.date | None = None,
    time: str | None = None,
    name: str | None = None,
    confirmed: bool = False,
) -> Result:
    """Cancel one of the caller's appointments, named by what the caller said.

    Give whatever the caller said about it: the day, the time, the name it is under, or
    the reference. If several bookings fit, nothing changes and `candidates` lists them:
    ask which one. Without confirmed=true nothing changes either: read back the returned
    `say` sentence and call again with the booking_id and confirmed=true after a yes.

    Args:
        booking_id: The booking reference, if the caller gave one.
        day: The day of the appointment to cancel, as an ISO date (YYYY-MM-DD).
        time: Its start time as said, e.g. "10am" or "2:30 pm".
        name: The name it is under, if the caller said it.
        confirmed: True only after the caller said yes to the read-back of this booking.
    """
    store, config = store_of(ctx), config_of(ctx)
    now = _now(ctx, config)
    # Checked before resolving: a replay must not cancel a second one.
    prior = await store.get_by_idem(ctx.idempotency_key)
    if prior is not None:
        return _booking_result(
            "cancelled", prior, say=f"Your appointment on {describe(prior)} is cancelled."
        )
    booking, problem = await resolve(
        store, normalise_phone(ctx.caller), config, now, _wanted(booking_id, day, time, name)
    )
    if problem is not None:
        return problem
    assert booking is not None
    if not booking.active:
        return _inactive(booking, f"Your appointment on {describe(booking)} was already cancelled.")
    if not confirmed:
        return _confirm(booking, f"cancel your appointment on {describe(booking)}")
    try:
        cancelled = await store.cancel(booking.booking_id, ctx.idempotency_key)
    except NotFound:
        return error(
            "not_found", "I couldn't find that booking any more; it may have just been changed."
        )
    return _booking_result(
        "cancelled", cancelled, say=f"Your appointment on {describe(cancelled)} is cancelled."
    )


@tool(
    timeout_s=10.0,
    idempotent=True,
    filler_phrases=("Let me move that for you.", "One moment while I change the booking."),
)
async def reschedule_appointment(
    new_day: dt.date,
    new_time: str,
    ctx: ToolContext,
    booking_id: str | None = None,
    current_day: dt.date | None = None,
    current_time: str | None = None,
    name: str | None = None,
    confirmed: bool = False,
) -> Result:
    """Move one of the caller's appointments to a new day and time.

    Name the appointment to move by what the caller said: its current day, time, the
    name it is under, or the reference. If several bookings fit, nothing changes and
    `candidates` lists them: ask which one. Without confirmed=true nothing changes
    either: read back the returned `say` sentence and call again with the booking_id and
    confirmed=true after a yes.

    Args:
        new_day: The new day, as an ISO date (YYYY-MM-DD).
        new_time: The new start time as said, e.g. "11:30" or "3 pm".
        booking_id: The booking reference, if the caller gave one.
        current_day: The day the appointment is on now, as an ISO date (YYYY-MM-DD).
        current_time: The time it is at now, as said.
        name: The name it is under, if the caller said it.
        confirmed: True only after the caller said yes to the read-back of this move.
    """
    store, config = store_of(ctx), config_of(ctx)
    now = _now(ctx, config)
    prior = await store.get_by_idem(ctx.idempotency_key)
    if prior is not None:
        return _booking_result(
            "rescheduled", prior, say=f"Your appointment is now on {describe(prior)}."
        )
    booking, problem = await resolve(
        store, normalise_phone(ctx.caller), config, now,
        _wanted(booking_id, current_day, current_time, name),
    )  # fmt: skip
    if problem is not None:
        return problem
    assert booking is not None
    if not booking.active:
        return _inactive(booking, "That booking was cancelled; I can make a new one instead.")
    hhmm, problem = await check_request(store, config, now, new_day, new_time)
    if problem is not None:
        return problem
    assert hhmm is not None
    still = f"; your booking is still on {say_slot(booking.day, booking.time)}"
    if (new_day, hhmm) == (booking.day, booking.time):
        return error(
            "same_slot",
            f"Your appointment is already on {describe(booking)}.",
            booking_id=booking.booking_id,
        )
    if hhmm in await store.booked_times(new_day):  # asked before the read-back, not after
        return await _taken(store, config, now, new_day, hhmm, still)
    if not confirmed:
        return _confirm(
            booking, f"move your appointment on {describe(booking)} to {say_slot(new_day, hhmm)}",
            new_day=new_day.isoformat(), new_time=hhmm,
        )  # fmt: skip
    try:
        moved = await store.reschedule(booking.booking_id, new_day, hhmm, ctx.idempotency_key)
    except SlotTaken:
        return await _taken(store, config, now, new_day, hhmm, still)
    except NotFound as exc:
        return error(
            "not_found", f"I couldn't change that booking: {exc.reason}. Nothing was moved."
        )
    return _booking_result(
        "rescheduled", moved, previous=slot(booking.day, booking.time),
        say=f"Done: your appointment is now on {describe(moved)}.",
    )  # fmt: skip


@tool(timeout_s=5.0, idempotent=True, filler_phrases=("Let me look up your appointments.",))
async def find_my_appointments(ctx: ToolContext) -> Result:
    """List the caller's upcoming appointments, found by their phone number."""
    store, config = store_of(ctx), config_of(ctx)
    caller = normalise_phone(ctx.caller)
    if caller is None:
        return error(
            "caller_unknown",
            "I can't see your phone number, so I can't look up bookings. "
            "With the booking reference I can still find one.",
        )
    mine = await upcoming(store, caller, _now(ctx, config), config)
    return {"count": len(mine), "appointments": [candidate(b) for b in mine]}
