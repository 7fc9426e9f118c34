"""Lenient understanding of caller transcripts: normalisation, intents and slots.

Pure functions over strings. Written for tiny.en's output: it writes "10 a.m.", "10am",
"10.30", "4567" or "4, 5, 6, 7", "Anna" for "Ana", and sometimes spells numbers out.
Everything is lower-cased, punctuation is dropped and number words become digits before
matching, so the patterns below only deal with one spelling.
"""

from __future__ import annotations

import re

from .numbers import parse_order_number, words_to_digits
from .when import MONTHS, WEEKDAYS, day_clash, parse_day, parse_time, pick_day, pick_offered

__all__ = [
    "day_clash", "detect_intent", "is_no", "is_thanks", "is_yes", "mostly_number", "mostly_when",
    "normalize", "parse_day", "parse_name", "parse_order_number", "parse_time", "pick_candidate",
    "pick_day", "pick_offered", "wants_more",
]  # fmt: skip

# Number words, for telling a name from a number ("it's four five six seven").
UNITS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")  # fmt: skip
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth", "eleventh", "twelfth", "twentieth", "thirtieth")  # fmt: skip


def normalize(text: str) -> str:
    """Lower-case, no punctuation (but keep "10:30" and apostrophes), number words ->
    digits (text2num: "forty-five" -> "45", "twenty-first" -> "21 st", "oh" in a number
    -> "0")."""
    t = words_to_digits(text.lower().replace("\u2019", "'"))
    t = re.sub(r"\b([ap])\.?\s?m\b\.?", r" \1m ", t)  # a.m. / a m / am -> am
    t = re.sub(r"(\d)\.(\d\d)\b", r"\1:\2", t)  # 10.30 -> 10:30
    t = re.sub(r"(\d)(am|pm|st|nd|rd|th)\b", r"\1 \2", t)  # 10am -> 10 am, 27th -> 27 th
    t = re.sub(r"[^\w\s:']", " ", t).replace("_", " ")
    t = re.sub(r"(?<!\d):|:(?!\d)", " ", t)
    for pattern, replacement in _HEARD_AS:
        t = re.sub(pattern, replacement, t)
    return " ".join(t.split())


# What tiny.en writes for our words on a phone line, where the sentence leaves no doubt.
_HEARD_AS = (
    (r"\b(my|a|the|your) (walking|working)\b", r"\1 booking"),  # "remove my walking"
    (r"^\s*(walking|working) (for|on)\b", r"booking \2"),  # "Walking for Wednesday"
)


def _has(pattern: str, norm: str) -> bool:
    return re.search(pattern, norm) is not None


# ---------------------------------------------------------------- intents
_TRANSFER = (
    r"\b(representative|operator|human|receptionist)\b"
    r"|\b(speak|talk|connect|transfer|put|get)\b.*\b(person|agent|someone|somebody|manager|staff)\b"
    # "can I speak, please?": the words after it lost (tiny.en drops a phrase now and then)
    r"|\b(can|could|may) i (speak|talk)(?: (?:to|with)(?: (?:a|an|the))?)?(?: please)?$"
    # "is there somebody I can talk to", "agent, please"
    r"|\b(someone|somebody|anyone|anybody|person|people) (?:that |who )?(i|we) (can|could) (speak|talk)\b"
    r"|\bagents?\b"
)
_GOODBYE = (
    r"\b(bye|goodbye|that's all|that is all|that's it|that'll be all|no thanks|no thank you"
    r"|nothing else|i'm all set|i'm good thanks|hang up)\b"
)
_CANCEL = (
    r"\b(cancel\w*|counsel|call off)\b"
    r"|\b(remove|delete|drop)\b.*\b(appointment|booking|reservation)\b"
    r"|\bno longer (need|want|require)\b"
)
_RESCHEDULE = (
    r"\b(reschedul\w*|re schedul\w*)\b"
    r"|\b(move|change|push|switch|shift)\b.*\b(appointments?|bookings?|it|time|day|date)\b"
    r"|\b(postpone\w*|rearrang\w*)\b"
    r"|\b(a |an )?(different|another|other) (day|time|date|slot)\b"
)
_FIND = (
    r"\b(when|what time) is my (appointment|booking)\b|\bmy appointments\b"
    r"|\b(do|did|if|whether) i (have|got) (a |an |any )?(appointment|booking)s?\b"
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
    r"|open|consultation|check ?up|visit|room|space|put me down)\b"
    r"|\bsee (?:the|a|your) (?:doctor|dentist|nurse|someone|somebody)\b"
)
_YES = (
    r"^(yes|yeah|yep|yup|sure|correct|right|please|ok|okay|that's right|sounds good|go ahead"
    r"|absolutely|of course|mm hmm|uh huh|alright|all right|that works|that's fine|fine|definitely)\b"
)
_NO = r"^(no|nope|nah|not really|nothing)\b"


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


def pick_candidate(norm: str, count: int) -> int | None:
    """ "the first one", "the second appointment", "the last one" -> an index (0-based)
    into the `count` bookings we just listed; None if the caller did not pick by order."""
    if count < 1:
        return None
    if m := re.search(r"\b(1|2|3|4) (?:st|nd|rd|th) (?:one|1|appointment|booking)\b", norm):
        index = int(m[1]) - 1
        return index if index < count else None
    if _has(r"\b(last|latter|later) (?:one|1|appointment|booking)\b", norm):
        return count - 1
    if _has(r"\b(former|earlier) (?:one|1|appointment|booking)\b", norm):
        return 0
    return None


def is_thanks(norm: str) -> bool:
    return _has(_THANKS, norm)


def wants_more(norm: str) -> bool:
    """ "Yes please", "actually yes": thanks that open another request."""
    return _has(r"\b(yes|yeah|please|actually|also|one more)\b", norm)


def is_yes(norm: str) -> bool:
    return _has(_YES, norm)


def is_no(norm: str) -> bool:
    return _has(_NO, norm)


# ---------------------------------------------------------------- short answers
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
