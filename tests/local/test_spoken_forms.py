"""Days, times, numbers and requests as people say them (found on the eval's tuning set)."""

from __future__ import annotations

from datetime import date

import pytest

from agent.local.numbers import parse_order_number, words_to_digits
from agent.local.slots import detect_intent, is_no, normalize, parse_day, parse_time
from agent.local.understanding import Context, understand

TUESDAY = date(2027, 1, 12)
APPOINTMENTS = frozenset({"check_availability", "book_appointment", "cancel_appointment",
                          "reschedule_appointment", "find_my_appointments", "transfer_call",
                          "end_call"})  # fmt: skip
ORDERS = frozenset({"lookup_order", "transfer_call", "end_call"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quarter past nine", "09:15"),
        ("twenty past ten would be ideal", "10:20"),
        ("at twenty five past eleven", "11:25"),
        ("ten to four, please", "15:50"),
        ("five to twelve", "11:55"),
        ("quarter to eleven", "10:45"),
        ("half past three", "15:30"),
        ("fifteen hundred hours", "15:00"),
        ("thirteen thirty", "13:30"),
        ("fourteen forty-five", "14:45"),
        ("a week from Monday, two fifteen", "14:15"),
        ("an earlier time, like nine fifteen", "09:15"),
        ("Monday at the eleven hours", "11:00"),
    ],
)
def test_clock_times_in_words(text: str, expected: str) -> None:
    assert parse_time(normalize(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("move it from 3 to 4", "16:00"),  # "to 4", not 2:57
        ("ten thirty", None),  # alone, a time only when we asked for one
        ("order forty five sixty seven", None),
        ("I'm 45", None),
    ],
)
def test_number_pairs_that_are_not_a_time_of_day(text: str, expected: str | None) -> None:
    assert parse_time(normalize(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thursday week", date(2027, 1, 21)),
        ("a week from Monday", date(2027, 1, 25)),
        ("a week today", date(2027, 1, 19)),
        ("a week tomorrow", date(2027, 1, 20)),
        ("two weeks from today", date(2027, 1, 26)),
        ("in three days", date(2027, 1, 15)),
        ("January the twenty-eighth", date(2027, 1, 28)),
        ("Wednesday, sorry, I mean Thursday", date(2027, 1, 14)),
    ],
)
def test_days_counted_in_weeks(text: str, expected: date) -> None:
    assert parse_day(normalize(text), TUESDAY) == expected


def test_the_day_already_booked_is_not_the_new_one() -> None:
    norm = normalize("I booked for tomorrow but I'd like a different day")
    assert parse_day(norm, TUESDAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("forty-five sixty-seven", "4567"),
        ("one oh four two", "1042"),
        ("Nine oh nine oh.", "9090"),
        ("Four eight two, double oh six", "482006"),
        ("Four thousand five hundred sixty seven", "4567"),
        ("Yeah it's twenty, eight thirty one", "20831"),  # the pause keeps "20" apart
        ("It's three eight one nine zero, sorry, three eight one nine one.", "38191"),
        ("Sorry, it's not 4576, it's 4567", "4567"),
        ("Oh, it's 4567", "4567"),  # a sigh, not a zero
        ("order AB1234", "AB1234"),
    ],
)
def test_order_numbers_as_said(text: str, expected: str) -> None:
    found = parse_order_number(text)
    assert found is not None and found[0] == expected


def test_words_to_digits_keeps_oclock_and_the_rest() -> None:
    assert words_to_digits("at three o'clock, order one oh four") == "at 3 o'clock, order 1 0 4"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Is there any room on Thursday?", "book"),
        ("Could you put me down for Friday?", "book"),
        ("I'd like to postpone my appointment", "reschedule"),
        ("Can I move my appointments to Friday?", "reschedule"),  # not "my appointments"
        ("I have to rearrange my appointment please", "reschedule"),
        ("I'd like a different day if possible", "reschedule"),
        ("Could you remove my booking please?", "cancel"),
        ("I no longer need my appointment on Friday", "cancel"),
        ("Can you check if I have a booking with you?", "find"),
        ("Is there somebody I can talk to about a refund?", "transfer"),
        ("Agent, please.", "transfer"),
    ],
)
def test_rephrased_requests(text: str, intent: str) -> None:
    assert detect_intent(normalize(text)) == intent


def test_nothing_else_is_a_no() -> None:
    assert is_no(normalize("Nothing else, thank you"))


def test_cancel_keeps_the_day_that_tells_which_booking() -> None:
    heard = understand("I want to cancel my appointment for Thursday.", Context(TUESDAY, APPOINTMENTS))
    assert (heard.intent, heard.day) == ("cancel", date(2027, 1, 14))


def test_a_number_in_a_question_on_an_orders_line_is_an_order() -> None:
    text = "Could you tell me what's happening with one zero four two?"
    heard = understand(text, Context(TUESDAY, ORDERS))
    assert (heard.intent, heard.order_number) == ("order", "1042")
    # where bookings are taken too, a number inside a sentence is not taken for an order
    assert understand(text, Context(TUESDAY, APPOINTMENTS | ORDERS)).intent is None


# ---------------------------------------------------------------- as tiny.en writes it
@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        ("Could you tell me what's happening with 1 0. 4 too?", "1042"),
        ("Hi, my order number is 6 oh for 1 8.", "60418"),
        ("I'm on the number in six or for one eight", "60418"),
        ("is it 4567 or 4568", "4567"),  # not digits read out one by one: "or" stays a choice
        ("it is 4 5 6 7 for me", "4567"),  # "for me" is not a digit
        ("order 4567 to be delivered", "4567"),
    ],
)
def test_digits_heard_as_words_that_sound_the_same(transcript: str, expected: str) -> None:
    found = parse_order_number(transcript)
    assert found is not None and found[0] == expected


@pytest.mark.parametrize(
    ("transcript", "intent", "time"),
    [
        ("Walking for Wednesday, 15 hundred hours.", "book", "15:00"),
        ("Could you remove my walking please?", "cancel", None),
        ("I move my appointment to the Thursday, 1030.", "reschedule", "10:30"),
    ],
)
def test_booking_heard_as_walking(transcript: str, intent: str, time: str | None) -> None:
    norm = normalize(transcript)
    assert detect_intent(norm) == intent
    assert parse_time(norm) == time
