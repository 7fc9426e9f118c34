"""Utterance level: each line as written and as the engine's recogniser heard it.

The written text gives understanding alone; the rendered audio -> faster-whisper tiny.en
(the engine's own `Transcriber`, in a worker thread) -> the same understanding gives the
whole path. The difference between the two is what recognition costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.devkit.eval.scoring import Heard, Score, hear, score
from agent.devkit.eval.sets import EvalSet, Utterance, utterance_audio
from telephony.audio import ulaw_to_pcm16
from telephony.wav import read_ulaw_wav

__all__ = ["UtteranceResult", "run_utterances"]


@dataclass(frozen=True)
class UtteranceResult:
    utterance: Utterance
    text: Heard
    text_score: Score
    transcript: str | None = None  # None: audio not run
    audio: Heard | None = None
    audio_score: Score | None = None

    def to_json(self) -> dict[str, Any]:
        u = self.utterance
        out: dict[str, Any] = {
            "id": u.id,
            "flow": u.flow,
            "voice": u.voice,
            "noise_db": u.noise_db,
            "asked": u.asked,
            "text": u.text,
            "expect": u.expect.model_dump(mode="json", exclude_none=True),
            "from_text": {"heard": _heard(self.text), **_score(self.text_score)},
        }
        if self.audio is not None and self.audio_score is not None:
            out["transcript"] = self.transcript
            out["from_audio"] = {"heard": _heard(self.audio), **_score(self.audio_score)}
        return out


def _heard(h: Heard) -> dict[str, Any]:
    return {k: v for k, v in vars(h).items() if v is not None}


def _score(s: Score) -> dict[str, Any]:
    return {"ok": s.ok, "intent_ok": s.intent, "slots": s.slots}


def _pcm(path: Path) -> bytes:
    return ulaw_to_pcm16(read_ulaw_wav(path))


async def run_utterances(
    eval_set: EvalSet,
    *,
    audio: bool = True,
    on_done: Callable[[UtteranceResult], None] | None = None,
) -> list[UtteranceResult]:
    """Score every utterance from its text and (with `audio`) from its rendered audio."""
    transcribe: Callable[[bytes], Any] | None = None
    if audio:
        from agent.local.models import load_models

        models = await asyncio.to_thread(load_models)
        transcribe = models.stt.transcribe
    paths = utterance_audio(eval_set)
    results = []
    for u in eval_set.utterances:
        from_text = hear(u, u.text, eval_set.today)
        result = UtteranceResult(u, from_text, score(u, from_text))
        if transcribe is not None:
            pcm = await asyncio.to_thread(_pcm, paths[u.id])
            transcript = (await asyncio.to_thread(transcribe, pcm)).text
            from_audio = hear(u, transcript, eval_set.today)
            result = UtteranceResult(
                u, from_text, result.text_score, transcript, from_audio, score(u, from_audio)
            )
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results
