"""Speech to text with faster-whisper tiny.en (CTranslate2, int8, 2 CPU threads).

We call the CTranslate2 model directly instead of `WhisperModel.transcribe()` for one
reason: latency. Whisper's encoder normally runs on a 30 s window (~0.65 s on 2 cores);
a phone turn is a few seconds. CTranslate2 accepts a shorter mel window (whisper.cpp calls
this "audio_ctx"), which cuts the encoder to ~70 ms. Too short a window makes tiny.en loop
("Yes. Yes. Yes."), so the window is the audio plus 2 s of silence, at least 10 s, and the
decoder gets a token budget proportional to the audio length. Greedy decoding (beam 1),
no built-in VAD filter (our own VAD already cut the turn).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soxr

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

STT_RATE = 16000
MAX_WINDOW_S = 30.0
MIN_WINDOW_S = 10.0
TAIL_S = 2.0
NO_SPEECH = 0.6  # above this (with a short text) the "words" are whisper dreaming on noise


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # duration of the audio transcribed (for usage reporting)


class Transcriber:
    """Thread-safe wrapper: CTranslate2 serialises calls per worker internally."""

    def __init__(self, model: WhisperModel) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self._model = model
        self._tok = Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
        self._prompt = [*self._tok.sot_sequence, self._tok.no_timestamps]

    def transcribe(self, pcm8k: bytes) -> Transcript:
        """PCM16 8 kHz -> text. Blocking and CPU heavy: call it from an executor."""
        samples = np.frombuffer(pcm8k, dtype=np.int16)
        seconds = len(samples) / 8000
        if seconds < 0.1:
            return Transcript("", seconds)
        audio = soxr.resample(samples.astype(np.float32) / 32768.0, 8000, STT_RATE)
        texts: list[str] = []
        step = int((MAX_WINDOW_S - TAIL_S) * STT_RATE)
        for offset in range(0, len(audio), step):  # turns > 28 s: consecutive windows
            texts.append(self._window(audio[offset : offset + step]))
        return Transcript(" ".join(t for t in texts if t).strip(), seconds)

    def _window(self, audio: np.ndarray) -> str:
        import ctranslate2

        dur = len(audio) / STT_RATE
        window = min(MAX_WINDOW_S, max(MIN_WINDOW_S, dur + TAIL_S))
        padded = np.zeros(int(window * STT_RATE), dtype=np.float32)
        padded[: len(audio)] = audio
        mel = self._model.feature_extractor(padded)
        mel = np.ascontiguousarray(mel[:, : min(3000, mel.shape[1] - 1)][None])
        enc = self._model.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=False)
        result = self._model.model.generate(
            enc,
            [self._prompt],
            beam_size=1,
            max_length=int(dur * 8) + 12,  # ~3x normal speech rate in tokens: room, not loops
            suppress_blank=True,
            suppress_tokens=[-1],
            return_no_speech_prob=True,
        )[0]
        text = self._tok.decode(result.sequences_ids[0]).strip()
        if result.no_speech_prob > NO_SPEECH and len(text.split()) <= 2:
            return ""
        return drop_repeats(text)


_SENTENCE = re.compile(r"[^.?!]+[.?!]*")


def drop_repeats(text: str) -> str:
    """Remove tiny.en's loops: a sentence that repeats (or is a prefix of) the previous one."""
    kept: list[str] = []
    for raw in _SENTENCE.findall(text):
        sentence = raw.strip()
        if not sentence:
            continue
        key = _key(sentence)
        if kept and key and _key(kept[-1]).startswith(key):
            continue
        kept.append(sentence)
    return " ".join(kept)


def _key(sentence: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", sentence.lower()).strip()
