"""Business hours, slots, and spoken times."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.schedule import AppointmentConfig, normalise_time, parse_days


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:00", "10:00"),
        ("10am", "10:00"),
        ("10 AM", "10:00"),
        ("10:30 AM", "10:30"),
        ("10:30am", "10:30"),
        ("10.30 a.m.", "10:30"),
        ("2 pm", "14:00"),
        ("2pm", "14:00"),
        ("2:30 P.M.", "14:30"),
        ("14:00", "14:00"),
        ("9:00", "09:00"),
        ("09:00", "09:00"),
        ("930", "09:30"),
        ("1430", "14:30"),
        ("noon", "12:00"),
        ("12 noon", "12:00"),
        ("midnight", "00:00"),
        ("12 am", "00:00"),
        ("12 pm", "12:00"),
        ("10 o'clock", "10:00"),
        ("at 3 in the afternoon", "15:00"),
        ("9 in the morning", "09:00"),
        ("half past two", "14:30"),
        ("quarter past ten", "10:15"),
        ("quarter to three", "14:45"),
        ("twenty past 9", "09:20"),
        ("two thirty", "14:30"),
        ("ten forty five", "10:45"),
        ("nine oh five", "09:05"),
        ("eleven", "11:00"),
        ("five p.m.", "17:00"),
        ("13:00 pm", "13:00"),
        # Without am/pm, an hour is read inside business hours (9-17 by default).
        ("2", "14:00"),
        ("4:30", "16:30"),
        ("10", "10:00"),
        ("8", "08:00"),  # neither 08:00 nor 20:00 is open: keep it, the tool explains hours
    ],
)
def test_normalise_time(text: str, expected: str) -> None:
    assert normalise_time(text) == expected


@pytest.mark.parametrize(
    "text", ["", "banana", "25:00", "10:75", "14 am", "sometime", "half past", "ten sixty"]
)
def test_normalise_time_rejects_non_times(text: str) -> None:
    assert normalise_time(text) is None


def test_ambiguous_hour_follows_configured_hours() -> None:
    evening = AppointmentConfig(open="17:00", close="22:00")
    assert normalise_time("7", evening) == "19:00"
    assert normalise_time("7", AppointmentConfig(open="06:00", close="12:00")) == "07:00"


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("Mon,Wed,Fri", {0, 2, 4}),
        ("tue-sat", {1, 2, 3, 4, 5}),
        ("fri-mon", {4, 5, 6, 0}),
        ("sunday", {6}),
        ("th", {3}),
    ],
)
def test_parse_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", "funday", "m", "mon-xyz"])
def test_parse_days_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_days(text)


def test_default_config_slots_and_text() -> None:
    config = AppointmentConfig()
    assert config.slots[0] == "09:00" and config.slots[-1] == "16:30" and len(config.slots) == 16
    assert config.hours_text() == "Monday to Friday, 09:00 to 17:00"
    assert config.is_open_day(dt.date(2026, 11, 27))  # a Friday
    assert not config.is_open_day(dt.date(2026, 11, 28))
    assert config.within_hours("16:59") and not config.within_hours("17:00")


def test_slots_end_by_closing_time() -> None:
    config = AppointmentConfig(open="9:00", close="10:40", slot_minutes=45)
    assert config.open == "09:00"
    assert config.slots == ("09:00", "09:45")


def test_open_slots_respect_now_and_timezone() -> None:
    config = AppointmentConfig(timezone="America/New_York")
    day = dt.date(2026, 12, 2)  # Wednesday; New York is UTC-5 then
    now = dt.datetime(2026, 12, 2, 15, 10, tzinfo=dt.UTC)  # 10:10 local
    assert config.now(now).hour == 10
    assert config.open_slots(day, now)[0] == "10:30"
    assert config.open_slots(dt.date(2026, 12, 5), now) == []  # Saturday


def test_config_from_env() -> None:
    env = {
        "APPT_OPEN": "08:30",
        "APPT_CLOSE": "12:00",
        "APPT_SLOT_MINUTES": "45",
        "APPT_DAYS": "mon,wed",
        "APPT_TIMEZONE": "Europe/Berlin",
        "APPT_MAX_DAYS_AHEAD": "14",
    }
    config = AppointmentConfig.from_env(env)
    assert config.slots == ("08:30", "09:15", "10:00", "10:45")
    assert config.days == frozenset({0, 2}) and config.timezone == "Europe/Berlin"
    assert config.max_days_ahead == 14
    assert AppointmentConfig.from_env({}) == AppointmentConfig()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"open": "17:00", "close": "09:00"}, "must be before closing"),
        ({"open": "9am"}, "expected a 24-hour time"),
        ({"slot_minutes": 2}, "slot_minutes"),
        ({"days": frozenset({7})}, "weekday numbers"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AppointmentConfig(**kwargs)
