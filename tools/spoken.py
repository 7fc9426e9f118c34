"""Numbers as people say them on the phone, as speech-to-text writes them down.

"four five six seven", "forty five sixty seven", "4,567", "oh four two", "double five",
"four thousand five hundred and sixty seven" -> digits. Pure functions, no I/O.
"""

from __future__ import annotations

import re

__all__ = ["UNITS", "cardinal", "spoken_code", "spoken_digits", "tokenize"]

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "nil": 0,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1000}
REPEATS = {"double": 2, "triple": 3}
# Words that may sit inside a spoken number without ending it.
_GLUE = {"and", "a", "uh", "um", "er", "erm", "hmm"}

_NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | set(SCALES) | set(REPEATS)


def tokenize(text: str) -> list[str]:
    """Lowercase words and digit runs; "4,567" and "4-5-6-7" keep their digits together."""
    text = text.lower()
    text = re.sub(r"(?<=\d)[,.](?=\d{3}\b)", "", text)  # thousands separators: 4,567
    return re.findall(r"[a-z]+|\d+", text)


def _is_number_word(tok: str) -> bool:
    return tok in _NUMBER_WORDS


def cardinal(tokens: list[str]) -> int | None:
    """["four", "thousand", "five", "hundred", "sixty", "seven"] -> 4567; None if not a number."""
    total = current = 0
    seen = False
    for tok in tokens:
        if tok in _GLUE:
            continue
        if tok.isdigit():
            current += int(tok)
        elif tok in UNITS:
            current += UNITS[tok]
        elif tok in TEENS:
            current += TEENS[tok]
        elif tok in TENS:
            current += TENS[tok]
        elif tok == "hundred":
            current = max(current, 1) * 100
        elif tok == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


def _digit_run(words: list[str]) -> str:
    """Digit-by-digit reading with paired tens: "forty five sixty seven" -> "4567"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w in REPEATS and nxt is not None and nxt in UNITS:
            out.append(str(UNITS[nxt]) * REPEATS[w])
            i += 2
        elif w in TENS:
            # "forty five" is 45, but "twenty oh" is not 20-then-0 merged: keep "oh" a digit.
            if nxt is not None and nxt in UNITS and UNITS[nxt] != 0:
                out.append(str(TENS[w] + UNITS[nxt]))
                i += 2
            else:
                out.append(str(TENS[w]))
                i += 1
        elif w in TEENS:
            out.append(str(TEENS[w]))
            i += 1
        elif w in UNITS:
            out.append(str(UNITS[w]))
            i += 1
        else:  # a stray "double" with nothing after it
            i += 1
    return "".join(out)


def _run_to_digits(run: list[str]) -> str:
    words = [w for w in run if w not in _GLUE]
    if any(w in SCALES for w in words):
        value = cardinal(words)
        return str(value) if value is not None else ""
    return _digit_run(words)


def spoken_digits(text: str) -> str | None:
    """Every digit the speaker said, in order, as one string; None if they said none.

    Words that are not numbers ("order", "number", "it's") are ignored, so the caller
    decides what a valid result looks like (length, prefix).
    """
    out: list[str] = []
    run: list[str] = []
    for tok in tokenize(text):
        if tok.isdigit():
            out.append(_run_to_digits(run))
            run = []
            out.append(tok)
        elif _is_number_word(tok):
            run.append(tok)
        elif tok in _GLUE and run:
            run.append(tok)  # "five hundred and six"
        else:
            out.append(_run_to_digits(run))
            run = []
    out.append(_run_to_digits(run))
    digits = "".join(out)
    return digits or None


_NATO = {
    "alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E",
    "foxtrot": "F", "golf": "G", "hotel": "H", "india": "I", "juliet": "J", "juliett": "J",
    "kilo": "K", "lima": "L", "mike": "M", "november": "N", "oscar": "O", "papa": "P",
    "quebec": "Q", "romeo": "R", "sierra": "S", "tango": "T", "uniform": "U", "victor": "V",
    "whiskey": "W", "whisky": "W", "xray": "X", "yankee": "Y", "zulu": "Z",
}  # fmt: skip
_DIGIT_WORDS = {w: str(v) for w, v in UNITS.items() if w not in ("o", "oh", "nil", "nought")}


def spoken_code(text: str) -> str:
    """A spelled-out reference -> uppercase code: "k seven m four q x" / "K7-M4QX" -> "K7M4QX".

    Single letters, digit words and NATO words are read one character each; a token that
    is already a code ("K7M4QX", "ACDEFG": has a digit or is all capitals) is kept whole.
    Other words ("booking", "is") are dropped.
    """
    out: list[str] = []
    for raw in re.findall(r"[A-Za-z0-9]+", re.sub(r"(?i)x-ray", "xray", text)):
        tok = raw.lower()
        if len(raw) > 1 and raw.isupper():
            out.append(raw)
        elif tok in _DIGIT_WORDS:
            out.append(_DIGIT_WORDS[tok])
        elif tok in _NATO:
            out.append(_NATO[tok])
        elif len(tok) == 1 or any(c.isdigit() for c in tok):
            out.append(tok.upper())
        elif tok in REPEATS:
            continue  # "double" is handled only in spoken_digits; rare in codes
    return "".join(out)
