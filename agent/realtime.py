"""The provider-neutral realtime speech session.

`agent/call.py` talks to a `RealtimeSession` and reads `RealtimeEvent`s; it never sees a
wire format. Providers (OpenAI Realtime, Gemini Live; the local engine speaks OpenAI's
protocol) translate both ways and own their per-call transcoding: audio in and out of a
session is always telephone audio, G.711 μ-law 8 kHz, so the bridge can hand Twilio's
bytes straight through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Scheduling = Literal["INTERRUPT", "WHEN_IDLE", "SILENT"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about one tool."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema object
    background: bool = False  # non-blocking: the conversation goes on while it runs
    scheduling: Scheduling = "WHEN_IDLE"  # how a background result is delivered (Gemini)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Everything a provider needs to open a session for one call."""

    instructions: str
    model: str = ""
    voice: str = ""
    tools: tuple[ToolSpec, ...] = ()
    language: str = "en-US"
    # Rolling over to a fresh session before the provider's hard limit (OpenAI: 60 min).
    max_session_s: float = 55 * 60
    # Ask the server to keep its reply going over caller sound, so the bridge can resume
    # it after a cough (server VAD only; a server that forgives noise itself, like the
    # offline engine, says no in its session.updated).
    hold_on_speech: bool = True
    # OpenAI only: "pcmu" passes μ-law straight through; "pcm24" asks for 24 kHz PCM16.
    audio_format: Literal["pcmu", "pcm24"] = "pcmu"
    # How the caller's turns are found (see agent/flows.py `Flow` for what each means).
    turn_detection: Literal["server_vad", "semantic_vad"] = "server_vad"
    vad_threshold: float = 0.5
    vad_silence_ms: int = 500
    vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    noise_reduction: Literal["near_field", "far_field", "off"] = "near_field"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RealtimeCapabilities:
    """What a provider can do; the call branches on these, never on a provider's name."""

    out_of_band_speech: bool  # speak a line outside the conversation (fillers in its voice)
    truncates: bool  # can be told how much of a reply the caller heard
    reports_speech_stopped: bool  # says when the caller stopped talking
    # What the bridge may do when the caller's sound over a reply turns out to be noise
    # (LiveKit Agents' false-interruption resume):
    #   "hold": the provider keeps generating at speech start (OpenAI interrupt_response
    #     false); the bridge pauses playback, then calls `interrupt()` (real) or
    #     `forgive()` (noise) and plays the rest;
    #   "replay": the provider has already cut its reply at speech start (Gemini); the
    #     bridge can replay only the audio it had received, if the model does not take
    #     the turn;
    #   "none": barge-in as it always was (the offline engine resumes by itself).
    false_interruptions: Literal["hold", "replay", "none"] = "none"


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class AudioOut:
    """A chunk of bot speech, μ-law 8 kHz. `item_id` names the utterance it belongs to."""

    audio: bytes
    item_id: str
    response_id: str = ""
    out_of_band: bool = False  # e.g. a filler; not part of the conversation


@dataclass(frozen=True, slots=True)
class AudioDone:
    item_id: str
    response_id: str = ""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started talking (OpenAI speech_started, Gemini interrupted): barge-in."""

    audio_start_ms: int | None = None
    interrupted: bool = False  # provider says it already cut its own reply
    item_id: str = ""  # the caller item this speech will become (OpenAI)


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int | None = None  # in the provider's input buffer
    caller_ms: float | None = None  # the same point in the call's caller audio (ms of μ-law)
    speech_ms: int | None = None  # how long the caller's sound lasted, by the provider's VAD
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class Transcript:
    """`final=False`: a piece as it arrives; `final=True`: the whole utterance, once."""

    role: Literal["caller", "bot"]
    text: str
    final: bool
    item_id: str = ""
    out_of_band: bool = False  # a filler's words: not part of the conversation


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""  # as sent, for errors when it was not valid JSON


@dataclass(frozen=True, slots=True)
class ToolCallCancelled:
    call_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str
    out_of_band: bool = False


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str = "completed"  # completed | cancelled | failed | incomplete
    out_of_band: bool = False


@dataclass(frozen=True, slots=True)
class SessionReconnecting:
    """The provider connection is being replaced (goAway, rollover, transient drop)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionResumed:
    reason: str
    gap_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ProviderError:
    """A provider error. `fatal` means the session is gone for good and the call must end."""

    message: str
    code: str = ""
    fatal: bool = False


RealtimeEvent = (
    AudioOut
    | AudioDone
    | SpeechStarted
    | SpeechStopped
    | Transcript
    | ToolCall
    | ToolCallCancelled
    | ResponseStarted
    | ResponseDone
    | SessionReconnecting
    | SessionResumed
    | ProviderError
)


@runtime_checkable
class RealtimeSession(Protocol):
    """One call's conversation with a realtime speech model.

    Lifecycle: `await connect()`, then feed `send_audio` and read `events()` until it
    ends (a fatal ProviderError is the last event), then `await close()`.
    """

    capabilities: RealtimeCapabilities

    async def connect(self) -> None:
        """Open the connection and configure the session; raises on failure."""

    async def send_audio(self, ulaw: bytes, encoded: str = "") -> None:
        """Caller audio, μ-law 8 kHz, any length (normally one 20 ms frame). `encoded`,
        when given, is the same audio in base64, as Twilio sent it."""

    def hold_audio(self, ulaw: bytes) -> bool:
        """Take caller audio now, without I/O, if it would only wait for a later message
        (a quiet line's batch); False: give it to `send_audio` instead. Lets the phone
        line hand most frames over where it reads them, with no task switch per frame."""

    def events(self) -> AsyncIterator[RealtimeEvent]:
        """Server events, translated. Ends when the session is closed."""

    async def say(self, text: str) -> None:
        """Make the model speak this text now, in the conversation (greeting, apology)."""

    async def say_out_of_band(self, text: str) -> None:
        """Speak a one-liner outside the conversation (a filler); AudioOut.out_of_band."""

    async def send_tool_result(
        self,
        call: ToolCall,
        result: dict[str, Any],
        *,
        respond: bool = True,
        scheduling: Scheduling | None = None,
    ) -> None:
        """Give a tool's result to the model; `respond` asks it to speak about it.

        OpenAI: function_call_output item, then response.create once idle.
        Gemini: toolResponse (with `scheduling` for non-blocking tools).
        """

    async def interrupt(self, item_id: str | None, heard_ms: int | None) -> None:
        """Barge-in: stop the current reply; the caller heard `heard_ms` of `item_id`.

        OpenAI: response.cancel + conversation.item.truncate (clamped to audio received).
        Gemini: cannot truncate; the server already cut the turn.
        """

    async def forgive(self, caller_item: str | None) -> None:
        """The caller's sound over the reply was noise (capability "hold"): let the reply
        go on and make sure the model never answers the noise. OpenAI: cancel a response
        the server started for it and delete its items. Others: nothing to undo."""

    async def add_context(self, text: str) -> None:
        """Add a system note to the conversation without asking for a reply."""

    async def send_text(self, text: str) -> None:
        """A caller turn given as text (e.g. keypad digits); the model replies to it."""

    async def acknowledge_background(self, call: ToolCall) -> None:
        """A background tool has started. OpenAI: answer the call now with a "started"
        output so the conversation goes on. Gemini (NON_BLOCKING): nothing to send."""

    async def send_background_result(
        self, call: ToolCall, result: dict[str, Any], scheduling: Scheduling = "WHEN_IDLE"
    ) -> None:
        """A background tool finished. OpenAI: add the result as a new item and ask for a
        response once the model is idle (not for SILENT). Gemini: toolResponse with
        `scheduling`."""

    async def close(self) -> None:
        """Close the connection; idempotent."""
