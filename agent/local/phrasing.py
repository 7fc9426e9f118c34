"""What the local engine says: fixed prompts and tool results turned into speech.

Pure functions. Dates and times are written the way piper reads them well
("Thursday, November 27", "10 AM", "10:30 AM", "noon").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

GREETING = "Hello! How can I help you today?"
GOODBYE = "Thanks for calling. Goodbye!"
QUESTIONS = {
    "day": "What day works for you?",
    "new_day": "What day would you like to move it to?",
    "time": "And what time?",
    "name": "Can I have your name?",
    "order_number": "What's your order number?",
    "anything_else": "Is there anything else I can help you with?",
    "transfer_offer": "Would you like me to connect you with someone?",
}
# Said the moment the caller's turn ends, while a lookup runs: the caller hears an answer
# begin at once (it is ready before the turn ends, rendered from the speculative
# transcript) instead of silence for the tool's round trip and the result's synthesis.
LEAD_INS = {
    "check_availability": "Let me check.",
    "lookup_order": "Let me look that up.",
    "find_my_appointments": "Let me have a look.",
}
ORDER_STATUS = {
    "shipped": "has shipped",
    "in_transit": "is on its way",
    "out_for_delivery": "is out for delivery",
    "delivered": "was delivered",
    "processing": "is being processed",
    "pending": "is being processed",
    "cancelled": "was cancelled",
    "canceled": "was cancelled",
    "returned": "was returned",
}


@dataclass(frozen=True)
class Outcome:
    text: str
    booking_id: str | None = None  # None: unchanged, "": forget it, else: remember it
    retry_slot: str | None = None  # ask for this slot again (slot taken, order not found)


def say_day(value: date | str) -> str:
    try:
        d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{d:%A}, {d:%B} {d.day}"


def say_time(value: str) -> str:
    try:
        hour, minute = (int(p) for p in str(value).split(":")[:2])
    except ValueError:
        return str(value)
    if (hour, minute) == (12, 0):
        return "noon"
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def capabilities(tools: set[str]) -> str:
    things: list[str] = []
    if "book_appointment" in tools:
        things.append("book an appointment")
    if tools & {"reschedule_appointment", "cancel_appointment"}:
        things.append("change or cancel an appointment")
    if "lookup_order" in tools:
        things.append("check on an order")
    if not things:
        return "How can I help you?"
    listed = things[0] if len(things) == 1 else ", ".join(things[:-1]) + ", or " + things[-1]
    return f"I can {listed}. What would you like to do?"


def _when(data: dict[str, Any], day_key: str = "day", time_key: str = "time") -> str:
    day, time = data.get(day_key), data.get(time_key)
    if day and time:
        return f" on {say_day(day)} at {say_time(time)}"
    if day:
        return f" on {say_day(day)}"
    return ""


def phrase_result(name: str, arguments: dict[str, Any], data: dict[str, Any]) -> Outcome:
    """A successful (or business-level negative) tool result as speech."""
    if name == "book_appointment":
        if data.get("error") == "slot_taken":
            alternatives = [say_time(t) for t in data.get("alternatives") or []][:3]
            if alternatives:
                offer = alternatives[0] if len(alternatives) == 1 else (
                    ", ".join(alternatives[:-1]) + " or " + alternatives[-1]
                )
                return Outcome(
                    f"Sorry, that time is taken. I can do {offer}. Which would you like?",
                    retry_slot="time",
                )
            return Outcome("Sorry, that time is taken. What other time works?", retry_slot="time")
        merged = {**arguments, **data}
        booking: str | None = str(data.get("booking_id") or "")
        when = _when(merged).removeprefix(" on ")
        text = f"You're booked for {when}." if when else "You're booked."
        if booking:
            text += f" Your confirmation number is {booking}."
        return Outcome(text, booking_id=booking or None)
    if name == "cancel_appointment":
        if data.get("status") == "cancelled":
            return Outcome(f"Your appointment{_when(data)} has been cancelled.", booking_id="")
        return Outcome("I couldn't find an appointment to cancel.")
    if name == "reschedule_appointment":
        if data.get("status") == "rescheduled":
            merged = {"day": arguments.get("new_day"), "time": arguments.get("new_time")}
            merged.update({k: v for k, v in data.items() if k in ("day", "time") and v})
            for src, dst in (("new_day", "day"), ("new_time", "time")):
                if data.get(src):
                    merged[dst] = data[src]
            booking = str(data.get("booking_id") or "") or None
            return Outcome(f"Done. Your appointment is now{_when(merged)}.", booking_id=booking)
        return Outcome("I couldn't find an appointment to move.")
    if name == "find_my_appointments":
        appointments = [a for a in data.get("appointments") or [] if isinstance(a, dict)]
        if not appointments:
            return Outcome("I don't see any appointments for you.")
        spoken = [f"{say_day(a.get('day', ''))} at {say_time(a.get('time', ''))}" for a in appointments[:3]]
        booking = str(appointments[0].get("booking_id") or "") if len(appointments) == 1 else None
        if len(spoken) == 1:
            return Outcome(f"You have an appointment on {spoken[0]}.", booking_id=booking or None)
        return Outcome(f"You have {len(appointments)} appointments: " + "; ".join(spoken) + ".")
    if name == "lookup_order":
        number = str(data.get("order_number") or arguments.get("order_number") or "")
        if not data.get("found"):
            said = data.get("say")  # the tool's own sentence: what happened, what to do
            return Outcome(
                said if isinstance(said, str) and said else f"I couldn't find order {number}. Could you check the number?",
                retry_slot="order_number",
            )
        status = str(data.get("status") or "").lower()
        text = f"Order {number} {ORDER_STATUS.get(status, 'is ' + status.replace('_', ' '))}"
        eta = data.get("eta")
        if eta and status not in ("delivered", "cancelled", "canceled", "returned"):
            text += f" and should arrive on {say_day(eta)}"
        return Outcome(text + ".")
    if name in ("transfer_call", "end_call"):
        return Outcome("")
    return Outcome("Done.")
