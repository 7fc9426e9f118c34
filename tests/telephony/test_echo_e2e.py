"""Issue-2 proof: our real webhook + media stream under uvicorn, driven by the emulator.

Everything here is the shipped telephony code (signature check, TwiML, stream tokens,
pacing, marks, clear); the only stand-in is the caller (the emulator behaves as Twilio).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
import websockets
from starlette.applications import Starlette

from agent.devkit.stack import bind_free, run_app
from telephony.audio import pcm16_to_ulaw
from telephony.media_route import echo_handler, media_stream_route
from telephony.protocol import (
    Dtmf,
    Stop,
)
from telephony.stream import TwilioStream
from telephony.testing.emulator import EmulatedCall, WebhookForbidden, dial_webhook
from telephony.testing.messages import (
    InboundBuilder,
)
from telephony.tokens import StreamTokens
from telephony.webhook import WebhookConfig, voice_routes

TOKEN = "twilio-auth-token-for-tests"


def tone(ms: int, hz: float = 440.0) -> bytes:
    t = np.arange(8 * ms) / 8000
    return pcm16_to_ulaw((6000 * np.sin(2 * math.pi * hz * t)).astype(np.int16).tobytes())


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_app(handler: Callable[[TwilioStream], Awaitable[None]], base: str, clock: Clock) -> Starlette:
    tokens = StreamTokens(b"0123456789abcdef0123456789abcdef", ttl_s=30, clock=clock)
    cfg = WebhookConfig(public_url=base, auth_token=TOKEN, tokens=tokens)
    routes = [*voice_routes(cfg, lambda form: "echo", None),
              media_stream_route("/twilio/media", handler, tokens)]
    return Starlette(routes=routes)


@pytest.fixture
async def echo_server():
    sock = bind_free()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    clock = Clock()
    async with run_app(make_app(echo_handler, base, clock), sock) as url:
        yield url, clock


async def test_audio_in_equals_audio_out_and_marks_are_echoed(echo_server) -> None:
    base, _ = echo_server
    target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15551112222")
    async with EmulatedCall(target) as call:
        await call.say(tone(1000))
        spoken = len(call.caller_audio)
        await call.wait_until(lambda c: len(c.received_audio) >= spoken, 10)
    sent, got = call.caller_audio, call.received_audio
    assert len(got) >= 8000  # the whole utterance came back
    assert got == sent[: len(got)]  # byte for byte, in order
    echoed = [m for m in call.marks if m.echoed_at is not None and not m.cleared]
    assert len(echoed) >= 5  # a mark every 100 ms of audio played
    assert all(m.echoed_at >= m.received_at for m in echoed)
    assert call.violations == []


async def test_clear_drops_queued_audio() -> None:
    heard_at_clear: list[int] = []

    async def talker(stream: TwilioStream) -> None:
        await stream.send_audio(tone(3000), "answer")
        await stream.end_segment("answer")
        async for event in stream:
            if isinstance(event, Dtmf):
                snapshot = await stream.clear()
                heard_at_clear.append(snapshot.heard_ms)
            elif isinstance(event, Stop):
                return

    sock = bind_free()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with run_app(make_app(talker, base, Clock()), sock):
        target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15551112222")
        async with EmulatedCall(target) as call:
            await call.wait_until(lambda c: c.turn.bot_audio_played_ms >= 600, 10)
            await call.dtmf("1")
            await call.wait_until(lambda c: any(e.kind == "clear" for e in c.timeline), 10)
            turn = call.turn
    assert heard_at_clear and 400 <= heard_at_clear[0] <= 900
    assert turn.bot_audio_played_ms < 1500  # far less than the 3 s queued
    assert turn.bot_audio_discarded_ms > 0 or turn.bot_audio_received_ms < 1500
    assert any(e.kind == "clear" for e in call.timeline)
    # Every mark came back: played ones as played, the rest at once on clear.
    assert all(m.echoed_at is not None for m in call.marks)


async def test_forged_signature_is_refused(echo_server) -> None:
    base, _ = echo_server
    with pytest.raises(WebhookForbidden):
        await dial_webhook(base, "not-the-token", to="+15550001000", from_="+15551112222")


async def test_bad_reused_and_expired_tokens_close_1008(echo_server) -> None:
    base, clock = echo_server
    # Bad: a token that was tampered with.
    target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15551112222")
    bad = dataclasses.replace(target, parameters={**target.parameters, "token": target.parameters["token"][:-2] + "xx"})
    call = EmulatedCall(bad)
    async with call:
        await call.wait_closed(5)
    assert call.closed_by_server and call.close_code == 1008
    # Reused: the same (valid) token twice.
    first = EmulatedCall(target)
    async with first:
        await first.say(tone(100))
    again = EmulatedCall(target)
    async with again:
        await again.wait_closed(5)
    assert again.close_code == 1008
    # Expired: issued, then the clock moves past its lifetime.
    target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15551112222")
    clock.now += 31
    late = EmulatedCall(target)
    async with late:
        await late.wait_closed(5)
    assert late.close_code == 1008


async def test_malformed_messages_leave_a_parallel_call_untouched(echo_server) -> None:
    base, _ = echo_server
    good_target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15551112222")
    bad_target = await dial_webhook(base, TOKEN, to="+15550001000", from_="+15553334444")
    async with EmulatedCall(good_target) as good:
        # The abusive call speaks raw websockets so it can send garbage.
        ws_url = bad_target.ws_url
        b = InboundBuilder("MZbad", bad_target.call_sid, bad_target.account_sid)
        async with websockets.connect(ws_url) as ws:
            await ws.send(b.connected())
            await ws.send(b.start(bad_target.parameters))
            garbage = [
                "not json", "[]", '{"event": 7}', '{"event":"bogus","sequenceNumber":"1","streamSid":"x"}',
                json.dumps({"event": "media", "sequenceNumber": "9", "streamSid": "MZbad",
                            "media": {"chunk": "1", "timestamp": "0", "payload": "!!!"}}),
                "x" * 70_000,
            ]
            for i in range(20):
                await ws.send(garbage[i % len(garbage)])
            await ws.send(b.media(tone(20), 20))  # and a valid frame still echoes
        await good.say(tone(800))
        spoken = len(good.caller_audio)
        await good.wait_until(lambda c: len(c.received_audio) >= spoken, 10)
    assert good.received_audio == good.caller_audio[: len(good.received_audio)]
    assert good.violations == []
