"""A fake OpenAI Realtime server (GA WebSocket protocol) for tests and load runs.

It exists because the real one cannot run here, and it is held to the real protocol:
every client message is checked against the `openai` SDK's own event types (`schema`),
every event it sends too. What it hears and says is a `Scenario` of `ScriptedTurn`s.
"""

from agent.devkit.fake_openai.audio import dominant_hz, silence_frames, speech_frames, tone
from agent.devkit.fake_openai.scenario import (
    FakeResponse,
    FakeSession,
    Scenario,
    ScriptedTurn,
    ToolStep,
)
from agent.devkit.fake_openai.schema import (
    SDK_CHECKS,
    EventViolation,
    check_client_event,
    check_server_event,
    unknown_fields,
)
from agent.devkit.fake_openai.server import FakeOpenAIRealtime

__all__ = [
    "SDK_CHECKS",
    "FakeOpenAIRealtime",
    "FakeResponse",
    "FakeSession",
    "Scenario",
    "ScriptedTurn",
    "ToolStep",
    "EventViolation",
    "check_client_event",
    "check_server_event",
    "dominant_hz",
    "silence_frames",
    "speech_frames",
    "tone",
    "unknown_fields",
]
