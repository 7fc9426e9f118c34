"""Gemini Live server messages -> `RealtimeEvent`s, sans I/O.

`GeminiTranslator.feed(msg)` takes one decoded server message and returns the events it
means; it also keeps the bookkeeping the session needs across connection swaps (open
model turn, open tool calls, the latest resumption handle, a pending goAway). No
sockets, no tasks: unit-testable with plain dicts.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from agent.providers.gemini.wire import OUTPUT_RATE, parse_duration_s, parse_rate
from agent.realtime import (
    AudioDone,
    AudioOut,
    RealtimeEvent,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    ToolCallCancelled,
    Transcript,
)
from telephony.audio import PcmToUlaw

log = logging.getLogger(__name__)

RECENT_TURNS = 8
DEFAULT_GOAWAY_S = 5.0


@dataclass(slots=True)
class ModelTurn:
    """One model turn, with what was delivered of it (for interruption notes)."""

    id: str
    ulaw_bytes: int = 0
    text: list[str] = field(default_factory=list)
    interrupted: bool = False
    generation_complete: bool = False

    @property
    def received_ms(self) -> int:
        return self.ulaw_bytes // 8

    @property
    def transcript(self) -> str:
        return "".join(self.text).strip()


class GeminiTranslator:
    def __init__(self) -> None:
        self._to_ulaw = PcmToUlaw(OUTPUT_RATE)
        self.turn: ModelTurn | None = None  # the model turn in progress
        self._turn_n = 0
        self._recent: OrderedDict[str, ModelTurn] = OrderedDict()
        self._caller_text: list[str] = []
        self._caller_n = 0
        # open tool calls: id -> (name, handle_seq when issued)
        self.calls: dict[str, tuple[str, int]] = {}
        self.handle: str | None = None
        self.handle_seq = 0  # bumps with every resumable handle
        self.handle_fresh = False  # a handle arrived since the model last did anything
        self.go_away_s: float | None = None  # set by goAway; the session consumes it

    # ------------------------------------------------------------ queries

    def turn_for(self, item_id: str | None) -> ModelTurn | None:
        return self._recent.get(item_id) if item_id else self.turn

    @property
    def speaking(self) -> bool:
        """A model turn is running and has not been cut."""
        return self.turn is not None and not self.turn.interrupted

    # ------------------------------------------------------------ feeding

    def feed(self, msg: dict[str, Any]) -> list[RealtimeEvent]:
        out: list[RealtimeEvent] = []
        # Usually one key per message, but usageMetadata can ride along: check them all.
        for key, value in msg.items():
            if not isinstance(value, dict):
                log.debug("ignoring non-object Gemini field %r", key)
            elif key == "serverContent":
                self._server_content(value, out)
            elif key == "toolCall":
                self._tool_call(value, out)
            elif key == "toolCallCancellation":
                ids = tuple(str(i) for i in value.get("ids") or [])
                for cid in ids:
                    self.calls.pop(cid, None)
                if ids:
                    out.append(ToolCallCancelled(ids))
            elif key == "sessionResumptionUpdate":
                # Non-resumable updates (empty handle) come while the model is busy:
                # keep the last good handle.
                if value.get("resumable") and value.get("newHandle"):
                    self.handle, self.handle_fresh = str(value["newHandle"]), True
                    self.handle_seq += 1
            elif key == "goAway":
                self.go_away_s = parse_duration_s(value.get("timeLeft"), DEFAULT_GOAWAY_S)
                log.info("Gemini goAway, %.1f s left", self.go_away_s)
            elif key in ("voiceActivity", "voiceActivityDetectionSignal"):
                # Explicit VAD signals (not sent by default): caller speech start/end,
                # like OpenAI's speech_started/stopped.
                kind = str(value.get("voiceActivityType") or value.get("vadSignalType") or "")
                if kind in ("ACTIVITY_START", "VAD_SIGNAL_TYPE_SOS"):
                    out.append(SpeechStarted())
                elif kind in ("ACTIVITY_END", "VAD_SIGNAL_TYPE_EOS"):
                    out.append(SpeechStopped())
            elif key == "usageMetadata":
                log.debug("Gemini usage: %s", value)
            elif key != "setupComplete":
                log.debug("ignoring unknown Gemini message key %r", key)
        return out

    def _server_content(self, sc: dict[str, Any], out: list[RealtimeEvent]) -> None:
        if sc.get("interrupted"):
            # The caller barged in and the server already cut its turn: drop the rest.
            self._to_ulaw.reset()
            if self.turn is not None:
                self.turn.interrupted = True
            out.append(SpeechStarted(interrupted=True))
        inp = sc.get("inputTranscription")
        if isinstance(inp, dict):
            self._caller(str(inp.get("text") or ""), bool(inp.get("finished")), out)
        for part in (sc.get("modelTurn") or {}).get("parts") or []:
            inline = part.get("inlineData")
            if isinstance(inline, dict) and str(inline.get("mimeType", "")).startswith("audio/"):
                self._audio(inline, out)
        text = (sc.get("outputTranscription") or {}).get("text")
        if text:
            turn = self._open_turn(out)
            turn.text.append(text)
            out.append(Transcript("bot", text, final=False, item_id=turn.id))
        if sc.get("generationComplete") and self.turn is not None:
            self.turn.generation_complete = True
        if sc.get("turnComplete"):
            self._finish_caller(out)
            ended, self.turn = self.turn, None
            if ended is not None:
                if ended.interrupted:
                    self._end_turn(ended, "cancelled", out)
                else:
                    self._deliver(ended, self._to_ulaw.flush(), out)
                    self._end_turn(ended, "completed", out)

    def _audio(self, inline: dict[str, Any], out: list[RealtimeEvent]) -> None:
        turn = self._open_turn(out)
        if turn.interrupted:
            return  # leftovers of a cut turn must not reach the caller
        rate = parse_rate(inline.get("mimeType"))
        if rate != self._to_ulaw.rate:
            self._to_ulaw = PcmToUlaw(rate)
        self._deliver(turn, self._to_ulaw.convert(base64.b64decode(inline.get("data") or "")), out)

    def _deliver(self, turn: ModelTurn, ulaw: bytes, out: list[RealtimeEvent]) -> None:
        if ulaw:
            turn.ulaw_bytes += len(ulaw)
            out.append(AudioOut(ulaw, item_id=turn.id, response_id=turn.id))

    def _caller(self, text: str, finished: bool, out: list[RealtimeEvent]) -> None:
        # Deltas go out as they come (final=False); the whole utterance once, final=True.
        if text:
            self._caller_text.append(text)
            item_id = f"caller-{self._caller_n + 1}"
            out.append(Transcript("caller", text, final=False, item_id=item_id))
        if finished:
            self._finish_caller(out)

    def _finish_caller(self, out: list[RealtimeEvent]) -> None:
        text = "".join(self._caller_text).strip()
        self._caller_text.clear()
        if text:
            self._caller_n += 1
            out.append(Transcript("caller", text, final=True, item_id=f"caller-{self._caller_n}"))

    def _tool_call(self, value: dict[str, Any], out: list[RealtimeEvent]) -> None:
        self._open_turn(out)
        for fc in value.get("functionCalls") or []:
            call_id, name, args = str(fc.get("id") or ""), str(fc.get("name") or ""), fc.get("args")
            self.calls[call_id] = (name, self.handle_seq)
            out.append(
                ToolCall(
                    call_id=call_id,
                    name=name,
                    arguments=args if isinstance(args, dict) else {},
                    raw_arguments=json.dumps(args),
                )
            )

    def _open_turn(self, out: list[RealtimeEvent]) -> ModelTurn:
        if self.turn is None:
            self._turn_n += 1
            self.turn = ModelTurn(f"turn-{self._turn_n}")
            self._recent[self.turn.id] = self.turn
            while len(self._recent) > RECENT_TURNS:
                self._recent.popitem(last=False)
            self.handle_fresh = False  # the server's state moves on: wait for a new handle
            out.append(ResponseStarted(self.turn.id))
        return self.turn

    def _end_turn(self, turn: ModelTurn, status: str, out: list[RealtimeEvent]) -> None:
        if turn.ulaw_bytes:
            out.append(AudioDone(turn.id, response_id=turn.id))
        if turn.text:
            out.append(Transcript("bot", turn.transcript, final=True, item_id=turn.id))
        out.append(ResponseDone(turn.id, status=status))

    # ------------------------------------------------------------ connection swaps

    def connection_lost(self, *, resumed: bool) -> list[RealtimeEvent]:
        """The old connection is gone and a new one continues (resumed or fresh)."""
        out: list[RealtimeEvent] = []
        self.go_away_s = None
        # A turn still open on the old connection will never complete.
        turn, self.turn = self.turn, None
        if turn is not None:
            self._to_ulaw.reset()
            self._end_turn(turn, "incomplete", out)
        # A resumed session is the snapshot at the handle: calls issued after that
        # handle don't exist there. A fresh session knows no calls at all.
        lost = tuple(
            cid for cid, (_, seq) in self.calls.items() if not resumed or seq >= self.handle_seq
        )
        for cid in lost:
            del self.calls[cid]
        if lost:
            log.warning("tool calls %s lost with the old connection", lost)
            out.append(ToolCallCancelled(lost))
        if not resumed:
            self.handle, self.handle_fresh = None, False
        return out
