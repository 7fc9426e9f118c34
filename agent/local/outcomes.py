"""The policy's other half: what to say and do once a tool has answered.

A booking or order result is phrased; a change the tool proposes (cancel, move) is read
back and waits for a yes; several bookings that fit are listed for the caller to pick
from; a refusal is spoken with its nearest offer, which the caller can take; a failing
tool is retried once, then a person is offered. Pure, like the rest of the policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from .dialog import CHANGES, HINTS, MAX_ATTEMPTS, DialogState, Pending, Reply, ToolCall
from .phrasing import QUESTIONS, phrase_result, say_day, say_time

__all__ = ["ToolOutcomes"]


class ToolOutcomes:
    """Mixed into `DialogPolicy`, which owns the state and decides the next step."""

    state: DialogState
    today: date
    tools: set[str]
    _pending: dict[str, Pending]
    _new_call_id: Callable[[], str]

    def _next_step(self, prefix: str = "") -> Reply:
        raise NotImplementedError

    def _call(self, tool: str, /, **arguments: Any) -> ToolCall:
        call = ToolCall(self._new_call_id(), tool, arguments)
        self._pending[call.call_id] = Pending(tool, arguments)
        return call

    def _ask(self, slot: str, prefix: str = "") -> Reply:
        self.state.awaiting = slot
        question = QUESTIONS[slot]
        if prefix.endswith(", "):  # "Sorry, what day ..."
            question = question[0].lower() + question[1:]
        return Reply(f"{prefix}{question}")

    def _await(self, slot: str, text: str) -> Reply:
        """Like `_ask`, with a question of our own wording."""
        self.state.awaiting = slot
        self.state.asked = text
        return Reply(text)

    # ------------------------------------------------------------ tool results
    def _on_result(self, call_id: str, output: str) -> Reply:
        pending = self._pending.pop(call_id)
        try:
            data = json.loads(output)
        except (TypeError, ValueError):
            data = {"result": output}
        if not isinstance(data, dict):
            data = {"result": data}
        st = self.state
        error = data.get("error")
        if pending.name in CHANGES and data.get("status") == "needs_confirmation":
            return self._read_back(pending, data)
        if error and isinstance(data.get("say"), str) and data["say"].strip():
            return self._on_refusal(pending, data)
        if error and error != "slot_taken":
            if data.get("retryable") and pending.attempts < MAX_ATTEMPTS:
                retry = ToolCall(self._new_call_id(), pending.name, pending.arguments)
                self._pending[retry.call_id] = Pending(
                    pending.name, pending.arguments, pending.attempts + 1
                )
                return Reply("Sorry, I had trouble with that. Let me try again.", (retry,))
            if pending.name in ("transfer_call", "end_call"):
                return self._ask("anything_else", "Sorry, I couldn't transfer you right now. ")
            st.intent, st.awaiting = None, None
            if "transfer_call" in self.tools:
                return self._ask("transfer_offer", "Sorry, I couldn't do that right now. ")
            return Reply("Sorry, I couldn't do that right now. Please try again a bit later.")
        if pending.name == "check_availability":
            return self._on_availability(data)
        outcome = phrase_result(pending.name, pending.arguments, data)
        if pending.name == "lookup_order" and data.get("found"):
            st.last_order = str(pending.arguments.get("order_number") or "") or None
        if outcome.booking_id is not None:
            st.booking_id = outcome.booking_id or None
            day = pending.arguments.get("new_day") or pending.arguments.get("day")
            st.booked_day = date.fromisoformat(day) if st.booking_id and isinstance(day, str) else None
        if outcome.retry_slot:
            if outcome.retry_slot == "time":
                st.time = None
            elif outcome.retry_slot == "order_number":
                st.order_number = None
            return self._await(outcome.retry_slot, outcome.text)
        if pending.name in ("transfer_call", "end_call"):
            return Reply(outcome.text)
        st.intent, st.day, st.time, st.checked_day = None, None, None, None
        st.order_number = None
        st.candidates, st.hint_day, st.hint_time, st.confirming = [], None, None, None
        return self._ask("anything_else", outcome.text + " ")

    def _take_offer(self, time: str) -> set[str]:
        self.state.time = time
        return set()

    def _which_booking(self, day: date | None, time: str | None) -> None:
        """What the caller said about which booking they mean, for the next try."""
        st = self.state
        st.booking_id = None
        if st.intent == "cancel":
            st.day, st.time = day or st.day, time or st.time
        else:
            st.hint_day, st.hint_time = day or st.hint_day, time or st.hint_time

    def _read_back(self, pending: Pending, data: dict[str, Any]) -> Reply:
        """The tool found the booking and changed nothing yet: read it back, ask for a yes."""
        st = self.state
        arguments = {k: v for k, v in pending.arguments.items() if k not in HINTS}
        arguments["booking_id"] = str(data.get("booking_id") or "")
        for key in ("new_day", "new_time"):
            if data.get(key):
                arguments[key] = data[key]
        arguments["confirmed"] = True
        st.confirming, st.candidates = (pending.name, arguments), []
        say = str(data.get("say") or "").strip() or "Should I go ahead with that?"
        return self._await("confirm", say)

    def _on_refusal(self, pending: Pending, data: dict[str, Any]) -> Reply:
        """A tool said no with a sentence for the caller: say it, and ask what it leads to."""
        st = self.state
        say, error = str(data["say"]).strip(), str(data.get("error"))
        candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
        if candidates and pending.name in CHANGES:
            st.candidates, st.booking_id = candidates, None
            if pending.name == "cancel_appointment":
                st.day = st.time = None  # they were hints about which booking
            st.hint_day = st.hint_time = None
            return self._await("which_booking", say)
        alternatives = [a for a in data.get("alternatives") or [] if isinstance(a, dict) and a.get("day")]
        if alternatives:
            first = str(alternatives[0]["day"])
            st.day = st.checked_day = date.fromisoformat(first)
            st.time = None
            st.offered = [str(a.get("time")) for a in alternatives if a.get("day") == first and a.get("time")]
            ask = "Would that work?" if len(st.offered) == 1 else "Would one of those work?"
            return self._await("time", f"{say} {ask}")
        if error in ("invalid_time", "outside_hours", "not_a_slot_start") and st.intent in ("book", "reschedule"):
            st.time = None
            return self._await("time", say)
        if error == "missing_name":
            st.name = None
            return self._await("name", say)
        st.intent, st.day, st.time, st.checked_day = None, None, None, None
        st.hint_day = st.hint_time = None
        if say.endswith("?"):
            st.awaiting = None
            return Reply(say)
        return self._ask("anything_else", say + " ")

    def _on_availability(self, data: dict[str, Any]) -> Reply:
        st = self.state
        free = [str(s) for s in data.get("free_slots") or []]
        day = st.day or self.today
        if st.intent != "book":
            return Reply()
        if not free and data.get("alternatives") and data.get("say"):
            return self._on_refusal(Pending("check_availability", {}), data)
        if not free:
            st.day = None
            return self._ask("day", f"Sorry, {say_day(day)} is fully booked. ")
        if st.time and st.time in free:
            return self._next_step()
        st.offered = free[:3]
        offer = _list_times(st.offered)
        if st.time:
            missed = say_time(st.time)
            st.time = None
            return self._await(
                "time", f"Sorry, {missed} isn't free on {say_day(day)}. I have {offer}. "
                "Would one of those work?"
            )
        return self._await("time", f"On {say_day(day)} I have {offer} free. What time works for you?")




def _list_times(times: list[str]) -> str:
    spoken = [say_time(t) for t in times]
    return spoken[0] if len(spoken) == 1 else ", ".join(spoken[:-1]) + " or " + spoken[-1]
