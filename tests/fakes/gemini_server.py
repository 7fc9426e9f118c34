"""A fake Gemini Live server (BidiGenerateContent over WebSocket) for tests.

It speaks the wire protocol of /work/shared/protocols/gemini-live.md: camelCase JSON,
some frames binary like the real server, `x-goog-api-key` required. Every client
message is validated against google-genai's own `LiveClientMessage` (extra fields
forbidden, enum values checked) and every message the fake sends against
`LiveServerMessage`, so the fake cannot drift from the SDK's idea of the protocol.

Behaviour: energy VAD on the caller's 16 kHz PCM (measured in audio time, not wall
time, so tests can push audio as fast as they like), scripted replies as a 24 kHz tone
with transcriptions, barge-in (`interrupted`), blocking and NON_BLOCKING tool calls with
`scheduling`, `toolCallCancellation`, `Say exactly: "..."`, resumption handles that
snapshot the conversation, `goAway`, hard drops, and the real server's refusal (1011)
to resume a session whose previous socket is still open.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

import numpy as np
from google.genai import types
from pydantic import Field, ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
OUT_RATE = 24000


class LiveClientSetupDocumented(types.LiveClientSetup):
    """google-genai 3.6.1's LiveClientSetup lacks `realtime_input_config`, which the docs
    list and the SDK's own converter sends; add that one field, keep `extra="forbid"`."""

    realtime_input_config: types.RealtimeInputConfig | None = Field(default=None)


class StrictLiveClientMessage(types.LiveClientMessage):
    setup: LiveClientSetupDocumented | None = Field(default=None)  # type: ignore[assignment]


def validate_client_message(raw: str | bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse and check one client frame; returns (message, violations)."""
    try:
        msg = json.loads(raw)
    except ValueError as exc:
        return None, [f"not JSON: {exc}"]
    if not isinstance(msg, dict) or len(msg) != 1:
        return None, [f"a client message must be an object with one key, got {msg!r:.200}"]
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # JSON mode: `bytes` fields are checked as base64, like the real server does.
            StrictLiveClientMessage.model_validate_json(raw)
        except ValidationError as exc:
            problems.append(str(exc))
    # The SDK's enums accept unknown values with only a warning; the server would not.
    problems += [str(w.message) for w in caught if "is not a valid" in str(w.message)]
    return msg, problems


def validate_server_message(msg: dict[str, Any]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            types.LiveServerMessage.model_validate_json(json.dumps(msg))
        except ValidationError as exc:
            return [str(exc)]
    return [str(w.message) for w in caught if "is not a valid" in str(w.message)]


@dataclass
class ScriptedTurn:
    """What the caller says in one utterance and how the model answers it."""

    caller: str = "hello"
    reply: str = "Hi there, how can I help?"  # "{result}" is replaced by the tool result
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    reply_ms: int | None = None


@dataclass
class Scenario:
    turns: list[ScriptedTurn] = field(default_factory=list)
    api_key: str = "test-key"
    default_reply: str = "Sorry, could you say that again?"
    filler_reply: str = "Let me check that for you."  # said while a NON_BLOCKING tool runs
    reply_ms: int = 500  # audio length of a reply
    chunk_ms: int = 100  # audio per modelTurn message
    chunk_interval_s: float = 0.0  # server pacing between chunks (lets a test barge in)
    speech_rms: float = 500.0  # caller energy threshold on PCM16
    end_of_turn_silence_ms: int = 500
    handle_updates: bool = True  # send sessionResumptionUpdate handles at all
    go_away_after_s: float | None = None  # first connection of a session only
    go_away_time_left: str = "5s"
    drop_after_s: float | None = None  # first connection: abort TCP, no close frame
    refuse_resume: bool = False  # resume attempts closed with 1011
    binary_frames: Literal["never", "always", "alternate"] = "alternate"


@dataclass
class _Call:
    name: str
    blocking: bool
    reply: str
    turn_task_id: int  # the speaking turn that issued it (NON_BLOCKING), 0 if none


@dataclass
class _Conversation:
    """What a resumption handle restores."""

    history: list[tuple[str, str]] = field(default_factory=list)
    pending: dict[str, _Call] = field(default_factory=dict)
    turn_index: int = 0
    call_n: int = 0


@dataclass
class _Session:
    id: str
    conv: _Conversation = field(default_factory=_Conversation)
    conn: ConnectionRecord | None = None


@dataclass
class ConnectionRecord:
    """Everything one WebSocket connection saw; tests read these."""

    index: int
    ws: ServerConnection
    session_id: str = ""
    setup: dict[str, Any] | None = None
    resume_handle: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    audio_bytes: int = 0  # caller PCM received
    tool_responses: list[dict[str, Any]] = field(default_factory=list)
    scheduling: list[tuple[str, str]] = field(default_factory=list)  # (call id, handling)
    interruptions: int = 0
    handles: list[str] = field(default_factory=list)
    close_code: int | None = None
    # per-connection runtime state
    speaking: asyncio.Task[None] | None = None
    speaking_id: int = 0
    idle_queue: list[str] = field(default_factory=list)
    in_speech: bool = False
    silence_ms: float = 0.0
    frames_out: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def messages(self, key: str) -> list[dict[str, Any]]:
        return [m[key] for m in self.received if key in m]


class FakeGeminiLive:
    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.connections: list[ConnectionRecord] = []
        self.server_violations: list[str] = []
        self.resume_gate = asyncio.Event()  # clear it to hold setupComplete of resumes
        self.resume_gate.set()
        self._sessions: dict[str, _Session] = {}
        self._handles: dict[str, tuple[str, _Conversation]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.url = ""

    # ------------------------------------------------------------ control

    async def start(self) -> str:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check_request, max_size=None
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}{PATH}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeGeminiLive:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def violations(self) -> list[str]:
        return self.server_violations + [
            f"conn {c.index}: {v}" for c in self.connections for v in c.violations
        ]

    async def wait_until(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait for a condition on the recorded state (re-checked on every message)."""
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(predicate)

    async def go_away(self, index: int = -1, time_left: str | None = None) -> None:
        conn = self.connections[index]
        await self._send(
            conn, {"goAway": {"timeLeft": time_left or self.scenario.go_away_time_left}}
        )
        conn.tasks.append(asyncio.create_task(self._enforce_go_away(conn, time_left)))

    def drop(self, index: int = -1) -> None:
        """A hard disconnect: the TCP connection vanishes without a close frame."""
        self.connections[index].ws.transport.abort()

    async def send_raw(self, obj: Any, *, binary: bool = False, index: int = -1) -> None:
        """Unvalidated, for testing the client against things the SDK types don't know."""
        text = json.dumps(obj)
        await self.connections[index].ws.send(text.encode() if binary else text)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ connection

    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != PATH:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if request.headers.get("x-goog-api-key") != self.scenario.api_key:
            return conn.respond(HTTPStatus.FORBIDDEN, "API key not valid\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = ConnectionRecord(index=len(self.connections), ws=ws)
        self.connections.append(conn)
        try:
            if await self._setup(conn):
                async for raw in ws:
                    await self._on_message(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            for task in [conn.speaking, *conn.tasks]:
                if task is not None and task is not asyncio.current_task():
                    task.cancel()
            conn.close_code = ws.close_code
            await self._notify()

    async def _setup(self, conn: ConnectionRecord) -> bool:
        ws = conn.ws
        msg = await self._recv(conn, await ws.recv())
        if msg is None or "setup" not in msg:
            conn.violations.append("first message must be setup")
            await ws.close(1007, "Request contains an invalid argument.")
            return False
        conn.setup = msg["setup"]
        handle = (conn.setup.get("sessionResumption") or {}).get("handle")
        if handle:
            conn.resume_handle = handle
            if handle not in self._handles or self.scenario.refuse_resume:
                await ws.close(1011 if handle in self._handles else 1007, "session not found")
                return False
            session_id, snapshot = self._handles[handle]
            session = self._sessions[session_id]
            old = session.conn
            if old is not None and old.ws.state is State.OPEN:
                conn.violations.append(f"resumed while connection {old.index} was still open")
                await ws.close(1011, "Internal error encountered.")
                return False
            session.conv = copy.deepcopy(snapshot)
        else:
            session = _Session(id=f"s{next(self._ids)}")
            self._sessions[session.id] = session
        session.conn, conn.session_id = conn, session.id
        if handle:
            # Anything the client sends before setupComplete is a violation.
            early = asyncio.ensure_future(ws.recv())
            gate = asyncio.ensure_future(self.resume_gate.wait())
            await asyncio.wait({early, gate}, return_when=asyncio.FIRST_COMPLETED)
            gate.cancel()
            if early.done():
                conn.violations.append("client sent a message before setupComplete")
                await self._on_message(conn, early.result())
            else:
                early.cancel()  # cancelling recv() loses nothing; wait until it has let go
                with contextlib.suppress(asyncio.CancelledError):
                    await early
        await self._send(conn, {"setupComplete": {}})
        await self._issue_handle(conn)
        first = not handle
        if first and self.scenario.go_away_after_s is not None:
            conn.tasks.append(
                asyncio.create_task(
                    self._later(self.scenario.go_away_after_s, self.go_away, conn.index)
                )
            )
        if first and self.scenario.drop_after_s is not None:
            conn.tasks.append(
                asyncio.create_task(
                    self._later(self.scenario.drop_after_s, self._drop_async, conn.index)
                )
            )
        await self._notify()
        return True

    async def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        await asyncio.sleep(delay)
        result = fn(*args)
        if asyncio.iscoroutine(result):
            await result

    async def _drop_async(self, index: int) -> None:
        self.drop(index)

    async def _enforce_go_away(self, conn: ConnectionRecord, time_left: str | None) -> None:
        left = float((time_left or self.scenario.go_away_time_left).rstrip("s"))
        await asyncio.sleep(left)
        if conn.ws.state is State.OPEN:
            conn.violations.append("client ignored goAway")
            await conn.ws.close(1011, "goAway deadline")

    async def _recv(self, conn: ConnectionRecord, raw: str | bytes) -> dict[str, Any] | None:
        msg, problems = validate_client_message(raw)
        conn.violations += problems
        if msg is not None:
            conn.received.append(msg)
        return msg

    async def _send(self, conn: ConnectionRecord, msg: dict[str, Any]) -> None:
        problems = validate_server_message(msg)
        if problems:
            self.server_violations += problems
            raise AssertionError(f"fake sent an invalid LiveServerMessage: {problems}")
        mode = self.scenario.binary_frames
        binary = mode == "always" or (mode == "alternate" and conn.frames_out % 2 == 1)
        conn.frames_out += 1
        text = json.dumps(msg)
        await conn.ws.send(text.encode() if binary else text)
        conn.sent.append(msg)

    def _session(self, conn: ConnectionRecord) -> _Session:
        return self._sessions[conn.session_id]

    async def _issue_handle(self, conn: ConnectionRecord) -> None:
        """A handle restores the conversation exactly as it is now."""
        if not self.scenario.handle_updates:
            return
        session = self._session(conn)
        handle = f"h-{session.id}-{next(self._ids)}"
        self._handles[handle] = (session.id, copy.deepcopy(session.conv))
        conn.handles.append(handle)
        await self._send(
            conn, {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}
        )

    # ------------------------------------------------------------ client messages

    async def _on_message(self, conn: ConnectionRecord, raw: str | bytes) -> None:
        msg = await self._recv(conn, raw)
        if msg is None:
            return
        if "setup" in msg:
            conn.violations.append("setup sent twice")
        elif "realtimeInput" in msg:
            await self._on_realtime_input(conn, msg["realtimeInput"])
        elif "clientContent" in msg:
            await self._on_client_content(conn, msg["clientContent"])
        elif "toolResponse" in msg:
            await self._on_tool_response(conn, msg["toolResponse"])
        await self._notify()

    async def _on_realtime_input(self, conn: ConnectionRecord, ri: dict[str, Any]) -> None:
        audio = ri.get("audio")
        if not audio:
            return
        mime = audio.get("mimeType", "")
        m = re.fullmatch(r"audio/pcm;rate=(\d+)", mime)
        if not m:
            conn.violations.append(f"unexpected audio mimeType {mime!r}")
            return
        pcm = base64.b64decode(audio.get("data", ""))
        conn.audio_bytes += len(pcm)
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64)
        if not samples.size:
            return
        ms = samples.size * 1000 / int(m.group(1))
        if math.sqrt(float(np.mean(samples**2))) >= self.scenario.speech_rms:
            conn.silence_ms = 0.0
            if not conn.in_speech:
                conn.in_speech = True
                await self._on_speech_start(conn)
        elif conn.in_speech:
            conn.silence_ms += ms
            if conn.silence_ms >= self.scenario.end_of_turn_silence_ms:
                conn.in_speech = False
                await self._on_caller_turn_end(conn)

    async def _on_speech_start(self, conn: ConnectionRecord) -> None:
        conv = self._session(conn).conv
        cut_id = conn.speaking_id if await self._cut(conn) else -1
        if cut_id != -1:
            conn.interruptions += 1
        # Caller talks over a pending tool call: abandon blocking calls and those the
        # cut turn had started.
        ids = [cid for cid, c in conv.pending.items() if c.blocking or c.turn_task_id == cut_id]
        for cid in ids:
            del conv.pending[cid]
        if ids:
            await self._send(conn, {"toolCallCancellation": {"ids": ids}})

    async def _cut(self, conn: ConnectionRecord) -> bool:
        """Stop the turn being spoken: interrupted, then turnComplete (no generationComplete)."""
        task = conn.speaking
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._send(conn, {"serverContent": {"interrupted": True}})
        await self._send(conn, {"serverContent": {"turnComplete": True}})
        return True

    async def _on_caller_turn_end(self, conn: ConnectionRecord) -> None:
        conv = self._session(conn).conv
        turn = (
            self.scenario.turns[conv.turn_index]
            if conv.turn_index < len(self.scenario.turns)
            else ScriptedTurn(caller="(unscripted)", reply=self.scenario.default_reply)
        )
        conv.turn_index += 1
        words = turn.caller.split(" ")
        half = max(1, len(words) // 2)
        await self._send(
            conn, {"serverContent": {"inputTranscription": {"text": " ".join(words[:half])}}}
        )
        rest = " " + " ".join(words[half:]) if words[half:] else ""
        await self._send(
            conn, {"serverContent": {"inputTranscription": {"text": rest, "finished": True}}}
        )
        conv.history.append(("user", turn.caller))
        if turn.tool is None:
            self._speak(conn, turn.reply, turn.reply_ms)
            return
        conv.call_n += 1
        call_id = f"call-{conn.session_id}-{conv.call_n}"
        blocking = self._behavior(conn, turn.tool) != "NON_BLOCKING"
        call = _Call(turn.tool, blocking, turn.reply, 0)
        conv.pending[call_id] = call
        tool_call = {
            "toolCall": {"functionCalls": [{"id": call_id, "name": turn.tool, "args": turn.args}]}
        }
        if blocking:
            await self._send(conn, tool_call)  # then silence until the toolResponse
        else:  # the model keeps talking while the tool runs
            call.turn_task_id = self._speak(
                conn, self.scenario.filler_reply, None, before=tool_call
            )

    def _behavior(self, conn: ConnectionRecord, name: str) -> str:
        for tool in (conn.setup or {}).get("tools") or []:
            for decl in tool.get("functionDeclarations") or []:
                if decl.get("name") == name:
                    return str(decl.get("behavior") or "BLOCKING")
        return "BLOCKING"

    async def _on_client_content(self, conn: ConnectionRecord, cc: dict[str, Any]) -> None:
        # Per the SDK: a clientContent message interrupts any current generation.
        await self._cut(conn)
        conv = self._session(conn).conv
        text = " ".join(
            p.get("text", "") for t in cc.get("turns") or [] for p in t.get("parts") or []
        )
        conv.history.append(("user", text))
        if cc.get("turnComplete"):
            m = re.search(r'Say exactly: "(.*)"', text, re.S)
            self._speak(conn, m.group(1) if m else self.scenario.default_reply, None)

    async def _on_tool_response(self, conn: ConnectionRecord, tr: dict[str, Any]) -> None:
        conv = self._session(conn).conv
        for fr in tr.get("functionResponses") or []:
            conn.tool_responses.append(fr)
            call = conv.pending.pop(str(fr.get("id")), None)
            if call is None:
                conn.violations.append(
                    f"toolResponse for unknown or cancelled call {fr.get('id')!r}"
                )
                continue
            if fr.get("name") != call.name:
                conn.violations.append(f"toolResponse name {fr.get('name')!r} != {call.name!r}")
            result = fr.get("response") or {}
            reply = call.reply.replace(
                "{result}", json.dumps(result.get("output", result), sort_keys=True)
            )
            conv.history.append(("tool", json.dumps(result)))
            if call.blocking:
                if "scheduling" in fr:
                    conn.violations.append("policy: scheduling sent for a BLOCKING function")
                conn.scheduling.append((fr["id"], "BLOCKING"))
                self._speak(conn, reply, None)
                continue
            sched = fr.get("scheduling") or "WHEN_IDLE"
            conn.scheduling.append((fr["id"], sched))
            busy = conn.speaking is not None and not conn.speaking.done()
            if sched == "SILENT":
                pass
            elif sched == "INTERRUPT" or not busy:
                await self._cut(conn)
                self._speak(conn, reply, None)
            else:
                conn.idle_queue.append(reply)  # WHEN_IDLE: after the current turn

    # ------------------------------------------------------------ the model speaking

    def _speak(
        self,
        conn: ConnectionRecord,
        text: str,
        ms: int | None,
        before: dict[str, Any] | None = None,
    ) -> int:
        conn.speaking_id += 1
        conn.speaking = asyncio.create_task(
            self._stream_turn(conn, text, ms or self.scenario.reply_ms, before)
        )
        return conn.speaking_id

    async def _stream_turn(
        self, conn: ConnectionRecord, text: str, ms: int, before: dict[str, Any] | None
    ) -> None:
        with contextlib.suppress(ConnectionClosed):  # the client may leave mid-turn
            await self._stream_turn_inner(conn, text, ms, before)

    async def _stream_turn_inner(
        self, conn: ConnectionRecord, text: str, ms: int, before: dict[str, Any] | None
    ) -> None:
        sc = self.scenario
        if before is not None:
            await self._send(conn, before)
        if sc.handle_updates:  # while generating, the session is not resumable
            await self._send(conn, {"sessionResumptionUpdate": {"resumable": False}})
        pcm = tone(ms)
        chunk = OUT_RATE * 2 * sc.chunk_ms // 1000
        chunks = [pcm[i : i + chunk] for i in range(0, len(pcm), chunk)]
        words = text.split(" ")
        for i, data in enumerate(chunks):
            part = {
                "inlineData": {
                    "mimeType": f"audio/pcm;rate={OUT_RATE}",
                    "data": base64.b64encode(data).decode(),
                }
            }
            await self._send(conn, {"serverContent": {"modelTurn": {"parts": [part]}}})
            # The transcript trickles in alongside the audio, as on the real server.
            lo, hi = len(words) * i // len(chunks), len(words) * (i + 1) // len(chunks)
            if hi > lo:
                piece = (" " if lo else "") + " ".join(words[lo:hi])
                await self._send(conn, {"serverContent": {"outputTranscription": {"text": piece}}})
            await asyncio.sleep(sc.chunk_interval_s)
        await self._send(conn, {"serverContent": {"generationComplete": True}})
        await self._send(
            conn,
            {
                "serverContent": {"turnComplete": True},
                "usageMetadata": {"totalTokenCount": 25 * ms // 1000},
            },
        )
        self._session(conn).conv.history.append(("model", text))
        if not any(c.blocking for c in self._session(conn).conv.pending.values()):
            await self._issue_handle(conn)
        if conn.idle_queue:
            conn.speaking_id += 1
            reply = conn.idle_queue.pop(0)
            conn.speaking = asyncio.create_task(self._stream_turn(conn, reply, sc.reply_ms, None))
        await self._notify()


def tone(ms: int, hz: float = 440.0, rate: int = OUT_RATE, amplitude: int = 6000) -> bytes:
    """A deterministic PCM16 sine: the fake model's voice."""
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()
