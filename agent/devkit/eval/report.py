"""Numbers from an evaluation run: summaries, terminal tables and the JSON report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.devkit.eval.calls import CallOutcome
from agent.devkit.eval.scoring import SLOTS, Score
from agent.devkit.eval.utterances import UtteranceResult

__all__ = ["print_report", "summarise", "write_json"]


def _rate(flags: Iterable[bool]) -> dict[str, Any]:
    values = list(flags)
    right = sum(values)
    return {"right": right, "of": len(values), "rate": round(right / len(values), 3) if values else None}


def _score_summary(scores: Sequence[Score]) -> dict[str, Any]:
    return {
        "intent": _rate(s.intent for s in scores if s.intent is not None),
        "slots_per_utterance": _rate(s.slots_ok for s in scores),
        "utterance_ok": _rate(s.ok for s in scores),
        "per_slot": {
            slot: _rate(s.slots[slot] for s in scores if slot in s.slots) for slot in SLOTS
        },
    }


def _group_by(
    results: Sequence[UtteranceResult], key: Callable[[UtteranceResult], str]
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[UtteranceResult]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    out = {}
    for name, items in sorted(groups.items()):
        out[name] = {
            "text": _rate(r.text_score.ok for r in items),
            "audio": _rate(r.audio_score.ok for r in items if r.audio_score is not None),
        }
    return out


def summarise(
    results: Sequence[UtteranceResult], calls: Sequence[CallOutcome]
) -> dict[str, Any]:
    audio = [r.audio_score for r in results if r.audio_score is not None]
    return {
        "utterances": {
            "count": len(results),
            "from_text": _score_summary([r.text_score for r in results]),
            "from_audio": _score_summary(audio) if audio else None,
            "by_voice": _group_by(results, lambda r: r.utterance.voice),
            "by_line": _group_by(
                results, lambda r: "clean" if r.utterance.noise_db is None else "noisy"
            ),
            "by_flow": _group_by(results, lambda r: r.utterance.flow),
        },
        "calls": {
            "count": len(calls),
            "task_success": _rate(c.ok for c in calls),
            "clean": _rate(c.ok for c in calls if c.script.noise_db is None),
            "noisy": _rate(c.ok for c in calls if c.script.noise_db is not None),
        },
    }


def write_json(
    path: Path,
    *,
    eval_set: dict[str, Any],
    results: Sequence[UtteranceResult],
    calls: Sequence[CallOutcome],
) -> None:
    report = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "set": eval_set,
        "summary": summarise(results, calls),
        "utterances": [r.to_json() for r in results],
        "calls": [c.to_json() for c in calls],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _pct(rate: dict[str, Any] | None) -> str:
    if not rate or not rate["of"]:
        return "-"
    return f"{100 * rate['rate']:.0f}% ({rate['right']}/{rate['of']})"


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else "[green]ok[/]" if ok else "[red]x[/]"


def _show_heard(score: Score | None, heard: Any) -> str:
    if score is None:
        return ""
    wrong = [k for k, v in score.slots.items() if not v]
    if score.intent is False:
        wrong.insert(0, "intent")
    return ", ".join(f"{k}={getattr(heard, k)!r}" for k in wrong)


def print_report(
    console: Console,
    name: str,
    results: Sequence[UtteranceResult],
    calls: Sequence[CallOutcome],
    *,
    details: bool = True,
) -> None:
    summary = summarise(results, calls)
    if results and details:
        table = Table(title=f"{name}: utterances that were not understood", show_lines=False)
        for col in ("id", "voice", "noise", "text", "audio", "transcript / wrong"):
            table.add_column(col, overflow="fold")
        for r in results:
            if r.text_score.ok and (r.audio_score is None or r.audio_score.ok):
                continue
            noise = "" if r.utterance.noise_db is None else f"{r.utterance.noise_db:g}"
            audio_ok = None if r.audio_score is None else r.audio_score.ok
            why = _show_heard(r.text_score, r.text) if not r.text_score.ok else ""
            if r.audio_score is not None and not r.audio_score.ok:
                why = f"{why}  [dim]heard:[/] {r.transcript!r} {_show_heard(r.audio_score, r.audio)}"
            table.add_row(
                r.utterance.id, r.utterance.voice, noise, _mark(r.text_score.ok), _mark(audio_ok), why
            )
        console.print(table)
    if calls:
        table = Table(title=f"{name}: whole calls (task success)")
        for col in ("call", "flow", "voice", "noise", "result", "first failure"):
            table.add_column(col, overflow="fold")
        for c in calls:
            noise = "" if c.script.noise_db is None else f"{c.script.noise_db:g}"
            table.add_row(
                c.script.name, c.script.flow, c.script.voice, noise, _mark(c.ok),
                c.failures[0] if c.failures else "",
            )  # fmt: skip
        console.print(table)
    u = summary["utterances"]
    table = Table(title=f"{name}: summary")
    table.add_column("measure")
    table.add_column("from text", justify="right")
    table.add_column("from audio", justify="right")
    if results:
        text, audio = u["from_text"], u["from_audio"] or {}
        table.add_row("intent accuracy", _pct(text["intent"]), _pct(audio.get("intent")))
        table.add_row(
            "slot accuracy (utterances with every slot right)",
            _pct(text["slots_per_utterance"]),
            _pct(audio.get("slots_per_utterance")),
        )
        for slot in SLOTS:
            table.add_row(
                f"  {slot}", _pct(text["per_slot"][slot]), _pct((audio.get("per_slot") or {}).get(slot))
            )
        table.add_row(
            "utterances fully understood", _pct(text["utterance_ok"]), _pct(audio.get("utterance_ok"))
        )
        for group in ("by_line", "by_voice"):
            for key, rates in u[group].items():
                table.add_row(f"  {key}", _pct(rates["text"]), _pct(rates["audio"]))
    if calls:
        c = summary["calls"]
        table.add_row("calls: task success", "", _pct(c["task_success"]))
        table.add_row("  clean / noisy line", "", f"{_pct(c['clean'])} / {_pct(c['noisy'])}")
    console.print(table)
