"""One utterance: what the offline engine understood, and whether that is what was meant.

The engine's understanding is `agent.local.understanding.understand` with the context a
real call would give it (the flow's tools, the question the bot just asked), so the eval
scores what the policy acts on, not a parser in isolation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from agent.devkit.eval.sets import Utterance
from agent.local.understanding import Context, Understanding, understand

__all__ = ["SLOTS", "Heard", "Score", "flow_tools", "hear", "score"]

SLOTS = ("day", "time", "order_number", "name", "answer")
# The question the bot just asked -> (what the policy awaits, the task under way).
_CONTEXT: dict[str | None, tuple[str | None, str | None]] = {
    None: (None, None),
    "day": ("day", "book"),
    "time": ("time", "book"),
    "name": ("name", "book"),
    "order_number": ("order_number", "order"),
    "confirm": ("confirm", None),
    "anything_else": ("anything_else", None),
}
_YES_NO_QUESTIONS = ("confirm", "anything_else")
# Acts that are the caller's intent; the others ("hello", "repeat", ...) are not one.
_INTENT_ACTS = ("transfer", "goodbye")


@cache
def flow_tools(flow: str) -> frozenset[str]:
    """The tools the example flow declares (what the engine's session would offer)."""
    from agent.flow_tools import tool_name
    from agent.flows import DEFAULT_FLOWS_FILE, load_flows

    return frozenset(tool_name(ref) for ref in load_flows(DEFAULT_FLOWS_FILE).flows[flow].tools)


@dataclass(frozen=True)
class Heard:
    """What the engine understood, in the set's terms (ISO days, HH:MM times)."""

    intent: str | None = None
    day: str | None = None
    time: str | None = None
    order_number: str | None = None
    name: str | None = None
    answer: str | None = None

    @classmethod
    def of(cls, u: Understanding) -> Heard:
        if u.act:
            intent = u.act if u.act in _INTENT_ACTS else None if u.act == "more" else u.act
        else:
            intent = u.intent
        return cls(
            intent=intent,
            day=u.day.isoformat() if u.day else None,
            time=u.time,
            order_number=u.order_number,
            name=u.name,
            answer=u.answer,
        )


def hear(
    utterance: Utterance, text: str, today: dt.date, tools: Collection[str] | None = None
) -> Heard:
    """The engine's understanding of `text` said in `utterance`'s situation."""
    awaiting, intent = _CONTEXT[utterance.asked]
    tools = flow_tools(utterance.flow) if tools is None else tools
    return Heard.of(understand(text, Context(today, tools, awaiting, intent)))


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(re.sub(r"[^\w']+", " ", value.casefold()).split()) or None


@dataclass(frozen=True)
class Score:
    intent: bool | None  # None: the set does not score intent here
    slots: dict[str, bool] = field(default_factory=dict)  # slot -> right (said or heard)

    @property
    def slots_ok(self) -> bool:
        return all(self.slots.values())

    @property
    def ok(self) -> bool:
        return self.intent is not False and self.slots_ok


def score(utterance: Utterance, heard: Heard) -> Score:
    """Compare with what was meant. A slot counts when it was meant or heard: hearing a
    time nobody said is as wrong as missing one."""
    want = utterance.expect
    expected: dict[str, Any] = {
        "day": {d.isoformat() for d in want.day} if want.day else None,
        "time": set(want.time) if want.time else None,
        "order_number": want.order_number,
        "name": _name(want.name),
        "answer": want.answer,
    }
    got: dict[str, Any] = {
        "day": heard.day,
        "time": heard.time,
        "order_number": heard.order_number,
        "name": _name(heard.name),
        "answer": heard.answer,
    }
    if want.answer is None and utterance.asked not in _YES_NO_QUESTIONS:
        got["answer"] = None  # "yes" in "yes, I'd like to book" is not an answer here
    slots: dict[str, bool] = {}
    for slot in SLOTS:
        meant, understood = expected[slot], got[slot]
        if meant is None and understood is None:
            continue
        slots[slot] = understood in meant if isinstance(meant, set) else understood == meant
    intent = None if want.intent is None else heard.intent == want.intent
    return Score(intent, slots)
