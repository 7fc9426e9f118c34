"""Gemini Live wire format: builders for client messages and small parsing helpers.

Pure functions, no I/O, so the session code in `gemini.py` stays about connection
handling. The server speaks protobuf-JSON and emits lowerCamelCase; we write camelCase
too (it also accepts snake_case). Names are checked against google-genai's
`LiveClientMessage` by the fake server in the tests.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from agent.realtime import Scheduling, SessionConfig

DEFAULT_URL = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
)
DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
DEFAULT_VOICE = "Kore"
INPUT_RATE = 16000  # what we send: PCM16 LE mono
OUTPUT_RATE = 24000  # what Gemini always sends back
# Sliding-window compression keeps a session alive past the 15 min audio limit. These
# numbers fit the smallest (32k-token) Live context window.
TRIGGER_TOKENS = 25600
TARGET_TOKENS = 12800

# The audio message is built by string concatenation: it is sent 50 times a second per
# call, and the only variable part is base64 (no escaping needed).
_AUDIO_HEAD = '{"realtimeInput":{"audio":{"data":"'
_AUDIO_TAIL = f'","mimeType":"audio/pcm;rate={INPUT_RATE}"}}}}}}'


def audio_message(pcm16: bytes) -> str:
    return _AUDIO_HEAD + base64.b64encode(pcm16).decode("ascii") + _AUDIO_TAIL


def model_name(model: str) -> str:
    model = model or DEFAULT_MODEL
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def activity_detection(config: SessionConfig) -> dict[str, Any]:
    """Gemini's VAD has two start sensitivities, not a threshold: a flow that raised its
    threshold (a noisy line) gets LOW (harder to trigger), one that lowered it HIGH."""
    detection: dict[str, Any] = {"disabled": False, "silenceDurationMs": config.vad_silence_ms}
    if config.vad_threshold > 0.5:
        detection["startOfSpeechSensitivity"] = "START_SENSITIVITY_LOW"
    elif config.vad_threshold < 0.5:
        detection["startOfSpeechSensitivity"] = "START_SENSITIVITY_HIGH"
    return detection


def build_setup(config: SessionConfig, handle: str | None = None) -> dict[str, Any]:
    """The first client message. `handle` resumes an earlier session."""
    declarations = []
    for spec in config.tools:
        decl: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "parametersJsonSchema": spec.parameters,
        }
        if spec.background:
            # The model keeps talking while the tool runs; the result comes back with a
            # `scheduling` hint. Blocking is left unset (the model's default).
            decl["behavior"] = "NON_BLOCKING"
        declarations.append(decl)
    setup: dict[str, Any] = {
        "model": model_name(config.model),
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {
                "voiceConfig": {
                    "prebuiltVoiceConfig": {"voiceName": config.voice or DEFAULT_VOICE}
                },
                "languageCode": config.language,
            },
        },
        "systemInstruction": {"parts": [{"text": config.instructions}]},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "realtimeInputConfig": {
            "automaticActivityDetection": activity_detection(config),
            "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
        },
        # `{}` (not `{"handle": null}`, which some stacks strip) asks for handles.
        "sessionResumption": {"handle": handle} if handle else {},
        "contextWindowCompression": {
            "triggerTokens": TRIGGER_TOKENS,
            "slidingWindow": {"targetTokens": TARGET_TOKENS},
        },
    }
    if declarations:
        setup["tools"] = [{"functionDeclarations": declarations}]
    overrides = config.extra.get("gemini_setup")
    if isinstance(overrides, dict):
        setup = _deep_merge(setup, overrides)
    return {"setup": setup}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def client_content(text: str, *, turn_complete: bool) -> dict[str, Any]:
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": turn_complete,
        }
    }


def say_prompt(text: str) -> str:
    return f'Say exactly: "{text}"'


def tool_response(
    call_id: str, name: str, result: Any, scheduling: Scheduling | None
) -> dict[str, Any]:
    # `response` must be a JSON object; anything else is wrapped as the "output".
    response = result if isinstance(result, dict) else {"output": result}
    fr: dict[str, Any] = {"id": call_id, "name": name, "response": response}
    if scheduling is not None:
        fr["scheduling"] = scheduling
    return {"toolResponse": {"functionResponses": [fr]}}


def decode_frame(data: str | bytes) -> dict[str, Any]:
    """Server frames may be text or binary (UTF-8 JSON); both carry one JSON object."""
    msg = json.loads(data)
    if not isinstance(msg, dict):
        raise ValueError(f"server frame is not a JSON object: {type(msg).__name__}")
    return msg


def parse_duration_s(value: Any, default: float) -> float:
    """Protobuf Duration as JSON ("5s", "0.250s"); `default` when unparsable."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)s\s*", value)
        if m:
            return float(m.group(1))
    return default


def parse_rate(mime_type: str | None, default: int = OUTPUT_RATE) -> int:
    m = re.search(r"rate=(\d+)", mime_type or "")
    return int(m.group(1)) if m else default


def heard_prefix(text: str, heard_ms: int, received_ms: int) -> str:
    """The part of a reply's transcript the caller heard, cut at a word boundary.

    Proportional to audio time: an estimate, since transcripts carry no timings.
    """
    if received_ms <= 0 or heard_ms >= received_ms:
        return text
    cut = int(len(text) * max(heard_ms, 0) / received_ms)
    prefix = text[:cut]
    if cut < len(text) and not text[cut].isspace() and " " in prefix:
        prefix = prefix.rsplit(" ", 1)[0]  # don't claim they heard half a word
    return prefix.strip()


FORGIVEN_NOTE = (
    "[That was only a noise on the line, not an interruption: the caller then heard the "
    "rest of your last reply.]"
)


def interruption_note(heard: str) -> str:
    if not heard:
        return "[The caller interrupted before hearing any of your last reply.]"
    return f"[The caller interrupted; they heard only: '{heard}']"
