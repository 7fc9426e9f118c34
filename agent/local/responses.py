"""One Realtime response: the event sequence from `response.created` to `response.done`.

A `ResponseRun` is given a plan (an awaitable producing a `Reply`: words and tool calls)
and streams it: an assistant message item with audio (or text) content, then one
function_call item per call. Audio is sent as fast as it is synthesised, in ~100 ms
deltas; the next sentence is synthesised while the current one is being sent.

Cancellation is cooperative: `cancel(reason)` sets a flag that every await point and
every delta checks; the run then closes what it opened (audio done, part done, item done
with status `incomplete`) and ends with `response.done` status `cancelled`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed

from .codec import FormatType, bytes_per_ms, format_dict
from .policy import Reply, ToolCall
from .protocol import new_id
from .tts import speech_chunks
from .workers import LATER, URGENT

DELTA_MS = 100
log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Render = Callable[[str, FormatType, int], Awaitable[bytes]]  # (text, format, priority)


class _Cancelled(Exception):
    pass


@dataclass
class AudioRecord:
    """What an assistant item has sent so far: for truncation and "what was heard"."""

    fmt: FormatType
    sent: int = 0  # bytes
    segments: list[tuple[str, int, int]] = field(default_factory=list)  # (text, start, end ms)

    @property
    def ms(self) -> int:
        return self.sent // bytes_per_ms(self.fmt)

    def heard(self, end_ms: int) -> str:
        """The words played before `end_ms`; a partly played piece is cut proportionally."""
        words: list[str] = []
        for text, start, end in self.segments:
            if end <= end_ms:
                words += text.split()
            elif start < end_ms:
                parts = text.split()
                words += parts[: int(len(parts) * (end_ms - start) / max(end - start, 1))]
        return " ".join(words)


class ResponseHooks(Protocol):
    def item_added(self, run: ResponseRun, item: dict[str, Any], record: AudioRecord | None) -> str | None:
        """Register an output item; returns the previous item id (default conversation)."""

    def finishing(self, run: ResponseRun) -> None:
        """Called right before `response.done` is sent (the response is no longer active)."""

    def audio_sent(self, run: ResponseRun, ms: int) -> None:
        """`run` has now sent `ms` of message audio."""


class ResponseRun:
    def __init__(
        self,
        *,
        emit: Emit,
        render: Render,
        hooks: ResponseHooks,
        plan: Callable[[], Awaitable[Reply]],
        conversation_id: str | None,
        fmt: FormatType,
        voice: Any,
        modalities: list[str],
        metadata: dict[str, str] | None,
    ) -> None:
        self.id = new_id("resp")
        self.conversation_id = conversation_id  # None: out-of-band
        self.fmt, self.voice, self.modalities, self.metadata = fmt, voice, modalities, metadata
        self._emit, self._render, self._hooks, self._plan = emit, render, hooks, plan
        self.output: list[dict[str, Any]] = []
        self.spoken: dict[str, str] = {}  # item id -> words actually sent
        self.status = "in_progress"
        self.cancel_reason: str | None = None
        self._cancelled = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._audio_ms = 0
        self.reply: Reply | None = None  # what the plan said to do
        self.message_id: str | None = None  # its spoken message item
        self.record: AudioRecord | None = None
        self.calls_sent = 0

    @property
    def in_conversation(self) -> bool:
        return self.conversation_id is not None

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.run(), name=f"response {self.id}")
        return self.task

    async def cancel(self, reason: str) -> None:
        """Stop the response and wait until its closing events are out."""
        if self.cancel_reason is None and self.status == "in_progress":
            self.cancel_reason = reason
            self._cancelled.set()
        if self.task is not None and self.task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.task)

    # ------------------------------------------------------------ the run
    async def run(self) -> None:
        await self._emit({"type": "response.created", "response": self.snapshot()})
        try:
            reply = self.reply = await self._wait(self._plan())
            if reply.text:
                await self._message(reply.text)
            for call in reply.calls:
                self._check()
                await self._function_call(call)
                self.calls_sent += 1
            self.status = "completed"
        except _Cancelled:
            self.status = "cancelled"
        except ConnectionClosed:
            self.status = "cancelled"  # the caller's socket is gone; nobody to tell
        except Exception:
            log.exception("response %s failed", self.id)
            self.status = "failed"  # said in response.done, like OpenAI's status "failed"
        finally:
            if self.status == "in_progress":  # the task itself was cancelled (socket gone)
                self.status = "cancelled"
            self._hooks.finishing(self)
            with contextlib.suppress(Exception):
                await self._emit({"type": "response.done", "response": self.snapshot()})

    def snapshot(self) -> dict[str, Any]:
        details: dict[str, Any] | None = None
        if self.status == "cancelled":
            details = {"type": "cancelled", "reason": self.cancel_reason or "client_cancelled"}
        elif self.status == "failed":
            details = {"type": "failed", "error": {"type": "server_error", "code": "engine_error",
                                                    "message": "The local engine failed."}}  # fmt: skip
        done = self.status != "in_progress"
        return {
            "id": self.id,
            "object": "realtime.response",
            "status": self.status,
            "status_details": details,
            "output": self.output if done else [],
            "conversation_id": self.conversation_id,
            "output_modalities": self.modalities,
            "max_output_tokens": "inf",
            "audio": {"output": {"format": format_dict(self.fmt), "voice": self.voice}},
            "usage": self._usage() if done else None,
            "metadata": self.metadata,
        }

    def _usage(self) -> dict[str, Any]:
        # The engine has no tokens; report plausible sizes so usage-based metrics work.
        text_out = sum(len(t.split()) for t in self.spoken.values()) * 4 // 3
        audio_out = self._audio_ms // 50
        calls = sum(len(i.get("arguments", "")) // 4 for i in self.output if i["type"] == "function_call")
        output = text_out + audio_out + calls
        return {
            "total_tokens": output,
            "input_tokens": 0,
            "output_tokens": output,
            "input_token_details": {"cached_tokens": 0, "text_tokens": 0, "audio_tokens": 0},
            "output_token_details": {"text_tokens": text_out + calls, "audio_tokens": audio_out},
        }

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise _Cancelled

    async def _wait(self, awaitable: Awaitable[Any]) -> Any:
        """Await something (synthesis, a transcript) unless the response is cancelled first."""
        self._check()
        work = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._cancelled.wait())
        try:
            done, _ = await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if work in done:
            return work.result()
        work.cancel()
        raise _Cancelled

    async def _add_item(self, item: dict[str, Any], record: AudioRecord | None) -> int:
        index = len(self.output)
        self.output.append(item)
        previous = self._hooks.item_added(self, item, record)
        await self._emit({"type": "response.output_item.added", "response_id": self.id,
                          "output_index": index, "item": item})  # fmt: skip
        if self.in_conversation:
            await self._emit({"type": "conversation.item.added", "previous_item_id": previous,
                              "item": item})  # fmt: skip
        return index

    async def _item_done(self, item: dict[str, Any], index: int) -> None:
        await self._emit({"type": "response.output_item.done", "response_id": self.id,
                          "output_index": index, "item": item})  # fmt: skip
        if self.in_conversation:
            await self._emit({"type": "conversation.item.done", "item": item})

    # ------------------------------------------------------------ message (audio / text)
    async def _message(self, text: str) -> None:
        audio = "audio" in self.modalities
        item_id = new_id("item")
        record = self.record = AudioRecord(self.fmt) if audio else None
        self.message_id = item_id
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message",
                                "status": "in_progress", "role": "assistant", "content": []}  # fmt: skip
        index = await self._add_item(item, record)
        ids = {"response_id": self.id, "item_id": item_id, "output_index": index, "content_index": 0}
        part: dict[str, Any] = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await self._emit({"type": "response.content_part.added", **ids, "part": part})
        said: list[str] = []
        try:
            if record is not None:
                await self._stream_audio(text, ids, record, said)
            else:
                await self._emit({"type": "response.output_text.delta", **ids, "delta": text})
                said.append(text)
        finally:
            spoken = " ".join(said)
            self.spoken[item_id] = spoken
            complete = not self._cancelled.is_set()
            with contextlib.suppress(Exception):  # close what we opened, even on cancel
                if record is not None:
                    await self._emit({"type": "response.output_audio.done", **ids})
                    await self._emit({"type": "response.output_audio_transcript.done", **ids,
                                      "transcript": spoken})  # fmt: skip
                    final_part = {"type": "audio", "transcript": spoken}
                    content = [{"type": "output_audio", "transcript": spoken}]
                else:
                    await self._emit({"type": "response.output_text.done", **ids, "text": spoken})
                    final_part = {"type": "text", "text": spoken}
                    content = [{"type": "output_text", "text": spoken}]
                await self._emit({"type": "response.content_part.done", **ids, "part": final_part})
                item.update(status="completed" if complete else "incomplete", content=content)
                await self._item_done(item, index)

    async def _stream_audio(
        self, text: str, ids: dict[str, Any], record: AudioRecord, said: list[str]
    ) -> None:
        chunks = speech_chunks(text)
        step = DELTA_MS * bytes_per_ms(self.fmt)
        # the first words are urgent (the caller waits in silence); later sentences have
        # the playback time of the ones before them
        upcoming = asyncio.ensure_future(self._render(chunks[0], self.fmt, URGENT)) if chunks else None
        try:
            for i, chunk in enumerate(chunks):
                assert upcoming is not None
                data = await self._wait(upcoming)
                # synthesise the next piece while this one goes out
                upcoming = None
                if i + 1 < len(chunks):
                    upcoming = asyncio.ensure_future(self._render(chunks[i + 1], self.fmt, LATER))
                start = record.ms
                delta = chunk if i == 0 else " " + chunk
                await self._emit({"type": "response.output_audio_transcript.delta", **ids, "delta": delta})
                said.append(chunk)
                for offset in range(0, len(data), step):
                    self._check()
                    piece = data[offset : offset + step]
                    await self._emit({"type": "response.output_audio.delta", **ids,
                                      "delta": base64.b64encode(piece).decode("ascii")})  # fmt: skip
                    record.sent += len(piece)
                    self._audio_ms = record.ms
                    self._hooks.audio_sent(self, record.ms)
                record.segments.append((chunk, start, record.ms))
        finally:
            if upcoming is not None:
                upcoming.cancel()

    # ------------------------------------------------------------ function calls
    async def _function_call(self, call: ToolCall) -> None:
        item_id = new_id("item")
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "function_call",
                                "status": "in_progress", "name": call.name, "call_id": call.call_id,
                                "arguments": ""}  # fmt: skip
        index = await self._add_item(item, None)
        arguments = json.dumps(call.arguments)
        ids = {"response_id": self.id, "item_id": item_id, "output_index": index, "call_id": call.call_id}
        await self._emit({"type": "response.function_call_arguments.delta", **ids, "delta": arguments})
        await self._emit({"type": "response.function_call_arguments.done", **ids,
                          "name": call.name, "arguments": arguments})  # fmt: skip
        item.update(status="completed", arguments=arguments)
        await self._item_done(item, index)
