"""OpenAI Realtime (GA) wire format: pure builders and parsers, no I/O.

Every dict built here is a client event that validates against the `openai` SDK's
`RealtimeClientEvent` union (the tests check that). Field names follow the GA
interface: `audio.input.format` objects, `output_modalities`, `output_audio.*`.
"""

from __future__ import annotations

import binascii
import json
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from agent.realtime import SessionConfig

DEFAULT_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"
FILLER_KIND = "filler"  # metadata.kind of out-of-band filler responses
# The immediate output of a background tool call, so the model carries on meanwhile.
BACKGROUND_STARTED = {
    "status": "started",
    "note": "Running in the background; the result will follow. Carry on with the caller.",
}

# Bytes of provider audio per millisecond: μ-law 8 kHz = 8, PCM16 24 kHz = 48.
BYTES_PER_MS = {"pcmu": 8, "pcm24": 48}

_APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'
_APPEND_TAIL = b'"}'

Role = Literal["user", "assistant", "system"]
PREFIX_PADDING_MS = 300  # server VAD: audio kept before the detected start


def realtime_url(base: str, model: str) -> str:
    """`{base}?model={model}`, keeping any query the base URL already has."""
    parts = urlsplit(base or DEFAULT_URL)
    query = urlencode({"model": model or DEFAULT_MODEL})
    query = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def audio_format(fmt: str) -> dict[str, Any]:
    if fmt == "pcm24":
        return {"type": "audio/pcm", "rate": 24000}
    return {"type": "audio/pcmu"}


def session_update(config: SessionConfig) -> dict[str, Any]:
    """The GA `session.update` for a phone call (server VAD, barge-in, transcripts)."""
    fmt = audio_format(config.audio_format)
    transcription: dict[str, Any] = {"model": TRANSCRIBE_MODEL}
    if config.language[:2]:
        transcription["language"] = config.language[:2].lower()
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": config.instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": transcription,
                    "turn_detection": turn_detection(config),
                    "noise_reduction": (
                        None if config.noise_reduction == "off" else {"type": config.noise_reduction}
                    ),
                },
                "output": {"format": dict(fmt), "voice": config.voice or DEFAULT_VOICE},
            },
            "tools": [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }
                for t in config.tools
            ],
            "tool_choice": "auto",
        },
    }


def holds_reply(config: SessionConfig) -> bool:
    """Do we ask the server to keep its reply going when the caller starts speaking, so
    the bridge can resume it after a cough (LiveKit's false-interruption resume)?

    Server VAD only: its speech-stopped comes a known silence window after the sound
    ends, which is what lets the bridge tell a short sound from a long one. Semantic
    VAD's stop can come seconds later: it keeps `interrupt_response: true`."""
    return config.turn_detection == "server_vad" and config.hold_on_speech


def server_holds(session: dict[str, Any]) -> bool:
    """Did the server confirm `interrupt_response: false` (session.updated)? The offline
    engine answers true: it stops and forgives noise on its own side."""
    td = ((session.get("audio") or {}).get("input") or {}).get("turn_detection") or {}
    return td.get("type") == "server_vad" and td.get("interrupt_response") is False


def turn_detection(config: SessionConfig) -> dict[str, Any]:
    """Server VAD (silence ends a turn) or semantic VAD (the caller sounds finished);
    both start a reply when the caller's turn ends. `interrupt_response: false` (see
    `holds_reply`): the SDK's ServerVad says the reply then "will continue until
    complete" at speech start, and the bridge sends `response.cancel` itself once the
    interruption proves real."""
    if config.turn_detection == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": config.vad_eagerness,
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": config.vad_threshold,
        "prefix_padding_ms": PREFIX_PADDING_MS,
        "silence_duration_ms": config.vad_silence_ms,
        "create_response": True,
        "interrupt_response": not holds_reply(config),
    }


def append_encoded_frame(b64: str) -> bytes:
    """`input_audio_buffer.append` for audio already in base64 (Twilio's payload)."""
    return b"".join((_APPEND_HEAD, b64.encode("ascii"), _APPEND_TAIL))


def append_audio_frame(audio: bytes) -> bytes:
    """`input_audio_buffer.append` as UTF-8 bytes, ready to go out as a text frame.

    The hot path (50 frames/s per call): no dict, no json.dumps, one base64 pass
    and one join; websockets sends bytes with text=True without re-encoding.
    """
    return b"".join((_APPEND_HEAD, binascii.b2a_base64(audio, newline=False), _APPEND_TAIL))


def say_instructions(text: str) -> str:
    # This exact convention is also understood by the offline engine's policy.
    return f'Say exactly: "{text}"'


def response_say(text: str) -> dict[str, Any]:
    return {"type": "response.create", "response": {"instructions": say_instructions(text)}}


def response_plain() -> dict[str, Any]:
    return {"type": "response.create"}


def response_filler(text: str) -> dict[str, Any]:
    """An out-of-band response: nothing is written to the conversation, may overlap."""
    return {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "metadata": {"kind": FILLER_KIND},
            "output_modalities": ["audio"],
            "input": [],
            "instructions": say_instructions(text),
        },
    }


def response_cancel(response_id: str | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "response.cancel"}
    if response_id:
        ev["response_id"] = response_id
    return ev


def item_delete(item_id: str) -> dict[str, Any]:
    return {"type": "conversation.item.delete", "item_id": item_id}


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def message_item(role: Role, text: str) -> dict[str, Any]:
    # Assistant text must be `output_text`; user/system text is `input_text`.
    ctype = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": ctype, "text": text}]}


def function_output_item(call_id: str, result: Any) -> dict[str, Any]:
    # `output` must be a string: the server rejects objects.
    return {"type": "function_call_output", "call_id": call_id, "output": json.dumps(result)}


def item_create(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "conversation.item.create", "item": item}


def parse_arguments(raw: str) -> dict[str, Any] | None:
    """Tool arguments as a dict, or None when they are not a JSON object."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


SEED_PREAMBLE = (
    "This call continues from an earlier session that had to be handed over. "
    "Your instructions are unchanged. The conversation so far follows; carry on "
    "from where it stopped without greeting the caller again."
)


def seed_items(history: list[tuple[Role, str]], *, preamble: bool = True) -> list[dict[str, Any]]:
    """`conversation.item.create` events that re-seed a fresh session with the transcript."""
    items = [item_create(message_item("system", SEED_PREAMBLE))] if preamble else []
    items.extend(item_create(message_item(role, text)) for role, text in history if text)
    return items


# ---------------------------------------------------------------- server events


def parse_object(raw: str | bytes) -> dict[str, Any]:
    ev = json.loads(raw)
    if not isinstance(ev, dict):
        raise ValueError("server sent a JSON message that is not an object")
    return ev


def error_of(ev: dict[str, Any], fallback: str) -> tuple[str, str]:
    """(message, code) of an `error` event; or say what arrived instead."""
    if ev.get("type") == "error":
        err = ev.get("error") or {}
        return err.get("message") or fallback, err.get("code") or ""
    return f"{fallback}, got {ev.get('type')!r}", ""


def format_problem(session: dict[str, Any], fmt: str) -> str | None:
    """session.updated must echo our audio format; anything else is a silent reject."""
    want = audio_format(fmt)["type"]
    got = (((session.get("audio") or {}).get("input") or {}).get("format") or {}).get("type")
    if got is not None and got != want:
        return f"session kept input format {got!r}; asked for {want!r}"
    return None
