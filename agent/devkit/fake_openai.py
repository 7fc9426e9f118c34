"""A fake OpenAI Realtime server (GA WebSocket protocol) for tests.

It exists because the real one cannot run here; it is held to the real protocol:
- every client message is validated against the `openai` SDK's own client-event union
  (`RealtimeClientEvent`), plus the server's refusal of unknown fields (the SDK models
  accept extras; the real server answers `unknown_parameter`). An invalid message gets
  an `error` event, as from OpenAI, and is recorded in `FakeSession.violations`;
- every server event it sends is validated against `RealtimeServerEvent` (strictly, no
  unknown fields) before it goes out: a bug in the fake fails loudly
  (`FakeOpenAIRealtime.internal_errors`, re-raised by `assert_clean()`).

Behaviour: session.created/updated; energy-based server VAD on the input audio (by
the audio clock, so tests may send audio faster than real time) with speech_started /
stopped, commit, the user item and its transcription; responses scripted per caller
turn (`Scenario`): spoken replies as a deterministic 440 Hz tone with transcript deltas,
function calls and the spoken answer after their output, `Say exactly: "..."`
instructions, out-of-band responses, barge-in cancellation (`turn_detected`),
`response.cancel`, `conversation.item.truncate` with the real error when past the
item's audio, the active-response error, provider drops and `session_expired`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, get_args
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from telephony.audio import pcm16_rms, pcm16_to_ulaw, ulaw_to_pcm16

CLIENT_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeClientEvent)
SERVER_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeServerEvent)
_CLIENT_MODELS = {
    get_args(m.model_fields["type"].annotation)[0]: m
    for m in get_args(get_args(RealtimeClientEvent)[0])
}
# The real session object carries these beyond the SDK's request model.
_SERVER_EXTRA_OK = {"session.id", "session.object", "session.expires_at"}

SAY_EXACTLY = re.compile(r'Say exactly: "(.*)"\s*$', re.DOTALL)
SESSION_EXPIRED_MESSAGE = "Your session hit the maximum duration of 60 minutes."
BETA_GONE_MESSAGE = "The Realtime Beta API is no longer supported. Please use the GA API."


# ---------------------------------------------------------------- schema checks


def unknown_fields(value: Any, path: str = "") -> list[str]:
    """Dotted paths of fields the SDK model did not declare (it stores them as extras)."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        for key in value.model_extra or {}:
            found.append(f"{path}{key}")
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{path}{name}.")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += unknown_fields(v, f"{path[:-1]}[{i}].")
    return found


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    param: str | None = None


def check_client_event(msg: Any) -> Violation | None:
    """Validate one client event like the real server: SDK schema + no unknown fields."""
    if not isinstance(msg, dict):
        return Violation("invalid_json", "Client event must be a JSON object.")
    try:
        model = CLIENT_EVENTS.validate_python(msg)
    except pydantic.ValidationError:
        model_cls = _CLIENT_MODELS.get(msg.get("type"))
        if model_cls is None:
            return Violation(
                "invalid_value", f"Invalid value: '{msg.get('type')}'. Unknown event type.", "type"
            )
        try:
            model_cls.model_validate(msg)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            # Drop union variant names (class names) from the location.
            loc = ".".join(str(p) for p in err["loc"] if not str(p)[:1].isupper())
            if err["type"] == "missing":
                return Violation(
                    "missing_required_parameter", f"Missing required parameter: '{loc}'.", loc
                )
            return Violation("invalid_value", f"Invalid value for '{loc}': {err['msg']}.", loc)
        return Violation("invalid_value", "Invalid client event.")  # pragma: no cover
    extras = unknown_fields(model)
    if extras:
        return Violation("unknown_parameter", f"Unknown parameter: '{extras[0]}'.", extras[0])
    return None


def check_server_event(ev: dict[str, Any]) -> str | None:
    """Why `ev` is not a valid GA server event, or None."""
    try:
        model = SERVER_EVENTS.validate_python(ev)
    except pydantic.ValidationError as exc:
        return f"{ev.get('type')}: {exc}"
    if getattr(model, "type", None) != ev.get("type"):
        return f"{ev.get('type')} validated as {getattr(model, 'type', '?')}"
    extras = [p for p in unknown_fields(model) if p not in _SERVER_EXTRA_OK]
    return f"{ev.get('type')}: unknown fields {extras}" if extras else None


# ---------------------------------------------------------------- audio helpers


def tone(ms: int, *, fmt: str = "pcmu", hz: float = 440.0, amplitude: int = 8000) -> bytes:
    """A deterministic sine: μ-law 8 kHz ("pcmu") or PCM16 24 kHz ("pcm")."""
    rate = 24000 if fmt == "pcm" else 8000
    n = rate * ms // 1000
    pcm = (amplitude * np.sin(2 * math.pi * hz * np.arange(n) / rate)).astype("<i2").tobytes()
    return pcm if fmt == "pcm" else pcm16_to_ulaw(pcm)


def speech_frames(ms: int, hz: float = 300.0) -> list[bytes]:
    """Caller 'speech' for tests: loud μ-law 20 ms frames."""
    data = tone(ms, hz=hz, amplitude=6000)
    return [data[i : i + 160] for i in range(0, len(data), 160)]


def silence_frames(ms: int) -> list[bytes]:
    return [b"\xff" * 160 for _ in range(ms // 20)]


def dominant_hz(ulaw: bytes, rate: int = 8000) -> float:
    """The strongest frequency in μ-law audio (tests recognise the fake's 440 Hz tone)."""
    pcm = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum))])


# ---------------------------------------------------------------- scenario


@dataclass
class ToolStep:
    """The model calls `name(arguments)`; after the output it says `reply`."""

    name: str
    arguments: dict[str, Any]
    reply: str = "Here is what I found: {output}"  # {output} = the output string


@dataclass
class ScriptedTurn:
    """What the fake 'hears' in one caller turn and how it answers."""

    transcript: str = "Hello?"
    reply: str = "Hi, how can I help you today?"
    reply_ms: int | None = None  # default: proportional to the text
    tool: ToolStep | None = None


@dataclass
class Scenario:
    turns: list[ScriptedTurn] = field(default_factory=list)  # in caller-turn order
    default_reply: str = "Sorry, could you say that again?"  # beyond the scripted turns
    filler_reply: str = "One moment."  # out-of-band without `Say exactly`
    ms_per_char: int = 60
    min_reply_ms: int = 300
    max_reply_ms: int = 8000
    chunk_ms: int = 100  # audio per response.output_audio.delta
    realtime_factor: float | None = None  # None: as fast as possible; 2.0: twice real time
    tone_hz: float = 440.0
    speech_rms: int = 500  # VAD: a 20 ms frame louder than this is speech
    drop_after_s: float | None = None  # first connection only: TCP drop, no close frame
    expire_after_s: float | None = None  # first connection only: session_expired + 1001
    max_connections: int | None = None  # later handshakes get HTTP 503
    api_key: str = "test-key"
    rate_limits: bool = True  # rate_limits.updated after each response.done
    # Load runs: check each kind of event this fake sends once per session (not every
    # audio delta: a fifth of its CPU at 200 calls), and keep no sent audio in memory.
    light: bool = False


# ---------------------------------------------------------------- recorded state


@dataclass(eq=False)
class FakeResponse:
    id: str
    conversation: str  # "auto" | "none"
    metadata: dict[str, str] | None
    instructions: str | None
    text: str = ""  # what it says (audio replies)
    tool: ToolStep | None = None  # set for a function-call response
    audio_ms: int = 0
    sent_ms: int = 0
    item_id: str = ""
    status: str = "in_progress"
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class FakeSession:
    """Everything one connection did; tests assert on these."""

    index: int
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    config: dict[str, Any]
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # error events we sent
    truncates: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    function_outputs: list[dict[str, Any]] = field(default_factory=list)
    created_items: list[dict[str, Any]] = field(default_factory=list)  # item.create items
    responses: list[FakeResponse] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    item_order: list[str] = field(default_factory=list)
    appended_ms: int = 0
    closed: bool = False
    # VAD + conversation internals
    turn_index: int = 0
    speaking: bool = False
    speech_item: str = ""
    silence_ms: int = 0
    last_speech_ms: int = 0
    frame_buf: bytearray = field(default_factory=bytearray)
    checked_kinds: set[str] = field(default_factory=set)  # Scenario.light: validated once
    pending_tools: dict[str, ToolStep] = field(default_factory=dict)  # call_id -> step
    ws: ServerConnection | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    def active_default(self) -> FakeResponse | None:
        return next(
            (r for r in self.responses if r.conversation != "none" and r.status == "in_progress"),
            None,
        )


# ---------------------------------------------------------------- the server


class FakeOpenAIRealtime:
    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.sessions: list[FakeSession] = []
        self.internal_errors: list[str] = []
        self.rejected_handshakes = 0
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self.url = ""

    # -------------------------------------------------------- lifecycle

    async def start(self) -> str:
        """Listen on a free 127.0.0.1 port; returns `ws://127.0.0.1:PORT/v1/realtime`."""
        self._server = await serve(
            self._handler, "127.0.0.1", 0, process_request=self._process_request, max_size=None
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/realtime"
        return self.url

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeOpenAIRealtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def assert_clean(self) -> None:
        """No protocol violations by the client and no invalid events from the fake."""
        assert not self.internal_errors, self.internal_errors
        for s in self.sessions:
            assert not s.violations, f"session {s.index}: {s.violations}"

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait until `predicate()` holds; re-checked on every message in or out."""
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def inject(
        self, event: dict[str, Any], *, session: int = -1, validate: bool = True
    ) -> None:
        """Send an arbitrary server event (validate=False for unknown future events)."""
        await self._send(self.sessions[session], dict(event), validate=validate)

    # -------------------------------------------------------- handshake

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path != "/v1/realtime":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        if request.headers.get("Authorization") != f"Bearer {self.scenario.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided\n")
        if "model" not in parse_qs(parts.query):
            return connection.respond(HTTPStatus.BAD_REQUEST, "Missing model\n")
        limit = self.scenario.max_connections
        if limit is not None and len(self.sessions) + self.rejected_handshakes >= limit:
            self.rejected_handshakes += 1
            self._changed.set()
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Unavailable\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        sess = FakeSession(
            index=len(self.sessions),
            path=parts.path,
            query=query,
            headers={k: v for k, v in request.headers.raw_items()},
            config=_default_session(query["model"][0]),
            ws=ws,
        )
        self.sessions.append(sess)
        self._changed.set()
        if sess.index == 0 and self.scenario.drop_after_s is not None:
            self._spawn(self._drop_later(sess, self.scenario.drop_after_s))
        if sess.index == 0 and self.scenario.expire_after_s is not None:
            self._spawn(self._expire_later(sess, self.scenario.expire_after_s))
        try:
            await self._send(sess, {"type": "session.created", "session": sess.config})
            if "OpenAI-Beta" in request.headers:
                sess.violations.append(Violation("beta_header", BETA_GONE_MESSAGE))
                await self._error(
                    sess, "invalid_request_error", "beta_api_shutdown", BETA_GONE_MESSAGE
                )
            async for raw in ws:
                await self._on_message(sess, raw)
        except ConnectionClosed:
            pass
        finally:
            sess.closed = True
            for r in sess.responses:
                if r.task is not None:
                    r.task.cancel()
            self._changed.set()

    # -------------------------------------------------------- client events

    async def _on_message(self, sess: FakeSession, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            sess.violations.append(Violation("invalid_json", "Invalid JSON"))
            await self._error(sess, "invalid_request_error", "invalid_json", "Invalid JSON")
            return
        sess.received.append(msg)
        self._changed.set()
        bad = check_client_event(msg)
        if bad is not None:
            sess.violations.append(bad)
            await self._error(sess, "invalid_request_error", bad.code, bad.message, bad.param, msg)
            return
        kind = msg["type"]
        if kind == "input_audio_buffer.append":
            await self._on_append(sess, base64.b64decode(msg["audio"]))
        elif kind == "session.update":
            _merge(sess.config, msg["session"])
            await self._send(sess, {"type": "session.updated", "session": sess.config})
        elif kind == "response.create":
            await self._on_response_create(sess, msg)
        elif kind == "response.cancel":
            await self._on_cancel(sess, msg)
        elif kind == "conversation.item.create":
            await self._on_item_create(sess, msg)
        elif kind == "conversation.item.truncate":
            await self._on_truncate(sess, msg)
        elif kind == "input_audio_buffer.commit":
            await self._commit(sess)
        elif kind == "input_audio_buffer.clear":
            sess.frame_buf.clear()
            await self._send(sess, {"type": "input_audio_buffer.cleared"})
        elif kind == "output_audio_buffer.clear":
            await self._error(
                sess, "invalid_request_error", "invalid_value",
                "output_audio_buffer.clear is only supported for WebRTC and SIP.", None, msg,
            )  # fmt: skip
        else:
            await self._error(
                sess, "invalid_request_error", "unsupported", f"{kind} not supported by the fake"
            )

    async def _on_append(self, sess: FakeSession, data: bytes) -> None:
        fmt = _input_format(sess.config)
        pcm = ulaw_to_pcm16(data) if fmt == "pcmu" else data
        frame = 320 if fmt == "pcmu" else 960  # 20 ms of PCM16 at 8 / 24 kHz
        sess.frame_buf += pcm
        vad = (sess.config.get("audio") or {}).get("input", {}).get("turn_detection")
        while len(sess.frame_buf) >= frame:
            chunk = bytes(sess.frame_buf[:frame])
            del sess.frame_buf[:frame]
            sess.appended_ms += 20
            if vad:
                await self._vad_frame(sess, vad, pcm16_rms(chunk) > self.scenario.speech_rms)

    async def _vad_frame(self, sess: FakeSession, vad: dict[str, Any], speech: bool) -> None:
        now = sess.appended_ms
        if speech:
            sess.silence_ms = 0
            sess.last_speech_ms = now
            if not sess.speaking:
                sess.speaking = True
                sess.speech_item = self._id("item")
                start = max(0, now - 20 - int(vad.get("prefix_padding_ms") or 0))
                await self._send(sess, {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": start, "item_id": sess.speech_item,
                })  # fmt: skip
                active = sess.active_default()
                if active is not None and vad.get("interrupt_response", True):
                    active.cancel_reason = "turn_detected"
                    if active.task is not None:
                        await _settle(active.task)
            return
        if not sess.speaking:
            return
        sess.silence_ms += 20
        if sess.silence_ms >= int(vad.get("silence_duration_ms") or 500):
            sess.speaking = False
            await self._send(sess, {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": sess.last_speech_ms, "item_id": sess.speech_item,
            })  # fmt: skip
            await self._commit(sess, vad=vad)

    async def _commit(self, sess: FakeSession, vad: dict[str, Any] | None = None) -> None:
        item_id = sess.speech_item or self._id("item")
        sess.speech_item = ""
        turn = self._turn(sess)
        prev = sess.item_order[-1] if sess.item_order else None
        await self._send(
            sess,
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": prev},
        )
        item = {
            "id": item_id, "object": "realtime.item", "type": "message", "role": "user",
            "status": "completed", "content": [{"type": "input_audio", "transcript": None}],
        }  # fmt: skip
        self._add_item(sess, item)
        await self._send(
            sess, {"type": "conversation.item.added", "item": item, "previous_item_id": prev}
        )
        await self._send(
            sess, {"type": "conversation.item.done", "item": item, "previous_item_id": prev}
        )
        base = {"item_id": item_id, "content_index": 0}
        await self._send(
            sess,
            {
                "type": "conversation.item.input_audio_transcription.delta",
                **base,
                "delta": turn.transcript,
            },
        )
        await self._send(sess, {
            "type": "conversation.item.input_audio_transcription.completed", **base,
            "transcript": turn.transcript, "usage": {"type": "duration", "seconds": 1.0},
        })  # fmt: skip
        item["content"][0]["transcript"] = turn.transcript
        if vad and vad.get("create_response", True) and sess.active_default() is None:
            self._start_response(
                sess, conversation="auto", metadata=None, instructions=None, turn=turn
            )

    async def _on_response_create(self, sess: FakeSession, msg: dict[str, Any]) -> None:
        params = msg.get("response") or {}
        conversation = params.get("conversation") or "auto"
        active = sess.active_default()
        if conversation != "none" and active is not None:
            await self._error(
                sess, "invalid_request_error", "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {active.id}. "
                "Wait until the response is finished before creating a new one.", None, msg,
            )  # fmt: skip
            return
        self._start_response(
            sess, conversation=conversation, metadata=params.get("metadata"),
            instructions=params.get("instructions"), turn=None,
        )  # fmt: skip

    async def _on_cancel(self, sess: FakeSession, msg: dict[str, Any]) -> None:
        sess.cancels.append(msg)
        rid = msg.get("response_id")
        target = next(
            (
                r
                for r in sess.responses
                if r.status == "in_progress" and (r.id == rid if rid else r.conversation != "none")
            ),
            None,
        )
        if target is None:
            await self._error(
                sess, "invalid_request_error", "response_cancel_not_active",
                "Cancellation failed: no active response found", None, msg,
            )  # fmt: skip
            return
        target.cancel_reason = "client_cancelled"
        if target.task is not None:
            await _settle(target.task)

    async def _on_item_create(self, sess: FakeSession, msg: dict[str, Any]) -> None:
        item = dict(msg["item"])
        sess.created_items.append(dict(item))  # as the client sent it
        if item["type"] == "function_call_output":
            sess.function_outputs.append(dict(item))
            if not any(
                i.get("call_id") == item["call_id"]
                for i in sess.items.values()
                if i["type"] == "function_call"
            ):
                await self._error(
                    sess, "invalid_request_error", "invalid_value",
                    f"Tool call ID '{item['call_id']}' not found in conversation.", "item.call_id", msg,
                )  # fmt: skip
                return
        item.setdefault("id", self._id("item"))
        item.update(object="realtime.item", status="completed")
        prev = sess.item_order[-1] if sess.item_order else None
        self._add_item(sess, item)
        await self._send(
            sess, {"type": "conversation.item.added", "item": item, "previous_item_id": prev}
        )
        await self._send(
            sess, {"type": "conversation.item.done", "item": item, "previous_item_id": prev}
        )

    async def _on_truncate(self, sess: FakeSession, msg: dict[str, Any]) -> None:
        sess.truncates.append(msg)
        item = sess.items.get(msg["item_id"])
        if item is None:
            await self._error(
                sess, "invalid_request_error", "item_truncate_invalid_item_id",
                f"Item with item_id not found: {msg['item_id']}", "item_id", msg,
            )  # fmt: skip
            return
        if item.get("role") != "assistant":
            await self._error(
                sess, "invalid_request_error", "invalid_value",
                "Only model output audio messages can be truncated", "item_id", msg,
            )  # fmt: skip
            return
        resp = next(r for r in sess.responses if r.item_id == msg["item_id"])
        if msg["audio_end_ms"] > resp.sent_ms:
            await self._error(
                sess, "invalid_request_error", "invalid_value",
                f"Audio content of {resp.sent_ms}ms is already shorter than {msg['audio_end_ms']}ms",
                "audio_end_ms", msg,
            )  # fmt: skip
            return
        for part in item.get("content", []):
            part["transcript"] = ""  # the server forgets what the caller did not hear
        await self._send(sess, {
            "type": "conversation.item.truncated", "item_id": msg["item_id"],
            "content_index": msg["content_index"], "audio_end_ms": msg["audio_end_ms"],
        })  # fmt: skip

    # -------------------------------------------------------- responses

    def _turn(self, sess: FakeSession) -> ScriptedTurn:
        turns = self.scenario.turns
        turn = turns[sess.turn_index] if sess.turn_index < len(turns) else None
        sess.turn_index += 1
        return turn or ScriptedTurn(transcript="(unscripted)", reply=self.scenario.default_reply)

    def _start_response(
        self, sess: FakeSession, *, conversation: str, metadata: dict[str, str] | None,
        instructions: str | None, turn: ScriptedTurn | None,
    ) -> None:  # fmt: skip
        resp = FakeResponse(self._id("resp"), conversation, metadata, instructions)
        said = SAY_EXACTLY.match(instructions or "")
        reply_ms: int | None = None
        if said:
            resp.text = said.group(1)
        elif conversation == "none":
            resp.text = self.scenario.filler_reply
        elif turn is not None:  # a VAD-created response to a caller turn
            if turn.tool is not None:
                resp.tool = turn.tool
            else:
                resp.text, reply_ms = turn.reply, turn.reply_ms
        else:
            last = sess.items[sess.item_order[-1]] if sess.item_order else {}
            step = sess.pending_tools.pop(last.get("call_id", ""), None)
            if last.get("type") == "function_call_output" and step is not None:
                resp.text = step.reply.format(output=last["output"])
            else:
                resp.text = self.scenario.default_reply
        if resp.tool is None:
            sc = self.scenario
            resp.audio_ms = reply_ms or min(
                sc.max_reply_ms, max(sc.min_reply_ms, len(resp.text) * sc.ms_per_char)
            )
        sess.responses.append(resp)
        resp.task = self._spawn(self._run_response(sess, resp))

    async def _run_response(self, sess: FakeSession, resp: FakeResponse) -> None:
        default = resp.conversation != "none"
        out_fmt = sess.config["audio"]["output"]["format"]
        body = {
            "id": resp.id, "object": "realtime.response", "status": "in_progress",
            "conversation_id": f"conv_{sess.index}" if default else None,
            "output_modalities": ["audio"], "output": [], "metadata": resp.metadata,
            "audio": {"output": {"format": out_fmt, "voice": sess.config["audio"]["output"].get("voice")}},
            "max_output_tokens": "inf", "status_details": None, "usage": None,
        }  # fmt: skip
        await self._send(sess, {"type": "response.created", "response": body})
        resp.item_id = self._id("item")
        ids = {"response_id": resp.id, "output_index": 0}
        if resp.tool is not None:
            item = {
                "id": resp.item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                "name": resp.tool.name, "call_id": self._id("call"), "arguments": "",
            }  # fmt: skip
        else:
            item = {
                "id": resp.item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": [],
            }  # fmt: skip
        await self._send(sess, {"type": "response.output_item.added", **ids, "item": item})
        if default:
            prev = sess.item_order[-1] if sess.item_order else None
            self._add_item(sess, item)
            await self._send(
                sess, {"type": "conversation.item.added", "item": item, "previous_item_id": prev}
            )
        if resp.tool is not None:
            await self._stream_call(sess, resp, item, ids)
        else:
            await self._stream_audio(sess, resp, item, ids, _fmt_name(out_fmt))
        resp.status = "cancelled" if resp.cancel_reason else "completed"
        item["status"] = "incomplete" if resp.cancel_reason else "completed"
        await self._send(sess, {"type": "response.output_item.done", **ids, "item": item})
        if default:
            await self._send(sess, {"type": "conversation.item.done", "item": item})
        body.update(status=resp.status, output=[item], usage=_usage())
        if resp.cancel_reason:
            body["status_details"] = {"type": "cancelled", "reason": resp.cancel_reason}
        await self._send(sess, {"type": "response.done", "response": body})
        if self.scenario.rate_limits:
            await self._send(sess, {"type": "rate_limits.updated", "rate_limits": [
                {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 60.0},
                {"name": "tokens", "limit": 50000, "remaining": 49000, "reset_seconds": 1.5},
            ]})  # fmt: skip

    async def _stream_call(
        self, sess: FakeSession, resp: FakeResponse, item: dict[str, Any], ids: dict[str, Any]
    ) -> None:
        assert resp.tool is not None
        args = json.dumps(resp.tool.arguments)
        base = {**ids, "item_id": item["id"], "call_id": item["call_id"]}
        await self._send(
            sess, {"type": "response.function_call_arguments.delta", **base, "delta": args}
        )
        await self._send(
            sess,
            {
                "type": "response.function_call_arguments.done",
                **base,
                "name": item["name"],
                "arguments": args,
            },
        )
        item["arguments"] = args
        sess.pending_tools[item["call_id"]] = resp.tool

    async def _stream_audio(
        self,
        sess: FakeSession,
        resp: FakeResponse,
        item: dict[str, Any],
        ids: dict[str, Any],
        fmt: str,
    ) -> None:
        sc = self.scenario
        base = {**ids, "item_id": item["id"], "content_index": 0}
        await self._send(
            sess,
            {
                "type": "response.content_part.added",
                **base,
                "part": {"type": "audio", "transcript": ""},
            },
        )
        audio = tone(resp.audio_ms, fmt=fmt, hz=sc.tone_hz)
        per_ms = len(audio) // max(1, resp.audio_ms)
        words = resp.text.split()
        n_chunks = max(1, math.ceil(resp.audio_ms / sc.chunk_ms))
        said: list[str] = []
        for i in range(n_chunks):
            if resp.cancel_reason:
                break
            ms = min(sc.chunk_ms, resp.audio_ms - i * sc.chunk_ms)
            chunk = audio[i * sc.chunk_ms * per_ms : i * sc.chunk_ms * per_ms + ms * per_ms]
            await self._send(
                sess,
                {
                    "type": "response.output_audio.delta",
                    **base,
                    "delta": base64.b64encode(chunk).decode(),
                },
            )
            resp.sent_ms += ms
            upto = math.ceil(len(words) * (i + 1) / n_chunks)
            new = words[len(said) : upto]
            if new:
                await self._send(
                    sess,
                    {
                        "type": "response.output_audio_transcript.delta",
                        **base,
                        "delta": " ".join(new) + " ",
                    },
                )
                said += new
            # Let barge-in / cancel interleave; optionally pace like a real model.
            await asyncio.sleep(ms / 1000 / sc.realtime_factor if sc.realtime_factor else 0)
        transcript = " ".join(said)
        await self._send(sess, {"type": "response.output_audio.done", **base})
        await self._send(
            sess,
            {"type": "response.output_audio_transcript.done", **base, "transcript": transcript},
        )
        part = {"type": "audio", "transcript": transcript}
        await self._send(sess, {"type": "response.content_part.done", **base, "part": part})
        item["content"] = [{"type": "output_audio", "transcript": transcript}]

    # -------------------------------------------------------- faults

    async def drop(self, session: int = -1) -> None:
        """Kill a connection like a dead network path: no close frame."""
        sess = self.sessions[session]
        if sess.ws is not None and not sess.closed:
            sess.ws.transport.abort()

    async def expire(self, session: int = -1) -> None:
        """What OpenAI does at the 60-minute limit: `session_expired`, then close 1001."""
        sess = self.sessions[session]
        if sess.ws is None or sess.closed:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._error(
                sess, "invalid_request_error", "session_expired", SESSION_EXPIRED_MESSAGE
            )
            await sess.ws.close(1001, "session expired")

    async def _drop_later(self, sess: FakeSession, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.drop(sess.index)

    async def _expire_later(self, sess: FakeSession, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.expire(sess.index)

    # -------------------------------------------------------- plumbing

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if not isinstance(exc, AssertionError):  # AssertionErrors are recorded already
            self.internal_errors.append(f"fake task crashed: {exc!r}")
        self._changed.set()

    def _add_item(self, sess: FakeSession, item: dict[str, Any]) -> None:
        sess.items[item["id"]] = item
        sess.item_order.append(item["id"])

    async def _error(
        self, sess: FakeSession, type_: str, code: str, message: str,
        param: str | None = None, cause: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        err = {"type": type_, "code": code, "message": message, "param": param,
               "event_id": (cause or {}).get("event_id")}  # fmt: skip
        sess.errors.append(err)
        await self._send(sess, {"type": "error", "error": err})

    async def _send(self, sess: FakeSession, ev: dict[str, Any], *, validate: bool = True) -> None:
        ev = {**ev, "event_id": ev.get("event_id") or self._id("event")}
        light = self.scenario.light
        if light:
            kind = ev["type"]
            validate = validate and kind not in sess.checked_kinds
            sess.checked_kinds.add(kind)
        if validate:
            problem = check_server_event(ev)
            if problem is not None:
                self.internal_errors.append(problem)
                self._changed.set()
                raise AssertionError(f"fake OpenAI server built an invalid event: {problem}")
        assert sess.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await sess.ws.send(json.dumps(ev))
            if not (light and ev["type"] == "response.output_audio.delta"):
                sess.sent.append(ev)
        self._changed.set()


# ---------------------------------------------------------------- helpers


async def _settle(task: asyncio.Task[None]) -> None:
    """Let a cancelled response stream reach its cancelled `response.done`."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 5.0)


def _default_session(model: str) -> dict[str, Any]:
    """What session.created carries before any update (OpenAI's defaults)."""
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {
        "type": "realtime", "object": "realtime.session", "id": f"sess_{time.time_ns()}",
        "expires_at": int(time.time()) + 3600, "model": model, "output_modalities": ["audio"],
        "instructions": "You are a helpful, witty, and friendly AI.",
        "audio": {
            "input": {
                "format": dict(pcm), "transcription": None, "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                    "silence_duration_ms": 200, "idle_timeout_ms": None,
                    "create_response": True, "interrupt_response": True,
                },
            },
            "output": {"format": dict(pcm), "voice": "marin", "speed": 1.0},
        },
        "tools": [], "tool_choice": "auto", "max_output_tokens": "inf",
    }  # fmt: skip


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """session.update semantics: only present fields change (objects merge)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "format":
            _merge(into[key], value)
        else:
            into[key] = value


def _input_format(config: dict[str, Any]) -> str:
    return _fmt_name(config["audio"]["input"]["format"])


def _fmt_name(fmt: dict[str, Any]) -> str:
    return "pcmu" if fmt.get("type") == "audio/pcmu" else "pcm"


def _usage() -> dict[str, Any]:
    return {
        "total_tokens": 120, "input_tokens": 80, "output_tokens": 40,
        "input_token_details": {"text_tokens": 50, "audio_tokens": 30, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
    }  # fmt: skip
