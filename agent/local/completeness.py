"""Has the caller finished? Judged from the words so far and the question they answer.

The engine transcribes at the caller's first pause; when those words already make a
whole answer to what the dialog is waiting on ("Friday.", "Two thirty pm.", "Yes,
please.") or a request that settles the turn by itself ("Can I speak to a person?",
"Goodbye."), the turn can end after a short quiet instead of the flow's full silence.
A request is judged apart (`sounds_finished`): a finished sentence when we asked nothing
in particular ("Can I book for Friday?", "I'd like to cancel my appointment.") may still
get its details after a breath, so it ends after a longer quiet, not the shortest one.
Anything that may go on waits the full silence: a sentence ending on "and", "my", "is";
order numbers (digits come in groups: "four five... six seven"); a bare hour ("ten...
thirty"); a lone "no" ("no... the Monday one"); an answer we could not make sense of.
Pure functions: `DialogPolicy` supplies where the dialog stands.
"""

from __future__ import annotations

import re

from . import slots
from .understanding import Context, understand

__all__ = ["has_words", "says_something", "sounds_complete", "sounds_finished"]

# A turn that ends on one of these is still going ("I'd like to book for..."): the
# transcript has no punctuation we can trust, so the last word is the signal.
DANGLING = frozenset({
    "a", "about", "also", "an", "and", "at", "be", "because", "but", "by", "for", "from", "i",
    "i'm", "in", "is", "it", "it's", "its", "like", "maybe", "my", "number", "of", "on", "or",
    "so", "that", "the", "then", "to", "um", "uh", "er", "erm", "was", "we", "well", "with",
})  # fmt: skip
# Sounds, not words: a cough or a hum transcribed.
NO_WORDS = frozenset({"m", "mm", "mmm", "hmm", "hm", "mhm", "uh", "um", "uhm", "er", "erm", "em", "eh", "ah",
                      "oh", "huh"})  # fmt: skip
SETTLING_ACTS = ("goodbye", "transfer", "repeat", "hello")
_CLOCK = re.compile(r"\b(am|pm|noon|midday|o'?clock|half|quarter|past|to)\b|\b\d{1,2}[: ]\d{2}\b")
_BARE_NUMBER = re.compile(r"\d{1,2}")
_TRAILING_OFF = re.compile(r"(\.\.\.|…|-|—)\s*$")
_SENTENCE_END = re.compile(r"[.?!]\s*$")
MIN_REQUEST_WORDS = 3  # "Booking." alone is as likely the start of a sentence as all of it


def has_words(text: str) -> bool:
    """Did the caller say any word at all (not only "mm", a cough, a breath)?"""
    return any(word not in NO_WORDS for word in slots.normalize(text).split())


# Words a caller cuts in with that mean "stop", though they carry no request.
INTERJECTIONS = frozenset({"stop", "wait", "hold", "sorry", "excuse", "pardon", "hello", "hey", "actually",
                           "what", "huh", "no", "yes"})  # fmt: skip


def says_something(text: str, ctx: Context) -> bool:
    """Is there anything in a short burst of words to act on: an interjection ("wait",
    "sorry"), an answer, a request or a slot? Whisper turns a hum into a stray word
    ("them", "you"); that alone is not the caller taking the turn."""
    norm = slots.normalize(text)
    if not has_words(text):
        return False
    if INTERJECTIONS & set(norm.split()):
        return True
    heard = understand(text, ctx)
    return heard.act not in (None, "empty") or heard.answer is not None or heard.understood


def _hangs(text: str, words: list[str]) -> bool:
    """Does the sentence break off: a last word that leads on ("... for the"), or the
    recogniser's own trailing "..." or dash?"""
    return words[-1] in DANGLING or bool(_TRAILING_OFF.search(text.strip()))


def sounds_complete(text: str, ctx: Context) -> bool:
    """True when `text` is a whole answer to the question in `ctx` or a request that
    settles the turn; False whenever the caller may still be going."""
    norm = slots.normalize(text)
    words = norm.split()
    if not words or _hangs(text, words):
        return False
    heard = understand(text, ctx)
    if heard.act is not None:
        return heard.act in SETTLING_ACTS
    awaiting = ctx.awaiting
    if awaiting is None or heard.new_task:
        return False  # a request: its details may follow
    if awaiting in ("confirm", "transfer_offer", "anything_else"):
        return heard.answer == "yes" and heard.day is None and heard.time is None
    if awaiting in ("day", "new_day", "which_day"):
        return heard.day is not None and heard.day_clash is None
    if awaiting == "time":  # "ten" may go on ("... thirty"); "the first one" may not
        offered = bool(ctx.offered) and slots.pick_offered(norm, list(ctx.offered)) is not None
        offered = offered and not _BARE_NUMBER.fullmatch(norm)
        return heard.time is not None and (offered or bool(_CLOCK.search(norm)))
    if awaiting == "name":
        return heard.name is not None and len(heard.name.split()) >= 2
    if awaiting == "which_booking":
        return heard.choice is not None
    return False  # order numbers and anything else: wait the full silence


def sounds_finished(text: str, ctx: Context) -> bool:
    """True when `text` is a finished sentence said when we asked nothing in particular
    (the caller's request, or a new one in mid-dialog): the recogniser closed it (a full
    stop or a question mark, which whisper leaves off words that trail), its last word
    does not hang ("... for the"), and it is not an order number still being read out.
    Whether we understood it does not matter: that decides what we say, not when."""
    words = slots.normalize(text).split()
    if not _SENTENCE_END.search(text.strip()) or len(words) < MIN_REQUEST_WORDS or _hangs(text, words):
        return False
    heard = understand(text, ctx)
    if heard.act is not None:
        return False  # goodbye, a person...: sounds_complete's call
    if ctx.awaiting is not None and not heard.new_task:
        return False  # an answer to our question: sounds_complete's call
    return heard.order_number is None  # digits come in groups: wait for the rest
