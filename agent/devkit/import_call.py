"""`phone-agent fixtures import CALL.wav`: a recorded caller side becomes a call script.

A real call recorded on the caller's side (one WAV: the caller talks, waits for the
agent, talks again) is cut into lines where the caller stays quiet for a while (silero
VAD, `SILENCE_MS`), each line is saved as a recording of its own and transcribed
(tiny.en) for the script's `say:` text, and a script is written: wait for the greeting,
then each line followed by waiting for the bot's reply. Expectations are left for a
person to add; `phone-agent fixtures build` then imports the lines as the phone line
would carry them.
"""

from __future__ import annotations

import argparse
import re
import wave
from collections.abc import Callable
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.devkit.recordings import float_to_pcm16, recording_at_8k
from agent.devkit.scripts import (
    ScriptError,
    load_script,
)
from telephony.audio import TELEPHONY_RATE
from telephony.wav import WavFormatError

SILENCE_MS = 700  # this long a pause ends a line; a breath mid-sentence does not
MARGIN_MS = 150  # kept either side of the speech, so no word is clipped
BYTES_PER_MS = 2 * TELEPHONY_RATE // 1000  # PCM16 at 8 kHz
Transcribe = Callable[[bytes], str]  # PCM16 8 kHz -> text


class ImportProblem(ValueError):
    """The recording cannot become a script; the message says why."""


def split_lines(pcm: bytes, silence_ms: int = SILENCE_MS) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each caller line in PCM16 8 kHz audio."""
    from agent.local.vad import TurnDetector, silero_scorer

    detector = TurnDetector(silero_scorer(), silence_ms=silence_ms)
    tail = bytes(BYTES_PER_MS * (silence_ms + 200))  # a recording may end mid-line: let it close
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for event in detector.process(pcm + tail):
        if event.kind == "start":
            start = event.ms
        elif event.kind == "stop" and start is not None:
            spans.append((start, event.ms))
            start = None
    end_ms = len(pcm) // BYTES_PER_MS
    return [
        (BYTES_PER_MS * max(0, a - MARGIN_MS), BYTES_PER_MS * min(end_ms, b + MARGIN_MS))
        for a, b in spans
    ]


def script_name(path: Path) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_") or "imported-call"


def import_call(
    wav_path: Path,
    into: Path,
    *,
    flow: str,
    name: str | None = None,
    to: str = "+15550001000",
    from_: str = "+15551239999",
    transcribe: Transcribe | None = None,
    force: bool = False,
    on_line: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `into/NAME.yaml` and `into/recordings/NAME/NN.wav`; returns the script path."""
    name = name or script_name(wav_path)
    script_path = into / f"{name}.yaml"
    if script_path.exists() and not force:
        raise ImportProblem(f"{script_path} exists (--force replaces it)")
    try:
        pcm = float_to_pcm16(recording_at_8k(wav_path))
    except WavFormatError as exc:
        raise ImportProblem(str(exc)) from None
    spans = split_lines(pcm)
    if not spans:
        raise ImportProblem(f"{wav_path}: no speech found (is it the caller's side of the call?)")

    lines_dir = into / "recordings" / name
    lines_dir.mkdir(parents=True, exist_ok=True)
    steps: list[dict[str, object]] = [{"wait_bot": {}}]
    for index, (a, b) in enumerate(spans, start=1):
        segment = pcm[a:b]
        target = lines_dir / f"{index:02d}.wav"
        with wave.open(str(target), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(TELEPHONY_RATE)
            out.writeframes(segment)
        text = (transcribe(segment) if transcribe else "").strip()
        steps.append({"say": text or f"(line {index}: write what the caller says)",
                      "recording": target.relative_to(into).as_posix()})  # fmt: skip
        steps.append({"wait_bot": {}})
        if on_line is not None:
            on_line(index, len(spans))
    script = {
        "name": name,
        "description": f"Imported from {wav_path.name}: {len(spans)} caller lines. "
        "Check each line's text, then add expectations (tools, bot_says, outcome).",
        "flow": flow,
        "to": to,
        "from": from_,
        "steps": steps,
    }
    script_path.write_text(yaml.safe_dump(script, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        load_script(script_path)  # what we wrote must load, or the user hears of it now
    except ScriptError as exc:
        raise ImportProblem(str(exc)) from None
    return script_path


def import_command(args: argparse.Namespace) -> int:
    """The CLI: progress while transcribing, then where the script went and what next."""
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    transcribe: Transcribe | None = None
    if not args.no_transcribe:
        from agent.local.models import MissingLocalExtra, load_models

        try:
            stt = load_models().stt
        except MissingLocalExtra as exc:
            err.print(f"[red]error:[/red] {exc} (or pass --no-transcribe)")
            return 2
        transcribe = lambda pcm: stt.transcribe(pcm).text  # noqa: E731
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("finding caller lines", total=None)

        def on_line(done: int, total: int) -> None:
            progress.update(task, description="transcribing" if transcribe else "saving lines",
                            completed=done, total=total)  # fmt: skip

        try:
            path = import_call(
                args.wav, args.into, flow=args.flow, name=args.name, to=args.to,
                from_=args.from_, transcribe=transcribe, force=args.force, on_line=on_line,
            )  # fmt: skip
        except ImportProblem as exc:
            progress.stop()
            err.print(f"[red]error:[/red] {exc}")
            return 2
    script = load_script(path)
    out.print(f"wrote {path} with {len(script.lines())} caller lines:")
    for line in script.lines():
        out.print(f"  {line.index:02d} {line.text}")
    out.print(f"next: check the text and add expectations, then `phone-agent fixtures build {args.into}`")
    return 0
