"""Appointment tools end to end through `Tool.invoke`, on both real store backends."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest

from tools.appointments import (
    book_appointment,
    cancel_appointment,
    check_availability,
    find_my_appointments,
    normalise_booking_id,
    normalise_phone,
    reschedule_appointment,
)
from tools.registry import Tool, ToolContext
from tools.schedule import AppointmentConfig
from tools.store import Store

CONFIG = AppointmentConfig()  # Mon-Fri 09:00-17:00, 30-minute slots, UTC
WED = dt.date(2026, 12, 2)
THU = dt.date(2026, 12, 3)
FRI = dt.date(2026, 12, 4)
SAT = dt.date(2026, 12, 5)
MON = dt.date(2026, 12, 7)
ADA = "+15550100"
BOB = "+15550199"


class Phone:
    """One caller's side of the conversation: fresh tool call ids, a shared clock."""

    _ids = itertools.count()

    def __init__(self, store: Store, clock: list[dt.datetime], caller: str | None = ADA):
        self.store, self.clock, self.caller = store, clock, caller
        self.call_sid = f"CA{next(self._ids)}"

    def ctx(self, tool_call_id: str | None = None) -> ToolContext:
        return ToolContext(
            call_sid=self.call_sid,
            caller=self.caller,
            tool_call_id=tool_call_id or f"call_{next(self._ids)}",
            store=self.store, appointments=CONFIG, clock=lambda: self.clock[0],
        )

    async def __call__(self, t: Tool, tool_call_id: str | None = None, **args: Any) -> dict:
        result = await t.invoke(args, self.ctx(tool_call_id))
        json.dumps(result)  # every result must be speakable JSON
        return result


@pytest.fixture
def clock() -> list[dt.datetime]:
    return [dt.datetime(2026, 12, 2, 10, 5, tzinfo=dt.UTC)]  # Wednesday 10:05


@pytest.fixture
def ada(store: Store, clock: list[dt.datetime]) -> Phone:
    return Phone(store, clock, ADA)


@pytest.fixture
def bob(store: Store, clock: list[dt.datetime]) -> Phone:
    return Phone(store, clock, BOB)


# -- check_availability --------------------------------------------------------------------------
async def test_availability_today_starts_after_now(ada: Phone) -> None:
    result = await ada(check_availability, day="2026-12-02")
    assert result["weekday"] == "Wednesday"
    assert result["free_slots"][:2] == ["10:30", "11:00"] and result["free_slots"][-1] == "16:30"


async def test_availability_excludes_booked_slots(ada: Phone, bob: Phone) -> None:
    await bob(book_appointment, day="2026-12-03", time="10:00", name="Bob")
    result = await ada(check_availability, day="2026-12-03")
    assert "10:00" not in result["free_slots"] and "09:30" in result["free_slots"]
    assert len(result["free_slots"]) == len(CONFIG.slots) - 1


async def test_availability_on_a_closed_day_offers_the_next_open_one(ada: Phone) -> None:
    result = await ada(check_availability, day=SAT.isoformat())
    assert result["closed"] is True and result["free_slots"] == []
    assert "closed on Saturdays" in result["say"]
    assert result["say"].endswith("On Monday, December 7 I have 9 AM, 9:30 AM or 10 AM.")
    assert result["alternatives"][0] == {"day": "2026-12-07", "weekday": "Monday", "time": "09:00"}


async def test_availability_in_the_past_or_too_far(ada: Phone) -> None:
    past = await ada(check_availability, day="2026-12-01")
    assert past["error"] == "day_in_past" and past["free_slots"] == []
    far = await ada(check_availability, day="2027-06-01")
    assert far["error"] == "too_far_ahead"


async def test_fully_booked_day_points_to_the_next_day(ada: Phone, bob: Phone) -> None:
    for slot in CONFIG.slots:
        await bob(book_appointment, day=THU.isoformat(), time=slot, name="Bob")
    result = await ada(check_availability, day=THU.isoformat())
    assert result["free_slots"] == [] and "fully booked" in result["say"]
    assert [a["day"] for a in result["alternatives"]] == ["2026-12-04"] * 3


# -- book_appointment ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("said", "time"),
    [("10:00", "10:00"), ("10am", "10:00"), ("10:30 AM", "10:30"), ("2 pm", "14:00")],
)
async def test_book_normalises_the_time(ada: Phone, said: str, time: str) -> None:
    result = await ada(book_appointment, day="2026-12-03", time=said, name="  Ada   Lovelace ")
    assert result == {
        "status": "booked",
        "booking_id": result["booking_id"],
        "day": "2026-12-03",
        "weekday": "Thursday",
        "time": time,
        "name": "Ada Lovelace",
    }
    booking = await ada.store.get(result["booking_id"])
    assert booking.phone == ADA and booking.time == time


async def test_slot_taken_offers_the_nearest_free_that_day(ada: Phone, bob: Phone) -> None:
    await bob(book_appointment, day="2026-12-03", time="10:00", name="Bob")
    await bob(book_appointment, day="2026-12-03", time="10:30", name="Bob")
    result = await ada(book_appointment, day="2026-12-03", time="10am", name="Ada")
    assert result["error"] == "slot_taken"
    assert result["say"] == (
        "Sorry, Thursday, December 3 at 10 AM is already taken. "
        "On Thursday, December 3 I have 9 AM, 9:30 AM or 11 AM."
    )
    assert [a["time"] for a in result["alternatives"]] == ["09:00", "09:30", "11:00"]


async def test_alternatives_roll_over_to_the_next_open_day(ada: Phone, bob: Phone) -> None:
    ada.clock[0] = dt.datetime(2026, 12, 4, 16, 10, tzinfo=dt.UTC)  # Friday: only 16:30 is left
    await bob(book_appointment, day=FRI.isoformat(), time="16:30", name="Bob")
    result = await ada(book_appointment, day=FRI.isoformat(), time="4:30 pm", name="Ada")
    assert result["alternatives"][0] == {"day": "2026-12-07", "weekday": "Monday", "time": "09:00"}


@pytest.mark.parametrize(
    ("day", "time", "error"),
    [
        ("2026-12-03", "6pm", "outside_hours"),
        ("2026-12-03", "08:30", "outside_hours"),
        ("2026-12-05", "10:00", "closed"),
        ("2026-12-01", "10:00", "day_in_past"),
        ("2026-12-02", "09:30", "time_in_past"),
        ("2026-12-03", "10:15", "not_a_slot_start"),
        ("2026-12-03", "whenever", "invalid_time"),
        ("2027-12-03", "10:00", "too_far_ahead"),
    ],
)
async def test_unbookable_requests_explain_and_suggest(
    ada: Phone, day: str, time: str, error: str
) -> None:
    result = await ada(book_appointment, day=day, time=time, name="Ada")
    assert result["error"] == error and result["say"].endswith((".", "?"))
    if error not in ("invalid_time", "too_far_ahead"):
        assert len(result["alternatives"]) == 3
        first = result["alternatives"][0]
        assert CONFIG.slot_start(dt.date.fromisoformat(first["day"]), first["time"]) > ada.clock[0]
    assert await ada.store.find_by_phone(ADA) == []


async def test_outside_hours_message_names_the_hours(ada: Phone) -> None:
    result = await ada(book_appointment, day="2026-12-03", time="6pm", name="Ada")
    assert "6 PM is outside our hours (Monday to Friday, 09:00 to 17:00)" in result["say"]
    assert [a["time"] for a in result["alternatives"]] == ["15:30", "16:00", "16:30"]


async def test_misaligned_time_suggests_neighbouring_slots(ada: Phone) -> None:
    result = await ada(book_appointment, day="2026-12-03", time="10:15", name="Ada")
    assert [a["time"] for a in result["alternatives"]] == ["10:00", "10:30", "11:00"]


async def test_book_needs_a_name(ada: Phone) -> None:
    result = await ada(book_appointment, day="2026-12-03", time="10:00", name="  ")
    assert result["error"] == "missing_name"


async def test_replayed_booking_call_books_once(ada: Phone) -> None:
    first = await ada(book_appointment, "call_replay", day="2026-12-03", time="10:00", name="Ada")
    again = await ada(book_appointment, "call_replay", day="2026-12-03", time="10:00", name="Ada")
    assert again == first
    assert len(await ada.store.find_by_phone(ADA)) == 1
    # Even after the slot has passed, the replay answers with the original booking.
    ada.clock[0] = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    late = await ada(book_appointment, "call_replay", day="2026-12-03", time="10:00", name="Ada")
    assert late["booking_id"] == first["booking_id"]


async def test_withheld_number_can_still_book(store: Store, clock: list[dt.datetime]) -> None:
    anon = Phone(store, clock, caller="anonymous")
    result = await anon(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    assert result["status"] == "booked"
    assert (await store.get(result["booking_id"])).phone is None


# -- cancel_appointment ----------------------------------------------------------------------------
async def test_cancel_by_reference(ada: Phone) -> None:
    booked = await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    spoken = " ".join(booked["booking_id"].lower())  # "k 7 m 4 q x"
    result = await ada(cancel_appointment, booking_id=spoken, confirmed=True)
    assert result["status"] == "cancelled" and result["booking_id"] == booked["booking_id"]
    assert result["say"] == "Your appointment on Thursday, December 3 at 10 AM, under Ada is cancelled."
    assert await ada.store.booked_times(THU) == []
    again = await ada(cancel_appointment, booking_id=booked["booking_id"], confirmed=True)
    assert again["error"] == "already_cancelled"


async def test_cancel_is_read_back_before_anything_changes(ada: Phone) -> None:
    booked = await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    asked = await ada(cancel_appointment)  # the caller's only booking: found, not yet cancelled
    assert asked["status"] == "needs_confirmation" and asked["booking_id"] == booked["booking_id"]
    assert asked["say"] == "Just to confirm: cancel your appointment on Thursday, December 3 at 10 AM, under Ada?"
    assert await ada.store.booked_times(THU) == ["10:00"]
    done = await ada(cancel_appointment, booking_id=asked["booking_id"], confirmed=True)
    assert done["status"] == "cancelled" and await ada.store.booked_times(THU) == []


async def test_two_bookings_and_no_hint_change_nothing_and_list_both(ada: Phone) -> None:
    later = await ada(book_appointment, day="2026-12-04", time="09:00", name="Ada")
    sooner = await ada(book_appointment, day="2026-12-03", time="15:00", name="Ada")
    result = await ada(cancel_appointment, confirmed=True)
    assert result["error"] == "which_booking"
    assert [c["booking_id"] for c in result["candidates"]] == [sooner["booking_id"], later["booking_id"]]
    assert result["say"] == (
        "You have 2 appointments: Thursday, December 3 at 3 PM and "
        "Friday, December 4 at 9 AM. Which one do you mean?"
    )
    assert len(await ada.store.find_by_phone(ADA)) == 2


@pytest.mark.parametrize(
    ("said", "which"),
    [
        ({"day": "2026-12-04"}, "fri"),
        ({"time": "3 pm"}, "thu"),
        ({"time": "9"}, "fri"),
        ({"name": "grace"}, "fri"),
        ({"day": "2026-12-03", "name": "Ada Lovelace"}, "thu"),
    ],
)
async def test_cancel_finds_the_booking_the_caller_names(ada: Phone, said: dict, which: str) -> None:
    thu = await ada(book_appointment, day="2026-12-03", time="15:00", name="Ada Lovelace")
    fri = await ada(book_appointment, day="2026-12-04", time="09:00", name="Grace Hopper")
    result = await ada(cancel_appointment, confirmed=True, **said)
    gone, kept = (thu, fri) if which == "thu" else (fri, thu)
    assert result["status"] == "cancelled" and result["booking_id"] == gone["booking_id"]
    assert [b.booking_id for b in await ada.store.find_by_phone(ADA)] == [kept["booking_id"]]


async def test_cancel_with_a_hint_that_fits_none_lists_what_there_is(ada: Phone) -> None:
    await ada(book_appointment, day="2026-12-03", time="15:00", name="Ada")
    result = await ada(cancel_appointment, day="2026-12-07", confirmed=True)
    assert result["error"] == "no_match"
    assert result["say"] == (
        "I don't see an appointment on Monday, December 7. You have one appointment: "
        "Thursday, December 3 at 3 PM. Which one do you mean?"
    )
    assert len(result["candidates"]) == 1 and await ada.store.booked_times(THU) == ["15:00"]


async def test_same_day_two_bookings_needs_the_time(ada: Phone) -> None:
    await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    await ada(book_appointment, day="2026-12-03", time="15:00", name="Ada")
    result = await ada(cancel_appointment, day="2026-12-03", confirmed=True)
    assert result["error"] == "which_booking" and "on Thursday, December 3:" in result["say"]
    assert await ada.store.booked_times(THU) == ["10:00", "15:00"]


async def test_replayed_cancel_cancels_only_once(ada: Phone) -> None:
    await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    await ada(book_appointment, day="2026-12-04", time="10:00", name="Ada")
    first = await ada(cancel_appointment, "call_cancel", day="2026-12-03", confirmed=True)
    again = await ada(cancel_appointment, "call_cancel", day="2026-12-03", confirmed=True)
    assert again["booking_id"] == first["booking_id"] and again["status"] == "cancelled"
    assert len(await ada.store.find_by_phone(ADA)) == 1  # the second booking survived


async def test_cancel_someone_elses_booking_is_refused(ada: Phone, bob: Phone) -> None:
    bobs = await bob(book_appointment, day="2026-12-03", time="10:00", name="Bob")
    result = await ada(cancel_appointment, booking_id=bobs["booking_id"], confirmed=True)
    assert result["error"] == "not_your_booking"
    assert await bob.store.booked_times(THU) == ["10:00"]


async def test_cancel_errors(ada: Phone, store: Store, clock: list[dt.datetime]) -> None:
    assert (await ada(cancel_appointment, booking_id="ZZZZZZ"))["error"] == "not_found"
    assert (await ada(cancel_appointment))["error"] == "no_bookings"
    withheld = Phone(store, clock, caller=None)
    assert (await withheld(cancel_appointment))["error"] == "need_booking_id"
    await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    unknown = await ada(cancel_appointment, booking_id="ZZZZZZ")
    assert unknown["say"].endswith("You have one appointment: Thursday, December 3 at 10 AM. Is it one of those?")


# -- reschedule_appointment ------------------------------------------------------------------------
async def test_reschedule_is_read_back_then_moves(ada: Phone) -> None:
    booked = await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    asked = await ada(reschedule_appointment, new_day="2026-12-04", new_time="2:30 pm")
    assert asked["status"] == "needs_confirmation" and asked["new_time"] == "14:30"
    assert asked["say"] == (
        "Just to confirm: move your appointment on Thursday, December 3 at 10 AM, under Ada "
        "to Friday, December 4 at 2:30 PM?"
    )
    assert await ada.store.booked_times(THU) == ["10:00"]
    result = await ada(
        reschedule_appointment, new_day="2026-12-04", new_time="2:30 pm",
        booking_id=asked["booking_id"], confirmed=True,
    )  # fmt: skip
    assert {k: v for k, v in result.items() if k != "say"} == {
        "status": "rescheduled",
        "booking_id": booked["booking_id"],
        "day": "2026-12-04",
        "weekday": "Friday",
        "time": "14:30",
        "name": "Ada",
        "previous": {"day": "2026-12-03", "weekday": "Thursday", "time": "10:00"},
    }
    assert await ada.store.booked_times(THU) == []
    assert await ada.store.booked_times(FRI) == ["14:30"]


async def test_reschedule_picks_by_current_day_and_time(ada: Phone) -> None:
    await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    await ada(book_appointment, day="2026-12-03", time="15:00", name="Ada")
    both = await ada(reschedule_appointment, new_day="2026-12-07", new_time="9", confirmed=True)
    assert both["error"] == "which_booking" and len(both["candidates"]) == 2
    moved = await ada(
        reschedule_appointment, new_day="2026-12-07", new_time="9", current_time="3pm", confirmed=True
    )
    assert moved["status"] == "rescheduled" and moved["previous"]["time"] == "15:00"
    assert await ada.store.booked_times(THU) == ["10:00"]


async def test_reschedule_into_a_taken_slot_keeps_the_booking(ada: Phone, bob: Phone) -> None:
    mine = await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    await bob(book_appointment, day="2026-12-04", time="11:00", name="Bob")
    result = await ada(
        reschedule_appointment, booking_id=mine["booking_id"], new_day="2026-12-04", new_time="11am"
    )
    assert result["error"] == "slot_taken"  # said before the read-back: no yes asked for nothing
    assert "still on Thursday, December 3 at 10 AM" in result["say"]
    assert [a["time"] for a in result["alternatives"]] == ["10:30", "11:30", "12:00"]
    assert (await ada.store.get(mine["booking_id"])).time == "10:00"


async def test_reschedule_replay_moves_once(ada: Phone, bob: Phone) -> None:
    mine = await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    first = await ada(
        reschedule_appointment, "call_move", new_day="2026-12-04", new_time="09:00", confirmed=True
    )
    # Bob takes Ada's old slot; a replay must not try to move her again.
    await bob(book_appointment, day="2026-12-03", time="10:00", name="Bob")
    again = await ada(
        reschedule_appointment, "call_move", new_day="2026-12-04", new_time="09:00", confirmed=True
    )
    assert again["booking_id"] == first["booking_id"] == mine["booking_id"]
    assert (again["day"], again["time"]) == ("2026-12-04", "09:00")


async def test_reschedule_validates_the_new_slot(ada: Phone) -> None:
    await ada(book_appointment, day="2026-12-03", time="10:00", name="Ada")
    result = await ada(reschedule_appointment, new_day=SAT.isoformat(), new_time="10:00")
    assert result["error"] == "closed"
    assert result["say"] == (
        "We're closed on Saturdays; our hours are Monday to Friday, 09:00 to 17:00. "
        "On Monday, December 7 I have 9 AM, 9:30 AM or 10 AM."
    )
    assert (await ada(reschedule_appointment, new_day="2026-12-04", new_time="soon"))[
        "error"
    ] == "invalid_time"


async def test_reschedule_without_bookings(ada: Phone) -> None:
    result = await ada(reschedule_appointment, new_day="2026-12-04", new_time="10:00")
    assert result["error"] == "no_bookings"


async def test_beyond_the_horizon_offers_the_latest_bookable_day(ada: Phone) -> None:
    result = await ada(book_appointment, day="2027-06-01", time="10:00", name="Ada")
    # 90 days after Wednesday, December 2, 2026 is Tuesday, March 2, 2027.
    assert result["say"] == (
        "We book up to 90 days ahead. The latest I can offer is Tuesday, March 2 at 9 AM."
    )
    assert result["alternatives"] == [{"day": "2027-03-02", "weekday": "Tuesday", "time": "09:00"}]


async def test_a_past_day_offers_the_soonest_free_time(ada: Phone) -> None:
    result = await ada(book_appointment, day="2026-12-01", time="10:00", name="Ada")
    assert result["say"] == (
        "Tuesday, December 1 has already passed. On Wednesday, December 2 I have "
        "10:30 AM, 11 AM or 11:30 AM."
    )


# -- find_my_appointments --------------------------------------------------------------------------
async def test_find_my_appointments_lists_upcoming_only(ada: Phone, bob: Phone) -> None:
    await ada(book_appointment, day="2026-12-04", time="09:00", name="Ada")
    soon = await ada(book_appointment, day="2026-12-02", time="11:00", name="Ada")
    await bob(book_appointment, day="2026-12-03", time="09:00", name="Bob")
    result = await ada(find_my_appointments)
    assert result["count"] == 2
    assert [(a["day"], a["time"]) for a in result["appointments"]] == [
        ("2026-12-02", "11:00"),
        ("2026-12-04", "09:00"),
    ]
    assert result["appointments"][0]["booking_id"] == soon["booking_id"]
    ada.clock[0] = dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)  # 11:00 has started
    assert (await ada(find_my_appointments))["count"] == 1


async def test_find_my_appointments_needs_a_number(store: Store, clock) -> None:
    anon = Phone(store, clock, caller=None)
    assert (await anon(find_my_appointments))["error"] == "caller_unknown"


# -- wiring and helpers ----------------------------------------------------------------------------
async def test_missing_store_is_a_clear_error() -> None:
    ctx = ToolContext(call_sid="CA1", caller=ADA, tool_call_id="t1")
    with pytest.raises(RuntimeError, match=r"must set ToolContext.store"):
        await check_availability.invoke({"day": "2026-12-03"}, ctx)


async def test_config_comes_from_env_when_not_injected(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPT_OPEN", "10:00")
    monkeypatch.setenv("APPT_CLOSE", "11:00")
    monkeypatch.setenv("APPT_DAYS", "mon-sun")
    ctx = ToolContext(
        call_sid="CA1",
        caller=ADA,
        tool_call_id="t1",
        store=sqlite_store, clock=lambda: dt.datetime(2026, 12, 2, 8, tzinfo=dt.UTC),
    )
    result = await check_availability.invoke({"day": "2026-12-05"}, ctx)
    assert result["free_slots"] == ["10:00", "10:30"]


@pytest.mark.parametrize(
    ("raw", "phone"),
    [
        ("+1 (555) 010-0199", "+15550100199"),
        ("+15550100", "+15550100"),
        ("5550100", "5550100"),
        ("anonymous", None),
        ("client:alice", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_phone(raw: str | None, phone: str | None) -> None:
    assert normalise_phone(raw) == phone


@pytest.mark.parametrize(
    ("raw", "ref"),
    [
        ("k7-m4qx", "K7M4QX"),
        ("K 7 M 4 Q X", "K7M4QX"),
        ("kilo seven mike four quebec x-ray", "K7M4QX"),
        ("acdefg", "ACDEFG"),
        ("booking K7M4QX", "K7M4QX"),
    ],
)
def test_normalise_booking_id(raw: str, ref: str) -> None:
    assert normalise_booking_id(raw) == ref


async def test_a_list_of_bookings_names_them_only_where_it_tells_them_apart(ada: Phone) -> None:
    await ada(book_appointment, day="2026-12-03", time="15:00", name="Ada Lovelace")
    await ada(book_appointment, day="2026-12-04", time="09:00", name="Grace Hopper")
    result = await ada(cancel_appointment)
    assert result["say"] == (
        "You have 2 appointments: Thursday, December 3 at 3 PM, under Ada Lovelace and "
        "Friday, December 4 at 9 AM, under Grace Hopper. Which one do you mean?"
    )
