"""Several calls at once: each session gets its own answer, none starves."""

from __future__ import annotations

import asyncio
import json

import pytest

from .conftest import audio_of, phone_session, speech, transcript_of

pytestmark = pytest.mark.local

CALLERS = [
    ("I'd like to book an appointment tomorrow at 10 am, my name is Ana.", "book_appointment"),
    ("Where is my order? The number is four five six seven.", "lookup_order"),
    ("Can I speak to a person please?", "transfer_call"),
    ("I need to cancel my appointment.", "cancel_appointment"),
]


async def test_four_sessions_talking_at_once(connect) -> None:
    for text, _ in CALLERS:
        speech(text)  # render the callers' audio up front, outside the measured part

    async def caller(text: str, tool: str) -> tuple[str, dict, str]:
        async with connect() as c:
            await c.update(phone_session())
            await c.say(text)
            events = await c.until_done(limit=90)
            calls = [i for i in events[-1]["response"]["output"] if i["type"] == "function_call"]
            assert [i["name"] for i in calls] == [tool], (text, events[-1]["response"])
            # answer the call and make sure audio comes back for every caller
            await c.send({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": calls[0]["call_id"],
                "output": json.dumps({"status": "ok"})}})  # fmt: skip
            await c.send({"type": "response.create", "response": {"instructions": 'Say exactly: "All set."'}})
            spoken = await c.until_done(limit=90)
            assert len(audio_of(spoken)) > 2000
            return tool, json.loads(calls[0]["arguments"]), transcript_of(spoken)

    results = await asyncio.gather(*(caller(text, tool) for text, tool in CALLERS))
    by_tool = {tool: args for tool, args, _ in results}
    assert by_tool["book_appointment"]["time"] == "10:00"
    assert by_tool["lookup_order"] == {"order_number": "4567"}
    assert all(said == "All set." for _, _, said in results)
