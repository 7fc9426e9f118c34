"""How often the bridge's barge-in verdict (agent/interruption.py) gets it right.

`python -m agent.devkit.eval.false_interruptions` plays two kinds of sound over a reply:

- real interruptions: every caller line of the recorded calls (agent/devkit/calls,
  tests/fixtures/calls, the held-out calls) and the held-out lines, clean and with line
  noise (noise20..35: pink noise, 20-35 dB below the speech);
- noise: per line, a cough (a 120-250 ms burst of broadband noise with a fast attack), a
  click (30 ms) and a hum ("Hmm", "Mm-hmm" or "Uh" in the engine's voice, cut to its
  first 150-250 ms of voice), each laid over that line's own background; and, reported
  apart, a word cut short (the line's own first 150 ms of voice), which whisper often
  hears as a word: judged real, that is a fair verdict, not a miss.

A server VAD stands in for OpenAI's (silero at threshold 0.5, 500 ms silence window, a
turn opened by one voiced window: the most trigger-happy setting) and the offline
engine's whisper for its transcription. Each sound that opens a turn is a barge-in (the
bot stops); the judge then rules on its measured length and transcript, as the bridge
does. A sound that opens no turn never stopped the bot and is only counted.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.interruption import InterruptionJudge, Verdict
from agent.local.codec import encode_output
from agent.local.models import load_models
from agent.local.vad import TurnDetector, silero_scorer
from telephony.audio import ulaw_to_pcm16
from telephony.wav import read_ulaw_wav

ROOT = Path(__file__).resolve().parents[3]
SOURCES = (
    "agent/devkit/calls/audio",
    "tests/fixtures/calls/audio",
    "agent/devkit/eval/heldout/calls/audio",
    "agent/devkit/eval/heldout/lines/audio",
)
LEAD_MS, TAIL_MS = 600, 1500  # quiet around each sound: the VAD's silence window ends it


@dataclass
class Ruling:
    kind: str  # "real" | "cough" | "click" | "hum" | "onset"
    source: str
    opened: bool  # the VAD opened a turn: the bot stopped
    verdict: str = ""
    speech_ms: int | None = None
    text: str = ""


def lines() -> list[Path]:
    return sorted(p for src in SOURCES for p in (ROOT / src).rglob("*.wav"))


def pcm(ulaw: bytes) -> np.ndarray:
    return np.frombuffer(ulaw_to_pcm16(ulaw), dtype=np.int16).astype(np.float64)


def background(line: np.ndarray, ms: int, rng: np.random.Generator) -> np.ndarray:
    """`ms` of the line's own quiet: its quietest 20 ms frames, shuffled end to end."""
    frames = line[: len(line) // 160 * 160].reshape(-1, 160)
    quiet = frames[np.argsort(np.sqrt((frames**2).mean(axis=1)))[: max(1, len(frames) // 10)]]
    picks = rng.integers(0, len(quiet), size=ms // 20 + 1)
    return np.concatenate([quiet[i] for i in picks])[: ms * 8]


def voiced_onset(line: np.ndarray) -> int:
    rms = np.sqrt((line[: len(line) // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1))
    loud = np.nonzero(rms > rms.max() * 0.1)[0]
    return int(loud[0]) * 160 if len(loud) else 0


_HUMS: list[np.ndarray] = []


def hums() -> list[np.ndarray]:
    """Interjections in the engine's voice, from their first loud sample (PCM16 8 kHz)."""
    if not _HUMS:
        tts = load_models().tts
        for text in ("Hmm.", "Mm-hmm.", "Uh."):
            audio = pcm(encode_output(tts.synthesize(text), tts.rate, "audio/pcmu"))
            _HUMS.append(audio[voiced_onset(audio) :])
    return _HUMS


def sounds(line: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    cough_ms = int(rng.integers(120, 251))
    t = np.arange(cough_ms * 8) / 8000
    cough = rng.normal(0, 1, t.size) * np.exp(-t / (cough_ms / 4000)) * (1 - np.exp(-t / 0.004))
    click = rng.normal(0, 1, 240) * np.exp(-np.arange(240) / 40)
    start = voiced_onset(line)
    onset = line[start : start + 150 * 8]
    hum = hums()[int(rng.integers(0, 3))][: int(rng.integers(150, 251)) * 8]
    level = float(np.abs(line).max())
    return {"cough": cough / np.abs(cough).max() * level * rng.uniform(0.4, 1.0),
            "click": click / np.abs(click).max() * level * rng.uniform(0.4, 1.0),
            "hum": hum / max(1.0, np.abs(hum).max()) * level * rng.uniform(0.5, 1.0),
            "onset": onset * np.hanning(onset.size) ** 0.25}  # fmt: skip


def judge(kind: str, source: str, sound: np.ndarray, bed: np.ndarray) -> Ruling:
    audio = bed.copy()
    at = LEAD_MS * 8
    audio[at : at + sound.size] += sound[: audio.size - at]
    pcm16 = np.clip(audio, -32768, 32767).astype(np.int16).tobytes()
    vad = TurnDetector(silero_scorer(), threshold=0.5, silence_ms=500)
    vad.fast_start = True  # over a reply: one voiced window opens the turn
    events = vad.process(pcm16)
    start = next((e for e in events if e.kind == "start"), None)
    if start is None:
        return Ruling(kind, source, opened=False)
    stop = next((e for e in events if e.kind == "stop"), None)
    speech_ms = (stop.ms - start.ms) if stop is not None else None
    cut = pcm16[start.ms * 16 : (stop.ms if stop else len(pcm16) // 16) * 16]
    text = load_models().stt.transcribe(cut).text.strip()
    j = InterruptionJudge("hold", stop_window_ms=500)
    j.pause(0.0)
    verdict = j.speech_stopped(speech_ms, 0.0)
    if verdict is Verdict.PENDING:
        verdict = j.words(text, final=True)
    return Ruling(kind, source, True, verdict.value, speech_ms, text)


def run(limit: int | None, seed: int) -> list[Ruling]:
    rng = np.random.default_rng(seed)
    out: list[Ruling] = []
    for path in lines()[:limit]:
        line = pcm(read_ulaw_wav(path))
        source = str(path.relative_to(ROOT))
        bed = background(line, LEAD_MS + TAIL_MS + len(line) // 8, rng)
        out.append(judge("real", source, line, bed))
        for kind, sound in sounds(line, rng).items():
            out.append(judge(kind, source, sound, bed[: (LEAD_MS + TAIL_MS) * 8 + sound.size]))
    return out


def report(rulings: list[Ruling]) -> str:
    rows = []
    for kind in ("real", "cough", "click", "hum", "onset"):
        these = [r for r in rulings if r.kind == kind]
        opened = [r for r in these if r.opened]
        got = Counter(r.verdict for r in opened)
        rows.append(f"{kind:6} sounds {len(these):4}  stopped the bot {len(opened):4}  "
                    f"judged real {got['real']:4}  judged noise (resumed) {got['noise']:4}")  # fmt: skip
    noise = [r for r in rulings if r.kind in ("cough", "click", "hum") and r.opened]
    real = [r for r in rulings if r.kind == "real" and r.opened]
    forgiven = sum(r.verdict == "noise" for r in noise)
    wrong = [r for r in real if r.verdict == "noise"]
    rows.append(f"false interruptions (cough, click, hum that stopped the bot): {len(noise)}; resumed "
                f"{forgiven} ({100 * forgiven / max(1, len(noise)):.1f} %)")  # fmt: skip
    rows.append(f"real interruptions wrongly resumed: {len(wrong)} of {len(real)}")
    rows += [f"  {r.source}: {r.speech_ms} ms, {r.text!r}" for r in wrong]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N lines")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", type=Path, default=None, help="write every ruling here")
    args = parser.parse_args()
    rulings = run(args.limit, args.seed)
    print(report(rulings))
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in rulings], indent=1))


if __name__ == "__main__":
    main()
