"""What an OpenAI Realtime call knows, without sockets (sans-I/O, like h11).

`ConversationState.handle(server_event)` translates one GA server event into provider-neutral
`RealtimeEvent`s and updates the bookkeeping the session needs: which response is
active (the gate), which item got how much audio (truncation), which responses are
out-of-band fillers, and the transcript (to re-seed a replacement session).
"""

from __future__ import annotations

import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.providers.openai import wire
from agent.providers.openai.gate import UNKNOWN_RESPONSE, ResponseGate
from agent.realtime import (
    AudioDone,
    AudioOut,
    ProviderError,
    RealtimeEvent,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)
from telephony.audio import PcmToUlaw

log = logging.getLogger("agent.providers.openai.session")

# What the I/O layer must do after an event: send a queued response.create now, or
# replace the session (session_expired).
Action = Literal["pump", "expired"] | None

TRUNCATED_NOTE = " [cut off: the caller interrupted]"


@dataclass(eq=False)
class Tracks:
    """Per-provider-session bookkeeping; a replacement session starts empty."""

    oob_responses: set[str] = field(default_factory=set)
    oob_active: set[str] = field(default_factory=set)
    oob_items: set[str] = field(default_factory=set)
    rx_bytes: dict[str, int] = field(default_factory=dict)  # item -> provider audio bytes
    item_response: dict[str, str] = field(default_factory=dict)
    done_items: set[str] = field(default_factory=set)
    call_ids: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)  # response.cancel already sent
    resamplers: dict[str, PcmToUlaw] = field(default_factory=dict)  # pcm24, per item
    caller_speaking: bool = False
    awaiting_reply: bool = False  # VAD committed a turn; its response has not started
    # Holding the reply over caller sound (`hold`): what the bridge may have to undo.
    speech_start_ms: int | None = None  # audio_start_ms of the sound now going on
    server_answers: list[str] = field(default_factory=list)  # VAD-made responses since
    discard: set[str] = field(default_factory=set)  # answers to noise: never shown
    discard_next: bool = False  # the noise's answer has not been created yet
    unanswered: bool = False  # a turn committed while a reply ran: the server may skip it


@dataclass(eq=False)
class HistoryLine:
    role: wire.Role
    text: str


class ConversationState:
    def __init__(self, audio_format: str, *, hold: bool = False) -> None:
        self.fmt = audio_format
        # interrupt_response false: a reply goes on over caller sound until we cancel it.
        self.hold = hold
        self.outbox: list[dict[str, Any]] = []
        self.want_reply = False  # interrupt_events: ask for the answer the server skipped  # client events an event calls for (drained by the session)
        self.bpm = wire.BYTES_PER_MS[audio_format]
        self.gate = ResponseGate()
        self.tracks = Tracks()
        self.history: list[HistoryLine] = []
        self.pending_calls: set[str] = set()  # ToolCalls emitted, result not yet given
        self.rate_limits: list[dict[str, Any]] = []
        self.session: dict[str, Any] = {}  # latest session.updated
        self._bot_lines: dict[str, HistoryLine] = {}
        self._heard: dict[str, float] = {}  # item -> fraction heard, for cut-off replies

    # ------------------------------------------------------------ server events

    def handle(self, ev: dict[str, Any]) -> tuple[list[RealtimeEvent], Action]:
        kind = ev.get("type")
        tr = self.tracks
        out: list[RealtimeEvent] = []
        if tr.discard and ev.get("response_id") in tr.discard:
            return out, None  # the answer to a noise: the call never sees it
        if kind == "response.output_audio.delta":  # the hot path first
            self._on_audio(ev, out)
        elif kind == "response.output_audio.done":
            item, rid = ev.get("item_id", ""), ev.get("response_id", "")
            rs = tr.resamplers.pop(item, None)
            tail = rs.flush() if rs is not None else b""  # the filter's last few ms
            if tail:
                out.append(AudioOut(tail, item, rid, rid in tr.oob_responses))
            tr.done_items.add(item)
            out.append(AudioDone(item, rid))
        elif kind == "response.output_audio_transcript.delta":
            if ev.get("delta"):
                oob = ev.get("response_id") in tr.oob_responses
                out.append(Transcript("bot", ev["delta"], False, ev.get("item_id", ""), oob))
        elif kind == "response.output_audio_transcript.done":
            item, text = ev.get("item_id", ""), ev.get("transcript", "")
            if ev.get("response_id") not in tr.oob_responses:  # fillers stay out of context
                self._bot_lines[item] = line = HistoryLine("assistant", text)
                self.history.append(line)
                self._trim_bot_line(item)
            oob = ev.get("response_id") in tr.oob_responses
            out.append(Transcript("bot", text, True, item, oob))
        elif kind == "input_audio_buffer.speech_started":
            tr.caller_speaking = True
            tr.speech_start_ms = ev.get("audio_start_ms")
            tr.server_answers, tr.discard_next = [], False
            # interrupt_response=true: the server cancels a running default response.
            cut = self.gate.active is not None and not self.hold
            out.append(SpeechStarted(ev.get("audio_start_ms"), cut, ev.get("item_id", "")))
        elif kind == "input_audio_buffer.speech_stopped":
            tr.caller_speaking = False
            tr.awaiting_reply = True  # create_response=true: a reply is coming
            # ... unless a reply still runs: "this may fail to create a response" (SDK).
            tr.unanswered = self.hold and self.gate.active is not None
            end = ev.get("audio_end_ms")
            out.append(
                SpeechStopped(end, speech_ms=self._speech_ms(end), item_id=ev.get("item_id", ""))
            )
        elif kind == "conversation.item.input_audio_transcription.delta":
            if ev.get("delta"):
                out.append(Transcript("caller", ev["delta"], False, ev.get("item_id", "")))
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = ev.get("transcript", "")
            self.history.append(HistoryLine("user", text))
            out.append(Transcript("caller", text, True, ev.get("item_id", "")))
        elif kind == "response.function_call_arguments.done":
            raw = ev.get("arguments") or ""
            args = wire.parse_arguments(raw)
            if args is None:
                log.warning("tool %s: arguments are not a JSON object: %.200s", ev.get("name"), raw)
            call_id = ev.get("call_id", "")
            tr.call_ids.add(call_id)
            self.pending_calls.add(call_id)
            out.append(ToolCall(call_id, ev.get("name", ""), args or {}, raw))
        elif kind == "response.created":
            self._on_created(ev.get("response") or {}, out)
        elif kind == "response.done" and (ev.get("response") or {}).get("id") in tr.discard:
            self._on_discarded_done(ev["response"])
            return out, "pump"
        elif kind == "response.done":
            self._on_done(ev.get("response") or {}, out)
            return out, "pump"  # a queued say()/tool reply may go now
        elif kind == "error":
            return out, self._on_error(ev.get("error") or {}, out)
        elif kind == "rate_limits.updated":
            self.rate_limits = ev.get("rate_limits") or []
            log.debug("rate limits: %s", self.rate_limits)
        elif kind == "session.updated":
            self.session = ev.get("session") or self.session
        else:
            log.debug("ignoring server event %s", kind)
        return out, None

    def _on_audio(self, ev: dict[str, Any], out: list[RealtimeEvent]) -> None:
        tr = self.tracks
        item, rid = ev.get("item_id", ""), ev.get("response_id", "")
        data = binascii.a2b_base64(ev.get("delta", ""))
        tr.rx_bytes[item] = tr.rx_bytes.get(item, 0) + len(data)
        oob = rid in tr.oob_responses
        if item not in tr.item_response:
            tr.item_response[item] = rid
            if oob:
                tr.oob_items.add(item)
        if self.fmt == "pcm24":
            # One stateful resampler per item: a filler may stream alongside a reply.
            rs = tr.resamplers.get(item)
            if rs is None:
                rs = tr.resamplers[item] = PcmToUlaw(24000)
            data = rs.convert(data)
        if data:
            out.append(AudioOut(data, item, rid, oob))

    def _on_created(self, resp: dict[str, Any], out: list[RealtimeEvent]) -> None:
        rid = resp.get("id", "")
        tr = self.tracks
        oob = (resp.get("metadata") or {}).get("kind") == wire.FILLER_KIND
        if oob:
            tr.oob_responses.add(rid)
            tr.oob_active.add(rid)
        else:
            server_made = self.gate.inflight is None  # VAD's answer to a caller turn
            self.gate.on_created(rid)
            tr.awaiting_reply = False
            if server_made:
                tr.unanswered = False
                tr.server_answers.append(rid)
                if tr.discard_next:  # it answers a noise the bridge already forgave
                    tr.discard_next = False
                    self._discard(rid)
                    return
        out.append(ResponseStarted(rid, out_of_band=oob))

    def _on_done(self, resp: dict[str, Any], out: list[RealtimeEvent]) -> None:
        rid = resp.get("id", "")
        status = resp.get("status") or "completed"
        tr = self.tracks
        oob = rid in tr.oob_responses
        if oob:
            tr.oob_active.discard(rid)
        else:
            self.gate.on_done(rid)
            tr.awaiting_reply = False
        out.append(ResponseDone(rid, status, out_of_band=oob))
        if status == "failed":
            err = (resp.get("status_details") or {}).get("error") or {}
            msg = err.get("message") or "response failed"
            out.append(ProviderError(msg, err.get("code") or "response_failed"))

    def _on_error(self, err: dict[str, Any], out: list[RealtimeEvent]) -> Action:
        code, msg = err.get("code") or "", err.get("message") or ""
        if code == "conversation_already_has_active_response":
            log.info("response.create raced an active response; queued again: %s", msg)
            self.gate.on_active_error(msg)
        elif code == "response_cancel_not_active":
            log.debug("cancel after the server already stopped: %s", msg)
        elif code == "session_expired":
            log.info("OpenAI Realtime session expired: %s", msg)
            return "expired"
        else:
            log.warning("OpenAI Realtime error %s: %s", code or err.get("type"), msg)
            out.append(ProviderError(msg, code))
        return None

    def hidden(self, ev: RealtimeEvent) -> bool:
        """Does `ev` belong to an answer to noise? Asked as the call takes each event, so
        what was queued before `forgive` is caught too."""
        tr = self.tracks
        if not tr.discard:
            return False
        rid = getattr(ev, "response_id", None)
        if rid is None and isinstance(ev, Transcript) and ev.role == "bot":
            rid = tr.item_response.get(ev.item_id)
        return rid in tr.discard

    def _speech_ms(self, audio_end_ms: int | None) -> int | None:
        """How long the caller's sound lasted. Server VAD's start includes its prefix
        padding and its end the silence window (SDK docstrings), so both come off."""
        start = self.tracks.speech_start_ms
        td = ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection") or {}
        if audio_end_ms is None or start is None or td.get("type") != "server_vad":
            return None
        silence = td.get("silence_duration_ms") or 500
        prefix = td.get("prefix_padding_ms") or wire.PREFIX_PADDING_MS
        return max(0, (audio_end_ms - silence) - (start + prefix))

    def _discard(self, rid: str) -> None:
        """Cancel a response that answers noise; its items go once it is done."""
        tr = self.tracks
        tr.discard.add(rid)
        if rid not in tr.cancelled:
            tr.cancelled.add(rid)
            self.outbox.append(wire.response_cancel(rid))

    def _on_discarded_done(self, resp: dict[str, Any]) -> None:
        self.gate.on_done(resp.get("id", ""))
        self.tracks.awaiting_reply = False
        for item in resp.get("output") or []:
            if item.get("id"):
                self.outbox.append(wire.item_delete(item["id"]))

    # ------------------------------------------------------------ client side

    def forgive_events(self, caller_item: str | None) -> list[dict[str, Any]]:
        """The caller's sound over the reply was noise: the reply goes on, and nothing
        may answer the noise. Responses the server made for it are cancelled (or, done
        already, their items deleted and their lines forgotten); one not made yet is
        cancelled when it starts; the noise's own item is deleted."""
        tr = self.tracks
        out: list[dict[str, Any]] = []
        tr.awaiting_reply = tr.unanswered = False
        answers = [rid for rid in tr.server_answers if rid not in tr.discard]
        for rid in answers:
            if self.gate.active == rid:
                self._discard(rid)
                continue
            tr.discard.add(rid)
            for item, owner in tr.item_response.items():
                if owner == rid:
                    out.append(wire.item_delete(item))
                    line = self._bot_lines.pop(item, None)
                    if line is not None and line in self.history:
                        self.history.remove(line)
        tr.discard_next = not answers
        out[:0], self.outbox = self.outbox, []
        if caller_item:
            out.append(wire.item_delete(caller_item))
        return out

    def interrupt_events(self, item_id: str | None, heard_ms: int | None) -> list[dict[str, Any]]:
        """response.cancel (only for what is still running) + a clamped truncate."""
        tr = self.tracks
        out: list[dict[str, Any]] = []
        # Server VAD (interrupt_response) usually cancelled it already: cancel only what
        # we still believe is running, once, to avoid response_cancel_not_active spam.
        # Holding (interrupt_response false), the verdict may come after the server began
        # answering the caller: never cancel that answer.
        active = self.gate.active
        if self.hold and active in tr.server_answers:
            active = None
        if active and active != UNKNOWN_RESPONSE and active not in tr.cancelled:
            tr.cancelled.add(active)
            out.append(wire.response_cancel(active))
        # The turn was committed while that reply ran, so the server made no answer.
        self.want_reply = self.hold and tr.unanswered
        tr.unanswered = False
        for rid in sorted(tr.oob_active - tr.cancelled):  # a filler must not outlive barge-in
            tr.cancelled.add(rid)
            out.append(wire.response_cancel(rid))
        end = self.truncate_point(item_id, heard_ms)
        if item_id and end is not None:
            out.append(wire.truncate(item_id, end))
            received = tr.rx_bytes[item_id] // self.bpm
            self._heard[item_id] = end / received if received else 0.0
            self._trim_bot_line(item_id)
        return out

    def truncate_point(self, item_id: str | None, heard_ms: int | None) -> int | None:
        """Where to cut `item_id`: what the caller heard, never past what we received."""
        tr = self.tracks
        if not item_id or heard_ms is None or item_id in tr.oob_items:
            return None
        rx = tr.rx_bytes.get(item_id)
        if rx is None:
            return None  # unknown here (or from a replaced session)
        received_ms = rx // self.bpm
        heard = max(0, heard_ms)
        if heard >= received_ms and item_id in tr.done_items:
            return None  # played to the end: nothing to cut
        # Still streaming: the server has (or will have) more than we got; cut at ours.
        return min(heard, received_ms)

    def tool_result_event(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any]:
        self.pending_calls.discard(call.call_id)
        text = f"Result of {call.name}: {json.dumps(result)}"
        self.note(text)
        if call.call_id in self.tracks.call_ids:
            return wire.item_create(wire.function_output_item(call.call_id, result))
        # Called in a session since replaced: the new one cannot know the call id.
        return wire.item_create(wire.message_item("system", text))

    def note(self, text: str) -> None:
        self.history.append(HistoryLine("system", text))

    def _trim_bot_line(self, item_id: str) -> None:
        """Keep only the part of a cut-off reply the caller heard (as the server does)."""
        line, frac = self._bot_lines.get(item_id), self._heard.get(item_id)
        if line is None or frac is None or line.text.endswith(TRUNCATED_NOTE):
            return
        words = line.text.split()
        line.text = " ".join(words[: round(len(words) * frac)]) + TRUNCATED_NOTE

    # ------------------------------------------------------------ hand-over

    @property
    def idle(self) -> bool:
        """A quiet moment to swap sessions: nobody speaking, nothing running or owed."""
        tr = self.tracks
        return not (
            self.gate.busy
            or tr.oob_active
            or tr.caller_speaking
            or tr.awaiting_reply
            or self.pending_calls
        )

    def outage_events(self) -> list[RealtimeEvent]:
        """What was streaming on a lost session will never finish there: close it out."""
        tr = self.tracks
        out: list[RealtimeEvent] = []
        running = set(tr.oob_active)
        if self.gate.active and self.gate.active != UNKNOWN_RESPONSE:
            running.add(self.gate.active)
        for item, rid in tr.item_response.items():
            if item not in tr.done_items and rid in running:
                out.append(AudioDone(item, rid))
        for rid in sorted(running):
            out.append(ResponseDone(rid, "cancelled", out_of_band=rid in tr.oob_responses))
        return out

    def new_session(self) -> None:
        self.tracks = Tracks()
        self.gate.reset()

    def seed_line(self, index: int) -> dict[str, Any] | None:
        line = self.history[index]
        return wire.item_create(wire.message_item(line.role, line.text)) if line.text else None
