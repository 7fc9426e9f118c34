"""Whether a requested slot can be booked, and if not, what to offer instead.

Every refusal is a result the model (or the offline policy) can read out as it is:
`{"error": <code>, "say": <what happened and the nearest thing we can do>,
"alternatives": [...]}`. The nearest thing depends on why: a taken slot offers the
closest free times that day, a closed day the next open day, a day beyond the booking
horizon the latest bookable day, a day in the past the soonest free time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tools.phrases import join_or, say_day, say_slot, say_time
from tools.schedule import AppointmentConfig, normalise_time
from tools.store import Store

__all__ = [
    "ALTERNATIVES",
    "Result",
    "check_request",
    "error",
    "free_after",
    "latest_bookable",
    "nearest_on_day",
    "offer_sentence",
    "slot",
]

Result = dict[str, Any]
ALTERNATIVES = 3


def slot(day: dt.date, time: str) -> Result:
    return {"day": day.isoformat(), "weekday": day.strftime("%A"), "time": time}


def error(code: str, say: str, **more: Any) -> Result:
    """A refusal: `say` is the sentence for the caller, `more` the facts behind it."""
    return {"error": code, "say": say, **more}


def offer_sentence(alternatives: list[Result], lead: str = "The soonest I can offer is") -> str:
    """ "On Friday, February 26 I have 9 AM, 9:30 AM or 10 AM." / "<lead> Monday, ... at 9
    AM." / "" when there is nothing to offer."""
    if not alternatives:
        return ""
    days = {a["day"] for a in alternatives}
    if len(days) == 1 and len(alternatives) > 1:
        day = dt.date.fromisoformat(alternatives[0]["day"])
        times = join_or([say_time(a["time"]) for a in alternatives])
        return f"On {say_day(day)} I have {times}."
    spoken = [say_slot(dt.date.fromisoformat(a["day"]), a["time"]) for a in alternatives]
    return f"{lead} {join_or(spoken)}."


def _with_offer(sentence: str, alternatives: list[Result], config: AppointmentConfig,
                lead: str = "The soonest I can offer is") -> str:  # fmt: skip
    offer = offer_sentence(alternatives, lead)
    if offer:
        return f"{sentence} {offer}"
    return f"{sentence} Nothing is free in the next {config.max_days_ahead} days, I'm afraid."


async def free_after(
    store: Store, config: AppointmentConfig, now: dt.datetime, after: dt.datetime | None = None
) -> list[Result]:
    """The next few free slots strictly after `after` (default: now), within the horizon."""
    after = max(now, after or now)
    day = after.date()
    last = now.date() + dt.timedelta(days=config.max_days_ahead)
    out: list[Result] = []
    while day <= last and len(out) < ALTERNATIVES:
        candidates = config.open_slots(day, after)
        if candidates:
            taken = set(await store.booked_times(day))
            out.extend(slot(day, t) for t in candidates if t not in taken)
        day += dt.timedelta(days=1)
    return out[:ALTERNATIVES]


async def nearest_on_day(
    store: Store, config: AppointmentConfig, now: dt.datetime, day: dt.date, hhmm: str
) -> list[Result]:
    """The free times on `day` closest to `hhmm` (before or after), in time order; the
    next free slots after that day when it has none."""
    taken = set(await store.booked_times(day))
    free = [t for t in config.open_slots(day, now) if t not in taken]
    if free:
        target = config.slot_start(day, hhmm)
        # A tie goes to the later time: "10:15" offers 10:30 before 9:45.
        closest = sorted(free, key=lambda t: (abs(config.slot_start(day, t) - target),
                                              config.slot_start(day, t) < target))  # fmt: skip
        return [slot(day, t) for t in sorted(closest[:ALTERNATIVES])]
    end_of_day = config.slot_start(day, "00:00") + dt.timedelta(days=1)
    return await free_after(store, config, now, end_of_day)


async def latest_bookable(
    store: Store, config: AppointmentConfig, now: dt.datetime
) -> list[Result]:
    """The last day within the horizon with a free slot, and its first free time."""
    day = now.date() + dt.timedelta(days=config.max_days_ahead)
    while day >= now.date():
        candidates = config.open_slots(day, now)
        if candidates:
            taken = set(await store.booked_times(day))
            free = [t for t in candidates if t not in taken]
            if free:
                return [slot(day, free[0])]
        day -= dt.timedelta(days=1)
    return []


async def check_request(
    store: Store, config: AppointmentConfig, now: dt.datetime, day: dt.date, time_text: str
) -> tuple[str | None, Result | None]:
    """-> ("HH:MM", None) when the slot may be booked, else (None, refusal with offers)."""
    hhmm = normalise_time(time_text, config)
    if hhmm is None:
        return None, error(
            "invalid_time",
            f"I couldn't understand the time {time_text!r}. A time like 10:30 or 2 PM works.",
        )
    problem = await check_day(store, config, now, day)
    if problem is not None:
        return None, problem
    if not config.within_hours(hhmm):
        alternatives = await nearest_on_day(store, config, now, day, hhmm)
        return None, error(
            "outside_hours",
            _with_offer(
                f"{say_time(hhmm)} is outside our hours ({config.hours_text()}).",
                alternatives,
                config,
            ),  # fmt: skip
            alternatives=alternatives,
        )
    if hhmm not in config.slots:
        alternatives = await nearest_on_day(store, config, now, day, hhmm)
        return None, error(
            "not_a_slot_start",
            _with_offer(
                f"Appointments are {config.slot_minutes} minutes long and start at "
                f"{', '.join(say_time(s) for s in config.slots[:3])} and so on.",
                alternatives,
                config,
                lead="The nearest I can offer is",
            ),
            alternatives=alternatives,
        )
    if config.slot_start(day, hhmm) <= now:
        alternatives = await free_after(store, config, now)
        return None, error(
            "time_in_past",
            _with_offer(f"{say_time(hhmm)} today has already passed.", alternatives, config),
            alternatives=alternatives,
        )
    return hhmm, None


async def check_day(
    store: Store, config: AppointmentConfig, now: dt.datetime, day: dt.date
) -> Result | None:
    """A refusal when nothing can be booked on `day` (past, too far ahead, closed)."""
    today = now.date()
    if day < today:
        alternatives = await free_after(store, config, now)
        return error(
            "day_in_past",
            _with_offer(f"{say_day(day)} has already passed.", alternatives, config),
            alternatives=alternatives,
        )
    if day > today + dt.timedelta(days=config.max_days_ahead):
        alternatives = await latest_bookable(store, config, now)
        return error(
            "too_far_ahead",
            _with_offer(
                f"We book up to {config.max_days_ahead} days ahead.",
                alternatives,
                config,
                lead="The latest I can offer is",
            ),  # fmt: skip
            alternatives=alternatives,
        )
    if not config.is_open_day(day):
        day_start = max(now, config.slot_start(day, "00:00"))
        alternatives = await free_after(store, config, now, day_start)
        return error(
            "closed",
            _with_offer(
                f"We're closed on {day:%A}s; our hours are {config.hours_text()}.",
                alternatives,
                config,
                lead="The next free time is",
            ),
            alternatives=alternatives,
        )
    return None
