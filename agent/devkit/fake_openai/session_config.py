"""The session object as OpenAI keeps it: defaults, `session.update` merging, formats."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any


async def settle(task: asyncio.Task[None]) -> None:
    """Let a cancelled response stream reach its cancelled `response.done`."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 5.0)


def default_session(model: str) -> dict[str, Any]:
    """What session.created carries before any update (OpenAI's defaults)."""
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {
        "type": "realtime", "object": "realtime.session", "id": f"sess_{time.time_ns()}",
        "expires_at": int(time.time()) + 3600, "model": model, "output_modalities": ["audio"],
        "instructions": "You are a helpful, witty, and friendly AI.",
        "audio": {
            "input": {
                "format": dict(pcm), "transcription": None, "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                    "silence_duration_ms": 200, "idle_timeout_ms": None,
                    "create_response": True, "interrupt_response": True,
                },
            },
            "output": {"format": dict(pcm), "voice": "marin", "speed": 1.0},
        },
        "tools": [], "tool_choice": "auto", "max_output_tokens": "inf",
    }  # fmt: skip


def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """session.update semantics: only present fields change (objects merge)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "format":
            merge(into[key], value)
        else:
            into[key] = value


def input_format(config: dict[str, Any]) -> str:
    return fmt_name(config["audio"]["input"]["format"])


def fmt_name(fmt: dict[str, Any]) -> str:
    return "pcmu" if fmt.get("type") == "audio/pcmu" else "pcm"


def usage() -> dict[str, Any]:
    return {
        "total_tokens": 120, "input_tokens": 80, "output_tokens": 40,
        "input_token_details": {"text_tokens": 50, "audio_tokens": 30, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
    }  # fmt: skip
