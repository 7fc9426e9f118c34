"""Call level: each whole call through the in-process server and the offline engine.

Every call gets a stack of its own (a fresh store, the set's calendar day pinned for the
tools and the engine) with the caller's earlier bookings put in first, then plays
through the Twilio emulator exactly as `phone-agent call` would. Success is the script's
own expectations: the tools called with their arguments, the bookings left, the outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.callrecord import CallRecord
from agent.devkit.eval.sets import EvalSet, PriorBooking
from agent.devkit.runner import record_collector, run_script
from agent.devkit.scripts import CallScript, load_scripts
from agent.devkit.stack import local_stack
from tools.appointments import normalise_phone

__all__ = ["CallOutcome", "run_call", "run_calls", "seed_bookings"]


@dataclass(frozen=True)
class CallOutcome:
    script: CallScript
    ok: bool
    failures: list[str]
    outcome: str
    seconds: float
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        s = self.script
        return {
            "name": s.name,
            "flow": s.flow,
            "voice": s.voice,
            "noise_db": s.noise_db,
            "ok": self.ok,
            "failures": self.failures,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 1),
            "tool_calls": self.tool_calls,
            "transcript": self.transcript,
        }


async def seed_bookings(store: Any, script: CallScript, bookings: list[PriorBooking]) -> None:
    """Book the caller's earlier appointments (made from the script's phone) into `store`."""
    phone = normalise_phone(script.from_)
    for i, b in enumerate(bookings):
        await store.book(b.day, b.time, b.name, phone, f"eval-prior:{script.name}:{i}")


def _tool_calls(record: CallRecord | None) -> list[dict[str, Any]]:
    if record is None:
        return []
    return [{"name": c.get("name"), "arguments": c.get("arguments")} for c in record.tool_calls]


def _transcript(record: CallRecord | None) -> list[dict[str, str]]:
    if record is None:
        return []
    return [{"role": line["role"], "text": line["text"]} for line in record.transcript_lines]


async def run_call(eval_set: EvalSet, script: CallScript, *, speed: float = 1.0) -> CallOutcome:
    today = script.today or eval_set.today
    started = time.monotonic()
    records: dict[str, asyncio.Future[CallRecord]] = {}
    try:
        async with local_stack(
            tools_today=today.isoformat(), tool_delays_ms=script.slow_tools
        ) as stack:
            stack.watch(record_collector(records))
            await seed_bookings(stack.store, script, list(eval_set.bookings.get(script.name, [])))
            result = await run_script(
                script, base_url=stack.base_url, auth_token=stack.auth_token, speed=speed,
                records=records, store=stack.store, today=today,
                # the engine speaks in wall time: a slow sentence sped up is not the end
                reply_quiet_ms=700 * max(speed, 1.0),
            )  # fmt: skip
    except Exception as exc:  # one broken call must not end the evaluation
        return CallOutcome(
            script, False, [f"{type(exc).__name__}: {exc}"], "error", time.monotonic() - started
        )
    return CallOutcome(
        script,
        result.ok,
        result.failures,
        result.outcome,
        time.monotonic() - started,
        _tool_calls(result.record),
        _transcript(result.record),
    )


async def run_calls(
    eval_set: EvalSet,
    *,
    speed: float = 1.0,
    only: Callable[[CallScript], bool] | None = None,
    on_start: Callable[[CallScript], None] | None = None,
    on_done: Callable[[CallOutcome], None] | None = None,
) -> list[CallOutcome]:
    """Every call of the set, one after another (the speech models want both cores)."""
    outcomes = []
    for script in load_scripts(eval_set.calls_dir):
        if only is not None and not only(script):
            continue
        if on_start is not None:
            on_start(script)
        outcome = await run_call(eval_set, script, speed=speed)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes
