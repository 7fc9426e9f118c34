"""Days and times in a caller's words: "the day after tomorrow", "Thursday week", "a week
from Friday", "quarter to eleven", "twenty past three", "fourteen hundred", "2:30".

Pure functions over `slots.normalize`d text (lower case, number words already digits).
We measured dateparser, ctparse and timefhuman on the tuning set's utterances (day right
12, 17 and 17 of 27; time 3, 8 and 5 of 26, against 23 and 18 for these rules before
any change): none reads clock times said in words ("quarter past nine", "ten to four",
"fifteen hundred"), and they resolve relative days against their own conventions
("two weeks from today" in the past, "next Friday" a week late). As fallbacks behind
these rules they added nothing. So the rules stay, and number words come from text2num.
"""

from __future__ import annotations

import calendar
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Generic, TypeVar

__all__ = ["MONTHS", "WEEKDAYS", "parse_day", "parse_time", "pick_offered"]

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(WEEKDAYS)
# After "for 2": a count, not a clock ("for 2 people", "for 30 minutes", "the 27th").
_NOT_CLOCK = r"(?:st|nd|rd|th|of|people|persons|guests|of us|hours?|minutes?|mins?|days?|weeks?)\b"
_V = TypeVar("_V")


def _has(pattern: str, norm: str) -> bool:
    return re.search(pattern, norm) is not None


# ---------------------------------------------------------------- choosing
# Words just before a day or time that take it back ("not Monday", "I can't make it
# tomorrow") or mark it as the old one ("from Thursday to ..."); and words that make the
# next one the answer ("to Friday", "I mean Wednesday", "make it 4").
_TAKEN_BACK = re.compile(
    r"\b(not|can't|cannot|cant|won't|don't|doesn't|isn't|wouldn't|couldn't|except|instead of|rather than)"
    r"(?! (?:mind|matter|care|know)\b)(?: [a-z']+){0,2} $"  # "doesn't matter, Friday's fine"
)
_TAKEN_BACK_AFTER = re.compile(
    r"^ (?:[a-z']+ )?(doesn't|won't|does not|will not|wouldn't|isn't|is not|is no good|no good|is bad)\b"
)
_OLD = re.compile(r"\bfrom (?:[a-z']+ ){0,1}$")
_BOOKED = re.compile(r"\b(booked|scheduled) (?:in )?(?:for|on) (?:the )?$")
_ANSWER = re.compile(r"\b(to|i mean|make it|make that|instead|actually|rather|no|how about|what about)(?: [a-z']+){0,1} $")


@dataclass(frozen=True)
class _Mention(Generic[_V]):
    start: int
    end: int
    rank: int  # the parser's own order of preference (most specific first)
    value: _V


def _choose(norm: str, found: list[_Mention[_V]]) -> _V | None:
    """The one the caller means, of the days (or times) found in one utterance.

    A mention inside a longer one ("tomorrow" in "the day after tomorrow") is dropped;
    so is one taken back ("not Monday"), and an old value ("from Thursday") when there is
    another. Of the rest, the last one marked as the answer ("to Friday", "I mean ...")
    wins; else the most specific, then the first, as a single mention would.
    """
    found = [
        f for f in found
        if not any(o is not f and o.start <= f.start and f.end <= o.end and o.end - o.start > f.end - f.start
                   for o in found)
    ]  # fmt: skip

    def before(f: _Mention[_V]) -> str:  # the words since the mention before it
        return norm[max((o.end for o in found if o.end <= f.start), default=0) : f.start]

    kept = [
        f for f in found
        if not _TAKEN_BACK.search(before(f)) and not _TAKEN_BACK_AFTER.search(norm[f.end :])
    ]  # fmt: skip
    kept = [f for f in kept if not _BOOKED.search(before(f))]  # "I booked for Monday, but"
    current = [f for f in kept if not _OLD.search(before(f))]
    kept = current or kept
    if not kept:
        return None
    answers = [f for f in kept if _ANSWER.search(before(f))]
    if answers and len(kept) > 1:
        return max(answers, key=lambda f: f.start).value
    return min(kept, key=lambda f: (f.rank, f.start)).value


# ---------------------------------------------------------------- day
def parse_day(norm: str, today: date, *, bare_ok: bool = False) -> date | None:
    """"tomorrow", "friday", "next friday", "november 27th", "the 27th", "2025-11-27".

    Of several days in one breath the caller's meaning wins: "not Monday, Tuesday",
    "I can't make it tomorrow, can we do Friday", "from Thursday to Saturday" all mean
    the last one (see `_choose`). `bare_ok`: we just asked for a day, so a lone "27th"
    counts too.
    """
    found: list[_Mention[date]] = []

    def add(m: re.Match[str], rank: int, value: date | None) -> None:
        if value is not None:
            found.append(_Mention(m.start(), m.end(), rank, value))

    for m in re.finditer(r"\b(\d{4}) (\d{1,2}) (\d{1,2})\b", norm):  # ISO after normalize
        with contextlib.suppress(ValueError):
            add(m, 0, date(int(m[1]), int(m[2]), int(m[3])))
    for m in re.finditer(r"\bday after tomorrow\b", norm):
        add(m, 1, today + timedelta(days=2))
    for m in re.finditer(r"\b(tomorrow|tomorrows|tmrw)\b", norm):
        add(m, 2, today + timedelta(days=1))
    for m in re.finditer(r"\b(today|this afternoon|this morning|tonight)\b", norm):
        add(m, 3, today)
    for m in re.finditer(rf"\b({_MONTH_RE}) (?:the )?(\d{{1,2}})\b", norm):
        add(m, 4, _month_day(today, MONTHS[m[1]], int(m[2])))
    for m in re.finditer(rf"\b(\d{{1,2}}) (?:st |nd |rd |th )?of ({_MONTH_RE})\b", norm):
        add(m, 5, _month_day(today, MONTHS[m[2]], int(m[1])))
    for m in re.finditer(rf"\b(next |this )?({_WEEKDAY_RE})\b", norm):
        ahead = (WEEKDAYS[m[2]] - today.weekday()) % 7
        if ahead == 0 and m[1] != "this ":
            ahead = 7  # "friday" said on a friday means next week's
        add(m, 6, today + timedelta(days=ahead))
    nth = r"\b(\d{1,2}) (st|nd|rd|th)\b" if bare_ok else r"\bthe (\d{1,2}) (st|nd|rd|th)\b"
    for m in re.finditer(nth, norm):
        add(m, 7, _nth_of_month(today, int(m[1])))
    # Whole weeks and days on from a day: "a week from friday", "a week today", "a week on
    # monday", "2 weeks from today", "in 3 days", "thursday week" (British: a week after
    # the coming Thursday). They contain a plainer mention, which `_choose` then drops.
    for m, said in _weekday_dates(norm, today):  # "Friday the 4th": one day, said twice
        if said.weekday() == WEEKDAYS[m[1]]:
            add(m, 0, said)
    anchor = rf"(today|now|tomorrow|{_WEEKDAY_RE})"
    for m in re.finditer(
        rf"\b(a|1|2|3|4) (week|day)s? (?:from |on |after )?(?:this |next )?{anchor}\b", norm
    ):
        add(m, 1, _anchor(today, m[3]) + _span(m[1], m[2]))
    for m in re.finditer(r"\bin (a|\d{1,2}) (week|day)s?(?: time)?\b", norm):
        add(m, 1, today + _span(m[1], m[2]))
    for m in re.finditer(rf"\b({_WEEKDAY_RE}) week\b", norm):
        add(m, 1, _anchor(today, m[1]) + timedelta(weeks=1))
    return _choose(norm, found)


def _anchor(today: date, word: str) -> date:
    """The day a span counts from: today, tomorrow or the coming weekday."""
    if word in ("today", "now"):
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    return today + timedelta(days=(WEEKDAYS[word] - today.weekday()) % 7 or 7)


def _span(count: str, unit: str) -> timedelta:
    n = 1 if count == "a" else int(count)
    return timedelta(weeks=n) if unit == "week" else timedelta(days=n)


def _month_day(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _nth_of_month(today: date, day: int) -> date | None:
    month, year = today.month, today.year
    for _ in range(3):  # this month, or the next month that has that day
        try:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
        except ValueError:
            pass
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return None


# ---------------------------------------------------------------- time
def parse_time(norm: str, *, bare_ok: bool = False) -> str | None:
    """"10 am", "10:30", "ten thirty", "2 pm", "noon", "half past 3", "20 to 4",
    "quarter past 9", "1500 (hours)", "13 30", "2 15" -> "HH:MM" (24 h).

    Without am/pm, 1-6 means afternoon and 7-11 morning (office hours). Of several
    times the caller's meaning wins ("move my 3 o'clock to 4", "not at 9, at 10"; see
    `_choose`). `bare_ok`: we just asked for a time, so "10" or "10 30" alone count.
    """
    pm: bool | None = _has(r"\b(afternoon|evening|tonight)\b", norm) or None
    if _has(r"\bmorning\b", norm):
        pm = False
    found: list[_Mention[str]] = [
        _Mention(m.start(), m.end(), 0, "12:00") for m in re.finditer(r"\b(noon|midday|lunchtime)\b", norm)
    ]

    def add(m: re.Match[str], rank: int, hour: int, minute: int, meridiem: str | None = None,
            start: int | None = None) -> None:  # fmt: skip
        if 0 <= minute < 60 and 0 <= hour <= (12 if meridiem else 23):
            found.append(_Mention(m.start() if start is None else start, m.end(), rank,
                                  _clock(hour, minute, meridiem, pm)))  # fmt: skip

    for m in _overlapping(r"\b(\d{1,2})(?:[: ](\d{2}))? (am|pm)\b", norm):
        add(m, 1, int(m[1]), int(m[2] or 0), m[3])
    for m in _overlapping(r"\b(\d{1,2}):(\d{2})\b", norm):
        add(m, 2, int(m[1]), int(m[2]))
    # Minutes past or to an hour: "half past 3", "20 past 3", "quarter to 11", "10 to 4".
    for m in _overlapping(_PAST_TO, norm):
        minutes, hour = _MINUTE_WORDS.get(m[1]) or int(m[1]), int(m[3])
        if not 1 <= hour <= 12:
            continue
        if m[2] in ("past", "after") and minutes <= 30:
            add(m, 3, hour, minutes)
        elif m[1] != "half" and minutes in (5, 10, 15, 20, 25) and not norm[: m.start()].endswith("from "):
            add(m, 3, hour - 1 or 12, 60 - minutes)  # "10 to 4" (and not "from 10 to 4")
    for m in _overlapping(r"\bhalf (\d{1,2})\b(?! (?:past|after|to)\b)", norm):
        add(m, 4, int(m[1]), 30)  # British "half two" = 2:30
    for m in _overlapping(r"\b(\d{1,2})(?: (\d{2}))? o ?'?clock\b", norm):
        add(m, 5, int(m[1]), int(m[2] or 0))
    for m in _overlapping(_AFTER_PREPOSITION, norm):
        # "to 4": the preposition stays outside, where `_choose` reads it
        add(m, 6, int(m[1]), int(m[2] or 0), start=m.start(1))
    for m in _overlapping(r"\b(0?[7-9]|1\d|2[0-3])00(?: hours)?\b", norm):
        add(m, 7, int(m[1]), 0)  # "fourteen hundred" (text2num: "1400")
    for m in _overlapping(r"\b(\d{1,2}) (?:hundred|100)(?: hours)?\b", norm):
        add(m, 7, int(m[1]), 0)  # tiny.en: "15 hundred hours"
    for m in _overlapping(r"\b(1[3-9]|2[0-3]) ([0-5]\d)\b", norm):
        add(m, 7, int(m[1]), int(m[2]))  # "thirteen thirty": past 12, it can only be a time
    for m in _overlapping(r"\bat the (\d{1,2}) hours\b", norm):
        add(m, 7, int(m[1]), 0)
    # A bare "2 15" is an hour and minutes only in a sentence about when (a lone one
    # counts when we asked for a time, below): it could be anything else.
    when_said = _WHEN_CONTEXT.search(norm) is not None
    for m in _overlapping(rf"\b(\d{{1,2}}) ([1-5][05])\b(?! {_NOT_CLOCK})", norm):
        if int(m[1]) <= 12 and when_said and not _NOT_HOUR_BEFORE.search(norm[: m.start()]):
            add(m, 8, int(m[1]), int(m[2]))  # "friday, two fifteen", "earlier, like 9 15"
    for m in _overlapping(rf"\b(\d{{1,2}})([0-5]\d)\b(?! {_NOT_CLOCK})", norm):
        if bare_ok or (when_said and 1 <= int(m[1]) <= 12):
            add(m, 9, int(m[1]), int(m[2]))  # "1030" as tiny.en writes "ten thirty"
    chosen = _choose(norm, found)
    if chosen is None and not found and bare_ok:  # "ok 10 30 then": a short answer
        short = re.search(r"^(?:[a-z']+ ){0,2}(\d{1,2})(?: (\d{2}))?(?: [a-z']+){0,2}$", norm)
        if short and 0 <= (minute := int(short[2] or 0)) < 60 and int(short[1]) <= 23:
            chosen = _clock(int(short[1]), minute, None, pm)
    return chosen


_MINUTE_WORDS = {"quarter": 15, "half": 30}
_PAST_TO = r"\b(\d{1,2}|quarter|half) (?:minutes? )?(past|after|to|till|before|of) (\d{1,2})\b"
_AFTER_PREPOSITION = (
    rf"\b(?:at|around|about|by|for|after|before|to) (\d{{1,2}})(?: (\d{{2}}))?\b(?! {_NOT_CLOCK})"
)
_WHEN_CONTEXT = re.compile(
    rf"\b({_WEEKDAY_RE}|{_MONTH_RE}|today|tomorrow|week|time|slot|earlier|later|appointment"
    r"|book\w*|move|change|morning|afternoon|evening)\b"
)
# Before a number pair that is a day and something else, not an hour and minutes.
_NOT_HOUR_BEFORE = re.compile(rf"(?:\b(?:{_MONTH_RE}|the|order|number)|\d) $")


def pick_offered(norm: str, offered: list[str]) -> str | None:
    """Which of the times we just offered ("09:00", ...) the caller chose: "the first
    one", "the last", "the earliest", or a bare "the 9" / "2:30" that names one of them."""
    if not offered:
        return None
    if m := re.search(r"\b(1|2|3) (?:st|nd|rd)\b(?! of\b)", norm):
        index = int(m[1]) - 1
        return offered[index] if index < len(offered) else None
    if _has(r"\b(last|latest|later one)\b", norm):
        return offered[-1]
    if _has(r"\b(earliest|earlier one|soonest)\b", norm):
        return offered[0]
    chosen = parse_time(norm, bare_ok=True)
    if chosen in offered:
        return chosen
    for m in re.finditer(r"\b(\d{1,2})(?:[: ](\d{2}))?\b", norm):  # "I'll take the 9"
        hour, minute = int(m[1]), int(m[2] or 0)
        for time in offered:
            h, mm = (int(x) for x in time.split(":"))
            if hour % 12 == h % 12 and minute == mm and hour <= 12:
                return time
    return None


def _overlapping(pattern: str, text: str) -> Iterator[re.Match[str]]:
    """Matches starting at every position ("27 10 am" holds both "27 10 am" and "10 am")."""
    rx = re.compile(pattern)
    pos = 0
    while (m := rx.search(text, pos)) is not None:
        yield m
        pos = m.start() + 1


def _clock(hour: int, minute: int, meridiem: str | None, pm: bool | None) -> str:
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    elif meridiem is None and hour <= 12:
        if pm is True and hour < 12:
            hour += 12
        elif pm is None and 1 <= hour <= 6:
            hour += 12
    return f"{hour:02d}:{minute:02d}"




# ---------------------------------------------------------------- weekday and date disagree
_NTH = r"(\d{1,2}) (?:st|nd|rd|th)"
_CLASH_PATTERNS = (
    (rf"\b({_WEEKDAY_RE}) (?:the )?{_NTH}(?! of)\b", "nth"),  # "thursday the 4th"
    (rf"\b({_WEEKDAY_RE}) (?:the )?{_NTH} of ({_MONTH_RE})\b", "nth of month"),
    (rf"\b({_WEEKDAY_RE}) ({_MONTH_RE}) (?:the )?(\d{{1,2}})\b", "month nth"),  # "thursday december 4"
)


def _weekday_dates(norm: str, today: date) -> Iterator[tuple[re.Match[str], date]]:
    """Each weekday said right before a date ("thursday the 4 th", "friday december 4"),
    with that date."""
    for pattern, kind in _CLASH_PATTERNS:
        for m in re.finditer(pattern, norm):
            if kind == "nth":
                said = _nth_of_month(today, int(m[2]))
            elif kind == "nth of month":
                said = _month_day(today, MONTHS[m[3]], int(m[2]))
            else:
                said = _month_day(today, MONTHS[m[2]], int(m[3]))
            if said is not None:
                yield m, said


def day_clash(norm: str, today: date) -> tuple[date, date] | None:
    """A weekday said with a date it is not ("Thursday the 4th" when the 4th is a Friday):
    -> (the date as said, the day of that weekday nearest to it), so the caller can be
    asked which one they meant; None when they agree or no such pair was said."""
    for m, said in _weekday_dates(norm, today):
        weekday = WEEKDAYS[m[1]]
        if said.weekday() == weekday:
            continue
        # The weekday's day within three days of the date said: the likelier slip.
        shift = (weekday - said.weekday() + 3) % 7 - 3
        nearest = said + timedelta(days=shift)
        if nearest < today:
            nearest += timedelta(weeks=1)
        return said, nearest
    return None


def pick_day(norm: str, options: tuple[date, ...]) -> date | None:
    """Which of the days we just offered the caller chose: by weekday ("Friday"), by the
    day of the month ("the 3rd"), or "the first"/"the second" one."""
    named = {o for o in options for w, i in WEEKDAYS.items() if i == o.weekday() and _has(rf"\b{w}\b", norm)}
    if len(named) == 1:
        return named.pop()
    numbered = {o for o in options if _has(rf"\b{o.day}\b", norm)}
    if len(numbered) == 1:
        return numbered.pop()
    if m := re.search(r"\b(1|2) (?:st|nd)\b(?! of\b)", norm):
        index = int(m[1]) - 1
        return options[index] if index < len(options) else None
    return None
