"""Lenient understanding of caller transcripts: normalisation, intents and slots.

Pure functions over strings. Written for tiny.en's output: it writes "10 a.m.", "10am",
"10.30", "4567" or "4, 5, 6, 7", "Anna" for "Ana", and sometimes spells numbers out.
Everything is lower-cased, punctuation is dropped and number words become digits before
matching, so the patterns below only deal with one spelling.
"""

from __future__ import annotations

import calendar
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Generic, TypeVar

UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90}  # fmt: skip
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(WEEKDAYS)
# After "for 2": a count, not a clock ("for 2 people", "for 30 minutes", "the 27th").
_NOT_CLOCK = r"(?:st|nd|rd|th|of|people|persons|guests|of us|hours?|minutes?|mins?|days?|weeks?)\b"
_V = TypeVar("_V")


def _ordinal_suffix(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def normalize(text: str) -> str:
    """Lower-case, no punctuation (but keep "10:30" and apostrophes), number words -> digits."""
    t = text.lower().replace("\u2019", "'")
    t = re.sub(r"\b([ap])\.?\s?m\b\.?", r" \1m ", t)  # a.m. / a m / am -> am
    t = re.sub(r"(\d)\.(\d\d)\b", r"\1:\2", t)  # 10.30 -> 10:30
    t = re.sub(r"(\d)(am|pm|st|nd|rd|th)\b", r"\1 \2", t)  # 10am -> 10 am, 27th -> 27 th
    t = re.sub(r"[^\w\s:']", " ", t).replace("_", " ")
    t = re.sub(r"(?<!\d):|:(?!\d)", " ", t)
    words = t.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in TENS and nxt in UNITS and 0 < UNITS[nxt] < 10:
            out.append(str(TENS[w] + UNITS[nxt]))
            i += 2
            continue
        if w in TENS and nxt in ORDINALS and ORDINALS[nxt] < 10:
            n = TENS[w] + ORDINALS[nxt]
            out += [str(n), _ordinal_suffix(n)]
            i += 2
            continue
        if w == "oh" and not (out and out[-1].isdigit()):
            out.append(w)  # "oh" is a zero only inside a number ("ten oh five")
        elif w in UNITS:
            out.append(str(UNITS[w]))
        elif w in TENS:
            out.append(str(TENS[w]))
        elif w in ORDINALS:
            out += [str(ORDINALS[w]), _ordinal_suffix(ORDINALS[w])]
        else:
            out.append(w)
        i += 1
    return " ".join(out)


def _has(pattern: str, norm: str) -> bool:
    return re.search(pattern, norm) is not None


# ---------------------------------------------------------------- intents
_TRANSFER = (
    r"\b(representative|operator|human|receptionist)\b"
    r"|\b(speak|talk|connect|transfer|put|get)\b.*\b(person|agent|someone|somebody|manager|staff)\b"
    # "can I speak, please?": the words after it lost (tiny.en drops a phrase now and then)
    r"|\b(can|could|may) i (speak|talk)(?: (?:to|with)(?: (?:a|an|the))?)?(?: please)?$"
)
_GOODBYE = (
    r"\b(bye|goodbye|that's all|that is all|that's it|that'll be all|no thanks|no thank you"
    r"|nothing else|i'm all set|i'm good thanks|hang up)\b"
)
_CANCEL = r"\b(cancel\w*|counsel|call off)\b"
_RESCHEDULE = (
    r"\b(reschedul\w*|re schedul\w*)\b"
    r"|\b(move|change|push|switch|shift)\b.*\b(appointment|booking|it|time|day|date)\b"
)
_FIND = (
    r"\b(when|what time) is my (appointment|booking)\b|\bmy appointments\b"
    r"|\b(do|did) i have (an |any )?(appointment|booking)s?\b"
)
_ORDER = (
    r"(?<!\bin )\b(orders?|ordered)\b(?! to\b)"  # not "in order to"
    r"|\b(package|delivery|shipment|shipping|parcel|track|tracking|arrive|arriving|arrival)\b"
)
_REPEAT = (
    r"\b(repeat|say (that|it) again|come again|pardon|what was that|sorry what"
    r"|(didn't|did not|couldn't|could not) (catch|hear|get) (that|it|you|what you said))\b"
)
_HELLO = r"^((hello|hi|hey|hallo)( there)?[ ]?)+$|\b(can you hear me|are you there|is anyone there)\b"
_THANKS = r"\b(thanks|thank you|cheers)\b"
_BOOK = (
    r"\b(book\w*|appointment|schedule|reserve|reservation|set up|come in|get in|slot|availab\w*|free"
    r"|open|consultation|check ?up|visit)\b"
    r"|\bsee (?:the|a|your) (?:doctor|dentist|nurse|someone|somebody)\b"
)
_YES = (
    r"^(yes|yeah|yep|yup|sure|correct|right|please|ok|okay|that's right|sounds good|go ahead"
    r"|absolutely|of course|mm hmm|uh huh|alright|all right|that works|that's fine|fine|definitely)\b"
)
_NO = r"^(no|nope|nah|not really)\b"


def detect_intent(norm: str) -> str | None:
    """The caller's request in one word, most specific first; None if nothing matched."""
    for name, pattern in (
        ("transfer", _TRANSFER),
        ("goodbye", _GOODBYE),
        ("repeat", _REPEAT),
        ("cancel", _CANCEL),
        ("reschedule", _RESCHEDULE),
        ("find", _FIND),
        ("order", _ORDER),
        ("book", _BOOK),
    ):
        if _has(pattern, norm):
            return name
    return "hello" if _has(_HELLO, norm) else None


def is_thanks(norm: str) -> bool:
    return _has(_THANKS, norm)


def wants_more(norm: str) -> bool:
    """ "Yes please", "actually yes": thanks that open another request."""
    return _has(r"\b(yes|yeah|please|actually|also|one more)\b", norm)


def is_yes(norm: str) -> bool:
    return _has(_YES, norm)


def is_no(norm: str) -> bool:
    return _has(_NO, norm)


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
    return _choose(norm, found)


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


_WHEN_WORDS = (
    set(WEEKDAYS) | set(MONTHS) | {"today", "tomorrow", "day", "after", "next", "this", "the", "on",
    "at", "around", "about", "for", "in", "of", "am", "pm", "noon", "morning", "afternoon",
    "evening", "please", "um", "uh", "maybe", "how", "what", "is", "st", "nd", "rd", "th",
    "would", "be", "good", "works", "work", "fine", "great", "ok", "okay", "sounds", "me", "yes",
    "yeah", "sure"}
)  # fmt: skip


def _little_else(norm: str, also: frozenset[str] = frozenset()) -> bool:
    """At most one word that is not a number, a when-word or one of `also`."""
    rest = [w for w in norm.split() if not w.isdigit() and w not in _WHEN_WORDS and w not in also]
    return len(rest) <= 1


def mostly_when(norm: str) -> bool:
    """The utterance is little more than a date/time ("tomorrow at 10 please"), as
    opposed to a question that happens to mention one ("what's the weather today")."""
    return _little_else(norm)


_NUMBER_INTRO = frozenset({"it's", "its", "number"})


def mostly_number(norm: str) -> bool:
    """A reply that is little more than a number of 4+ digits ("It's 4567."): on a line
    that looks up orders, an order number given before we asked for one."""
    digits = "".join(w for w in norm.split() if w.isdigit())
    return len(digits) >= 4 and _little_else(norm, _NUMBER_INTRO)


# ---------------------------------------------------------------- time
def parse_time(norm: str, *, bare_ok: bool = False) -> str | None:
    """"10 am", "10:30", "ten thirty", "2 pm", "noon", "half past 3" -> "HH:MM" (24 h).

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
    patterns: list[tuple[str, bool]] = [
        (r"\b(\d{1,2})(?:[: ](\d{2}))? (am|pm)\b", True),
        (r"\b(\d{1,2}):(\d{2})\b", True),
        (r"\bhalf past (\d{1,2})\b", True),
        (r"\bhalf (\d{1,2})\b", True),  # British "half two" = 2:30
        (r"\bquarter past (\d{1,2})\b", True),
        (r"\bquarter to (\d{1,2})\b", True),
        (r"\b(\d{1,2})(?: (\d{2}))? o ?'?clock\b", True),
        (rf"\b(?:at|around|about|by|for|after|before|to) (\d{{1,2}})(?: (\d{{2}}))?\b(?! {_NOT_CLOCK})", True),
        (r"\b(\d{1,2})(\d{2})\b", bare_ok),  # "1030" as tiny.en writes "ten thirty"
    ]
    for rank, (pattern, allowed) in enumerate(patterns, start=1):
        if not allowed:
            continue
        for m in _overlapping(pattern, norm):
            hour = int(m[1])
            minute = int(m[2]) if (m.lastindex or 0) >= 2 and m[2] else 0
            if pattern.startswith(r"\bhalf"):
                minute = 30
            elif "quarter past" in pattern:
                minute = 15
            elif "quarter to" in pattern:
                hour, minute = hour - 1, 45
            meridiem = m[3] if "(am|pm)" in pattern else None
            if 0 <= minute < 60 and 0 <= hour <= (12 if meridiem else 23):
                # "to 4": the preposition stays outside, where `_choose` reads it
                start = m.start(1) if pattern.startswith(r"\b(?:at") else m.start()
                found.append(_Mention(start, m.end(), rank, _clock(hour, minute, meridiem, pm)))
    chosen = _choose(norm, found)
    if chosen is None and not found and bare_ok:  # "ok 10 30 then": a short answer
        short = re.search(r"^(?:[a-z']+ ){0,2}(\d{1,2})(?: (\d{2}))?(?: [a-z']+){0,2}$", norm)
        if short and 0 <= (minute := int(short[2] or 0)) < 60 and int(short[1]) <= 23:
            chosen = _clock(int(short[1]), minute, None, pm)
    return chosen


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


# ---------------------------------------------------------------- name
_NOT_NAME = {
    "a", "an", "the", "and", "or", "but", "at", "on", "in", "for", "to", "from", "of", "with",
    "is", "it", "i", "my", "me", "you", "your", "we", "this", "that", "just", "here", "there",
    "calling", "looking", "trying", "going", "wondering", "hoping", "interested", "sorry",
    "sure", "yes", "yeah", "no", "ok", "okay", "fine", "good", "great", "not", "um", "uh",
    "hi", "hello", "hey", "please", "thanks", "thank", "booking", "book", "appointment",
    "tomorrow", "today", "am", "pm", "noon", "morning", "afternoon", "evening", "available",
    "free", "order", "name", "so", "well", "actually", "again", "then", "right", "correct",
    "would", "like", "want", "need", "can", "could", "be", "have", "do", "also", "about",
}  # fmt: skip
_NOT_NAME |= set(MONTHS) | set(WEEKDAYS) | set(UNITS) | set(TENS) | set(ORDINALS)
_NOT_NAME |= {"under", "last", "first", "full"}  # "it's under Smith", "my last name is ..."
_INTRO = (
    r"\b(my name is|my name's|name is|name's|the name is|the name|it's|it is|this is|i'm|i am"
    r"|call me|under|for)\s+"
)
_STRONG_INTROS = {"my name is", "my name's", "name is", "name's", "the name is", "the name", "call me", "under"}


def parse_name(text: str, *, bare_ok: bool = False) -> str | None:
    """"my name is Ana", "it's Maria Gonzalez", or (when asked) a bare "Ana Lopez".

    Works on the original transcript: tiny.en capitalises names, which tells "I'm Ana"
    from "I'm looking for ...".
    """
    clean = re.sub(r"[^\w\s']", " ", text.replace("\u2019", "'"))
    for m in re.finditer(_INTRO, clean, flags=re.IGNORECASE):
        strong = m[1].lower() in _STRONG_INTROS
        name = _name_words(clean[m.end() :], need_capital=not (strong or bare_ok))
        if name:
            return name
    if bare_ok:
        words = [w for w in clean.split() if w.lower() not in _NOT_NAME]
        if words and len(clean.split()) <= 5:
            return _name_words(" ".join(words), need_capital=False)
    return None


def _name_words(rest: str, *, need_capital: bool) -> str | None:
    words: list[str] = []
    tokens = rest.split()
    for i, word in enumerate(tokens[:3]):
        if word.lower() in _NOT_NAME or not word.replace("'", "").isalpha():
            break
        if words and len(word) == 1 and i + 1 < len(tokens) and len(tokens[i + 1]) == 1:
            break  # "Lee, L-E-E": the name spelled out, not more of it
        if need_capital and not word[0].isupper():
            break
        if words and not word[0].isupper() and need_capital:
            break
        words.append(word)
        need_capital = True  # a surname must look like one
    if not words:
        return None
    return " ".join(w[:1].upper() + w[1:] for w in words)


# ---------------------------------------------------------------- order number
def parse_order_number(text: str) -> tuple[str, str] | None:
    """-> (normalised, raw). "four five six seven" / "4, 5, 6, 7" / "#4567" -> "4567"."""
    norm = normalize(text)
    tokens = re.sub(  # "double four" / "triple 7", as numbers are read out in the UK and India
        r"\b(double|triple) (\d)\b", lambda m: m[2] * (2 if m[1] == "double" else 3), norm
    ).split()
    best: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if token.isdigit():
            run.append(token)
            continue
        if sum(len(t) for t in run) > sum(len(t) for t in best):
            best = run
        run = []
    digits = "".join(best)
    if len(digits) >= 3:
        return digits, _raw_span(text, best)
    if m := re.search(r"\b([a-z]{1,4}\d{3,}|\d{3,}[a-z]{1,3})\b", norm):
        return m[1].upper(), m[1]
    return None


_NUMBER_WORD = "|".join([*UNITS, *TENS, "double", "triple"])
_RAW_NUMBER = re.compile(rf"(?:\b(?:\d+|{_NUMBER_WORD})\b[\s,.-]*)+", re.IGNORECASE)


def _raw_span(text: str, digits: list[str]) -> str:
    """The caller's own words for the number (kept for the record)."""
    spans = [m.group(0).strip(" ,.-") for m in _RAW_NUMBER.finditer(text)]
    return max(spans, key=len) if spans else " ".join(digits)
