"""Twilio REST control against a real local HTTP server standing in for api.twilio.com."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator

import pytest

from telephony.control import ControlError, TwilioControl
from tests.fakes.twilio_api import AC, BASE, CA, FakeTwilioApi
from tests.helpers.servers import run_app

TOKEN = "auth-token-xyz"
PN = "PN" + "d" * 32
NUMBER = "+15553334444"


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeTwilioApi, TwilioControl]]:
    fake = FakeTwilioApi()
    async with run_app(fake.app()) as base:
        yield fake, TwilioControl(AC, TOKEN, api_base_url=base)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def single(form: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in form.items() if len(v) == 1}


async def test_hangup(api: tuple[FakeTwilioApi, TwilioControl]) -> None:
    fake, control = api
    await control.hangup(CA)
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("POST", f"{BASE}/Calls/{CA}.json")
    assert seen.form == {"Status": ["completed"]}
    assert seen.auth == basic(AC, TOKEN)


async def test_rest_calls_run_off_the_event_loop(api: tuple[FakeTwilioApi, TwilioControl]) -> None:
    fake, control = api
    # The fake server runs on this loop: a blocking client would deadlock right here.
    await asyncio.wait_for(control.hangup(CA), timeout=10)
    assert len(fake.requests) == 1


async def test_transfer_dials_the_number(api: tuple[FakeTwilioApi, TwilioControl]) -> None:
    fake, control = api
    await control.transfer(CA, "+15557654321", caller_id="+15553334444")
    await control.transfer(CA, "+15557654321")
    first, second = fake.requests
    assert first.path == f"{BASE}/Calls/{CA}.json"
    assert first.form == {
        "Twiml": [
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            '<Dial callerId="+15553334444">+15557654321</Dial></Response>'
        ]
    }
    assert second.form["Twiml"][0].endswith("<Response><Dial>+15557654321</Dial></Response>")


async def test_place_call(api: tuple[FakeTwilioApi, TwilioControl]) -> None:
    fake, control = api
    sid = await control.place_call(
        "+15551112222",
        NUMBER,
        "https://agent.example.com/twilio/voice",
        "https://agent.example.com/twilio/status",
    )
    assert sid == CA
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("POST", f"{BASE}/Calls.json")
    assert single(seen.form) == {
        "To": "+15551112222",
        "From": NUMBER,
        "Url": "https://agent.example.com/twilio/voice",
        "Method": "POST",
        "StatusCallback": "https://agent.example.com/twilio/status",
        "StatusCallbackMethod": "POST",
    }
    assert seen.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert seen.auth == basic(AC, TOKEN)


async def test_configure_number_looks_up_the_sid_then_updates(
    api: tuple[FakeTwilioApi, TwilioControl],
) -> None:
    fake, control = api
    fake.numbers = [
        {"sid": "PN" + "e" * 32, "phone_number": "+155533344445"},  # pattern match, not ours
        {"sid": PN, "phone_number": NUMBER},
    ]
    sid = await control.configure_number(
        NUMBER, "https://agent.example.com/twilio/voice", "https://agent.example.com/twilio/status"
    )
    assert sid == PN
    lookup, update = fake.requests
    assert (lookup.method, lookup.path) == ("GET", f"{BASE}/IncomingPhoneNumbers.json")
    assert lookup.query["PhoneNumber"] == [NUMBER]
    assert (update.method, update.path) == ("POST", f"{BASE}/IncomingPhoneNumbers/{PN}.json")
    assert single(update.form) == {
        "VoiceUrl": "https://agent.example.com/twilio/voice",
        "VoiceMethod": "POST",
        "StatusCallback": "https://agent.example.com/twilio/status",
        "StatusCallbackMethod": "POST",
    }
    assert all(r.auth == basic(AC, TOKEN) for r in fake.requests)


async def test_configure_unknown_number_fails_clearly(
    api: tuple[FakeTwilioApi, TwilioControl],
) -> None:
    fake, control = api
    with pytest.raises(ControlError, match="not a number on this account"):
        await control.configure_number(NUMBER, "https://a/v", "https://a/s")
    assert len(fake.requests) == 1  # no update attempted


async def test_twilio_errors_become_control_errors(
    api: tuple[FakeTwilioApi, TwilioControl],
) -> None:
    _, control = api
    with pytest.raises(ControlError) as info:
        await control.hangup("CAmissing")
    assert info.value.status == 404 and info.value.code == 20404
    assert "hangup" in str(info.value)


async def test_unreachable_api_becomes_control_error() -> None:
    # A port nothing listens on: bind, note it, close.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    control = TwilioControl(AC, TOKEN, api_base_url=f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(ControlError, match="hangup"):
        await control.hangup(CA)
