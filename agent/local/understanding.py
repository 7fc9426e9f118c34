"""What one caller utterance means, given where the dialog stands: a pure function.

`understand(text, context)` turns a transcript into an `Understanding`: a dialog act that
ends the task at hand (transfer, goodbye, repeat, hello, "yes, something else"), or the
task the caller is on (book, reschedule, cancel, find, order) with the slots they said
(day, time, name, order number) and a yes/no answer. The dialog policy applies it to its
state; `phone-agent eval` scores it against what the caller meant. No state, no clock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from . import slots

__all__ = ["ACTS", "Context", "Understanding", "understand"]

# Dialog acts: they settle the turn by themselves, whatever task is under way.
ACTS = frozenset({"transfer", "goodbye", "repeat", "hello", "more", "empty"})
_CHANGING = ("reschedule", "cancel", "order")  # "appointment" said while changing one


@dataclass(frozen=True)
class Context:
    """Where the dialog stands when the caller speaks."""

    today: date
    tools: Collection[str] = ()
    awaiting: str | None = None  # the slot (or yes/no) our last question asked for
    intent: str | None = None  # the task under way
    offered: tuple[str, ...] = ()  # times we just offered ("09:00", ...)
    day_options: tuple[date, ...] = ()  # days we just asked the caller to choose between
    candidates: int = 0  # how many bookings we just asked the caller to choose between


@dataclass(frozen=True)
class Understanding:
    act: str | None = None  # one of ACTS: the turn is settled by it
    intent: str | None = None  # the task after this utterance (maybe the context's)
    new_task: bool = False  # the caller named a task other than the one under way
    day: date | None = None
    time: str | None = None  # "HH:MM"
    name: str | None = None
    order_number: str | None = None
    order_raw: str | None = None  # the words the number was heard in
    answer: str | None = None  # "yes" | "no"
    # A weekday said with a date it is not: (the date as said, that weekday nearest it).
    day_clash: tuple[date, date] | None = None
    choice: int | None = None  # "the second one": an index into the candidates we listed
    understood: bool = False  # something usable was heard


def understand(text: str, ctx: Context) -> Understanding:
    norm = slots.normalize(text)
    if not norm:
        return Understanding(act="empty")
    answer = "yes" if slots.is_yes(norm) else "no" if slots.is_no(norm) else None
    intent = slots.detect_intent(norm)
    awaiting = ctx.awaiting
    if awaiting == "transfer_offer" and intent is None:
        intent = {"yes": "transfer", "no": "goodbye"}.get(answer or "")
    if awaiting == "anything_else" and intent is None:
        if answer == "no" or (slots.is_thanks(norm) and not slots.wants_more(norm)):
            intent = "goodbye"  # "OK, thanks" closes the call
        elif answer == "yes":
            return Understanding(act="more", answer=answer)
    if awaiting == "confirm" and answer is not None and intent in (None, "goodbye", ctx.intent):
        intent = None  # "no thanks" to a read-back declines the change; it does not hang up
    if intent in ACTS:
        return Understanding(act=intent, answer=answer)
    if intent == "book" and ctx.intent in _CHANGING:
        intent = None  # "appointment"/"free" while changing one is not a new booking
    task = intent or ctx.intent
    choosing = awaiting == "which_booking"
    day = slots.parse_day(norm, ctx.today, bare_ok=awaiting in ("day", "new_day") or choosing)
    time = slots.parse_time(norm, bare_ok=awaiting == "time")  # "the Friday one" is not 1 PM
    clash = slots.day_clash(norm, ctx.today)
    if awaiting == "which_day" and ctx.day_options:
        day = slots.pick_day(norm, ctx.day_options) or day
    choice = slots.pick_candidate(norm, ctx.candidates) if choosing else None
    if awaiting == "time" and (picked := slots.pick_offered(norm, list(ctx.offered))):
        if time is None:
            day = None  # "the first one" is a time we offered, not the 1st of the month
        time = picked
    if task is None and "book_appointment" in ctx.tools and (
        (day and time) or ((day or time) and slots.mostly_when(norm))
    ):
        task = "book"  # "tomorrow at 10" right after the greeting is a booking
    if task not in ("book", "reschedule", "cancel"):
        day = time = None  # "cancel Friday's": the day tells which booking
    name = slots.parse_name(text, bare_ok=awaiting == "name") if task == "book" else None
    number = raw = None
    # A number given before we asked for one: on an orders-only line, anywhere in the
    # sentence ("what's happening with 1042?"); where bookings are taken too, only a
    # reply that is little more than the number.
    number_only = (
        task is None
        and "lookup_order" in ctx.tools
        and ("book_appointment" not in ctx.tools or slots.mostly_number(norm))
    )
    if task == "order" or awaiting == "order_number" or number_only:
        found = slots.parse_order_number(text)
        if found:
            task = "order"
            number, raw = found
    return Understanding(
        intent=task,
        new_task=intent is not None and intent != ctx.intent,
        day=None if clash is not None else day,  # neither is taken for granted: we ask
        time=time,
        name=name,
        order_number=number,
        order_raw=raw,
        answer=answer,
        day_clash=clash if day is not None else None,
        choice=choice,
        understood=intent is not None
        or any(v is not None for v in (day, time, name, number, clash, choice)),
    )
