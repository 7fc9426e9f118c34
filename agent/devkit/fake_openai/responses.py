"""How the fake answers: scripted replies spoken as a tone with transcript deltas,
function calls and the answer after their output, `Say exactly` lines, out-of-band
responses, cancellation."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
from collections.abc import Coroutine
from typing import Any

from agent.devkit.fake_openai.audio import tone
from agent.devkit.fake_openai.scenario import FakeResponse, FakeSession, Scenario, ScriptedTurn
from agent.devkit.fake_openai.session_config import fmt_name, usage

SAY_EXACTLY = re.compile(r'Say exactly: "(.*)"\s*$', re.DOTALL)


class Responses:
    """The response half of `FakeOpenAIRealtime` (a mixin: it shares the server's state)."""

    scenario: Scenario

    async def _send(self, sess: FakeSession, ev: dict[str, Any], *, validate: bool = True) -> None:
        raise NotImplementedError

    def _id(self, prefix: str) -> str:
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        raise NotImplementedError

    def _add_item(self, sess: FakeSession, item: dict[str, Any]) -> None:
        raise NotImplementedError

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
        body: dict[str, Any] = {
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
            item: dict[str, Any] = {
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
            await self._stream_audio(sess, resp, item, ids, fmt_name(out_fmt))
        resp.status = "cancelled" if resp.cancel_reason else "completed"
        item["status"] = "incomplete" if resp.cancel_reason else "completed"
        await self._send(sess, {"type": "response.output_item.done", **ids, "item": item})
        if default:
            await self._send(sess, {"type": "conversation.item.done", "item": item})
        body.update(status=resp.status, output=[item], usage=usage())
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
