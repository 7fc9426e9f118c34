"""Text to speech with piper (joe, en_US medium, 22.05 kHz) -> the session's output format.

Latency comes from synthesising in small pieces: the reply is split into sentences and
the first sentence is further split at its first clause boundary, so the first audio
delta only waits for a few words of synthesis. Rendered pieces are cached per
(text, format): the prompts a dialog repeats ("What day works for you?") cost nothing
the second time.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from .codec import FormatType, encode_output

if TYPE_CHECKING:
    from piper import PiperVoice

VOLUME = 0.8  # piper peak-normalises to 1.0; leave headroom for resampler overshoot
CACHE_SIZE = 512
MAX_CHUNK_WORDS = 14
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_ID_TOKEN = re.compile(r"\b(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{4,}\b")


def speech_chunks(text: str) -> list[str]:
    """Split a reply into synthesis units: sentences, the first one cut at its first clause
    (first audio sooner), long ones cut at clauses (piper's memory grows with input length)."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    chunks: list[str] = []
    for i, sentence in enumerate(sentences):
        clauses = _CLAUSE_END.split(sentence)
        if i == 0 and len(clauses) > 1 and len(clauses[0].split()) >= 2 and len(sentence.split()) > 6:
            chunks.append(clauses[0])
            sentence = sentence[len(clauses[0]) :].strip()
            clauses = clauses[1:]
        if len(sentence.split()) <= MAX_CHUNK_WORDS:
            chunks.append(sentence)
            continue
        piece: list[str] = []
        for clause in clauses:  # greedy: whole clauses while they fit
            if piece and len(" ".join([*piece, clause]).split()) > MAX_CHUNK_WORDS:
                chunks.append(" ".join(piece))
                piece = []
            piece.append(clause)
        chunks.append(" ".join(piece))
    return chunks


def spoken_form(text: str) -> str:
    """What piper should read: ids and long numbers digit by digit ("4567" -> "4 5 6 7")."""

    def spell(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.isdigit() and len(token) <= 3:
            return token
        return " ".join(ch for ch in token if ch != "-")

    return _ID_TOKEN.sub(spell, text)


class Synthesizer:
    """Shared by all sessions. piper's ONNX session is thread-safe; espeak is locked by piper."""

    def __init__(self, voice: PiperVoice) -> None:
        self._voice = voice
        self.rate: int = voice.config.sample_rate
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, text: str, fmt: FormatType) -> bytes:
        """One synthesis unit -> wire bytes. Blocking and CPU heavy: call from an executor."""
        key = (text, fmt)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        audio = self.synthesize(text)
        data = encode_output(audio, self.rate, fmt) if len(audio) else b""
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return data

    def synthesize(self, text: str) -> np.ndarray:
        """Float audio at `self.rate`."""
        parts = [c.audio_float_array for c in self._voice.synthesize(spoken_form(text))]
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts) * VOLUME
