"""What the fake hears and says (`Scenario`), and what it recorded of each session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection

from agent.devkit.fake_openai.schema import EventViolation


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
    violations: list[EventViolation] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # error events we sent
    truncates: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)  # conversation.item.delete
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
