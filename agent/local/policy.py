"""Rule-based dialog for the demo flows: appointments, orders, transfer, goodbye.

Pure and synchronous (no I/O, no clock: `today` is given). The engine feeds it what the
caller said (`hear`), what tools returned (`tool_result`) and what the caller actually
heard of our speech (`truncated`); on each response it asks `respond()` for the next
`Reply`: words to speak and/or tool calls. Only tools the session declared are used;
an intent whose tool is missing is answered with what we *can* do.

Tool contract (names and arguments, shared with the tools layer):
    check_availability(day)                      -> {"day", "free_slots": ["09:00", ...]}
    book_appointment(day, time, name)            -> {"status": "booked", "booking_id", ...}
                                                    | {"error": "slot_taken", "alternatives"}
    cancel_appointment(booking_id?, day?, time?, confirmed?)
                                                 -> {"status": "cancelled", ...}
    reschedule_appointment(new_day, new_time, booking_id?, current_day?, current_time?,
                           confirmed?)           -> {"status": "rescheduled", ...}
        Both answer {"status": "needs_confirmation", "booking_id", "say"} until called
        with confirmed=true: we read `say` back and go ahead only on a yes. Several
        bookings fitting answer {"error": "which_booking", "candidates", "say"}: we ask.
    find_my_appointments()                       -> {"appointments": [...]}
    lookup_order(order_number)                   -> {"found": true, "status", "eta", ...}
    transfer_call(reason), end_call(reason)      -> call control
Any tool may answer {"error": ..., "retryable": bool}; a refusal with "say" (what
happened and the nearest thing the line can do) is read out as it is, and its
"alternatives" are offered. A transfer is offered only when the caller asks for a person
or nothing else can be done (a tool that keeps failing).
"""

from __future__ import annotations

import itertools
import os
import re
from collections import deque
from collections.abc import Callable, Iterable
from datetime import date

from .completeness import says_something, sounds_complete, sounds_finished
from .dialog import DialogState, Pending, Reply, ToolCall
from .outcomes import ToolOutcomes
from .phrasing import (
    GOODBYE,
    GREETING,
    LEAD_INS,
    QUESTIONS,
    capabilities,
    say_day,
)
from .understanding import Context, understand

__all__ = ["DialogPolicy", "Reply", "ToolCall", "dated", "default_today"]

INTENT_TOOL = {
    "book": "book_appointment",
    "reschedule": "reschedule_appointment",
    "cancel": "cancel_appointment",
    "find": "find_my_appointments",
    "order": "lookup_order",
}


def default_today() -> date:
    """TOOLS_TODAY=YYYY-MM-DD (the one pinned date, the business tools' too), else today.

    A session whose instructions say what day it is (the service appends "Today is
    Friday, 2026-12-04." for every model) uses that day instead: see `dated`."""
    pinned = os.environ.get("TOOLS_TODAY")
    return date.fromisoformat(pinned) if pinned else date.today()


_TODAY_IS = re.compile(r"\bToday is [A-Za-z]+, (\d{4}-\d{2}-\d{2})\b")


def dated(instructions: object) -> date | None:
    """The day the session's instructions say it is, as the service tells every model
    (agent/service/sessions.py): the engine then plans with the tools' own date."""
    if not isinstance(instructions, str):
        return None
    found = _TODAY_IS.findall(instructions)
    if not found:
        return None
    try:
        return date.fromisoformat(found[-1])
    except ValueError:
        return None


class DialogPolicy(ToolOutcomes):
    def __init__(
        self,
        *,
        today: date | None = None,
        tools: Iterable[str] = (),
        new_call_id: Callable[[], str] | None = None,
    ) -> None:
        self.today = today or default_today()
        self.tools: set[str] = set(tools)
        counter = itertools.count(1)
        self._new_call_id = new_call_id or (lambda: f"call_{next(counter)}")
        self.state = DialogState()
        self._inbox: deque[tuple[str, str, str]] = deque()  # (kind, call_id, text)
        self._pending: dict[str, Pending] = {}
        self._said: dict[str, int] = {}  # assistant item id -> index in history

    # ------------------------------------------------------------ inputs
    def hear(self, text: str) -> None:
        """A caller utterance (a transcript or a typed user message)."""
        self._inbox.append(("user", "", text))

    def recall(self, text: str) -> None:
        """Something the caller said that was already answered (history from an earlier
        session): we keep who they are, not the task, which the old session handled."""
        st = self.state
        st.history.append(("user", text))
        self._absorb(text)
        st.intent = st.day = st.time = st.order_number = st.awaiting = None

    def tool_result(self, call_id: str, output: str) -> None:
        self._inbox.append(("result", call_id, output))

    def said(self, item_id: str, text: str) -> None:
        """We spoke `text` as item `item_id` (scripted or policy speech)."""
        self._said[item_id] = len(self.state.history)
        self.state.history.append(("assistant", text))

    def truncated(self, item_id: str, heard: str) -> None:
        """The caller only heard `heard` of that item (barge-in): remember only that."""
        index = self._said.get(item_id)
        if index is None:
            return
        said = self.state.history[index][1]
        self.state.history[index] = ("assistant", heard)
        question = self._question()
        if question and not _heard_enough(question, said, heard):
            self.state.awaiting = None  # they never heard the question: don't assume it
            self.state.confirming = None  # nor a read-back they never heard: no yes to it

    # ------------------------------------------------------------ decision
    def respond(self) -> Reply:
        texts: list[str] = []
        per_utterance: list[set[str]] = []
        results = 0
        while self._inbox:
            kind, call_id, text = self._inbox.popleft()
            if kind == "result":
                if call_id not in self._pending:
                    continue  # not ours (or answered twice): nothing to say about it
                results += 1
                reply = self._on_result(call_id, text)
                texts.append(reply.text)
                if reply.calls:
                    return self._reply(texts, reply.calls)
                continue
            self.state.history.append(("user", text))
            per_utterance.append(self._absorb(text))
        if per_utterance:
            step = self._decide(_combine(per_utterance))
            return self._reply([*texts, step.text], step.calls)
        if results:  # may be silent on purpose (a transfer is under way)
            return self._reply(texts, ())
        return self._idle()

    def _reply(self, texts: list[str], calls: Iterable[ToolCall]) -> Reply:
        return Reply(" ".join(t for t in texts if t).strip(), tuple(calls))

    def _idle(self) -> Reply:
        """response.create with nothing new: greet, or repeat the open question."""
        if not self.state.history:
            return Reply(GREETING)
        if self._question():
            return Reply(self._question())
        return Reply("Is there anything else I can help you with?")

    def _question(self) -> str:
        """The question we are waiting on an answer to, as we worded it."""
        awaiting = self.state.awaiting or ""
        return QUESTIONS.get(awaiting) or (self.state.asked if awaiting in _OWN_WORDS else "")

    def sounds_complete(self, text: str) -> bool:
        """Do these words (what the caller said up to a pause) finish the turn: a whole
        answer to the question we are waiting on, or a request that settles it?"""
        return sounds_complete(text, self._context())

    def sounds_finished(self, text: str) -> bool:
        """Are these words a finished sentence, said when we asked nothing in particular
        (a request: its details may still follow a breath)?"""
        return sounds_finished(text, self._context())

    def says_something(self, text: str) -> bool:
        """Is there anything to act on in these words, where the dialog stands? (Not a
        stray word whisper made of a cough: see `completeness.says_something`.)"""
        return says_something(text, self._context())

    # ------------------------------------------------------------ understanding
    def _context(self) -> Context:
        """Where the dialog stands, for understanding the next utterance."""
        st = self.state
        return Context(self.today, self.tools, st.awaiting, st.intent, tuple(st.offered),
                       st.day_options, len(st.candidates))  # fmt: skip

    def _absorb(self, text: str) -> set[str]:
        """Update intent and slots from one utterance; return flags for `_decide`."""
        st = self.state
        heard = understand(text, self._context())
        if heard.act:
            return {heard.act}
        if heard.new_task:
            st.day, st.time, st.checked_day, st.order_number = None, None, None, None
            st.confirming, st.candidates, st.hint_day, st.hint_time = None, [], None, None
        st.intent = heard.intent
        if st.awaiting == "confirm" and st.confirming and not heard.new_task:
            if heard.answer == "yes":
                return {"confirmed"}
            if heard.day is None and heard.time is None:
                return {"declined"} if heard.answer == "no" else {"confirm_again"}
            st.confirming = None  # "no, the Monday one": a hint to find the right booking
            self._which_booking(heard.day, heard.time)
            return set()
        if st.awaiting == "which_booking" and not heard.new_task:
            if heard.choice is not None and heard.choice < len(st.candidates):
                st.booking_id = str(st.candidates[heard.choice].get("booking_id") or "") or None
                return set()
            self._which_booking(heard.day, heard.time)
            return set() if heard.understood else {"unclear"}
        if st.awaiting == "time" and heard.answer == "yes" and not heard.time and len(st.offered) == 1:
            return self._take_offer(st.offered[0])  # "Would that work?" "Yes."
        flags = {"day_clash"} if heard.day_clash else set()
        st.day_options = heard.day_clash or ()
        if heard.day:
            st.day = heard.day
        if heard.time:
            st.time = heard.time
        if heard.name:
            st.name = heard.name
        if heard.order_number:
            st.order_number, st.order_raw = heard.order_number, heard.order_raw
        return flags if heard.understood else flags | {"unclear"}

    def _decide(self, flags: set[str]) -> Reply:
        st = self.state
        if "goodbye" in flags:
            st.awaiting = None
            calls = [self._call("end_call", reason="caller said goodbye")] if "end_call" in self.tools else []
            return Reply(GOODBYE, tuple(calls))
        if "transfer" in flags:
            if "transfer_call" not in self.tools:
                return self._ask("anything_else", "Sorry, I can't transfer calls on this line. ")
            st.awaiting = None
            call = self._call("transfer_call", reason="caller asked for a person")
            return Reply("Sure, let me connect you with someone who can help.", (call,))
        if "empty" in flags:
            return Reply("Sorry, I didn't catch that. Could you say that again?")
        if "repeat" in flags:  # the last thing we said, as the caller heard it
            said = [text for role, text in st.history[:-1] if role == "assistant" and text]
            return Reply(said[-1] if said else GREETING)
        if "hello" in flags:
            question = QUESTIONS.get(st.awaiting or "")
            return Reply(f"Yes, I can hear you. {question or 'How can I help you today?'}")
        if "more" in flags:
            st.awaiting = None
            return Reply("Sure, what can I help you with?")
        if "confirmed" in flags and st.confirming:
            name, arguments = st.confirming
            st.confirming, st.awaiting = None, None
            return Reply("", (self._call(name, **arguments),))
        if "declined" in flags:
            st.confirming, st.intent, st.day, st.time = None, None, None, None
            st.hint_day = st.hint_time = None
            return self._ask("anything_else", "OK, I haven't changed anything. ")
        if "confirm_again" in flags and st.confirming:
            st.awaiting = "confirm"
            return Reply(f"Sorry, I didn't catch a yes or a no. {st.asked}")
        if "day_clash" in flags and st.day_options:
            as_said, nearest = st.day_options
            return self._await(
                "which_day",
                f"The {_ordinal(as_said.day)} is a {as_said:%A}. Did you mean {say_day(as_said)}, "
                f"or {say_day(nearest)}?",
            )
        if st.intent is None:
            return Reply(f"Sorry, I didn't quite get that. {capabilities(self.tools)}")
        if INTENT_TOOL[st.intent] not in self.tools:
            st.intent = None
            return Reply(f"Sorry, I can't do that on this line. {capabilities(self.tools)}")
        prefix = "Sorry, " if "unclear" in flags and st.awaiting else ""
        return self._next_step(prefix)

    def _next_step(self, prefix: str = "") -> Reply:
        st = self.state
        st.awaiting = None
        if st.intent == "book":
            if st.day is None:
                return self._ask("day", prefix)
            if st.time is None:
                if "check_availability" in self.tools and st.checked_day != st.day:
                    st.checked_day = st.day
                    return self._look_up(self._call("check_availability", day=st.day.isoformat()))
                return self._ask("time", prefix)
            if st.name is None:
                return self._ask("name", prefix)
            args = {"day": st.day.isoformat(), "time": st.time, "name": st.name}
            return Reply("", (self._call("book_appointment", **args),))
        if st.intent == "reschedule":
            if st.day is None and st.time is not None and st.booking_id and st.booked_day:
                st.day = st.booked_day  # "can I move it to 11?" right after booking: same day
            if st.day is None:
                return self._ask("new_day", prefix)
            if st.time is None:
                return self._ask("time", prefix)
            args = {"new_day": st.day.isoformat(), "new_time": st.time}
            if st.booking_id:
                args["booking_id"] = st.booking_id
            else:
                if st.hint_day:
                    args["current_day"] = st.hint_day.isoformat()
                if st.hint_time:
                    args["current_time"] = st.hint_time
            return Reply("", (self._call("reschedule_appointment", **args),))
        if st.intent == "cancel":
            # What the caller said about the booking; the tool finds it or asks which.
            said = {"day": st.day.isoformat() if st.day else None, "time": st.time}
            args = {k: v for k, v in said.items() if v}
            if st.booking_id and not args:
                args["booking_id"] = st.booking_id
            return Reply("", (self._call("cancel_appointment", **args),))
        if st.intent == "find":
            return self._look_up(self._call("find_my_appointments"))
        if st.order_number is None and st.last_order:
            st.order_number = st.last_order  # "when will it arrive?" about the one just looked up
        if st.order_number is None:
            return self._ask("order_number", prefix)
        return self._look_up(self._call("lookup_order", order_number=st.order_number))

    def _look_up(self, call: ToolCall) -> Reply:
        """A lookup, begun with a few words the caller hears while it runs."""
        return Reply(LEAD_INS.get(call.name, ""), (call,))


def _combine(flag_sets: list[set[str]]) -> set[str]:
    """Flags of several utterances heard in one turn: a breath ("empty") or a filler
    ("unclear") next to a real answer does not count."""
    flags = set().union(*flag_sets)
    if any("empty" not in f for f in flag_sets):
        flags.discard("empty")
    if any(not f & {"empty", "unclear"} for f in flag_sets):
        flags.discard("unclear")
    return flags


_OWN_WORDS = ("confirm", "which_booking", "which_day")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


HEARD_ENOUGH = 0.8  # of a question's words: callers answer as its last words play


def _heard_enough(question: str, said: str, heard: str) -> bool:
    """Did the caller hear (nearly all of) `question`, asked within `said`, when they
    heard only `heard` (a prefix of it, by words)? A "yes" that starts on "...under
    Laura Chen" answers the read-back; one that starts on "Just to confirm" does not."""
    if question in heard:
        return True
    at = said.find(question)
    if at < 0:
        return False
    before, asked = len(said[:at].split()), len(question.split())
    return len(heard.split()) - before >= HEARD_ENOUGH * asked
