"""The Media Streams endpoint over a real uvicorn server and real websockets clients.

The client plays Twilio: `connected`, `start` with our parameters, μ-law media built
by `InboundBuilder`, and mark echoes. Synchronisation is by message order and
asyncio queues; the only timeouts are upper bounds on waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from telephony.media_route import echo_handler, media_stream_route
from telephony.protocol import (
    Dtmf,
    Media,
    Stop,
)
from telephony.stream import StreamStats, TwilioStream
from telephony.testing.messages import (
    InboundBuilder,
    OutboundEvent,
    OutClear,
    OutMark,
    OutMedia,
    parse_outbound,
)
from telephony.tokens import MemoryUsedTokens, StreamTokens
from tests.helpers.servers import run_app

SECRET = b"k" * 32
WAIT = 10.0  # upper bound for any single wait; tests normally finish far sooner


def frame(seed: int) -> bytes:
    return random.Random(seed).randbytes(160)


@dataclass
class Server:
    url: str
    tokens: StreamTokens
    ran: list[str] = field(default_factory=list)  # call sids whose handler ran
    done: asyncio.Queue[tuple[str, StreamStats, int]] = field(default_factory=asyncio.Queue)


@asynccontextmanager
async def serve(
    handler: Callable[[TwilioStream], Awaitable[None]],
    *,
    tokens: StreamTokens | None = None,
    ws_max_size: int = 64 * 1024,
    **route_options: Any,
) -> AsyncIterator[Server]:
    tokens = tokens or StreamTokens(SECRET, used=MemoryUsedTokens())
    server = Server(url="", tokens=tokens)

    async def recording(stream: TwilioStream) -> None:
        server.ran.append(stream.call_sid)
        try:
            await handler(stream)
        finally:
            server.done.put_nowait((stream.call_sid, stream.stats, stream.heard_ms))

    app = Starlette(
        routes=[media_stream_route("/twilio/media", recording, tokens, **route_options)]
    )
    async with run_app(app, ws_max_size=ws_max_size) as base:
        server.url = base.replace("http://", "ws://") + "/twilio/media"
        yield server


class Phone:
    """Twilio's side of one call."""

    def __init__(self, ws: ClientConnection, call_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.twilio = InboundBuilder(
            stream_sid="MZ" + call_sid[2:], call_sid=call_sid, account_sid="AC" + "0" * 32
        )

    async def start(self, token: str | StreamTokens, **params: str) -> None:
        """`connected` + `start`; given the server's tokens, a token bound to exactly
        these parameters (as the voice webhook issues it), else the token as given."""
        params = {"flow": "echo", **params}
        if isinstance(token, StreamTokens):
            token = token.issue(self.call_sid, params)
        await self.ws.send(self.twilio.connected())
        await self.ws.send(self.twilio.start({**params, "token": token}))

    async def media(self, ulaw: bytes) -> None:
        await self.ws.send(self.twilio.media(ulaw, timestamp_ms=self.twilio._chunk * 20))

    async def echo(self, name: str) -> None:
        await self.ws.send(self.twilio.mark(name))

    async def answer_probe(self) -> str:
        """The server's first message: an audio-less mark timing the round trip. Twilio
        echoes such a mark at once (nothing is queued before it)."""
        probe = await self.recv()
        assert isinstance(probe, OutMark), probe
        await self.echo(probe.name)
        return probe.name

    async def recv(self) -> OutboundEvent | None:
        """Next message from the server, or None once the socket has closed."""
        try:
            text = await asyncio.wait_for(self.ws.recv(), WAIT)
        except ConnectionClosed:
            return None
        event = parse_outbound(text)
        assert event.stream_sid == self.twilio.stream_sid
        return event

    async def closed(self) -> tuple[int | None, str | None]:
        """Drain until the server closes; (code, reason)."""
        while await self.recv() is not None:
            pass
        return self.ws.close_code, self.ws.close_reason


@asynccontextmanager
async def dial(server: Server, call_sid: str = "CA" + "1" * 32) -> AsyncIterator[Phone]:
    async with connect(server.url, max_size=None) as ws:
        yield Phone(ws, call_sid)


async def handler_result(server: Server) -> tuple[str, StreamStats, int]:
    return await asyncio.wait_for(server.done.get(), WAIT)


# ---------------------------------------------------------------- authentication


async def test_valid_token_runs_handler_with_parameters() -> None:
    seen: asyncio.Queue[TwilioStream] = asyncio.Queue()

    async def handler(stream: TwilioStream) -> None:
        seen.put_nowait(stream)
        await stream.close()

    async with serve(handler) as server, dial(server) as phone:
        await phone.start(server.tokens, **{"from": "+15551112222"})
        assert await phone.closed() == (1000, "")
        stream = seen.get_nowait()
    assert stream.call_sid == phone.call_sid
    assert stream.stream_sid == phone.twilio.stream_sid
    assert stream.parameters["flow"] == "echo" and stream.parameters["from"] == "+15551112222"
    assert stream.start.call_sid == phone.call_sid


def _expired_token(call_sid: str) -> str:
    past = StreamTokens(SECRET, ttl_s=60, used=MemoryUsedTokens(), clock=lambda: 1_000_000.0)
    return past.issue(call_sid)


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda tokens, sid: "not-a-token", "malformed"),
        (lambda tokens, sid: StreamTokens(b"x" * 32).issue(sid), "bad signature"),
        (lambda tokens, sid: _expired_token(sid), "expired"),
        (lambda tokens, sid: tokens.issue("CA" + "9" * 32, {"flow": "echo"}), "wrong call"),
        (lambda tokens, sid: tokens.issue(sid, {"flow": "vip"}), "parameters changed"),
        (lambda tokens, sid: "", "malformed"),
    ],
)
async def test_bad_token_closes_1008_and_handler_never_runs(
    make_token: Callable[[StreamTokens, str], str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony")
    async with serve(echo_handler) as server, dial(server) as phone:
        await phone.start(make_token(server.tokens, phone.call_sid))
        assert await phone.closed() == (1008, f"stream token {reason}")
        assert server.ran == []
    assert f"stream token rejected: {reason}" in caplog.text


async def test_reused_token_closes_1008() -> None:
    async def handler(stream: TwilioStream) -> None:
        await stream.close()

    async with serve(handler) as server:
        token = server.tokens.issue("CA" + "1" * 32, {"flow": "echo"})
        async with dial(server) as first:
            await first.start(token)
            assert (await first.closed())[0] == 1000
        async with dial(server) as replay:
            await replay.start(token)
            assert await replay.closed() == (1008, "stream token already used")
        assert len(server.ran) == 1


@pytest.mark.parametrize(
    ("opening", "reason"),
    [
        (
            lambda p: [p.twilio.connected(), p.twilio.media(frame(1), 0)],
            "expected 'start', got 'media'",
        ),
        (lambda p: [p.twilio.start({"token": "t"})], "expected 'connected', got 'start'"),
        (lambda p: ["{not json"], "invalid message before start"),
        (lambda p: [b"\x00\x01"], "binary frame before start"),
        (lambda p: [p.twilio.connected(), "x" * 5000], "oversized message before start"),
    ],
)
async def test_anything_but_connected_then_start_is_a_policy_violation(
    opening: Callable[[Phone], list[str | bytes]], reason: str
) -> None:
    async with serve(echo_handler, max_message_bytes=4096) as server, dial(server) as phone:
        for message in opening(phone):
            await phone.ws.send(message)
        code, why = await phone.closed()
        assert code == 1008 and why is not None and why.startswith(reason)
        assert server.ran == []


async def test_no_start_in_time_closes_1008() -> None:
    async with serve(echo_handler, start_timeout_s=0.2) as server, dial(server) as phone:
        await phone.ws.send(phone.twilio.connected())
        assert await phone.closed() == (1008, "no start message in time")


# ---------------------------------------------------------------- echo and marks


async def run_echo_call(server: Server, phone: Phone, frames: list[bytes]) -> list[bytes]:
    """Start the call, send `frames`, echo every mark like a phone, return the audio played back."""
    await phone.start(server.tokens)
    return await run_echo_call_started(phone, frames)


async def test_echo_plays_the_callers_audio_back_byte_exact() -> None:
    frames = [frame(i) for i in range(100)]
    async with serve(echo_handler) as server, dial(server) as phone:
        received = await run_echo_call(server, phone, frames)
        call_sid, stats, heard_ms = await handler_result(server)
    assert b"".join(received) == b"".join(frames)
    assert call_sid == phone.call_sid
    assert heard_ms == 2000  # every mark echoed: the caller heard it all
    assert stats.frames_in == 100 and stats.frames_out == 100
    assert stats.marks_sent >= 20 and stats.marks_acked == stats.marks_sent
    assert len(stats.mark_rtt_ms) == stats.marks_acked  # every mark echoed by name
    assert all(ms >= 0 for ms in stats.mark_rtt_ms)
    assert stats.malformed == 0 and stats.sequence_gaps == 0


async def test_pacing_never_exceeds_lead_and_heard_follows_echoes() -> None:
    results: asyncio.Queue[tuple[bool, int, int]] = asyncio.Queue()
    audio = bytes(random.Random(7).randbytes(8 * 3000))  # 3 s

    async def handler(stream: TwilioStream) -> None:
        async def speak() -> None:
            await stream.send_audio(audio, "reply")
            await stream.end_segment("reply")
            played = await stream.wait_played(WAIT)
            results.put_nowait((played, stream.heard_ms, stream.heard_ms_of("reply")))
            await stream.close()

        speaker = asyncio.create_task(speak())
        async for _ in stream:
            pass
        await speaker

    async with serve(handler, lead_ms=200) as server, dial(server) as phone:
        await phone.start(server.tokens)
        received = bytearray()
        acked_frames = 0
        while (event := await phone.recv()) is not None:
            if isinstance(event, OutMedia):
                received += event.payload
                # The server can only have seen echoes we already sent.
                assert len(received) // 160 <= acked_frames + 10
            elif isinstance(event, OutMark):
                acked_frames = len(received) // 160
                await phone.echo(event.name)
        assert phone.ws.close_code == 1000
    assert bytes(received) == audio
    assert results.get_nowait() == (True, 3000, 3000)


async def test_withheld_echoes_hold_audio_back_then_clear_drops_it() -> None:
    probes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    async def handler(stream: TwilioStream) -> None:
        await stream.send_audio(b"\x55" * 16000, "reply")  # 2 s
        probes.put_nowait(("sent", stream.playback.sent_ms, stream.playback.queued_ms))
        async for event in stream:
            if isinstance(event, Dtmf) and event.digit == "1":
                probes.put_nowait(("clear", await stream.clear()))
            elif isinstance(event, Dtmf) and event.digit == "2":
                probes.put_nowait(("heard", stream.heard_ms, stream.playback.marks_discarded))
                await stream.send_audio(b"\x42" * 160, "next")
                await stream.end_segment("next")
            elif isinstance(event, Dtmf) and event.digit == "3":
                probes.put_nowait(("heard", stream.heard_ms, stream.heard_ms_of("next")))
            elif isinstance(event, Stop):
                return

    async with serve(handler, lead_ms=200) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.ws.send(phone.twilio.dtmf("1"))  # the handler clears after sending
        media, marks = 0, []
        while not isinstance(event := await phone.recv(), OutClear):
            if isinstance(event, OutMedia):
                media += 1
            elif isinstance(event, OutMark):
                marks.append(event.name)
        # Nothing echoed: only lead_ms of the 2 s ever left the server.
        assert media == 10 and marks
        assert probes.get_nowait() == ("sent", 200, 1800)
        _, snapshot = await asyncio.wait_for(probes.get(), WAIT)
        # No echo yet: what was heard is the playout clock's few ms since the frames went
        # out (a phone plays what arrives), the rest of the 2 s is dropped.
        assert 0 <= snapshot.heard_ms <= 40 and snapshot.dropped_ms == 2000 - snapshot.heard_ms

        for name in marks:  # Twilio returns every pending mark on clear: discarded, not heard
            await phone.echo(name)
        await phone.ws.send(phone.twilio.dtmf("2"))
        assert await asyncio.wait_for(probes.get(), WAIT) == ("heard", 0, len(marks))
        after = await phone.recv()
        assert isinstance(after, OutMedia) and after.payload == b"\x42" * 160  # nothing stale
        mark = await phone.recv()
        assert isinstance(mark, OutMark)
        await phone.echo(mark.name)
        await phone.ws.send(phone.twilio.dtmf("3"))
        assert await asyncio.wait_for(probes.get(), WAIT) == ("heard", 20, 20)
        await phone.ws.send(phone.twilio.stop())
        assert (await phone.closed())[0] == 1000


async def test_wait_played_times_out_without_echoes_and_ends_with_the_call() -> None:
    results: asyncio.Queue[bool] = asyncio.Queue()

    async def handler(stream: TwilioStream) -> None:
        await stream.send_audio(b"\x55" * 800, "a")
        results.put_nowait(await stream.wait_played(0.05))
        waiter = asyncio.create_task(stream.wait_played(WAIT))
        async for _ in stream:
            pass
        results.put_nowait(await waiter)  # the caller hung up: resolves, not played

    async with serve(handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        assert await asyncio.wait_for(results.get(), WAIT) is False
        await phone.ws.close()
    assert await asyncio.wait_for(results.get(), WAIT) is False


async def test_handler_failure_closes_1011() -> None:
    async def handler(stream: TwilioStream) -> None:
        raise RuntimeError("boom")

    async with serve(handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        assert await phone.closed() == (1011, "internal error")


# ---------------------------------------------------------------- hostile input


def malformed_messages(phone: Phone) -> list[str | bytes]:
    sid = phone.twilio.stream_sid
    good = json.loads(phone.twilio.media(frame(0), 0))
    phone.twilio._seq -= 1  # that message was never sent
    phone.twilio._chunk -= 1
    bad_b64 = {**good, "media": {**good["media"], "payload": "!!!not base64!!!"}}
    other_stream = {**good, "streamSid": "MZ" + "f" * 32}
    return [
        "{not json",
        json.dumps(bad_b64),
        json.dumps({"event": "bogus", "sequenceNumber": "1", "streamSid": sid}),
        json.dumps({**good, "pad": "x" * 5000}),  # over the route's 4 KiB cap
        b"\x00\x01binary",
        json.dumps(other_stream),
        "[]",
        json.dumps(
            {"event": "dtmf", "sequenceNumber": "1", "streamSid": sid, "dtmf": {"digit": "Z"}}
        ),
        phone.twilio.connected(),
        # "²".isdigit() is True but int("²") fails: must still count as malformed.
        json.dumps({**good, "sequenceNumber": "\u00b2"}),
    ] * 2


async def test_malformed_messages_on_one_call_leave_a_parallel_call_untouched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony")
    async with serve(echo_handler, max_message_bytes=4096, ws_max_size=64 * 1024) as server:
        async with dial(server, "CA" + "a" * 32) as bad, dial(server, "CA" + "b" * 32) as good:
            # A third connection sends media before start: closed on its own.
            async with dial(server, "CA" + "c" * 32) as early:
                await early.ws.send(early.twilio.connected())
                await early.ws.send(early.twilio.media(frame(1), 0))
                assert (await early.closed())[0] == 1008

            await bad.start(server.tokens)
            junk = malformed_messages(bad)
            assert len(junk) == 20
            good_frames = [frame(1000 + i) for i in range(50)]
            good_call = asyncio.create_task(run_echo_call(server, good, good_frames))
            for message in junk:
                await bad.ws.send(message)
            # The noisy call still works afterwards.
            bad_frames = [frame(2000 + i) for i in range(5)]
            assert b"".join(await run_echo_call_started(bad, bad_frames)) == b"".join(bad_frames)
            assert b"".join(await asyncio.wait_for(good_call, WAIT)) == b"".join(good_frames)

        results = {sid: stats for sid, stats, _ in [await handler_result(server) for _ in range(2)]}
    assert results[bad.call_sid].malformed == 20
    assert results[good.call_sid].malformed == 0
    assert results[good.call_sid].frames_out == 50
    assert f"call {bad.call_sid}: skipping malformed message" in caplog.text
    assert f"call {good.call_sid}: skipping" not in caplog.text


async def run_echo_call_started(phone: Phone, frames: list[bytes]) -> list[bytes]:
    """Send `frames` on a started call, echo every mark like a phone, return the audio
    played back."""
    received: list[bytes] = []
    done = asyncio.Event()

    async def listen() -> None:
        while (event := await phone.recv()) is not None:
            if isinstance(event, OutMedia):
                received.append(event.payload)
            elif isinstance(event, OutMark):
                await phone.echo(event.name)
                if len(received) == len(frames):
                    done.set()  # the mark after the last frame has been echoed

    listener = asyncio.create_task(listen())
    for f in frames:
        await phone.media(f)
    await asyncio.wait_for(done.wait(), WAIT)
    await phone.ws.send(phone.twilio.stop())
    await asyncio.wait_for(listener, WAIT)
    return received


async def test_too_many_malformed_messages_close_1008() -> None:
    async with serve(echo_handler, malformed_limit=5) as server, dial(server) as phone:
        await phone.start(server.tokens)
        for _ in range(5):
            await phone.ws.send("{bad")
        assert await phone.closed() == (1008, "too many malformed messages")
        _, stats, _ = await handler_result(server)
    assert stats.malformed == 5


async def test_on_malformed_close_closes_at_the_first() -> None:
    async with serve(echo_handler, on_malformed="close") as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.ws.send(b"binary")
        assert await phone.closed() == (1008, "too many malformed messages")


async def test_frames_over_the_server_cap_are_refused_by_uvicorn() -> None:
    async with serve(echo_handler, ws_max_size=16 * 1024) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.answer_probe()
        await phone.media(frame(1))
        assert isinstance(await phone.recv(), OutMedia)  # the call is up (and echoing)
        await phone.ws.send("x" * (20 * 1024))
        assert (await phone.closed())[0] == 1009  # message too big, before any parsing
        _, stats, _ = await handler_result(server)
    assert stats.malformed == 0


async def test_sequence_gap_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="telephony")
    async with serve(echo_handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.media(frame(1))
        phone.twilio._seq += 3  # three messages lost on the way
        await phone.media(frame(2))
        await phone.ws.send(phone.twilio.stop())
        assert (await phone.closed())[0] == 1000
        _, stats, _ = await handler_result(server)
    assert stats.sequence_gaps == 1 and stats.last_inbound_seq == 7
    assert "inbound sequence gap: expected 3, got 6" in caplog.text


async def test_the_first_message_is_a_round_trip_probe_and_its_echo_hears_nothing() -> None:
    async with serve(echo_handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.answer_probe()
        await phone.ws.send(phone.twilio.stop())
        assert (await phone.closed())[0] == 1000
        _, stats, heard = await handler_result(server)
    assert heard == 0 and (stats.marks_sent, stats.marks_acked) == (1, 1)
    assert len(stats.mark_rtt_ms) == 1 and 0 <= stats.mark_rtt_ms[0] < 1000


async def test_unknown_mark_echo_is_ignored() -> None:
    async with serve(echo_handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.echo("never-sent")
        await phone.ws.send(phone.twilio.stop())
        assert (await phone.closed())[0] == 1000
        _, stats, heard = await handler_result(server)
    assert heard == 0 and stats.marks_acked == 0 and stats.malformed == 0


async def test_what_the_caller_sent_before_hanging_up_is_still_read_after_a_send_fails() -> None:
    # Under load the reader lags: the caller's last frames and `stop` sit in the queue
    # when the bot's next send finds the socket closed. They must still come out.
    got: asyncio.Queue[list[str]] = asyncio.Queue()

    async def handler(stream: TwilioStream) -> None:
        while not stream.closed:  # talk until a send fails: the caller has hung up
            await stream.send_audio(frame(9), "bot")
            await stream.end_segment("bot")
            await asyncio.sleep(0.005)  # (a send needs a loop turn to see the close)
        events = [type(e).__name__ for e in [e async for e in stream]]
        got.put_nowait(events)

    async with serve(handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        for i in range(5):
            await phone.media(frame(i))
        await phone.ws.send(phone.twilio.stop())
        await phone.ws.close()
        events = await asyncio.wait_for(got.get(), WAIT)
    assert events == ["Media"] * 5 + ["Stop"]


def json_bombs(phone: Phone) -> list[str]:
    """What a JSON parser itself chokes on, each inside the default 64 KiB frame cap."""
    sid = phone.twilio.stream_sid
    good = json.loads(phone.twilio.media(frame(0), 0))
    phone.twilio._seq -= 1  # never sent
    phone.twilio._chunk -= 1
    media = good["media"]
    return [
        "[" * 30_000,  # nesting past the parser's recursion limit
        '{"event":"media","streamSid":"' + sid + '","media":' + "[" * 20_000 + "]" * 20_000 + "}",
        '{"event":"media","sequenceNumber":' + "9" * 5_000 + "}",  # past int's digit limit
        '{"event":"media","sequenceNumber":NaN}',
        '{"event":"media","sequenceNumber":-Infinity}',
        json.dumps({**good, "sequenceNumber": 1e308}),
        '{"event":"media","sequenceNumber":"1","streamSid":"' + sid + '","media":{"payload":"\\ud800"}}',
        json.dumps({**good, "media": {**media, "chunk": "9" * 5_000}}),
        json.dumps({**good, "media": {**media, "timestamp": -1}}),
        json.dumps({**good, "streamSid": 12345}),
        json.dumps({"event": "mark", "sequenceNumber": "2", "streamSid": sid, "mark": {"name": "m" * 10_000}}),
        json.dumps({"event": "dtmf", "sequenceNumber": "2", "streamSid": sid, "dtmf": {"digit": "1" * 1_000}}),
        json.dumps({"event": None}),
        json.dumps({"event": ["media"]}),
        json.dumps({**good, "media": "not an object"}),
        json.dumps({**good, "media": {**media, "payload": "A" * 60_000}}),
        '{"event":"media"' + ',"x":1' * 10_000 + "}",
        "\u0000" * 1_000,
        '"just a string"',
        "1e999999",
    ]


async def test_json_bombs_are_malformed_frames_never_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13: every kind of bad media traffic is a malformed frame; the call goes on."""
    caplog.set_level(logging.DEBUG)
    async with serve(echo_handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        bombs = json_bombs(phone)
        assert len(bombs) == 20
        for message in bombs:
            await phone.ws.send(message)
        after = [frame(3000 + i) for i in range(5)]
        assert b"".join(await run_echo_call_started(phone, after)) == b"".join(after)
        _, stats, _ = await handler_result(server)
    assert stats.malformed == 20
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


async def test_a_handler_that_falls_behind_loses_the_oldest_frames_not_the_stream() -> None:
    """The reader never blocks on the handler: beyond the inbox's 2 s of caller audio the
    oldest frames are dropped and counted, and what comes after still arrives."""
    seen: list[bytes] = []
    streams: list[TwilioStream] = []
    release = asyncio.Event()

    async def handler(stream: TwilioStream) -> None:
        streams.append(stream)
        await release.wait()  # stuck (its model's upload pushing back)
        async for event in stream:
            if isinstance(event, Media):
                seen.append(event.payload)
            elif isinstance(event, Stop):
                return

    async with serve(handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.answer_probe()
        frames = [frame(5000 + i) for i in range(150)]  # 3 s
        for payload in frames:
            await phone.media(payload)
        await phone.ws.send(phone.twilio.stop())
        # Until the server's reader has read everything, `stop` included (it ends then);
        # a condition inside the server, polled: there is no event to await from here.
        while not streams or not streams[0]._reader or not streams[0]._reader.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        release.set()
        _, stats, _ = await handler_result(server)
    assert stats.frames_in == 150 and stats.frames_dropped == 50
    assert seen == frames[50:]  # the newest 2 s, in order


async def test_a_media_sink_takes_frames_where_they_are_read_in_the_callers_order() -> None:
    order: list[tuple[str, int]] = []
    results: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    async def handler(stream: TwilioStream) -> None:
        def sink(event: Media, received_at: float) -> bool:
            assert received_at <= time.monotonic()
            if event.payload[0] % 2:  # odd first bytes: the iterator's
                return False
            order.append(("sink", event.chunk))
            return True

        stream.set_media_sink(sink)
        async for event in stream:
            if isinstance(event, Media):
                order.append(("iterator", event.chunk))
                if event.chunk % 10 == 0:
                    await asyncio.sleep(0.05)  # a slow moment: the inbox fills meanwhile
            elif isinstance(event, Stop):
                break
        results.put_nowait((stream.frames_in, stream.frames_dropped))

    async with serve(handler) as server, dial(server) as phone:
        await phone.start(server.tokens)
        await phone.answer_probe()
        for i in range(60):
            await phone.media(bytes([i % 7]) * 160)
            await asyncio.sleep(0.005)
        await phone.ws.send(phone.twilio.stop())
        assert await asyncio.wait_for(results.get(), WAIT) == (60, 0)
    assert [chunk for _, chunk in order] == list(range(1, 61))  # every frame, in order
    taken = {chunk for who, chunk in order if who == "sink"}
    assert taken and all((chunk - 1) % 7 % 2 == 0 for chunk in taken)
    # ...and not while frames waited for the iterator: some it would take went that way.
    assert {c for who, c in order if who == "iterator" and (c - 1) % 7 % 2 == 0}
