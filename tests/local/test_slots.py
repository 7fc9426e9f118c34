"""Lenient parsing of tiny.en transcripts (pure, no models)."""

from __future__ import annotations

from datetime import date

import pytest

from agent.local.slots import (
    detect_intent,
    is_no,
    is_yes,
    normalize,
    parse_day,
    parse_name,
    parse_order_number,
    parse_time,
)

TUESDAY = date(2026, 11, 24)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow", "2026-11-25"),
        ("Tomorrow, please.", "2026-11-25"),
        ("the day after tomorrow", "2026-11-26"),
        ("today", "2026-11-24"),
        ("Thursday", "2026-11-26"),
        ("next Friday", "2026-11-27"),
        ("on tuesday", "2026-12-01"),  # said on a Tuesday: next week's
        ("this Tuesday", "2026-11-24"),
        ("November 27th", "2026-11-27"),
        ("November the 27th", "2026-11-27"),
        ("the 27th of November", "2026-11-27"),
        ("twenty seventh of November", "2026-11-27"),
        ("the 27th", "2026-11-27"),
        ("the 3rd", "2026-12-03"),  # already past this month
        ("January 5", "2027-01-05"),
        ("Dec. 1st", "2026-12-01"),
        ("2026-12-02", "2026-12-02"),
    ],
)
def test_days(text: str, expected: str) -> None:
    assert parse_day(normalize(text), TUESDAY) == date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I can't make it tomorrow, can we do Friday?", "2026-11-27"),
        ("Not Monday, Tuesday works better.", "2026-12-01"),
        ("Move it from Thursday to Saturday.", "2026-11-28"),
        ("Thursday. Sorry, I mean Saturday.", "2026-11-28"),
        ("Friday doesn't work, how about Monday?", "2026-11-30"),
        ("Friday the 27th", "2026-11-27"),
        ("Thursday or Friday", "2026-11-26"),  # no correction: the first, as before
        ("Doesn't matter, Friday is fine.", "2026-11-27"),
        ("I don't mind, Thursday.", "2026-11-26"),
    ],
)
def test_of_several_days_the_one_meant(text: str, expected: str) -> None:
    assert parse_day(normalize(text), TUESDAY) == date.fromisoformat(expected)


@pytest.mark.parametrize("text", ["I can't do Monday.", "Not tomorrow.", "Friday won't work for me."])
def test_a_day_taken_back_is_no_day(text: str) -> None:
    assert parse_day(normalize(text), TUESDAY) is None


def test_bare_ordinal_only_when_asked() -> None:
    assert parse_day(normalize("27th"), TUESDAY) is None
    assert parse_day(normalize("27th"), TUESDAY, bare_ok=True) == date(2026, 11, 27)
    assert parse_day(normalize("I may need help"), TUESDAY) is None  # "may" is not May


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 am", "10:00"),
        ("10 a.m.", "10:00"),
        ("10am", "10:00"),
        ("10 A.M.", "10:00"),
        ("at 10", "10:00"),
        ("at ten thirty", "10:30"),
        ("10:30", "10:30"),
        ("10.30", "10:30"),
        ("2 pm", "14:00"),
        ("2 p.m.", "14:00"),
        ("at 2", "14:00"),  # office hours: 2 means afternoon
        ("noon", "12:00"),
        ("around midday", "12:00"),
        ("12 pm", "12:00"),
        ("half past three", "15:30"),
        ("quarter past 9", "09:15"),
        ("quarter to 11", "10:45"),
        ("9 o'clock", "09:00"),
        ("at 4 in the afternoon", "16:00"),
        ("at 8 in the morning", "08:00"),
        ("two fifteen pm", "14:15"),
        ("November 27 10 am", "10:00"),
        ("on the 27th at 10 am", "10:00"),
    ],
)
def test_times(text: str, expected: str) -> None:
    assert parse_time(normalize(text)) == expected


@pytest.mark.parametrize(("text", "expected"), [("10", "10:00"), ("ten thirty", "10:30"), ("1030", "10:30"), ("3", "15:00")])
def test_bare_times_when_asked(text: str, expected: str) -> None:
    assert parse_time(normalize(text)) is None
    assert parse_time(normalize(text), bare_ok=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can you move my 3 o'clock to 4?", "16:00"),
        ("Not at 9, at 10.", "10:00"),
        ("A table for 2 people at 10", "10:00"),
        ("for 30 minutes at 2 pm", "14:00"),
        ("quarter to 11", "10:45"),
        ("at 10 or 11", "10:00"),  # no correction: the first, as before
        ("half two", "14:30"),  # British
        ("half past two", "14:30"),
    ],
)
def test_of_several_times_the_one_meant(text: str, expected: str) -> None:
    assert parse_time(normalize(text)) == expected


def test_dates_are_not_times() -> None:
    assert parse_time(normalize("on the 27th")) is None
    assert parse_time(normalize("November 27th")) is None
    assert parse_time(normalize("for the 27th of November")) is None


@pytest.mark.parametrize(
    ("text", "bare_ok", "expected"),
    [
        ("My name is Ana.", False, "Ana"),
        ("my name is ana", False, "Ana"),
        ("My name's Ana Lopez.", False, "Ana Lopez"),
        ("It's Maria Gonzalez.", False, "Maria Gonzalez"),
        ("This is Bob calling about my appointment", False, "Bob"),
        ("I'm Ana", False, "Ana"),
        ("I'm looking for an appointment", False, None),
        ("it's for tomorrow", False, None),
        ("It's Tuesday.", False, None),
        ("I'd like to book tomorrow at 10 am, my name is Anna.", False, "Anna"),
        ("Ana.", True, "Ana"),
        ("Uh, Ana Lopez.", True, "Ana Lopez"),
        ("sure it's kim", True, "Kim"),
        ("Ana.", False, None),
        ("ten", True, None),
        ("It's under Smith.", False, "Smith"),
        ("Put it under the name Johnson.", False, "Johnson"),
        ("My last name is Garcia.", False, "Garcia"),
        ("The name's Lee, L-E-E.", False, "Lee"),  # spelled out: not part of the name
    ],
)
def test_names(text: str, bare_ok: bool, expected: str | None) -> None:
    assert parse_name(text, bare_ok=bare_ok) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My order number is 4567.", "4567"),
        ("four five six seven", "4567"),
        ("4, 5, 6, 7.", "4567"),
        ("It's forty five sixty seven", "4567"),
        ("order #12345 please", "12345"),
        ("nine oh one two", "9012"),
        ("order A1234", "A1234"),
        ("double four two one seven", "44217"),
        ("It's 4, triple 5, 8.", "45558"),
    ],
)
def test_order_numbers(text: str, expected: str) -> None:
    found = parse_order_number(text)
    assert found is not None
    assert found[0] == expected
    assert found[1]  # the caller's own words are kept too


def test_order_number_keeps_raw_words() -> None:
    assert parse_order_number("it is four five six seven") == ("4567", "four five six seven")
    assert parse_order_number("no number here") is None
    assert parse_order_number("twelve") is None  # too short to be an order


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I'd like to book an appointment", "book"),
        ("Can I make an appointment for Friday?", "book"),
        ("Do you have anything available on Monday?", "book"),
        ("I need to cancel my appointment", "cancel"),
        ("I'd like to cancel.", "cancel"),
        ("Can I reschedule?", "reschedule"),
        ("I need to move my appointment to Friday", "reschedule"),
        ("Could we change the time?", "reschedule"),
        ("When is my appointment?", "find"),
        ("Do I have an appointment?", "find"),
        ("Where is my order?", "order"),
        ("I'm calling about a package", "order"),
        ("Can I speak to a person?", "transfer"),
        ("Let me talk to a human", "transfer"),
        ("representative", "transfer"),
        ("Can you connect me to an agent", "transfer"),
        ("Hi, can I speak, please?", "transfer"),  # tiny.en lost "to a person"
        ("Could I talk to a, please", "transfer"),
        ("Can I talk about my order?", "order"),
        ("That's all, thanks. Bye!", "goodbye"),
        ("No thanks.", "goodbye"),
        ("goodbye", "goodbye"),
        ("Nothing else.", "goodbye"),
        ("What's the weather like?", None),
    ],
)
def test_intents(text: str, intent: str | None) -> None:
    assert detect_intent(normalize(text)) == intent


def test_normalize() -> None:
    assert normalize("I'd like 10 a.m., please!") == "i'd like 10 am please"
    assert normalize("Twenty-seventh") == "27 th"
    assert normalize("ten thirty") == "10 30"
    assert normalize("") == ""


@pytest.mark.parametrize("text", ["Mm-hmm.", "Uh-huh.", "Alright.", "That works.", "Yeah, please.", "That's fine."])
def test_casual_yes(text: str) -> None:
    assert is_yes(normalize(text)) and not is_no(normalize(text))
