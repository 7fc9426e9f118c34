"""A fake OpenAI Realtime server (GA WebSocket protocol) for tests.

(Over 400 lines on purpose: one connection's protocol state machine, from handshake to
close, reads best whole; how it answers lives in `responses.py`.)

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
item's audio, `conversation.item.delete`, server VAD's `interrupt_response: false` (the
reply goes on over caller speech) and `create_response` (no answer while a reply runs), the active-response error, provider drops and `session_expired`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent.devkit.fake_openai.responses import Responses
from agent.devkit.fake_openai.scenario import FakeSession, Scenario
from agent.devkit.fake_openai.schema import EventViolation, check_client_event, check_server_event
from agent.devkit.fake_openai.session_config import default_session, input_format, merge, settle
from telephony.audio import pcm16_rms, ulaw_to_pcm16

SESSION_EXPIRED_MESSAGE = "Your session hit the maximum duration of 60 minutes."
BETA_GONE_MESSAGE = "The Realtime Beta API is no longer supported. Please use the GA API."

class FakeOpenAIRealtime(Responses):
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

    async def __aenter__(self) -> Self:
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
            config=default_session(query["model"][0]),
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
                sess.violations.append(EventViolation("beta_header", BETA_GONE_MESSAGE))
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
            sess.violations.append(EventViolation("invalid_json", "Invalid JSON"))
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
            merge(sess.config, msg["session"])
            await self._send(sess, {"type": "session.updated", "session": sess.config})
        elif kind == "response.create":
            await self._on_response_create(sess, msg)
        elif kind == "response.cancel":
            await self._on_cancel(sess, msg)
        elif kind == "conversation.item.create":
            await self._on_item_create(sess, msg)
        elif kind == "conversation.item.truncate":
            await self._on_truncate(sess, msg)
        elif kind == "conversation.item.delete":
            await self._on_delete(sess, msg)
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
        fmt = input_format(sess.config)
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
                        await settle(active.task)
            return
        if not sess.speaking:
            return
        sess.silence_ms += 20
        if sess.silence_ms >= int(vad.get("silence_duration_ms") or 500):
            sess.speaking = False
            # As OpenAI documents it: "the end of audio sent to the model, and thus
            # includes the min_silence_duration_ms configured in the Session".
            await self._send(sess, {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": sess.last_speech_ms + sess.silence_ms, "item_id": sess.speech_item,
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
        item: dict[str, Any] = {
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
            await settle(target.task)

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

    async def _on_delete(self, sess: FakeSession, msg: dict[str, Any]) -> None:
        sess.deletes.append(msg)
        item_id = msg["item_id"]
        if item_id not in sess.items:
            await self._error(
                sess, "invalid_request_error", "item_delete_invalid_item_id",
                f"Item with item_id not found: {item_id}", "item_id", msg,
            )  # fmt: skip
            return
        del sess.items[item_id]
        sess.item_order.remove(item_id)
        await self._send(sess, {"type": "conversation.item.deleted", "item_id": item_id})

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
