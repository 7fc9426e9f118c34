"""Numbers as callers say them: words -> digits, and order numbers out of a sentence.

Number words become digits with text2num (`alpha2digit`): "forty-five sixty-seven" ->
"45 67", "four thousand five hundred sixty seven" -> "4567", "fifteen hundred" -> "1500",
"the twenty-first" -> "the 21st". It keeps the caller's pauses ("twenty, eight thirty
one" -> "20, 8 31") and leaves alone what it cannot know is a number. Our own rules add
only what it does not do: "oh" as a zero inside a number, "double"/"triple" as said in
the UK and India, and choosing the number the caller meant when they correct themselves.
"""

from __future__ import annotations

import re

from text_to_num import alpha2digit

__all__ = ["parse_order_number", "words_to_digits"]

# "oh" (or a lone "o") read as a zero, right after a digit: "one oh four two", "nine oh
# nine oh". Not before one: "Oh, it's 4567" starts with a sigh, not a zero.
_OH = re.compile(r"(?<=\d)(?:[\s,.-]+(?:oh|o(?!')))+\b", re.IGNORECASE)
# ... and written "or" by the recogniser, between digits read out one by one ("6 or 4 1 8")
_OR = re.compile(r"(?<=\b\d)[\s,.-]+or[\s,.-]+(?=(?:\d|for|to|too)\b)", re.IGNORECASE)
# Digits the recogniser writes as words that sound the same ("1 0 4 too", "6 oh for 1 8"):
# taken as digits only between single digits read out one by one, or ending them.
_DIGIT_SOUNDS = {"for": "4", "fore": "4", "to": "2", "too": "2", "won": "1", "ate": "8"}
_HOMOPHONES = re.compile(
    rf"(?:(?<=\b\d[\s,.-])|(?<=\b\d[\s,.-]{{2}}))(?:{'|'.join(_DIGIT_SOUNDS)})\b"
    r"(?=[\s,.-]*(?:\d|[?!.]|$))",  # "4 5 6 7 for me" keeps its "for"
    re.IGNORECASE,
)
_REPEAT = re.compile(r"\b(double|triple)[\s-]+(\d)", re.IGNORECASE)
# Words after which a second number replaces the first ("1234, no wait, 1243").
_CORRECTION = re.compile(
    r"\b(sorry|i mean|i meant|no|not|wait|actually|rather|correction|make that|should be|it's)\b"
)
_NUMBER_WORDS = (
    r"zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen"
    r"|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy"
    r"|eighty|ninety|hundred|thousand|double|triple|and"
)
_RAW_NUMBER = re.compile(rf"(?:\b(?:\d+|{_NUMBER_WORDS})\b[\s,.-]*)+", re.IGNORECASE)


def words_to_digits(text: str) -> str:
    """Every number said in words as digits (punctuation and everything else kept)."""
    return _OH.sub(_zeroes, alpha2digit(text, "en", threshold=0))


def _zeroes(m: re.Match[str]) -> str:
    return re.sub(r"(?i)\b(oh|o)\b", "0", m.group(0))


def parse_order_number(text: str) -> tuple[str, str] | None:
    """-> (digits, the caller's words). "four five six seven" / "4, 5, 6, 7" / "#4567" /
    "forty-five sixty-seven" / "double seven seven, one two three" / "one oh four two".

    Digits said in a row, in groups or with pauses are one number. Of two numbers, one
    after a correction ("1234, no wait, 1243", "not 4576, it's 4567") wins; otherwise
    the longest."""
    digits_text = _OR.sub(" 0 ", words_to_digits(text.replace("\u2019", "'")))
    # "double 0" after "double oh": the zero rule needs a digit before the "oh"
    digits_text = re.sub(r"(?i)\b(double|triple)[\s-]+(?:oh|o)\b", r"\1 0", digits_text)
    digits_text = _REPEAT.sub(lambda m: m[2] * (2 if m[1].lower() == "double" else 3), digits_text)
    digits_text = _HOMOPHONES.sub(lambda m: _DIGIT_SOUNDS[m[0].lower()], digits_text)
    norm = re.sub(r"[^\w\s']", " ", digits_text.lower())
    runs: list[tuple[int, int, str]] = []  # (start, end, digits)
    for m in re.finditer(r"\b\d+(?:\s+\d+)*\b", norm):
        runs.append((m.start(), m.end(), re.sub(r"\s+", "", m.group(0))))
    candidates = [r for r in runs if len(r[2]) >= 3]
    if candidates:
        chosen = max(candidates, key=lambda r: len(r[2]))
        for before, after in zip(candidates, candidates[1:], strict=False):
            if _CORRECTION.search(norm[before[1] : after[0]]):
                chosen = after
        return chosen[2], _raw_span(text, chosen[2])
    if code := re.search(r"\b([a-z]{1,4}\d{3,}|\d{3,}[a-z]{1,3})\b", norm):
        return code[1].upper(), code[1]
    return None


def _raw_span(text: str, digits: str) -> str:
    """The caller's own words for the number (kept for the record)."""
    spans = [m.group(0).strip(" ,.-") for m in _RAW_NUMBER.finditer(text)]
    said = [s for s in spans if re.sub(r"\D", "", words_to_digits(s)) == digits]
    return (said or sorted(spans, key=len)[-1:] or [digits])[-1]
