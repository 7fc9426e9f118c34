"""The Twilio emulator against a small, protocol-accurate server on real uvicorn.

The server in this file plays "bot": it validates the signed webhook, answers TwiML
built with twilio's VoiceResponse, and on the media socket echoes each caller
utterance back (once the caller goes quiet) as 20 ms media frames, each followed by a
mark, sent as a burst, far ahead of real time. Caller speech over unplayed bot audio
makes it send `clear` (a VAD barge-in). DTMF 9 makes it misbehave on purpose.
Server and emulator share the event loop, so their `loop.time()` stamps compare.
"""

from __future__ import annotations

import asyncio
import math
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from telephony.audio import FRAME_BYTES, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.protocol import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_inbound,
)
from telephony.testing.core import CallCore, FastBuilder
from telephony.testing.emulator import (
    CallHungUp,
    CallRejected,
    EmulatedCall,
    StreamConnectError,
    StreamTarget,
    TimelineEvent,
    TwimlError,
    WebhookForbidden,
    dial_webhook,
    parse_twiml,
)
from telephony.testing.messages import (
    InboundBuilder,
)
from telephony.testing.playout import Playout
from tests.helpers.servers import run_app

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://voice.example.test"
SILENT_FRAME = b"\xff" * FRAME_BYTES
SPEED = 4.0
WAIT_S = 5.0  # bound on every wait for the server to see something


def tone(ms: int, hz: float = 440.0) -> bytes:
    """μ-law sine; no 20 ms frame of it is silence."""
    n = ms * 8
    pcm = b"".join(
        int(8000 * math.sin(2 * math.pi * hz * i / 8000)).to_bytes(2, "little", signed=True)
        for i in range(n)
    )
    return pcm16_to_ulaw(pcm)


# ---------------------------------------------------------------- the test server


@dataclass
class ServerStream:
    """The server's view of one media stream."""

    start: Start
    events: list[tuple[float, object]] = field(default_factory=list)
    media: list[tuple[float, Media]] = field(default_factory=list)
    marks_sent: list[tuple[float, str]] = field(default_factory=list)
    mark_echoes: list[tuple[float, Mark]] = field(default_factory=list)
    bursts: list[tuple[float, bytes]] = field(default_factory=list)  # (sent at, audio)
    clears: list[float] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    stopped: bool = False
    done: bool = False
    outstanding: set[str] = field(default_factory=set)
    talking: bool = False  # bot audio sent and not yet played or cleared
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class BotServer:
    def __init__(self) -> None:
        self.webhooks: list[dict[str, str]] = []
        self.streams: dict[str, ServerStream] = {}
        self.changed = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/twilio/voice", self.voice, methods=["POST"]),
                WebSocketRoute("/twilio/media", self.media),
            ]
        )

    async def stream(self, call_sid: str) -> ServerStream:
        async with asyncio.timeout(WAIT_S):
            while call_sid not in self.streams:
                self.changed.clear()
                await self.changed.wait()
        return self.streams[call_sid]

    async def voice(self, request: Request) -> Response:
        form = await request.form()
        query = f"?{request.url.query}" if request.url.query else ""
        signed_url = PUBLIC_URL + request.url.path + query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(AUTH_TOKEN).validate(signed_url, form, signature):
            return PlainTextResponse("invalid signature", status_code=403)
        self.webhooks.append({k: str(v) for k, v in form.items()})
        flow = request.query_params.get("flow", "echo")
        twiml = VoiceResponse()
        if flow == "reject":
            twiml.reject(reason="busy")
        elif flow == "hangup":
            twiml.hangup()
        elif flow == "html":
            return HTMLResponse("<html><body>not twiml</body></html>")
        else:
            connect = Connect()
            stream = Stream(url=PUBLIC_URL.replace("https://", "wss://") + "/twilio/media")
            stream.parameter(name="flow", value=flow)
            stream.parameter(name="token", value="bad" if flow == "badtoken" else "good")
            connect.append(stream)
            twiml.append(connect)
        return Response(str(twiml), media_type="text/xml")

    async def media(self, ws: WebSocket) -> None:
        await ws.accept()
        loop = asyncio.get_running_loop()
        assert isinstance(parse_inbound(await ws.receive_text()), Connected)
        start = parse_inbound(await ws.receive_text())
        assert isinstance(start, Start) and start.sequence_number == 1
        st = ServerStream(start)
        self.streams[start.call_sid] = st
        self.changed.set()
        sid = start.stream_sid
        if start.custom_parameters.get("token") != "good":
            await ws.close(code=1008, reason="bad stream token")
            return
        speech = bytearray()
        turn = 0
        expected_seq = 2
        try:
            while True:
                message = await ws.receive_text()
                now = loop.time()
                event = parse_inbound(message)  # strict: a malformed frame fails the test
                assert event.sequence_number == expected_seq, "sequenceNumber must not skip"
                expected_seq += 1
                st.events.append((now, event))
                if isinstance(event, Media):
                    st.media.append((now, event))
                    if event.payload != SILENT_FRAME:
                        if st.talking:  # caller talks over the bot: barge-in
                            st.talking = False
                            st.clears.append(now)
                            await ws.send_text(clear_message(sid))
                        speech += event.payload
                    elif speech:  # end of utterance: answer it, all at once
                        turn += 1
                        st.bursts.append((now, bytes(speech)))
                        st.talking = True
                        for i in range(0, len(speech), FRAME_BYTES):
                            name = f"t{turn}-{i // FRAME_BYTES}"
                            await ws.send_text(
                                media_message(sid, bytes(speech[i : i + FRAME_BYTES]))
                            )
                            await ws.send_text(mark_message(sid, name))
                            st.marks_sent.append((loop.time(), name))
                            st.outstanding.add(name)
                        speech.clear()
                elif isinstance(event, Mark):
                    st.mark_echoes.append((now, event))
                    st.outstanding.discard(event.name)
                    if not st.outstanding:
                        st.talking = False
                elif isinstance(event, Dtmf):
                    st.digits.append(event.digit)
                    if event.digit == "9":
                        await self._misbehave(ws, sid)
                elif isinstance(event, Stop):
                    st.stopped = True
                    break
                st.changed.set()
        except WebSocketDisconnect:
            pass
        finally:
            st.done = True
            st.changed.set()

    async def _misbehave(self, ws: WebSocket, sid: str) -> None:
        wav_header = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(32)
        await ws.send_text(media_message(sid, wav_header + SILENT_FRAME))
        await ws.send_text(media_message("MZ" + "0" * 32, SILENT_FRAME))
        await ws.send_text("this is not json")
        await ws.send_bytes(b"\x00\x01binary")
        await ws.send_text(mark_message(sid, "after-violations"))


@dataclass
class Running:
    bot: BotServer
    base_url: str

    async def dial(self, token: str = AUTH_TOKEN, **kwargs: object) -> StreamTarget:
        kwargs.setdefault("public_url", PUBLIC_URL)
        return await dial_webhook(
            self.base_url, token, to="+15550001111", from_="+15552223333", **kwargs
        )


@pytest.fixture
async def server() -> AsyncIterator[Running]:
    bot = BotServer()
    # Real uvicorn in this loop, on a socket bound to port 0 before it starts.
    async with run_app(bot.app, lifespan="off") as base_url:
        yield Running(bot, base_url)


# ---------------------------------------------------------------- dialing


async def test_signed_webhook_is_accepted_and_stream_points_at_local_server(
    server: Running,
) -> None:
    target = await server.dial(call_sid="CA" + "ab" * 16)
    (form,) = server.bot.webhooks
    assert form["CallSid"] == "CA" + "ab" * 16
    assert form["AccountSid"].startswith("AC") and len(form["AccountSid"]) == 34
    assert (form["From"], form["To"]) == ("+15552223333", "+15550001111")
    assert (form["CallStatus"], form["Direction"], form["ApiVersion"]) == (
        "ringing",
        "inbound",
        "2010-04-01",
    )
    assert target.stream_url == "wss://voice.example.test/twilio/media"
    assert target.ws_url == server.base_url.replace("http://", "ws://") + "/twilio/media"
    assert target.parameters == {"flow": "echo", "token": "good"}
    assert target.warnings == ()


async def test_generated_call_sid_is_twilio_shaped(server: Running) -> None:
    target = await server.dial(flow="sales")
    assert target.call_sid.startswith("CA") and len(target.call_sid) == 34
    int(target.call_sid[2:], 16)
    assert target.parameters["flow"] == "sales"  # ?flow= was part of the signed URL


async def test_wrong_token_or_public_url_is_forbidden(server: Running) -> None:
    with pytest.raises(WebhookForbidden, match="403.*X-Twilio-Signature") as info:
        await server.dial(token="not-the-token")
    assert info.value.status_code == 403
    with pytest.raises(WebhookForbidden):
        await server.dial(public_url="https://other.example.test")
    assert server.bot.webhooks == []


@pytest.mark.parametrize(
    ("flow", "error", "match"),
    [
        ("reject", CallRejected, "busy"),
        ("hangup", CallHungUp, "hung up"),
        ("html", TwimlError, "text/html"),
    ],
)
async def test_twiml_that_does_not_stream_raises(
    server: Running, flow: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await server.dial(flow=flow)


def test_parse_twiml_follows_twilio_rules() -> None:
    ids = {"call_sid": "CA1", "account_sid": "AC1", "from_": "+1", "to": "+2"}
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hi</Say>'
        '<Connect action="https://a.test/after"><Stream url="ws://a.test/media?token=x" name="s1">'
        '<Parameter name="k" value="v"/></Stream></Connect></Response>'
    )
    target = parse_twiml(xml, **ids)
    assert target.verbs_before == ("Say",)
    assert target.ws_url == "ws://a.test/media"  # Twilio drops the query string
    assert target.parameters == {"k": "v"} and target.stream_name == "s1"
    assert target.connect_action == "https://a.test/after"
    assert len(target.warnings) == 2  # ws:// and the query string
    with pytest.raises(TwimlError, match="Dial"):
        parse_twiml("<Response><Dial>+15551112222</Dial></Response>", **ids)
    with pytest.raises(TwimlError, match="well-formed"):
        parse_twiml("<Response><Connect>", **ids)


# ---------------------------------------------------------------- media


async def test_echo_round_trip_records_audio_and_turn_metrics(
    server: Running, tmp_path: Path
) -> None:
    target = await server.dial()
    hello = tone(300)
    live: list[TimelineEvent] = []
    # Real time: the bytes played are checked, and a 4x clock on a loaded machine can
    # tick past audio still in flight.
    async with EmulatedCall(target, on_event=live.append) as call:
        st = await server.bot.stream(target.call_sid)
        assert st.start.custom_parameters == {"flow": "echo", "token": "good"}
        assert st.start.stream_sid == call.stream_sid
        await call.say(hello)
        turn = await call.wait_for_bot_reply(timeout=10)
    assert bytes(st.bursts[0][1]) == hello  # the server heard exactly what we said
    assert call.received_audio == hello  # ... and we heard it back, byte for byte
    assert hello in call.played_audio
    assert turn.index == 1 and call.turns[0].first_bot_media_at is None
    assert turn.response_latency_ms is not None and 0 < turn.response_latency_ms < 500
    assert turn.bot_audio_received_ms == turn.bot_audio_played_ms == 300
    assert turn.bot_audio_discarded_ms == 0 and turn.reply_done_at is not None
    assert turn.marks_received == 15 and len(turn.mark_echo_delays_ms) == 15
    assert call.violations == []
    summary = call.summary()
    assert summary.speech_frames_sent == 15 and summary.marks_echoed == 15
    assert not summary.closed_by_server
    assert summary.as_dict()["turns"][1]["response_latency_ms"] == turn.response_latency_ms
    assert live == call.timeline  # what `phone-agent call` prints as it happens
    kinds = [e.kind for e in call.timeline]
    assert kinds.index("speech-end") < kinds.index("bot-audio") < kinds.index("reply-done")

    call.save_wav(tmp_path / "played.wav")
    call.save_wav(tmp_path / "both.wav", track="both")
    with wave.open(str(tmp_path / "played.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.readframes(w.getnframes()) == ulaw_to_pcm16(call.played_audio)
    with wave.open(str(tmp_path / "both.wav")) as w:
        assert w.getnchannels() == 2 and w.getnframes() == len(call.caller_audio)
        stereo = w.readframes(w.getnframes())
    left = b"".join(stereo[i : i + 2] for i in range(0, len(stereo), 4))
    assert left == ulaw_to_pcm16(call.caller_audio)  # caller left, bot right, aligned


async def test_marks_echo_only_after_their_audio_has_played(server: Running) -> None:
    target = await server.dial()
    async with EmulatedCall(target, speed=SPEED) as call:
        st = await server.bot.stream(target.call_sid)
        await call.say(tone(1000))
        turn = await call.wait_for_bot_reply(timeout=10)
        await st.until(lambda: len(st.mark_echoes) == 50)
    burst_at = st.bursts[0][0]
    # Echoed in order, each no earlier than its audio could have played at 4x
    # (frame k can start no earlier than the burst + k frames; the emulator's clock
    # never plays audio in a slot that began before it arrived, so this is exact).
    assert [m.name for _, m in st.mark_echoes] == [name for _, name in st.marks_sent]
    for k, (echo_at, _) in enumerate(st.mark_echoes):
        played_s = (k + 1) * 0.020 / SPEED
        assert echo_at >= burst_at + played_s, f"mark {k} echoed before its audio played"
    for record in call.marks:
        assert record.echoed_at is not None and record.echoed_at >= record.received_at
        assert not record.cleared
    seqs = [m.sequence_number for _, m in st.mark_echoes]
    assert seqs == sorted(seqs)
    # The whole second arrived at once: the buffer ran ~1 s ahead of playout.
    assert 900 <= turn.max_playback_lead_ms <= 1000
    assert turn.bot_audio_played_ms == 1000


async def test_barge_in_clear_drops_audio_and_echoes_pending_marks_at_once(server: Running) -> None:
    target = await server.dial()
    # Real time: barge-in timing is asserted (tests/helpers/speed.py).
    async with EmulatedCall(target) as call:
        st = await server.bot.stream(target.call_sid)
        await call.say(tone(1000))
        interrupted = await call.interrupt_after(300, tone(200, hz=700), timeout=10)
        reply = await call.wait_for_bot_reply(timeout=10)
        await st.until(lambda: len(st.mark_echoes) == 50 + 10)
    assert interrupted.index == 1 and reply.index == 2
    # Barge-in started once 300 ms had played; the server cleared on the first frame.
    assert 300 <= interrupted.bot_audio_played_ms <= 340
    assert interrupted.clear_latency_ms is not None and interrupted.clear_latency_ms < 200
    assert interrupted.bot_audio_played_ms + interrupted.bot_audio_discarded_ms == 1000
    assert len(st.clears) == 1
    cleared = [r for r in call.marks if r.cleared]
    assert len(cleared) >= 30
    assert len({r.echoed_at for r in cleared}) == 1  # all at once, at the clear
    assert [r.name for r in cleared] == [f"t1-{i}" for i in range(50 - len(cleared), 50)]
    # Marks played before the clear were echoed one by one, before it.
    played_marks = [r for r in call.marks if r.turn == 1 and not r.cleared]
    assert all(r.echoed_at is not None and r.echoed_at < cleared[0].echoed_at for r in played_marks)
    assert [m.name for _, m in st.mark_echoes[:50]] == [f"t1-{i}" for i in range(50)]
    # Nothing from the cleared reply played after the clear; the new reply is the barge-in.
    assert call.received_audio == tone(1000) + tone(200, hz=700)
    assert reply.bot_audio_played_ms == 200 and reply.response_latency_ms is not None
    assert call.summary().bot_audio_discarded_ms == interrupted.bot_audio_discarded_ms
    assert call.violations == []


async def test_caller_frames_are_paced_at_50_per_second(server: Running) -> None:
    target = await server.dial()
    async with EmulatedCall(target, speed=1.0) as call:
        st = await server.bot.stream(target.call_sid)
        await call.pause(1000)
        await st.until(lambda: len(st.media) >= 55)
    chunks = [m.chunk for _, m in st.media]
    assert chunks == list(range(1, len(chunks) + 1))
    assert [m.timestamp for _, m in st.media] == [20 * (c - 1) for c in chunks]
    assert all(len(m.payload) == FRAME_BYTES for _, m in st.media)
    t_first, t_last = st.media[0][0], st.media[-1][0]
    fps = (len(st.media) - 1) / (t_last - t_first)
    assert 45 <= fps <= 55, f"{fps:.1f} frames/s"
    assert call.frames_sent >= len(st.media)
    assert call.speech_frames_sent == 0


async def test_dtmf_and_hangup_send_events_then_stop(server: Running) -> None:
    target = await server.dial()
    async with EmulatedCall(target, speed=SPEED) as call:
        st = await server.bot.stream(target.call_sid)
        await call.dtmf("5")
        await call.dtmf("#")
        await st.until(lambda: st.digits == ["5", "#"])
        with pytest.raises(ValueError):
            await call.dtmf("x")
        await call.hangup()
    await st.until(lambda: st.done)
    assert st.stopped
    last = st.events[-1][1]
    assert isinstance(last, Stop) and last.call_sid == target.call_sid
    assert not call.closed_by_server and call.close_code == 1000


async def test_protocol_violations_are_recorded(server: Running) -> None:
    target = await server.dial()
    async with EmulatedCall(target, speed=SPEED) as call:
        st = await server.bot.stream(target.call_sid)
        await call.dtmf("9")
        await st.until(lambda: any(m.name == "after-violations" for _, m in st.mark_echoes))
    kinds = [v.kind for v in call.violations]
    assert kinds == ["wav-header", "wrong-stream-sid", "bad-message", "binary-frame"]
    assert "WAV header" in call.violations[0].detail


async def test_bad_stream_token_is_closed_with_policy_violation(server: Running) -> None:
    target = await server.dial(flow="badtoken")
    async with EmulatedCall(target, speed=SPEED) as call:
        await call.wait_closed(timeout=5)
        assert call.closed_by_server
        assert (call.close_code, call.close_reason) == (1008, "bad stream token")
        with pytest.raises(Exception, match="1008"):
            await call.say(tone(100))


async def test_refused_stream_handshake_is_a_clear_error(server: Running) -> None:
    target = await server.dial()
    wrong = server.base_url.replace("http://", "ws://") + "/no/such/socket"
    with pytest.raises(StreamConnectError, match="403") as info:
        async with EmulatedCall(target, ws_url=wrong):
            pass
    assert info.value.status_code == 403


# ---------------------------------------------------------------- sans-I/O pieces


def test_playout_echoes_marks_after_their_audio_and_clear_returns_pending() -> None:
    p = Playout()
    assert p.add_mark("idle", 0.0) is not None  # nothing queued: due at once
    p.push(b"\x01" * 200, "a")
    assert p.add_mark("m1", 0.0) is None
    p.push(b"\x02" * 160, "b")
    p.add_mark("m2", 0.0)
    first = p.tick()
    assert first.audio == b"\x01" * 160 and first.finished_marks == []
    second = p.tick()  # 40 bytes of a + 120 of b; m1's audio is not finished yet
    assert second.shares == [("a", 40), ("b", 120)] and second.finished_marks == []
    third = p.tick()
    assert [m.name for m in third.finished_marks] == ["m1"] and len(third.audio) == 40
    assert [m.name for m in p.tick().finished_marks] == ["m2"]
    assert p.tick().audio == b"" and not p.busy

    p.push(b"\x03" * 480, "c")
    p.add_mark("x1", 1.0)
    p.push(b"\x04" * 160, "d")
    p.add_mark("x2", 1.0)
    p.tick()
    marks, dropped = p.clear()
    assert [m.name for m in marks] == ["x1", "x2"]
    assert dropped == [("c", 320), ("d", 160)] and p.queued_bytes == 0
    assert p.discarded_bytes == 480
    assert p.add_mark("after", 2.0) is None  # the frame before the clear is still playing
    assert [m.name for m in p.tick().finished_marks] == ["after"]


def test_playout_never_plays_audio_in_a_slot_that_began_before_it_arrived() -> None:
    p = Playout()
    p.push(b"\x01" * 320, "late", at=10.0)
    p.add_mark("m", 10.0)
    assert p.tick(at=9.98).audio == b""  # a catch-up tick for a slot in the past
    assert p.tick(at=10.0).audio == b"\x01" * 160
    assert p.tick(at=10.02).finished_marks == []
    assert [m.name for m in p.tick(at=10.04).finished_marks] == ["m"]


def _core_and_clock() -> tuple[CallCore, Callable[[int], None], Callable[[], float]]:
    sid = "MZ" + "1" * 32
    target = StreamTarget("CA" + "1" * 32, "AC" + "0" * 32, "+1", "+2", "wss://x", "wss://x")
    core = CallCore(target, sid, record_audio=False)
    core.begin(0.0)
    clock = [0.0]

    def tick(n: int) -> None:
        for _ in range(n):
            core.tick(clock[0], clock[0])
            clock[0] += 0.02

    return core, tick, lambda: clock[0]


def test_silence_between_two_frames_of_a_reply_is_counted_as_underrun() -> None:
    core, tick, now = _core_and_clock()
    sid = core.stream_sid
    core.on_message(media_message(sid, b"\x01" * FRAME_BYTES * 3), now())
    tick(3)  # 60 ms played
    tick(3)  # nothing arrived: the caller hears 60 ms of silence...
    core.on_message(media_message(sid, b"\x01" * FRAME_BYTES * 2), now())
    tick(2)  # ...that the rest of the same reply makes a gap, not an end
    tick(10)  # the reply is over: trailing quiet is no gap
    greeting = core.turns[0]
    assert greeting.bot_audio_played_ms == 100 and greeting.underrun_ms == 60


def test_gaps_heard_while_the_phone_ran_late_are_told_apart() -> None:
    core, _, _ = _core_and_clock()
    sid = core.stream_sid
    t = 0.0

    def tick(n: int, late_s: float) -> None:
        nonlocal t
        for _ in range(n):
            core.tick(t + late_s, t)  # running `late_s` after the frame's deadline
            t += 0.02

    core.on_message(media_message(sid, b"\x01" * FRAME_BYTES * 2), t)
    tick(2, 0.0)
    tick(2, 0.0)  # on time and nothing to play: the server's gap
    tick(3, 0.030)  # 30 ms late: this phone was busy, the gap may be its own
    core.on_message(media_message(sid, b"\x01" * FRAME_BYTES), t)
    tick(1, 0.0)
    greeting = core.turns[0]
    assert greeting.underrun_ms == 100 and greeting.underrun_while_late_ms == 60


def test_audio_after_a_clear_does_not_count_the_pause_before_it() -> None:
    core, tick, now = _core_and_clock()
    sid = core.stream_sid
    core.on_message(media_message(sid, b"\x01" * FRAME_BYTES * 3), now())
    tick(1)
    core.on_message(clear_message(sid), now())  # barge-in: the reply is gone
    tick(4)
    core.on_message(media_message(sid, b"\x01" * FRAME_BYTES), now())
    tick(2)
    assert core.turns[0].underrun_ms == 0


def test_fast_builder_matches_inbound_builder() -> None:
    import base64

    slow = InboundBuilder("MZ1", "CA1", "AC1")
    fast = FastBuilder("MZ1", "CA1", "AC1")
    frame = tone(20)
    for ts in (0, 20):
        assert fast.media_b64(base64.b64encode(frame).decode(), ts) == slow.media(frame, ts)
    assert fast.mark("x") == slow.mark("x")
