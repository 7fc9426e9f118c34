"""What a load run will do: its options, and the calls it places in which order.

Fixtures are cycled to make N calls; calls that need a different pinned day or slower
tools (both per-process settings) run in phases of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.devkit import BUNDLED_CALLS
from agent.devkit.expectations import Expectations
from agent.devkit.runner import CallResult, business_today
from agent.devkit.scripts import CallScript, Hangup

LOCAL_ENGINE_COMFORT = 4  # the offline engine's speech models fall behind beyond this

@dataclass
class LoadTestOptions:
    fixtures: Path = BUNDLED_CALLS
    calls: int = 20
    concurrency: int = 4
    url: str | None = None
    auth_token: str | None = None
    admin_token: str | None = None
    public_url: str | None = None
    ramp_s: float = 0.0
    report: Path | None = Path("reports/loadtest")
    max_seconds: float = 600.0
    provider: str = "local"  # local | fake-openai (in-process only)
    speed: float = 1.0  # the emulator's clock; 1.0 = real time, as a phone

    @classmethod
    def from_args(cls, args: Any) -> LoadTestOptions:
        return cls(
            fixtures=Path(args.fixtures),
            calls=args.calls,
            concurrency=args.concurrency,
            url=args.url,
            auth_token=args.auth_token,
            admin_token=getattr(args, "admin_token", None),
            public_url=args.public_url,
            ramp_s=args.ramp,
            report=args.report,
            max_seconds=args.max_seconds,
            provider=args.provider,
        )

    def problems(self) -> list[str]:
        out = []
        if self.calls < 1:
            out.append("--calls must be at least 1")
        if self.concurrency < 1:
            out.append("--concurrency must be at least 1")
        if self.ramp_s < 0:
            out.append("--ramp must be >= 0")
        if not self.max_seconds > 0:
            out.append("--max-seconds must be > 0")
        if self.url and self.provider != "local":
            out.append(f"--provider {self.provider} is for the in-process server; drop --url")
        if not self.speed > 0:
            out.append("speed must be > 0")
        return out

    @property
    def mode(self) -> str:
        if self.url:
            return f"remote {self.url}"
        if self.provider == "fake-openai":
            return "local processes: server + fake OpenAI"
        return "in-process, offline engine"


@dataclass
class CallSlot:
    """One planned call and what became of it."""

    index: int
    script: CallScript
    today: dt.date | None  # the calendar day this call runs under (in-process, local)
    slow_tools: tuple[tuple[str, int], ...] = ()  # the fixture's tool delays (local)
    status: str = "pending"  # pending | running | ok | failed | timed_out | not_started
    result: CallResult | None = None
    error: str | None = None
    started_s: float | None = None
    ended_s: float | None = None

    @property
    def failures(self) -> list[str]:
        if self.result is not None:
            return list(self.result.failures)
        return [self.error] if self.error else []



# ---------------------------------------------------------------- the fake provider


# Every caller turn gets a ~2.4 s spoken reply: long enough for a fixture's barge-in (at
# most 1.5 s into the reply), short enough to keep calls brief.
FAKE_SCENARIO = {
    "default_reply": "Sure, I can help you with that. Anything else?",
    "ms_per_char": 50,
    "min_reply_ms": 800,
    "max_reply_ms": 3000,
}


# ---------------------------------------------------------------- planning


def plan_calls(scripts: Sequence[CallScript], options: LoadTestOptions) -> list[list[CallSlot]]:
    """N calls (fixtures cycled), in phases of one calendar day and tool-delay set each.

    The server's "today" (TOOLS_TODAY, which the offline engine learns from each session)
    is one per process and so are its tool delays, while fixtures pin different days and some slow a tool down
    (`slow_tools`, to hear the filler): calls that differ in either never overlap, one
    phase each. Elsewhere neither is ours to set (remote) or matters (fake): one phase.
    """
    fake = options.provider == "fake-openai" and not options.url
    slots: list[CallSlot] = []
    for i in range(options.calls):
        script = scripts[i % len(scripts)]
        if fake:
            script = _unchecked(script)
        elif options.url:  # a remote server's calendar and store are not ours to check
            script = script.model_copy(update={"expect": Expectations()})
        local = not options.url and not fake
        if local:
            delays = tuple(sorted(script.slow_tools.items()))
            slots.append(CallSlot(i, script, business_today(script), delays))
        else:
            slots.append(CallSlot(i, script, None))
    phases: dict[tuple[dt.date | None, tuple[tuple[str, int], ...]], list[CallSlot]] = {}
    for slot in slots:
        phases.setdefault((slot.today, slot.slow_tools), []).append(slot)
    return list(phases.values())


def _unchecked(script: CallScript) -> CallScript:
    """For the fake provider: no expectations, and the caller hangs up at the end (the
    fake never ends a call, and run_script would wait for that)."""
    steps = list(script.steps)
    if not steps or not isinstance(steps[-1], Hangup):
        steps.append(Hangup())
    return script.model_copy(update={"expect": Expectations(), "steps": steps})
