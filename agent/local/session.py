"""`EngineSession`: one Realtime WebSocket connection, all of its state, none shared.

The receive loop handles client events strictly in order. Work that takes time runs
elsewhere: VAD steps in the VAD pool (awaited, they are ~1 ms), transcription and
responses in tasks this session owns and cancels when the socket goes away.

Caller turn with server VAD:
    append... -> speech_started -> (pause: speculative transcription and first words of
    the likely reply) -> speech_stopped
    -> committed -> conversation.item.added/done (user) -> response.created
    -> input_audio_transcription.completed -> response output ... -> response.done

(A little over 400 lines: one connection's event loop of the Realtime protocol; the
listening, policy, speaking, turn-end and barge-in parts live in their own modules.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .barge_in import BargeIns
from .codec import FormatType
from .listener import PCM_BYTES_PER_MS, Listener, Turn
from .models import SpeechModels
from .policy import DialogPolicy, Reply, dated
from .protocol import (
    ProtocolError,
    apply_session_update,
    audio_format,
    default_session,
    error_event,
    function_names,
    invalid_type,
    invalid_value,
    item_text,
    loose_script,
    missing,
    new_id,
    scripted_text,
    validate_item,
    validate_response_params,
)
from .responses import AudioRecord, ResponseRun
from .stt import Transcript
from .tts import speech_chunks
from .turn_end import after_barge_in, judge_pause
from .vad import VadEvent
from .workers import SOON, URGENT

log = logging.getLogger(__name__)

CLIENT_EVENTS = (
    "session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear", "conversation.item.create", "conversation.item.truncate",
    "conversation.item.delete", "conversation.item.retrieve", "response.create", "response.cancel",
)  # fmt: skip


class EngineSession:
    def __init__(self, ws: Any, models: SpeechModels, model: str = "gpt-realtime") -> None:
        self._ws = ws
        self._models = models
        self._loop = asyncio.get_running_loop()
        self.session = default_session(model)
        self.conversation_id = new_id("conv")
        self.policy = DialogPolicy(new_call_id=lambda: new_id("call"))
        self._input = Listener(models, self.session["audio"]["input"])
        self._items: dict[str, dict[str, Any]] = {}
        self._audio: dict[str, AudioRecord] = {}
        self._inbox: deque[tuple[str, str, Any]] = deque()  # for the policy, in order
        self.active: ResponseRun | None = None  # the default-conversation response
        self._runs: set[ResponseRun] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._barge = BargeIns(self._loop.time)

    # ------------------------------------------------------------ plumbing
    async def emit(self, event: dict[str, Any]) -> None:
        await self._ws.send(json.dumps({"event_id": new_id("event"), **event}))

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task %s failed", task.get_name(), exc_info=task.exception())

    async def run(self) -> None:
        """Serve the connection until the client goes away."""
        try:
            await self.emit({"type": "session.created", "session": self.session})
            async for message in self._ws:
                await self.handle(message)
        finally:
            await self.close()

    async def close(self) -> None:
        for run in list(self._runs):
            if run.task is not None:
                run.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        pending = [r.task for r in self._runs if r.task is not None] + list(self._tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._input.close()

    async def handle(self, message: str | bytes) -> None:
        """One client frame. Bad input becomes an `error` event; the session carries on."""
        event_id: str | None = None
        try:
            if isinstance(message, bytes):
                raise ProtocolError("invalid_value", "Binary frames are not supported; send JSON text.")
            try:
                event = json.loads(message)
            except ValueError as exc:
                raise ProtocolError("invalid_json", f"Invalid JSON in client event: {exc}.") from None
            if not isinstance(event, dict):
                raise invalid_type("event", "an object", event)
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            kind = event.get("type")
            if kind is None:
                raise missing("type")
            if kind not in CLIENT_EVENTS:
                raise invalid_value("type", kind, CLIENT_EVENTS)
            handler: Callable[[dict[str, Any]], Awaitable[None]] = getattr(
                self, "_on_" + kind.replace(".", "_")
            )
            await handler(event)
        except ProtocolError as exc:
            await self.emit(error_event(exc, event_id))

    # ------------------------------------------------------------ session.update
    async def _on_session_update(self, event: dict[str, Any]) -> None:
        if "session" not in event:
            raise missing("session")
        updated = apply_session_update(self.session, event["session"])
        for fixed in ("id", "object", "expires_at", "model"):
            updated[fixed] = self.session[fixed]  # not updatable
        turn = updated["audio"]["input"].get("turn_detection")
        if turn and turn.get("interrupt_response") is False:
            # This engine stops for a barge-in within ~100 ms and resumes its own reply
            # after noise (barge_in.py); a client asking to keep replies running means to
            # do that itself. It answers true, so the client leaves it to the engine.
            turn["interrupt_response"] = True
        self.session = updated
        await self._input.configure(updated["audio"]["input"])
        self.policy.tools = function_names(updated)
        if (day := dated(updated.get("instructions"))) is not None:
            self.policy.today = day  # the day the service's tools count from
        await self.emit({"type": "session.updated", "session": self.session})

    # ------------------------------------------------------------ input audio
    async def _on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if audio is None:
            raise missing("audio")
        if not isinstance(audio, str):
            raise invalid_type("audio", "a string", audio)
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio") from None
        for vad_event in await self._input.append(raw, over_reply=self._over_reply()):
            await self._on_vad(vad_event)
        self._input.trim_idle()

    async def _on_vad(self, ev: VadEvent) -> None:
        listener = self._input
        turn = listener.turn
        if ev.kind == "start":
            over_reply = self._over_reply()
            listener.turn = Turn(new_id("item"), ev.ms, over_reply=over_reply)
            self._barge.interrupt() if over_reply else self._barge.take()  # what it may cut
            await self.emit({"type": "input_audio_buffer.speech_started",
                             "audio_start_ms": ev.ms, "item_id": listener.turn.item_id})  # fmt: skip
            if listener.setting("interrupt_response", True) and self.active is not None:
                await self.active.cancel("turn_detected")
        elif turn is None:
            return
        elif ev.kind == "pause":
            # transcribe now, while the VAD waits out the rest of the silence
            audio = listener.turn_audio(turn, ev.at)
            turn.speculative = self._spawn(self._transcribe(audio, SOON), f"speculative stt {turn.item_id}")
            self._spawn(self._prerender(turn.speculative), f"speculative tts {turn.item_id}")
            current = not self._inbox  # the policy's state is current: it can judge
            ending = judge_pause(
                listener, turn, ev.ms, turn.speculative, self.policy.sounds_complete if current else None,
                self.policy.says_something, self.policy.sounds_finished if current else None,
            )  # fmt: skip
            self._spawn(ending, f"turn end {turn.item_id}")
        elif ev.kind == "resume":
            if turn.speculative is not None:
                turn.speculative.cancel()  # the turn goes on: that guess is stale
            turn.speculative = None
        elif ev.kind == "stop":
            listener.turn = None
            await self.emit({"type": "input_audio_buffer.speech_stopped",
                             "audio_end_ms": ev.ms, "item_id": turn.item_id})  # fmt: skip
            audio = listener.turn_audio(turn, ev.at)
            listener.trim(before_ms=ev.at)
            interrupted = self._barge.take() if turn.over_reply else None
            heard = await self._commit(turn.item_id, audio, turn.speculative)
            plan: Callable[[], Awaitable[Reply]] = self._policy_plan
            if interrupted is not None:
                entry = self._inbox[-1]
                plan = after_barge_in(
                    interrupted, ev.ms - turn.start_ms, asyncio.shield(heard),
                    lambda: self._drop_input(entry), self.policy.truncated, self._policy_plan,
                    self.policy.says_something,
                )  # fmt: skip
            if listener.setting("create_response", True) and self.active is None:
                await self._start_response({}, plan)
            elif interrupted is not None and interrupted.heard is not None and interrupted.item_id:
                self.policy.truncated(interrupted.item_id, interrupted.heard)

    def _over_reply(self) -> bool:
        """Would caller speech now interrupt a reply still playing at their end?"""
        return bool(self._input.setting("interrupt_response", True)) and self._barge.playing()

    def _drop_input(self, entry: tuple[str, str, Any]) -> None:
        """Forget a caller turn before the policy hears it (it was noise)."""
        if entry in self._inbox:
            self._inbox.remove(entry)

    async def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        listener = self._input
        if listener.turn is not None:
            item_id = listener.turn.item_id
            audio = listener.turn_audio(listener.turn, listener.end_ms)
        else:
            item_id = new_id("item")
            audio = listener.audio(listener.start_ms, listener.end_ms)
        ms = len(audio) / PCM_BYTES_PER_MS
        if ms < 100:
            raise ProtocolError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        await listener.reset()
        await self._commit(item_id, audio, None)

    async def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        await self._input.reset()
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def _prerender(self, speculative: asyncio.Future[Transcript]) -> None:
        """While the VAD waits out the silence, guess the reply and synthesise its first
        words into the TTS cache. The policy is pure, so a copy can answer ahead of time;
        if the caller goes on speaking the guess is simply never used."""
        transcript = await asyncio.shield(speculative)
        if self._inbox or not transcript.text:
            return  # other input is pending: the real reply may differ
        preview = copy.deepcopy(self.policy)
        preview.hear(transcript.text)
        chunks = speech_chunks(preview.respond().text)
        if chunks:
            await self._render(chunks[0], audio_format(self.session, "output"), SOON)

    async def _transcribe(self, pcm: bytes, priority: int = URGENT) -> Transcript:
        return await self._models.workers.stt.run(priority, self._models.stt.transcribe, pcm)

    async def _commit(
        self, item_id: str, pcm: bytes, speculative: asyncio.Future[Transcript] | None
    ) -> asyncio.Future[str]:
        previous = self._last_item_id()
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed",
                "role": "user", "content": [{"type": "input_audio", "transcript": None}]}  # fmt: skip
        self._items[item_id] = item
        await self.emit({"type": "input_audio_buffer.committed", "item_id": item_id,
                         "previous_item_id": previous})  # fmt: skip
        await self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        text: asyncio.Future[str] = self._loop.create_future()
        self._inbox.append(("user", item_id, text))
        self._spawn(self._finish_transcript(item, pcm, speculative, text), f"stt {item_id}")
        return text

    async def _finish_transcript(
        self, item: dict[str, Any], pcm: bytes,
        speculative: asyncio.Future[Transcript] | None, text: asyncio.Future[str],
    ) -> None:  # fmt: skip
        try:
            result = await speculative if speculative is not None else await self._transcribe(pcm)
        except Exception as exc:  # a failed transcription must not hang the turn
            log.exception("transcription failed")
            if not text.done():
                text.set_result("")
            if self.session["audio"]["input"]["transcription"] is not None:
                await self.emit({"type": "conversation.item.input_audio_transcription.failed",
                                 "item_id": item["id"], "content_index": 0,
                                 "error": {"type": "transcription_error", "message": str(exc)}})  # fmt: skip
            return
        item["content"][0]["transcript"] = result.text
        if self.session["audio"]["input"]["transcription"] is not None:
            await self.emit({
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item["id"], "content_index": 0, "transcript": result.text,
                "usage": {"type": "duration", "seconds": round(result.seconds, 3)},
            })  # fmt: skip
        if not text.done():
            text.set_result(result.text)

    # ------------------------------------------------------------ conversation items
    def _last_item_id(self) -> str | None:
        return next(reversed(self._items), None)

    async def _on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = validate_item(event.get("item"))
        if item["id"] in self._items:
            raise ProtocolError("item_already_exists", f"Item with id '{item['id']}' already exists.", "item.id")
        previous = event.get("previous_item_id") or self._last_item_id()
        if previous == "root":
            previous = None
        self._items[item["id"]] = item
        await self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        if item["type"] == "function_call_output":
            self._inbox.append(("result", item["call_id"], item["output"]))
        elif item["type"] == "message" and item["role"] == "user":
            self._inbox.append(("user", item["id"], item_text(item)))
        elif item["type"] == "message" and item["role"] == "assistant":
            # A client-written answer (e.g. history re-seeded into a new session): what the
            # caller said before it was already dealt with; remember it, don't act on it.
            self._inbox = deque(("context", *entry[1:]) if entry[0] == "user" else entry for entry in self._inbox)
            self._inbox.append(("said", item["id"], item_text(item)))

    async def _on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        for key in ("item_id", "content_index", "audio_end_ms"):
            if key not in event:
                raise missing(key)
        item_id, end_ms = event["item_id"], event["audio_end_ms"]
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms < 0:
            raise invalid_value("audio_end_ms", end_ms)
        if item_id not in self._items:
            raise ProtocolError("item_not_found", f"Item with item_id '{item_id}' not found.", "item_id")
        record = self._audio.get(item_id)
        if record is None:
            raise ProtocolError("invalid_value", "Only model output audio messages can be truncated", "item_id")
        if event["content_index"] != 0:
            raise invalid_value("content_index", event["content_index"])
        if end_ms > record.ms:
            raise ProtocolError("invalid_value",
                                f"Audio content of {record.ms}ms is already shorter than {end_ms}ms",
                                "audio_end_ms")  # fmt: skip
        heard = record.heard(end_ms)
        for part in self._items[item_id].get("content") or []:
            if part.get("type") == "output_audio":
                part["transcript"] = heard
        if not self._barge.defer_truncate(item_id, heard, end_ms):  # else: told if it was real
            self.policy.truncated(item_id, heard)
        await self.emit({"type": "conversation.item.truncated", "item_id": item_id,
                         "content_index": 0, "audio_end_ms": end_ms})  # fmt: skip

    async def _on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if item_id not in self._items:
            raise ProtocolError("item_not_found", f"Item with item_id '{item_id}' not found.", "item_id")
        del self._items[item_id]
        self._audio.pop(item_id, None)
        await self.emit({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_conversation_item_retrieve(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if item_id not in self._items:
            raise ProtocolError("item_not_found", f"Item with item_id '{item_id}' not found.", "item_id")
        await self.emit({"type": "conversation.item.retrieved", "item": self._items[item_id]})

    # ------------------------------------------------------------ responses
    async def _on_response_create(self, event: dict[str, Any]) -> None:
        params = validate_response_params(event.get("response"))
        out_of_band = params.get("conversation") == "none"
        if not out_of_band and self.active is not None:
            raise ProtocolError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        instructions = params.get("instructions")
        script = scripted_text(instructions)
        if script is None and out_of_band:
            script = loose_script(instructions) or "One moment."
        plan = self._policy_plan if script is None else _constant(Reply(script))
        await self._start_response(params, plan)

    async def _on_response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        target = next((r for r in self._runs if r.id == wanted), None) if wanted else self.active
        if target is None:
            raise ProtocolError("response_cancel_not_active", "Cancellation failed: no active response found")
        await target.cancel("client_cancelled")

    async def _start_response(self, params: dict[str, Any], plan: Callable[[], Awaitable[Reply]]) -> None:
        out_of_band = params.get("conversation") == "none"
        fmt_param = ((params.get("audio") or {}).get("output") or {}).get("format")
        fmt: FormatType = fmt_param["type"] if fmt_param else audio_format(self.session, "output")
        run = ResponseRun(
            emit=self.emit, render=self._render, hooks=self, plan=plan,
            conversation_id=None if out_of_band else self.conversation_id,
            fmt=fmt, voice=self.session["audio"]["output"].get("voice"),
            modalities=list(params.get("output_modalities") or self.session["output_modalities"]),
            metadata=params.get("metadata"),
        )  # fmt: skip
        self._runs.add(run)
        if not out_of_band:
            self.active = run
        run.start()

    async def _render(self, text: str, fmt: FormatType, priority: int) -> bytes:
        return await self._models.workers.tts.run(priority, self._models.tts.render, text, fmt)

    async def _policy_plan(self) -> Reply:
        """Feed the policy everything heard since the last response (in order), then ask it."""
        while self._inbox:
            kind, key, value = self._inbox[0]
            if kind in ("user", "context"):
                text = await asyncio.shield(value) if isinstance(value, asyncio.Future) else value
                (self.policy.hear if kind == "user" else self.policy.recall)(text)
            elif kind == "said":
                self.policy.said(key, value)
            else:
                self.policy.tool_result(key, value)
            self._inbox.popleft()
        return self.policy.respond()

    # ResponseHooks
    def item_added(self, run: ResponseRun, item: dict[str, Any], record: AudioRecord | None) -> str | None:
        if not run.in_conversation:
            return None
        previous = self._last_item_id()
        self._items[item["id"]] = item
        if record is not None:
            self._audio[item["id"]] = record
        return previous

    def audio_sent(self, run: ResponseRun, ms: int) -> None:
        self._barge.audio_sent(run, ms)

    def finishing(self, run: ResponseRun) -> None:
        self._barge.finished(run)
        if self.active is run:
            self.active = None
        self._runs.discard(run)
        if run.in_conversation:
            for item_id, spoken in run.spoken.items():
                self.policy.said(item_id, spoken)


def _constant(reply: Reply) -> Callable[[], Awaitable[Reply]]:
    async def plan() -> Reply:
        return reply

    return plan

