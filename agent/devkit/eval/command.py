"""`phone-agent eval`: run a set and print/write the report; `--render` re-renders its audio."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from agent.devkit.eval import SET_NAMES

if TYPE_CHECKING:  # the CLI builds its parser on every run: the rest is imported when used
    from rich.console import Console

    from agent.devkit.eval.sets import EvalSet

__all__ = ["add_eval_arguments", "eval_command"]


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", default="heldout",
                   help=f"{' | '.join(SET_NAMES)} or a folder with the same layout (default: heldout)")
    p.add_argument("--no-audio", action="store_true",
                   help="utterances from their text only (no speech recogniser)")
    p.add_argument("--no-calls", action="store_true", help="utterances only")
    p.add_argument("--no-utterances", action="store_true", help="whole calls only")
    p.add_argument("--calls", default=None, metavar="GLOB", help="only the calls whose name matches")
    p.add_argument("--speed", type=float, default=1.0, help="emulated phone speed (calls)")
    p.add_argument("--report", type=Path, default=None,
                   help="JSON report path (default: reports/eval-SET.json)")
    p.add_argument("--quiet", action="store_true", help="the summary table only")
    p.add_argument("--render", action="store_true",
                   help="(re)render the set's audio with espeak-ng/flite, then exit")  # fmt: skip


def _render(eval_set: EvalSet, console: Console) -> int:
    from agent.devkit.build import build_fixtures
    from agent.devkit.eval.sets import write_render_plan

    write_render_plan(eval_set)
    for folder in (eval_set.lines_dir, eval_set.calls_dir):
        code = build_fixtures(folder)
        if code:
            return code
    size = sum(p.stat().st_size for p in eval_set.path.rglob("*.wav"))
    console.print(f"{eval_set.name}: audio {size / 1024:.0f} KiB", highlight=False)
    return 0


async def _run(eval_set: EvalSet, args: argparse.Namespace, console: Console) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from agent.devkit.eval.calls import CallOutcome, run_calls
    from agent.devkit.eval.report import print_report, write_json
    from agent.devkit.eval.sets import describe
    from agent.devkit.eval.utterances import UtteranceResult, run_utterances
    from agent.devkit.scripts import load_scripts

    results: list[UtteranceResult] = []
    calls: list[CallOutcome] = []
    scripts = [] if args.no_calls else load_scripts(eval_set.calls_dir)
    if args.calls:
        scripts = [s for s in scripts if fnmatch.fnmatchcase(s.name, args.calls)]
    chosen = {s.name for s in scripts}
    columns = (
        TextColumn("[progress.description]{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        if not args.no_utterances:
            task = progress.add_task("utterances", total=len(eval_set.utterances))

            def utterance_done(r: UtteranceResult) -> None:
                progress.update(task, description=f"utterance {r.utterance.id}", advance=1)

            results = await run_utterances(eval_set, audio=not args.no_audio, on_done=utterance_done)
        if scripts:
            # Each call starts a server: its start-up notes ("admin API disabled") are noise here.
            logging.getLogger("agent.service").setLevel(logging.ERROR)
            call_task = progress.add_task("calls", total=len(scripts))
            calls = await run_calls(
                eval_set,
                speed=args.speed,
                only=lambda s: s.name in chosen,
                on_start=lambda s: progress.update(call_task, description=f"call {s.name}"),
                on_done=lambda _: progress.advance(call_task),
            )
    print_report(console, eval_set.name, results, calls, details=not args.quiet)
    report = args.report or Path("reports") / f"eval-{eval_set.name}.json"
    write_json(report, eval_set=describe(eval_set), results=results, calls=calls)
    console.print(f"report: {report}", highlight=False)
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agent.devkit.eval.sets import EvalSetError, check_rendered, load_set
    from agent.devkit.scripts import ScriptError, load_scripts

    console = Console(highlight=False)
    try:
        eval_set = load_set(args.set)
        if args.render:
            return _render(eval_set, console)
        problems = [] if args.no_utterances or args.no_audio else check_rendered(eval_set)
        if not args.no_calls:  # a broken or unrendered script fails now, not mid-run
            lines = [ln for s in load_scripts(eval_set.calls_dir) for ln in s.lines()]
            if missing := [ln for ln in lines if not ln.audio.is_file()]:
                problems.append(f"{len(missing)} call line(s) have no audio, e.g. {missing[0].audio}")
    except (EvalSetError, ScriptError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    if problems:
        for problem in problems:
            console.print(f"[red]error:[/] {problem}")
        console.print(f"render it: phone-agent eval --set {args.set} --render")
        return 2
    return asyncio.run(_run(eval_set, args, console))
