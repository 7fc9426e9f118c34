"""The OpenAI Realtime (GA) wire subset the engine speaks: ids, errors, session config,
client item and response-parameter validation. Sans-I/O: dicts in, dicts out.

Field names and defaults follow `openai.types.realtime` (SDK 3.57); the SDK itself is not
imported at run time (it is a dev dependency), the conformance tests check the shapes.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
import time
from typing import Any

from .codec import FORMAT_TYPES, FormatType

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """OpenAI-style id: `event_`, `item_`, `resp_`, `call_`, `sess_`, `conv_` + 22 chars."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


class ProtocolError(Exception):
    """A client event we reject; becomes an `error` server event, the session stays up."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def error_event(exc: ProtocolError, client_event_id: str | None) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": exc.code,
            "message": exc.message,
            "param": exc.param,
            "event_id": client_event_id,
        },
    }


def missing(param: str) -> ProtocolError:
    return ProtocolError("missing_required_parameter", f"Missing required parameter: '{param}'.", param)


def unknown(param: str) -> ProtocolError:
    return ProtocolError("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def invalid_value(param: str, value: Any, allowed: tuple[str, ...] | None = None) -> ProtocolError:
    msg = f"Invalid value: '{value}'."
    if allowed:
        msg += " Supported values are: " + ", ".join(f"'{a}'" for a in allowed) + "."
    return ProtocolError("invalid_value", msg, param)


def invalid_type(param: str, expected: str, value: Any) -> ProtocolError:
    got = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
           list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")  # fmt: skip
    return ProtocolError(
        "invalid_type", f"Invalid type for '{param}': expected {expected}, but got {got} instead.", param
    )


# ---------------------------------------------------------------- session config
_SCHEMA: dict[str, Any] = {
    "type": str, "model": str, "instructions": str, "output_modalities": list,
    "tools": list, "tool_choice": (str, dict), "max_output_tokens": (int, str),
    "tracing": (str, dict, type(None)), "truncation": (str, dict), "prompt": (dict, type(None)),
    "include": (list, type(None)), "parallel_tool_calls": bool, "reasoning": (dict, type(None)),
    "audio": {
        "input": {
            "format": {"type": str, "rate": int},
            "transcription": ({"model": str, "language": (str, type(None)), "prompt": str,
                               "delay": str, "keywords": list, "languages": list}, None),
            "noise_reduction": ({"type": str, "strength": (int, float)}, None),
            "turn_detection": ({"type": str, "threshold": (int, float), "prefix_padding_ms": int,
                                "silence_duration_ms": int, "idle_timeout_ms": (int, type(None)),
                                "create_response": bool, "interrupt_response": bool,
                                "eagerness": str}, None),
        },
        "output": {"format": {"type": str, "rate": int}, "voice": (str, dict), "speed": (int, float)},
    },
}  # fmt: skip


def _check(value: Any, spec: Any, path: str) -> None:
    """Validate `value` against a tiny schema: a type, a tuple of types, a dict of fields,
    or `(fields, None)` meaning "an object or null"."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], dict) and spec[1] is None:
        if value is None:
            return
        spec = spec[0]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise invalid_type(path, "an object", value)
        for key, sub in value.items():
            if key not in spec:
                raise unknown(f"{path}.{key}")
            _check(sub, spec[key], f"{path}.{key}")
        return
    types = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, bool) and bool not in types:
        raise invalid_type(path, types[0].__name__, value)
    if not isinstance(value, types):
        raise invalid_type(path, {str: "a string", int: "an integer", list: "an array",
                                  dict: "an object", bool: "a boolean"}.get(types[0], "a value"), value)  # fmt: skip


def default_session(model: str) -> dict[str, Any]:
    """The session object of `session.created` (OpenAI's defaults: pcm 24 kHz, server VAD)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
    }


def apply_session_update(current: dict[str, Any], update: Any) -> dict[str, Any]:
    """Validate a `session.update` payload whole, then merge it; raises ProtocolError."""
    if not isinstance(update, dict):
        raise invalid_type("session", "an object", update)
    if "type" not in update:
        raise missing("session.type")
    if update["type"] != "realtime":
        raise invalid_value("session.type", update["type"], ("realtime",))
    _check(update, _SCHEMA, "session")
    audio = update.get("audio") or {}
    for side in ("input", "output"):
        fmt = (audio.get(side) or {}).get("format")
        if fmt is not None:
            if fmt.get("type") not in FORMAT_TYPES:
                raise invalid_value(f"session.audio.{side}.format.type", fmt.get("type"), FORMAT_TYPES)
            if fmt["type"] == "audio/pcm" and fmt.get("rate", 24000) != 24000:
                raise invalid_value(f"session.audio.{side}.format.rate", fmt["rate"], ("24000",))
    td = (audio.get("input") or {}).get("turn_detection")
    if td is not None and td.get("type") not in ("server_vad", "semantic_vad"):
        raise invalid_value("session.audio.input.turn_detection.type", td.get("type"),
                            ("server_vad", "semantic_vad"))  # fmt: skip
    for i, tool in enumerate(update.get("tools") or []):
        if not isinstance(tool, dict):
            raise invalid_type(f"session.tools[{i}]", "an object", tool)
        if tool.get("type", "function") == "function" and not tool.get("name"):
            raise missing(f"session.tools[{i}].name")
    modalities = update.get("output_modalities")
    if modalities is not None and (not modalities or len(modalities) > 1 or
                                   modalities[0] not in ("audio", "text")):  # fmt: skip
        raise invalid_value("session.output_modalities", modalities, ("audio", "text"))
    merged = copy.deepcopy(current)
    _merge(merged, update)
    fmt_out = merged["audio"]["output"]["format"]
    fmt_in = merged["audio"]["input"]["format"]
    for fmt in (fmt_in, fmt_out):
        if fmt["type"] == "audio/pcm":
            fmt["rate"] = 24000
    return merged


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    """Only present fields change; nested objects merge, except where null/replacement is
    the meaning (transcription, turn_detection, noise_reduction and formats replace)."""
    for key, value in update.items():
        if key in ("format", "transcription", "turn_detection", "noise_reduction", "tools"):
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def audio_format(session: dict[str, Any], side: str) -> FormatType:
    return session["audio"][side]["format"]["type"]


def function_names(session: dict[str, Any]) -> set[str]:
    if session.get("tool_choice") == "none":
        return set()
    return {t["name"] for t in session.get("tools") or [] if t.get("type", "function") == "function"}


# ---------------------------------------------------------------- client items
_ITEM_FIELDS = {
    "message": {"id", "type", "object", "status", "role", "content"},
    "function_call_output": {"id", "type", "object", "status", "call_id", "output"},
    "function_call": {"id", "type", "object", "status", "call_id", "name", "arguments"},
}
_PART_TYPES = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio"),
}


def validate_item(item: Any) -> dict[str, Any]:
    """A `conversation.item.create` item -> the stored item (id, object, status filled in)."""
    if not isinstance(item, dict):
        raise missing("item") if item is None else invalid_type("item", "an object", item)
    kind = item.get("type")
    if kind is None:
        raise missing("item.type")
    if kind not in _ITEM_FIELDS:
        raise invalid_value("item.type", kind, tuple(_ITEM_FIELDS))
    for key in item:
        if key not in _ITEM_FIELDS[kind]:
            raise unknown(f"item.{key}")
    out = copy.deepcopy(item)
    out.setdefault("id", new_id("item"))
    out["object"] = "realtime.item"
    out["status"] = "completed"
    if kind == "message":
        role = item.get("role")
        if role not in _PART_TYPES:
            raise invalid_value("item.role", role, tuple(_PART_TYPES)) if role else missing("item.role")
        content = item.get("content")
        if not isinstance(content, list):
            raise missing("item.content") if content is None else invalid_type("item.content", "an array", content)
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in _PART_TYPES[role]:
                value = part.get("type") if isinstance(part, dict) else part
                raise invalid_value(f"item.content[{i}].type", value, _PART_TYPES[role])
    elif kind == "function_call_output":
        for key in ("call_id", "output"):
            if key not in item:
                raise missing(f"item.{key}")
        if not isinstance(item["output"], str):
            raise invalid_type("item.output", "a string", item["output"])
    else:
        for key in ("name", "arguments"):
            if key not in item:
                raise missing(f"item.{key}")
        out.setdefault("call_id", new_id("call"))
    return out


def item_text(item: dict[str, Any]) -> str:
    """The words of a message item (typed text or a provided transcript)."""
    parts = [p.get("text") or p.get("transcript") or "" for p in item.get("content") or []]
    return " ".join(p for p in parts if p).strip()


# ---------------------------------------------------------------- response.create
_RESPONSE_FIELDS = {
    "audio", "conversation", "input", "instructions", "max_output_tokens", "metadata",
    "output_modalities", "parallel_tool_calls", "prompt", "reasoning", "tool_choice", "tools",
}  # fmt: skip


def validate_response_params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise invalid_type("response", "an object", params)
    for key in params:
        if key not in _RESPONSE_FIELDS:
            raise unknown(f"response.{key}")
    metadata = params.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items()
        ):
            raise invalid_value("response.metadata", metadata)
    modalities = params.get("output_modalities")
    if modalities is not None and (not isinstance(modalities, list) or len(modalities) != 1
                                   or modalities[0] not in ("audio", "text")):  # fmt: skip
        raise invalid_value("response.output_modalities", modalities, ("audio", "text"))
    fmt = ((params.get("audio") or {}).get("output") or {}).get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in FORMAT_TYPES):
        raise invalid_value("response.audio.output.format", fmt, FORMAT_TYPES)
    instructions = params.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("response.instructions", "a string", instructions)
    return params


_SAY_EXACTLY = re.compile(r"say exactly\s*:\s*[\"\u201c]([^\"\u201d]*)[\"\u201d]", re.IGNORECASE)
_SAY_LOOSE = re.compile(r"say(?: [a-z ]{0,30})?:\s*[\"\u201c]?([^\"\u201d\n]+)", re.IGNORECASE)


def scripted_text(instructions: str | None) -> str | None:
    """`Say exactly: "..."` -> the quoted text (our convention for fixed prompts)."""
    if not instructions:
        return None
    m = _SAY_EXACTLY.search(instructions)
    return m[1].strip() if m else None


def loose_script(instructions: str | None) -> str | None:
    """Best effort for out-of-band prompts like `Say briefly: one moment while I check.`"""
    if not instructions:
        return None
    m = _SAY_LOOSE.search(instructions)
    if not m:
        return None
    text = m[1].strip().strip("\"'")
    return text[:1].upper() + text[1:] if text else None
