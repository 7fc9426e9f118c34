"""The rule-based dialog: intents, multi-turn slot filling, tool calls, result phrasing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from agent.local.policy import DialogPolicy, Reply, dated, default_today

TODAY = date(2026, 11, 24)  # Tuesday
ALL_TOOLS = {
    "check_availability", "book_appointment", "cancel_appointment", "reschedule_appointment",
    "find_my_appointments", "lookup_order", "transfer_call", "end_call",
}  # fmt: skip


def policy(tools: set[str] = ALL_TOOLS) -> DialogPolicy:
    return DialogPolicy(today=TODAY, tools=tools)


def turn(p: DialogPolicy, text: str) -> Reply:
    p.hear(text)
    return p.respond()


def result(p: DialogPolicy, reply: Reply, data: Any) -> Reply:
    assert reply.calls, reply
    p.tool_result(reply.calls[-1].call_id, json.dumps(data))
    return p.respond()


def only_call(reply: Reply) -> tuple[str, dict[str, Any]]:
    assert len(reply.calls) == 1, reply
    return reply.calls[0].name, reply.calls[0].arguments


def test_greets_when_nothing_was_said() -> None:
    assert policy().respond().text == "Hello! How can I help you today?"


@pytest.mark.parametrize(
    "utterance",
    [
        "I'd like to book an appointment tomorrow at 10 am, my name is Ana.",
        "I'd like to book an appointment tomorrow at 10 a. m. My name is Anna.",
        "Hi, can I book tomorrow at ten? My name's Ana.",
        "Book me in for tomorrow at 10am please, it's Ana",
        "Could I get an appointment for Wednesday at 10 o'clock? This is Ana.",
        "I want to schedule something on November 25th at 10, name is Ana",
    ],
)
def test_one_shot_booking(utterance: str) -> None:
    name, args = only_call(turn(policy(), utterance))
    assert name == "book_appointment"
    assert args["day"] == "2026-11-25" and args["time"] == "10:00"
    assert args["name"] in ("Ana", "Anna")


def test_multi_turn_booking_with_availability() -> None:
    p = policy()
    assert turn(p, "I'd like to make an appointment").text == "What day works for you?"
    reply = turn(p, "Thursday")
    assert only_call(reply) == ("check_availability", {"day": "2026-11-26"})
    assert reply.text == "Let me check."  # heard at once, while the lookup runs
    offer = result(p, reply, {"day": "2026-11-26", "free_slots": ["09:00", "10:30", "14:00", "15:00"]})
    assert offer.text == "On Thursday, November 26 I have 9 AM, 10:30 AM or 2 PM free. What time works for you?"
    assert turn(p, "ten thirty").text == "Can I have your name?"
    reply = turn(p, "Ana Lopez")
    assert only_call(reply) == ("book_appointment", {"day": "2026-11-26", "time": "10:30", "name": "Ana Lopez"})
    done = result(p, reply, {"status": "booked", "booking_id": "BK-7", "day": "2026-11-26", "time": "10:30", "name": "Ana Lopez"})
    assert done.text == (
        "You're booked for Thursday, November 26 at 10:30 AM. Your confirmation number is BK-7. "
        "Is there anything else I can help you with?"
    )
    bye = turn(p, "No, that's it.")
    assert bye.text == "Thanks for calling. Goodbye!"
    assert only_call(bye) == ("end_call", {"reason": "caller said goodbye"})


def test_asks_time_without_availability_tool() -> None:
    p = policy(ALL_TOOLS - {"check_availability"})
    assert turn(p, "Can I book for Friday?").text == "And what time?"
    assert turn(p, "2 pm").text == "Can I have your name?"
    name, args = only_call(turn(p, "It's Kim."))
    assert (name, args) == ("book_appointment", {"day": "2026-11-27", "time": "14:00", "name": "Kim"})


def test_requested_time_checked_against_availability() -> None:
    p = policy()
    p.hear("Book me Thursday afternoon at 3, my name is Ana")
    p.hear("")  # a breath the VAD let through
    reply = p.respond()
    assert only_call(reply) == ("book_appointment", {"day": "2026-11-26", "time": "15:00", "name": "Ana"})

    p = policy()
    reply = turn(p, "Anything free on Thursday? I'm Ana")
    assert only_call(reply)[0] == "check_availability"
    p.state.time = "11:00"  # asked for 11 meanwhile
    offer = result(p, reply, {"day": "2026-11-26", "free_slots": ["09:00", "14:00"]})
    assert offer.text.startswith("Sorry, 11 AM isn't free on Thursday, November 26. I have 9 AM or 2 PM.")
    assert only_call(turn(p, "2 then"))[1]["time"] == "14:00"


def test_fully_booked_day_asks_for_another() -> None:
    p = policy()
    turn(p, "book an appointment")
    reply = turn(p, "Friday")
    assert result(p, reply, {"day": "2026-11-27", "free_slots": []}).text == (
        "Sorry, Friday, November 27 is fully booked. What day works for you?"
    )


def test_slot_taken_offers_alternatives() -> None:
    p = policy()
    reply = turn(p, "Book tomorrow at 10 am for Ana")
    assert only_call(reply)[1]["name"] == "Ana"
    taken = result(p, reply, {"error": "slot_taken", "alternatives": ["11:00", "13:30"]})
    assert taken.text == "Sorry, that time is taken. I can do 11 AM or 1:30 PM. Which would you like?"
    assert only_call(turn(p, "1:30 please"))[1] == {"day": "2026-11-25", "time": "13:30", "name": "Ana"}


def test_retryable_error_retries_once_then_offers_a_person() -> None:
    p = policy()
    reply = turn(p, "Where's my order 4567?")
    retry = result(p, reply, {"error": "timeout", "retryable": True})
    assert retry.text == "Sorry, I had trouble with that. Let me try again."
    assert only_call(retry) == ("lookup_order", {"order_number": "4567"})
    assert retry.calls[0].call_id != reply.calls[0].call_id
    failed = result(p, retry, {"error": "timeout", "retryable": True})
    assert failed.text == "Sorry, I couldn't do that right now. Would you like me to connect you with someone?"
    assert only_call(turn(p, "yes please")) == ("transfer_call", {"reason": "caller asked for a person"})


def test_non_retryable_error_without_transfer_tool() -> None:
    p = policy({"lookup_order"})
    reply = turn(p, "order 4567")
    assert result(p, reply, {"error": "database unavailable", "retryable": False}).text == (
        "Sorry, I couldn't do that right now. Please try again a bit later."
    )


@pytest.mark.parametrize(
    ("utterance", "number"),
    [
        ("Where is my order? The number is 4567.", "4567"),
        ("I'm checking on order four five six seven", "4567"),
        ("Can you track my package, it's 4, 5, 6, 7", "4567"),
    ],
)
def test_order_status(utterance: str, number: str) -> None:
    p = policy()
    reply = turn(p, utterance)
    assert only_call(reply) == ("lookup_order", {"order_number": number})
    assert p.state.order_raw
    spoken = result(p, reply, {"found": True, "order_number": number, "status": "shipped", "items": ["mug"], "eta": "2026-11-28"})
    assert spoken.text.startswith(f"Order {number} has shipped and should arrive on Saturday, November 28.")


def test_order_number_asked_for_and_not_found() -> None:
    p = policy()
    assert turn(p, "I have a question about my order").text == "What's your order number?"
    reply = turn(p, "nine nine nine nine")
    assert only_call(reply) == ("lookup_order", {"order_number": "9999"})
    missing = result(p, reply, {"found": False, "order_number": "9999", "message": "not found"})
    assert missing.text == "I couldn't find order 9999. Could you check the number?"
    assert only_call(turn(p, "sorry, 9998"))[1] == {"order_number": "9998"}
    reply = turn(p, "no wait, it's 1234")
    say = "I couldn't find an order with the number 1 2 3 4. Could you check the number and read it to me again?"
    assert result(p, reply, {"found": False, "order_number": "1234", "say": say}).text == say


def test_delivered_order_has_no_eta() -> None:
    p = policy()
    reply = turn(p, "order 1234")
    text = result(p, reply, {"found": True, "order_number": "1234", "status": "delivered", "eta": "2026-11-20"}).text
    assert text.startswith("Order 1234 was delivered.")


def test_cancel_uses_booking_from_this_call() -> None:
    p = policy()
    reply = turn(p, "Book tomorrow at 9 am, my name is Ana")
    result(p, reply, {"status": "booked", "booking_id": "BK-1", "day": "2026-11-25", "time": "09:00", "name": "Ana"})
    reply = turn(p, "Actually, please cancel that appointment")
    assert only_call(reply) == ("cancel_appointment", {"booking_id": "BK-1"})
    done = result(p, reply, {"status": "cancelled", "booking_id": "BK-1", "day": "2026-11-25", "time": "09:00"})
    assert done.text.startswith("Your appointment on Wednesday, November 25 at 9 AM has been cancelled.")


def test_cancel_without_known_booking() -> None:
    name, args = only_call(turn(policy(), "I need to cancel my appointment"))
    assert (name, args) == ("cancel_appointment", {})


def test_reschedule_multi_turn() -> None:
    p = policy()
    assert turn(p, "I'd like to reschedule my appointment").text == "What day would you like to move it to?"
    assert turn(p, "Friday").text == "And what time?"
    reply = turn(p, "at noon")
    assert only_call(reply) == ("reschedule_appointment", {"new_day": "2026-11-27", "new_time": "12:00"})
    done = result(p, reply, {"status": "rescheduled", "booking_id": "BK-3", "day": "2026-11-27", "time": "12:00"})
    assert done.text.startswith("Done. Your appointment is now on Friday, November 27 at noon.")


def test_reschedule_in_one_go() -> None:
    name, args = only_call(turn(policy(), "Could we move my appointment to Friday at 2pm?"))
    assert (name, args) == ("reschedule_appointment", {"new_day": "2026-11-27", "new_time": "14:00"})


def test_reschedule_corrects_the_day_it_was_told() -> None:
    reply = turn(policy(), "I can't make it tomorrow, can we move it to Friday at 2?")
    assert only_call(reply) == ("reschedule_appointment", {"new_day": "2026-11-27", "new_time": "14:00"})


def test_moving_a_fresh_booking_to_another_time_keeps_its_day() -> None:
    p = policy()
    booking = turn(p, "Book me for Friday at 9, my name is Jordan Lee")
    assert only_call(booking)[0] == "book_appointment"
    result(p, booking, {"status": "booked", "booking_id": "BK-1", "day": "2026-11-27", "time": "09:00"})
    reply = turn(p, "Actually, can I move it to 11?")
    assert only_call(reply) == (
        "reschedule_appointment", {"new_day": "2026-11-27", "new_time": "11:00", "booking_id": "BK-1"}
    )


@pytest.mark.parametrize(
    ("answer", "time"),
    [
        ("The first one.", "09:00"),  # not the 1st of December
        ("The second one please.", "11:00"),
        ("The last one.", "14:30"),
        ("The earliest.", "09:00"),
        ("I'll take the 9.", "09:00"),
        ("The 2:30 one.", "14:30"),
        ("Half two.", "14:30"),
    ],
)
def test_the_caller_picks_one_of_the_offered_times(answer: str, time: str) -> None:
    p = policy()
    check = turn(p, "I'd like an appointment on Friday")
    offer = result(p, check, {"day": "2026-11-27", "free_slots": ["09:00", "11:00", "14:30"]})
    assert offer.text.startswith("On Friday, November 27 I have 9 AM, 11 AM or 2:30 PM free.")
    assert turn(p, answer).text == "Can I have your name?"
    assert (p.state.day, p.state.time) == (date(2026, 11, 27), time)


def test_find_my_appointments() -> None:
    p = policy()
    reply = turn(p, "When is my appointment?")
    assert only_call(reply) == ("find_my_appointments", {})
    text = result(p, reply, {"appointments": [{"booking_id": "BK-9", "day": "2026-11-30", "time": "16:00"}]}).text
    assert text.startswith("You have an appointment on Monday, November 30 at 4 PM.")
    assert p.state.booking_id == "BK-9"
    reply = turn(p, "cancel it")
    assert only_call(reply) == ("cancel_appointment", {"booking_id": "BK-9"})


@pytest.mark.parametrize("utterance", ["Can I speak to a person?", "Let me talk to a human please", "Representative!"])
def test_transfer(utterance: str) -> None:
    reply = turn(policy(), utterance)
    assert reply.text == "Sure, let me connect you with someone who can help."
    assert only_call(reply) == ("transfer_call", {"reason": "caller asked for a person"})


def test_transfer_result_is_silent_and_failure_is_spoken() -> None:
    p = policy()
    reply = turn(p, "get me a person")
    assert result(p, reply, {"status": "transferring"}).text == ""
    reply = turn(p, "operator")
    assert result(p, reply, {"error": "no agents", "retryable": False}).text.startswith(
        "Sorry, I couldn't transfer you right now."
    )


@pytest.mark.parametrize("utterance", ["Bye!", "That's all, thanks.", "No thanks, goodbye", "that is all"])
def test_goodbye(utterance: str) -> None:
    reply = turn(policy(), utterance)
    assert reply.text == "Thanks for calling. Goodbye!"
    assert only_call(reply)[0] == "end_call"


def test_goodbye_without_end_call_tool_only_speaks() -> None:
    reply = turn(policy({"book_appointment"}), "bye")
    assert reply == Reply("Thanks for calling. Goodbye!")


def test_only_declared_tools_are_used() -> None:
    p = policy({"lookup_order"})
    reply = turn(p, "I'd like to book an appointment tomorrow at 10")
    assert not reply.calls
    assert reply.text == "Sorry, I can't do that on this line. I can check on an order. What would you like to do?"
    assert turn(policy({"book_appointment"}), "Can I talk to a person?").text.startswith(
        "Sorry, I can't transfer calls on this line."
    )


def test_unknown_utterance_gets_a_clarifying_question() -> None:
    reply = turn(policy(), "What's the weather like?")
    assert reply.text == (
        "Sorry, I didn't quite get that. I can book an appointment, change or cancel an appointment, "
        "or check on an order. What would you like to do?"
    )
    assert turn(policy(), "").text == "Sorry, I didn't catch that. Could you say that again?"


@pytest.mark.parametrize("utterance", ["Tomorrow at 10, please.", "Friday", "How about Monday at 2?"])
def test_bare_date_and_time_starts_a_booking(utterance: str) -> None:
    p = policy()
    reply = turn(p, utterance)
    assert p.state.intent == "book", reply


def test_a_question_mentioning_today_is_not_a_booking() -> None:
    p = policy()
    reply = turn(p, "What's the weather like today?")
    assert not reply.calls and reply.text.startswith("Sorry, I didn't quite get that.")
    assert p.state.intent is None


def test_unclear_answer_repeats_the_question() -> None:
    p = policy(ALL_TOOLS - {"check_availability"})
    turn(p, "book an appointment for Monday")
    assert turn(p, "hmm let me think").text == "Sorry, and what time?"
    assert p.state.awaiting == "time"


def test_yes_to_anything_else_and_idle_prompts() -> None:
    p = policy()
    reply = turn(p, "order 4567")
    result(p, reply, {"found": True, "order_number": "4567", "status": "processing"})
    assert turn(p, "yes").text == "Sure, what can I help you with?"
    assert p.respond().text == "Is there anything else I can help you with?"


def test_truncation_forgets_unheard_question() -> None:
    p = policy()
    assert turn(p, "I'd like to book").text == "What day works for you?"
    p.said("item_1", "What day works for you?")
    p.truncated("item_1", "What")
    assert p.state.history[-1] == ("assistant", "What")
    assert p.state.awaiting is None
    # a bare ordinal is no longer taken as the answer to a question they never heard
    assert turn(p, "27th").text == "What day works for you?"


def test_results_and_speech_in_one_response() -> None:
    p = policy()
    reply = turn(p, "order 4567")
    p.tool_result(reply.calls[0].call_id, json.dumps({"found": True, "order_number": "4567", "status": "shipped"}))
    p.hear("and can I book for tomorrow at 9, my name is Ana")
    combined = p.respond()
    assert combined.text.startswith("Order 4567 has shipped.")
    assert only_call(combined)[0] == "book_appointment"


def test_unknown_call_ids_and_non_json_outputs_are_harmless() -> None:
    p = policy()
    p.tool_result("call_unknown", "{}")
    assert p.respond().text == "Hello! How can I help you today?"
    reply = turn(p, "cancel my appointment")
    p.tool_result(reply.calls[0].call_id, "cancelled ok")
    assert p.respond().text.startswith("I couldn't find an appointment to cancel.")


def test_today_is_the_tools_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLS_TODAY", "2030-01-02")
    assert default_today() == date(2030, 1, 2)
    monkeypatch.delenv("TOOLS_TODAY")
    assert default_today() == date.today()


def test_the_day_the_service_tells_every_model_is_the_engines_day() -> None:
    """One clock: the service appends the tools' day to every session's instructions
    (TOOLS_TODAY or the calendar); the engine, in another process, plans with it."""
    from agent.flows import Flow
    from agent.service.sessions import make_session
    from agent.service.settings import Settings

    session = make_session(Flow(name="f", instructions="Be brief."), (), Settings(tools_today="2026-12-04"))
    assert dated(session.config.instructions) == date(2026, 12, 4)
    assert dated("Be brief.") is None and dated(None) is None


def test_recalled_history_informs_but_does_not_act() -> None:
    """A re-seeded session: old lines update what we know without re-running tools."""
    p = policy()
    p.recall("I'd like to book tomorrow at 10, my name is Ana")
    p.said("item_old", "You're booked for Wednesday, November 25 at 10 AM.")
    assert p.respond() == Reply("Is there anything else I can help you with?")
    assert p.state.name == "Ana"
    assert not turn(p, "Hmm, okay.").calls  # nothing is re-booked
    assert only_call(turn(p, "Book another one for Friday at 9"))[1]["name"] == "Ana"


def test_hello_and_can_you_hear_me_get_an_answer_not_a_menu() -> None:
    p = policy()
    assert turn(p, "Hello?").text == "Yes, I can hear you. How can I help you today?"
    assert turn(p, "I want to book.").text == "What day works for you?"
    assert turn(p, "Hello, can you hear me?").text == "Yes, I can hear you. What day works for you?"


def test_repeat_says_the_last_thing_again() -> None:
    p = policy()
    p.said("item_1", "On Friday, November 27 I have 9 AM or 11 AM free.")
    assert turn(p, "Sorry, can you repeat that?").text == "On Friday, November 27 I have 9 AM or 11 AM free."
    assert turn(p, "I didn't catch that.").text == "On Friday, November 27 I have 9 AM or 11 AM free."


def test_order_follow_ups_and_a_thankful_goodbye() -> None:
    p = policy()
    first = turn(p, "It's 4567.")  # a bare number on an orders line, before we asked
    assert only_call(first) == ("lookup_order", {"order_number": "4567"})
    answer = {"found": True, "order_number": "4567", "status": "shipped", "eta": "2026-11-28"}
    assert result(p, first, answer).text.endswith("Is there anything else I can help you with?")
    again = turn(p, "When exactly will it arrive?")  # about the same order: no number asked
    assert only_call(again) == ("lookup_order", {"order_number": "4567"})
    result(p, again, answer)
    bye = turn(p, "OK, thanks.")
    assert bye.text == "Thanks for calling. Goodbye!" and only_call(bye)[0] == "end_call"


@pytest.mark.parametrize(
    ("utterance", "intent"),
    [
        ("I was wondering if I could get in to see the doctor sometime next week?", "book"),
        ("Tuesday would be good.", "book"),
        ("I'm calling to check on something I ordered last week.", "order"),
        ("I'm calling in order to book an appointment.", "book"),
    ],
)
def test_everyday_ways_of_asking(utterance: str, intent: str) -> None:
    p = policy()
    turn(p, utterance)
    assert p.state.intent == intent


# -- changes to bookings: which one, read back, a yes ---------------------------------------------
THU = {"booking_id": "BK-1", "day": "2026-11-26", "time": "10:00", "name": "Ana",
       "spoken": "Thursday, November 26 at 10 AM, under Ana"}  # fmt: skip
FRI = {"booking_id": "BK-2", "day": "2026-11-27", "time": "15:00", "name": "Ana",
       "spoken": "Friday, November 27 at 3 PM, under Ana"}  # fmt: skip
WHICH = {"error": "which_booking", "candidates": [THU, FRI],
         "say": "You have 2 appointments: Thursday, November 26 at 10 AM, under Ana and "
                "Friday, November 27 at 3 PM, under Ana. Which one do you mean?"}  # fmt: skip


def _confirm(b: dict[str, Any], what: str = "cancel", **more: Any) -> dict[str, Any]:
    return {"status": "needs_confirmation", "booking_id": b["booking_id"], **more,
            "say": f"Just to confirm: {what} your appointment on {b['spoken']}?"}  # fmt: skip


def test_cancel_with_two_bookings_asks_which_then_reads_back_then_cancels() -> None:
    p = policy()
    reply = turn(p, "I need to cancel my appointment")
    assert only_call(reply) == ("cancel_appointment", {})
    asked = result(p, reply, WHICH)
    assert asked.text == WHICH["say"] and not asked.calls
    reply = turn(p, "The Friday one.")
    assert only_call(reply) == ("cancel_appointment", {"day": "2026-11-27"})
    read_back = result(p, reply, _confirm(FRI))
    assert read_back.text == "Just to confirm: cancel your appointment on Friday, November 27 at 3 PM, under Ana?"
    assert not read_back.calls
    reply = turn(p, "Yes, please.")
    assert only_call(reply) == ("cancel_appointment", {"booking_id": "BK-2", "confirmed": True})
    done = result(p, reply, {"status": "cancelled", "booking_id": "BK-2", "day": "2026-11-27", "time": "15:00"})
    assert done.text.startswith("Your appointment on Friday, November 27 at 3 PM has been cancelled.")


def test_cancel_names_the_day_up_front() -> None:
    reply = turn(policy(), "Please cancel my appointment on Thursday at 10")
    assert only_call(reply) == ("cancel_appointment", {"day": "2026-11-26", "time": "10:00"})


@pytest.mark.parametrize(("said", "index"), [("the second one", 1), ("The first one, please.", 0)])
def test_a_listed_booking_is_picked_by_its_place(said: str, index: int) -> None:
    p = policy()
    result(p, turn(p, "cancel my booking"), WHICH)
    picked = [THU, FRI][index]
    assert only_call(turn(p, said)) == ("cancel_appointment", {"booking_id": picked["booking_id"]})


@pytest.mark.parametrize("answer", ["No.", "No thanks.", "Nope, leave it."])
def test_a_no_to_the_read_back_changes_nothing_and_keeps_the_call(answer: str) -> None:
    p = policy()
    reply = turn(p, "cancel my appointment")
    result(p, reply, _confirm(THU))
    declined = turn(p, answer)
    assert declined.calls == ()
    assert declined.text == "OK, I haven't changed anything. Is there anything else I can help you with?"


def test_no_yes_is_assumed_for_a_read_back_the_caller_did_not_hear() -> None:
    p = policy()
    reply = turn(p, "cancel my appointment")
    read_back = result(p, reply, _confirm(THU))
    p.said("item_rb", read_back.text)
    p.truncated("item_rb", "Just to confirm: cancel")
    assert not any(c.arguments.get("confirmed") for c in turn(p, "yes").calls)


def test_an_unclear_answer_to_the_read_back_asks_again() -> None:
    p = policy()
    result(p, turn(p, "cancel my appointment"), _confirm(THU))
    again = turn(p, "hmm")
    assert again.calls == () and again.text.endswith(_confirm(THU)["say"])


def test_reschedule_asks_which_then_moves_the_one_named_after_a_yes() -> None:
    p = policy()
    reply = turn(p, "Can I move my appointment to Monday at 2 pm?")
    assert only_call(reply) == ("reschedule_appointment", {"new_day": "2026-11-30", "new_time": "14:00"})
    assert result(p, reply, WHICH).text == WHICH["say"]
    reply = turn(p, "the 10 o'clock one")
    assert only_call(reply) == (
        "reschedule_appointment", {"new_day": "2026-11-30", "new_time": "14:00", "current_time": "10:00"}
    )
    say = "move your appointment on Thursday, November 26 at 10 AM, under Ana to Monday, November 30 at 2 PM"
    read_back = result(p, reply, {**_confirm(THU), "new_day": "2026-11-30", "new_time": "14:00",
                                  "say": f"Just to confirm: {say}?"})  # fmt: skip
    assert read_back.text == f"Just to confirm: {say}?"
    reply = turn(p, "yes")
    assert only_call(reply) == ("reschedule_appointment", {
        "new_day": "2026-11-30", "new_time": "14:00", "booking_id": "BK-1", "confirmed": True,
    })  # fmt: skip


# -- refusals are spoken as what happened and what can be done ------------------------------------
def test_a_refusal_is_read_out_and_its_offer_can_be_taken() -> None:
    p = policy()
    reply = turn(p, "Book me in for March 30th at 10 am, my name is Ana")
    say = "We book up to 90 days ahead. The latest I can offer is Monday, February 22 at 9 AM."
    offered = result(p, reply, {"error": "too_far_ahead", "say": say,
                                "alternatives": [{"day": "2027-02-22", "time": "09:00"}]})  # fmt: skip
    assert offered.text == f"{say} Would that work?" and not offered.calls
    reply = turn(p, "Yes, that works.")
    assert only_call(reply) == ("book_appointment", {"day": "2027-02-22", "time": "09:00", "name": "Ana"})


def test_a_taken_slot_offers_the_nearest_and_one_is_picked() -> None:
    p = policy()
    reply = turn(p, "Book tomorrow at 10 am for Ana")
    say = "Sorry, Wednesday, November 25 at 10 AM is already taken. On Wednesday, November 25 I have 9:30 AM, 10:30 AM or 11 AM."
    alternatives = [{"day": "2026-11-25", "time": t} for t in ("09:30", "10:30", "11:00")]
    offered = result(p, reply, {"error": "slot_taken", "say": say, "alternatives": alternatives})
    assert offered.text == f"{say} Would one of those work?"
    assert only_call(turn(p, "the second one"))[1]["time"] == "10:30"


def test_a_refusal_without_an_offer_does_not_offer_a_transfer() -> None:
    p = policy()
    reply = turn(p, "cancel my appointment")
    say = "That booking was made from a different phone number, so I can't change it from this one."
    answer = result(p, reply, {"error": "not_your_booking", "say": say})
    assert answer.text == f"{say} Is there anything else I can help you with?"
    assert "connect you" not in answer.text


def test_a_tool_that_keeps_failing_is_when_a_person_is_offered() -> None:
    p = policy()
    reply = turn(p, "cancel my appointment")
    retry = result(p, reply, {"error": "cancel_appointment took too long to answer", "retryable": True})
    failed = result(p, retry, {"error": "cancel_appointment took too long to answer", "retryable": True})
    assert failed.text.endswith("Would you like me to connect you with someone?")


# -- a weekday and a date that disagree are asked about --------------------------------------------
def test_weekday_and_date_disagreeing_are_asked_about() -> None:
    p = policy()
    asked = turn(p, "Can I book Thursday the fourth at 10 am? My name is Ana.")
    assert asked.calls == ()
    assert asked.text == "The 4th is a Friday. Did you mean Friday, December 4, or Thursday, December 3?"
    reply = turn(p, "Thursday.")
    assert only_call(reply) == ("book_appointment", {"day": "2026-12-03", "time": "10:00", "name": "Ana"})


def test_weekday_and_date_that_agree_are_not_questioned() -> None:
    reply = turn(policy(), "Can I book Friday the fourth at 10 am? My name is Ana.")
    assert only_call(reply)[1]["day"] == "2026-12-04"


def test_a_yes_over_the_read_back_s_last_words_still_answers_it() -> None:
    # the caller heard day, time and name; their "yes" began on the last word
    p = policy()
    reply = turn(p, "cancel my appointment")
    read_back = result(p, reply, _confirm(THU))
    p.said("item_rb", read_back.text)
    p.truncated("item_rb", read_back.text.rsplit(" ", 1)[0])
    assert any(c.arguments.get("confirmed") for c in turn(p, "yes").calls)
