"""One phone call: a Twilio stream bridged to a realtime speech session, with tools.

States and the moves between them are written down in `agent.call_states`; the call
changes state only through `_enter`. Every task the call starts is its own: kept in
`_tasks`, cancelled and awaited when the call ends.

Barge-in is the part callers notice most: on caller speech we send Twilio `clear` first,
then tell the model what the caller actually heard (acked marks), never wall-clock time;
a cough or a hum over the reply resumes it instead (`agent.barge_in`).

(Over 400 lines on purpose: this is where caller events and model events meet, and the
reactions to them read best side by side. What stands alone lives apart: the states
(`call_states`), fillers (`filler_player`), silence (`silence`), the latency clock
(`turn_clock`), flow tools (`flow_tools`), traces (`tracing`), barge-in's hold and
verdict (`barge_in`, `interruption`), keypad entries (`keypad_input`).)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from agent.barge_in import BargeIn, Settled
from agent.call_states import CallState, CallStates
from agent.callrecord import CallRecord
from agent.filler_player import FillerPlayer
from agent.fillers import FillerCache
from agent.flows import Flow
from agent.interruption import Verdict
from agent.keypad_input import KeypadInput
from agent.keypad_secrets import KeypadSecrets
from agent.phone_line import PhoneLine
from agent.realtime import (
    AudioDone,
    AudioOut,
    ProviderError,
    RealtimeEvent,
    RealtimeSession,
    ResponseDone,
    SessionReconnecting,
    SessionResumed,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    ToolCallCancelled,
    Transcript,
)
from agent.silence import SilenceWatch
from agent.toolrunner import FillerPolicy, ToolCallRecord, ToolRunner
from agent.tracing import NO_TRACE, CallTrace
from agent.turn_clock import TurnClock
from telephony.protocol import Dtmf, Mark, Media, Stop
from tools.registry import Tool, ToolContext
from tools.store import Store

log = logging.getLogger(__name__)

CONTROL_TOOLS = ("end_call", "transfer_call")
PLAYED_TIMEOUT_S = 15.0
LAST_WORDS_S = 15.0  # a goodbye the model has not finished by then is not waited for


@dataclass
class CallDeps:
    """What a call needs from the service; all shared, none per-call."""

    tools: dict[str, Tool]
    fillers: FillerCache
    hangup: Callable[[str], Awaitable[None]] | None = None
    transfer: Callable[[str, str], Awaitable[None]] | None = None
    store: Store | None = None
    save_record: Callable[[CallRecord], Awaitable[None]] | None = None
    on_event: Callable[[str, dict[str, Any]], None] | None = None  # metrics hook
    provider_name: str = "openai"
    live: Callable[[str, str, dict[str, Any]], None] | None = None  # (call_sid, kind, data)
    clock: Callable[[], dt.datetime] | None = None  # the business tools' "now" (demos pin a date)
    # Keyed hash of the caller's number, so their records can be found to delete them.
    caller_hash: Callable[[str | None], str | None] | None = None
    trace: CallTrace = NO_TRACE  # per-turn spans (agent/tracing.py)


class Call:
    def __init__(self, stream: PhoneLine, session: RealtimeSession, flow: Flow, deps: CallDeps) -> None:
        self.stream = stream
        self.session = session
        self.flow = flow
        self.deps = deps
        self._states = CallStates(CallState.GREETING)
        self._tasks: set[asyncio.Task[Any]] = set()  # owned: cancelled when the call ends
        self.record = CallRecord.begin(
            call_sid=stream.call_sid,
            flow=flow.name,
            caller=stream.parameters.get("from", ""),
            called=stream.parameters.get("to", ""),
            provider=deps.provider_name,
            listener=self._tell_live if deps.live else None,
            caller_hash=deps.caller_hash(stream.parameters.get("from")) if deps.caller_hash else None,
        )
        self._bot_item: str | None = None  # the conversation item now playing
        self._fillers = FillerPlayer(
            stream, session, deps.fillers, f"{deps.provider_name}:{flow.voice or 'default'}",
            self.record, self._emit,
        )  # fmt: skip
        self._barge = BargeIn(stream, session, self.record, self._emit, stop_window_ms=flow.vad_silence_ms)
        # Voice-to-voice as heard (agent/turn_clock.py).
        self._turns = TurnClock()
        # keypad: sensitive: the digits stay here; the model and the record get a reference.
        self._keypad = KeypadSecrets() if flow.keypad == "sensitive" else None
        self._keys = KeypadInput(session, self.record, self._keypad, self._spawn)
        self._ending = asyncio.Event()
        self._outcome = "completed"
        self._last_words: str | None = None  # the outcome once the bot's last line is said
        self._last_words_said = asyncio.Event()
        self._silence = SilenceWatch(
            flow.reprompt_after_s,
            heard=lambda: self.stream.wait_played(PLAYED_TIMEOUT_S),
            prompt=self._reprompt,
            give_up=lambda: self._say_then_hang_up(flow.silence_goodbye, "caller_silent"),
            name=f"silence:{stream.call_sid}",
        )
        self._runner = ToolRunner(
            session=session,
            tools={n: t for n, t in deps.tools.items() if n not in CONTROL_TOOLS},
            filler=FillerPolicy(
                after_ms=flow.filler_after_ms,
                second_after_ms=flow.second_filler_after_ms,
                phrases=tuple(flow.filler_phrases),
                second_phrases=tuple(flow.second_filler_phrases),
            ),
            player=self._fillers,
            context=self._tool_context,
            on_record=self._on_tool_record,
            guard=self._keypad,
        )

    @property
    def state(self) -> CallState:
        return self._states.current

    def _enter(self, state: CallState) -> None:
        """The one place the state changes. Once the call is ending, events still in
        flight from the provider no longer move it."""
        if not self._states.live and state is not CallState.ENDED:
            return
        self._states.to(state)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Start a task the call owns: a failure is logged, and it ends with the call."""
        task = asyncio.create_task(coro, name=f"{name}:{self.record.call_sid}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: task %s failed", self.record.call_sid, task.get_name(),
                      exc_info=task.exception())

    def _tell_live(self, kind: str, data: dict[str, Any]) -> None:
        if self.deps.live is not None:
            self.deps.live(self.record.call_sid, kind, data)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> CallRecord:
        """Run the call to its end and return its record (also saved)."""
        self._emit("call_started", {})
        self._barge.start()
        self.stream.set_media_sink(self._hold_caller_frame)
        try:
            async with asyncio.TaskGroup() as tg:
                inbound = tg.create_task(self._pump_caller(), name="caller")
                provider = tg.create_task(self._pump_model(), name="model")
                limit = tg.create_task(self._max_duration(), name="limit")
                await self.session.say(self.flow.greeting)
                await self._ending.wait()
                for task in (inbound, provider, limit):
                    task.cancel()
        except* Exception as group:  # noqa: BLE001 - logged, the call still ends cleanly
            for exc in group.exceptions:
                log.error("call %s failed: %r", self.record.call_sid, exc, exc_info=exc)
            self._outcome = "error"
        finally:
            await self._cleanup()
        return self.record

    async def fail_before_start(self, reason: str) -> None:
        """The session never opened: apologise (reading marks meanwhile), then end."""
        self.record.event("provider_error", message=reason)
        self._emit("call_started", {})
        self._emit("provider_error", {"code": "connect", "fatal": True})

        async def drain() -> None:
            async for _event in self.stream:  # keeps mark echoes flowing for wait_played
                pass

        reader = asyncio.create_task(drain())
        try:
            await self._apologise_and_end()
        finally:
            reader.cancel()
            await self._cleanup()

    def _close_turn_latency(self, *, final: bool) -> None:
        """Record the turn being timed once its first audio is heard (a mark echo); when
        `final` (the turn is over), with the time it was sent if no echo came."""
        segment = self._turns.timing
        if segment is None:
            return
        heard_at = self.stream.first_heard_at(segment)
        if not final and not self.stream.first_heard_settled(segment):
            return  # later echoes may still place it earlier
        latency = self._turns.close(heard_at)
        if latency is not None:
            self.record.turn_latency(latency.ms, end=latency.end)
            self._emit("turn_latency", {"ms": latency.ms, "end": latency.end, "start": latency.start},
                       at=latency.at)

    async def _cleanup(self) -> None:
        self.stream.set_media_sink(None)
        self._close_turn_latency(final=True)
        self._enter(CallState.ENDED)
        await self._runner.aclose()
        await self._silence.aclose()
        self._keys.close()
        current = asyncio.current_task()
        owned = [task for task in self._tasks if task is not current]
        for task in owned:
            task.cancel()
        await asyncio.gather(*owned, return_exceptions=True)
        await self.session.close()
        self.record.finish(self._outcome, self._runner.records)
        self._emit("call_ended", {"outcome": self._outcome, "seconds": self.record.duration_s})
        self.deps.trace.close()
        if self.deps.save_record:
            try:
                await self.deps.save_record(self.record)
            except Exception:
                log.exception("could not save the record of call %s", self.record.call_sid)

    def _end(self, outcome: str) -> None:
        if not self._ending.is_set():
            self._outcome = outcome
            self._enter(CallState.ENDING)
            self._ending.set()

    async def _max_duration(self) -> None:
        await asyncio.sleep(self.flow.max_call_seconds)
        log.info("call %s reached max duration %ss", self.record.call_sid, self.flow.max_call_seconds)
        await self._say_then_hang_up(self.flow.goodbye, "max_duration")

    async def _reprompt(self) -> None:
        self.record.event("reprompt", after_s=self.flow.reprompt_after_s)
        await self.session.say(self.flow.reprompt)

    async def _say_then_hang_up(self, text: str, outcome: str) -> None:
        """The bot's last line, then the end once the caller has heard it (or, should the
        model never say it, after LAST_WORDS_S)."""
        if self._last_words is not None:
            return
        self._last_words = outcome
        self.record.event("last_words", outcome=outcome)
        await self.session.say(text)
        try:
            async with asyncio.timeout(LAST_WORDS_S):
                await self._last_words_said.wait()
        except TimeoutError:
            log.warning("call %s: the model never said its last line; hanging up", self.record.call_sid)
        await self._hang_up_after_playback(outcome)

    # ------------------------------------------------------------------ caller -> model

    async def _pump_caller(self) -> None:
        send = self.session.send_audio
        async for event in self.stream:
            if isinstance(event, Media):
                # read off the socket then: a handler behind its upload must not move it
                self._turns.caller_frame(event.payload, self.stream.received_at)
                await send(event.payload, event.payload_b64)
                if (settled := await self._barge.caller_frame(event.payload)) is not None:
                    await self._after_barge(settled)
            elif isinstance(event, Mark):
                self._close_turn_latency(final=False)
            elif isinstance(event, Dtmf):
                self._on_dtmf(event.digit)
            elif isinstance(event, Stop):
                break
        self._end("caller_hung_up" if self._outcome == "completed" else self._outcome)

    def _hold_caller_frame(self, event: Media, received_at: float) -> bool:
        """The stream offers each caller frame here first, where it reads it: one the
        session only holds for a later message (quiet audio) is taken with no task
        switch; anything else goes the `_pump_caller` way."""
        if self._barge.pending or not self.session.hold_audio(event.payload):
            return False  # (an undecided barge-in is timed by every frame: the long way)
        self._barge.count(event.payload)
        self._turns.caller_frame(event.payload, received_at)
        return True

    def _on_dtmf(self, digit: str) -> None:
        self._silence.caller_active()
        self._keys.key(digit)

    # ------------------------------------------------------------------ model -> caller

    async def _pump_model(self) -> None:
        async for event in self.session.events():
            if (settled := await self._barge.observe(event)) is not None:
                await self._after_barge(settled)
            if self._barge.hold(event):
                continue  # a barge-in is undecided: this waits for the verdict
            if not await self._dispatch(event):
                return
        # The session ended without saying why: same as a fatal error for the caller.
        if not self._ending.is_set():
            await self._apologise_and_end()

    async def _dispatch(self, event: RealtimeEvent) -> bool:
        """Handle one model event; False once the call is over for the model."""
        if isinstance(event, AudioOut):
            await self._on_audio(event)
        elif isinstance(event, AudioDone):
            if not self._fillers.owns(event.item_id):
                self._barge.reply_ended(event.item_id)
                await self.stream.end_segment(event.item_id)
        elif isinstance(event, SpeechStarted):
            await self._on_barge_in(event)
        elif isinstance(event, SpeechStopped):
            self._silence.caller_speaking = False
            self._close_turn_latency(final=True)
            self._turns.speech_stopped(event.caller_ms, time.monotonic())
            self._emit("speech_end", {"caller_ms": event.caller_ms or 0.0},
                       at=self._turns.speech_end_at)
            self._enter(CallState.THINKING)
        elif isinstance(event, Transcript):
            if event.role == "caller" and not self.session.capabilities.reports_speech_stopped:
                # Gemini's only sign of speech while the bot is quiet. (OpenAI's
                # transcripts may come after the reply: its speech events count.)
                self._silence.caller_active()
            if event.final and not event.out_of_band:
                self.record.transcript(event.role, event.text)
                self._emit("transcript", {"role": event.role,
                                          "text": self.record.transcript_lines[-1]["text"]})
        elif isinstance(event, ToolCall):
            await self._on_tool_call(event)
        elif isinstance(event, ToolCallCancelled):
            await self._runner.cancel(event.call_ids)
        elif isinstance(event, ResponseDone):
            await self._on_response_done(event)
        elif isinstance(event, SessionReconnecting):
            self.record.event("provider_reconnecting", reason=event.reason)
            self._emit("provider_reconnect", {"reason": event.reason})
        elif isinstance(event, SessionResumed):
            self.record.event("provider_resumed", reason=event.reason, gap_ms=event.gap_ms)
        elif isinstance(event, ProviderError):
            self.record.event("provider_error", message=event.message, code=event.code)
            self._emit("provider_error", {"code": event.code, "fatal": event.fatal})
            if event.fatal:
                await self._apologise_and_end()
                return False
        return True

    async def _on_audio(self, event: AudioOut) -> None:
        if event.out_of_band:
            await self._fillers.on_audio(event)
            return
        if self._fillers.current is not None:
            # The model is about to speak: a filler must never talk over it.
            await self._fillers.cut_filler()
        self._silence.bot_busy()
        self._bot_item = event.item_id
        energy = not self.session.capabilities.reports_speech_stopped
        now = time.monotonic()
        if self._turns.first_audio(event.item_id, now, energy_fallback=energy):
            if energy:  # Gemini: the speech end is placed only now
                self._emit("speech_end", {"from": "energy"}, at=self._turns.speech_end_at)
            self._emit("first_audio_sent", {"item": event.item_id}, at=now)
        self.record.mark_first_audio()  # only the first call counts
        self._enter(CallState.SPEAKING)
        await self.stream.send_audio(event.audio, event.item_id)
        self._barge.played(event)

    async def _on_barge_in(self, event: SpeechStarted) -> None:
        self._silence.caller_active()
        self._silence.caller_speaking = True
        self._close_turn_latency(final=True)
        self._turns.caller_spoke()
        self._enter(CallState.LISTENING)
        if self.stream.playback.idle and self._fillers.current is None:
            await self._runner.on_barge_in()
            return
        held = await self._barge.speech_started(event, self._bot_item)
        self._fillers.forget()
        if not held:  # else the verdict decides (`_after_barge`): a cough cancels nothing
            await self._runner.on_barge_in()

    async def _after_barge(self, settled: Settled) -> None:
        """The caller's sound over the reply is judged: real, or noise (resumed)."""
        if settled.verdict is Verdict.REAL:
            await self._runner.on_barge_in()
            for event in settled.replay:  # the model's answer, held meanwhile
                await self._dispatch(event)
            return
        self._turns.caller_spoke()  # no turn to time: the reply simply goes on
        self._silence.bot_busy()
        self._enter(CallState.SPEAKING)

    async def _on_response_done(self, event: ResponseDone) -> None:
        if event.out_of_band:
            await self._fillers.on_response_done(event)
            return
        if self.state is CallState.SPEAKING:
            self._enter(CallState.LISTENING)
        if self._last_words is not None:
            self._last_words_said.set()
        elif self._runner.running == 0:
            self._silence.answer_due()

    # ------------------------------------------------------------------ tools

    def _tool_context(self, call: ToolCall) -> ToolContext:
        return ToolContext(
            call_sid=self.record.call_sid,
            caller=self.stream.parameters.get("from") or None,
            tool_call_id=call.call_id,
            store=self.deps.store,
            flow=self.flow.name,
            clock=self.deps.clock,
        )

    async def _on_tool_record(self, record: ToolCallRecord) -> None:
        self.record.event(
            "tool_result", name=record.name, status=record.status, result=record.result,
            ms=round(record.duration_ms or 0.0, 1), fillers=list(record.fillers),
        )
        self._emit("tool_done", {"name": record.name, "status": record.status,
                                 "ms": record.duration_ms or 0.0,
                                 "filler_onset_ms": record.filler_onset_ms})
        if self._runner.running <= 1 and self.state is CallState.TOOL:
            self._enter(CallState.THINKING)

    async def _on_tool_call(self, call: ToolCall) -> None:
        self._silence.bot_busy()
        self._emit("tool_call", {"name": call.name})
        self.record.event("tool_call", name=call.name, arguments=call.arguments)
        if call.name in CONTROL_TOOLS:
            # Handled by the call itself, but recorded like any tool call.
            control = ToolCallRecord(call.call_id, call.name, call.arguments, time.monotonic())
            control.status, control.duration_ms, control.result = "ok", 0.0, {"ok": True}
            self._runner.records.append(control)
        if call.name == "end_call":
            await self.session.send_tool_result(call, {"ok": True}, respond=False)
            self._spawn(self._hang_up_after_playback("bot_ended"), "end-call")
            return
        if call.name == "transfer_call":
            await self._transfer(call)
            return
        self._enter(CallState.TOOL)
        self._runner.start(call)

    async def _transfer(self, call: ToolCall) -> None:
        number, transfer = self.flow.transfer_number, self.deps.transfer
        if not number or transfer is None:
            await self.session.send_tool_result(
                call, {"error": "Transfers are not available on this line.", "retryable": False}
            )
            return
        await self.session.send_tool_result(call, {"ok": True, "transferring_to": "a person"})

        async def later() -> None:
            await self._wait_quiet()
            try:
                await transfer(self.record.call_sid, number)
            except Exception as exc:  # the network refused: the caller must not be stranded
                await self._transfer_failed(exc)
                return
            self._end("transferred")

        self._spawn(later(), "transfer")

    async def _transfer_failed(self, exc: Exception) -> None:
        log.warning("call %s: transfer failed: %s", self.record.call_sid, exc)
        self.record.event("transfer_failed", error=_short(exc))
        self._emit("control_failed", {"op": "transfer"})
        # The model said it was connecting the caller: it must know that did not happen,
        # and the caller hears so at once, in the model's voice.
        await self.session.add_context(
            "The transfer to a person failed (the phone network refused it). The caller is "
            "still on the line with you: apologise and keep helping them."
        )
        await self.session.say(self.flow.transfer_failed)

    # ------------------------------------------------------------------ ending

    async def _wait_quiet(self) -> None:
        if not await self.stream.wait_played(PLAYED_TIMEOUT_S) and not self.stream.closed:
            log.warning("call %s: playback did not finish in time", self.record.call_sid)

    async def _hang_up_after_playback(self, outcome: str) -> None:
        await self._wait_quiet()
        if self.deps.hangup is not None:
            try:
                await self.deps.hangup(self.record.call_sid)
            except Exception as exc:  # closing the stream below ends the call anyway
                log.warning("call %s: REST hang-up failed (%s); closing the stream",
                            self.record.call_sid, exc)
                self.record.event("hangup_failed", error=_short(exc))
                self._emit("control_failed", {"op": "hangup"})
        await self.stream.close(1000, outcome)
        self._end(outcome)

    async def hang_up(self, outcome: str = "admin_hangup") -> None:
        """End the call now, without a goodbye (admin hang-up, drain deadline).

        Closing the stream ends the Twilio call: no TwiML verb follows our <Connect>."""
        if self._ending.is_set():
            return
        self.record.event("hangup", outcome=outcome)
        self._end(outcome)  # first, so the caller pump's end of stream can't claim the outcome
        await self.stream.close(1000, outcome)

    async def _apologise_and_end(self) -> None:
        """The model is gone for good: never leave the caller in dead silence."""
        log.warning("call %s: provider failed; apologising and ending", self.record.call_sid)
        if not self.stream.playback.idle:
            await self.stream.clear()
        clip = await self.deps.fillers.apology(self.flow.apology)
        if clip:
            await self.stream.send_audio(clip, "apology")
            await self.stream.end_segment("apology")
        self.record.event("apology")
        await self._hang_up_after_playback("provider_failed")

    def _emit(self, name: str, data: dict[str, Any], at: float | None = None) -> None:
        """Tell metrics and the trace; `at` (monotonic) when it happened, if not now."""
        self.deps.trace.event(name, data, at)
        if self.deps.on_event is not None:
            try:
                self.deps.on_event(name, data)
            except Exception:
                log.exception("metrics hook failed")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
