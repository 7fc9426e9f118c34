"""`phone-agent loadtest`: many emulated calls at once, then a latency report.

    phone-agent loadtest --fixtures agent/devkit/calls --calls 20 --concurrency 4
    phone-agent loadtest --calls 200 --concurrency 200 --provider fake-openai
    phone-agent loadtest --url https://staging.example.com --auth-token T --calls 100 \
        --concurrency 50 --ramp 30

Each call is a recorded fixture (`agent.devkit.scripts`, cycled to make N calls) played by
the Twilio emulator at real-time speed (`agent.devkit.runner.run_script`): webhook
signed with the auth token, 20 ms frames, marks echoed only once their audio played.
Targets:

- `--url`: a deployment somewhere. What the phone sees is measured; with
  `--admin-token` the call records are read from its admin API too (tool calls, filler
  onset), else those are "n/a".
- no `--url`, `--provider local` (default): an in-process server and the offline speech
  engine. The speech models are slow: keep it to 2-4 calls at once.
- no `--url`, `--provider fake-openai`: the server and the bundled fake OpenAI Realtime
  server (`agent.devkit.fake_openai`), each in its own process
  (`agent.devkit.process_stack`) so the run uses every core. Replies are a tone, so fixture
  expectations (tools, words, bookings) are not checked; the bridge is: audio stamped
  at each end times the server's hop both ways (`agent.devkit.bridge_probe`), and each
  process's CPU is read on its own.

A run is bounded: N calls, and `--max-seconds`, at which in-flight calls are hung up
and reported as timed out. One failed call never stops the run: its error is recorded.

(A little over 400 lines: the run's three targets share its pacing, progress and
collection; the plan, the summary and the report are modules of their own.)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from agent.callrecord import CallRecord
from agent.devkit.admin_client import AdminClient
from agent.devkit.bridge_probe import StampedCall
from agent.devkit.loadtest_plan import FAKE_SCENARIO, CallSlot, LoadTestOptions, plan_calls
from agent.devkit.loadtest_report import print_report, write_report
from agent.devkit.loadtest_summary import build_report
from agent.devkit.process_stack import ProcessStack, Usage, bridge_figures
from agent.devkit.runner import record_collector, run_script
from agent.devkit.scripts import (
    CallScript,
    ScriptError,
    load_scripts,
    unbuilt,
)
from agent.service.runtime import settle_heap
from telephony.testing.emulator import EmulatedCall, StreamTarget
from telephony.wav import read_ulaw_wav

log = logging.getLogger(__name__)

CLEANUP_S = 10.0  # after --max-seconds: time for cancelled calls to hang up cleanly
STAMP_EVERY = 5  # stamp one caller frame in five: a sample every 100 ms per call


@dataclass
class Target:
    """Where calls go, and what the runner may see of the server."""

    base_url: str
    auth_token: str
    public_url: str | None = None
    records: dict[str, asyncio.Future[CallRecord]] | None = None  # in-process only
    store: Any = None  # in-process only
    # In-process offline engine only: the calendar day and tool delays of the next phase.
    set_phase: Callable[[dt.date, dict[str, int]], None] | None = None
    fetch_record: Callable[[str], Awaitable[CallRecord | None]] | None = None  # admin API
    stack: ProcessStack | None = None  # fake provider: server and fake in their own processes
    out_lat_us: list[int] | None = None  # stamped reply frames: fake -> phone, µs

    @property
    def sees_records(self) -> bool:
        return self.records is not None or self.fetch_record is not None


# ---------------------------------------------------------------- targets


@contextlib.asynccontextmanager
async def open_target(
    options: LoadTestOptions, first_today: dt.date | None
) -> AsyncIterator[Target]:
    if options.url:
        token = options.auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")
        if not options.admin_token:
            yield Target(options.url, token, options.public_url)
            return
        async with AdminClient(options.url, options.admin_token, max_connections=32) as admin:
            yield Target(options.url, token, options.public_url, fetch_record=admin.finished_record)
        return
    from agent.devkit.stack import local_stack

    # Leave room above the run's concurrency: the server answers busy at its limit.
    limit = max(200, options.concurrency + 20)
    records: dict[str, asyncio.Future[CallRecord]] = {}
    if options.provider == "fake-openai":
        async with (
            ProcessStack.start(scenario=FAKE_SCENARIO, max_calls=limit) as stack,
            AdminClient(stack.base_url, stack.admin_token, max_connections=32) as admin,
        ):
            yield Target(
                stack.base_url, stack.auth_token, fetch_record=admin.finished_record,
                stack=stack, out_lat_us=[],
            )  # fmt: skip
        return

    today = first_today or dt.date.today()
    async with local_stack(tools_today=today.isoformat(), max_concurrent_calls=limit) as local:
        local.watch(record_collector(records))

        def set_phase(day: dt.date, delays: dict[str, int]) -> None:
            # Read when a call opens its session: safe between phases, never during one.
            # The engine takes the day from each session's instructions, as models do.
            local.service.settings.tools_today = day.isoformat()
            local.service.settings.tool_delays_ms = delays

        yield Target(local.base_url, local.auth_token, None, records, local.store, set_phase)


# ---------------------------------------------------------------- running


class LoadRun:
    """Runs the planned calls against a target; keeps counts, the timeline, progress."""

    def __init__(
        self,
        options: LoadTestOptions,
        phases: list[list[CallSlot]],
        target: Target,
        on_change: Callable[[LoadRun], None] | None = None,
    ) -> None:
        self.options = options
        self.phases = phases
        self.slots = [s for phase in phases for s in phase]
        self.target = target
        self.on_change = on_change
        self.t0 = 0.0
        self.in_flight = 0
        self.finished = 0
        self.failed = 0  # failed + timed out
        self.stopped_early = False
        self.latencies: list[float] = []  # voice-to-voice so far, for the live p50
        self.timeline: list[tuple[float, int, int, int]] = [(0.0, 0, 0, 0)]
        # In-process offline engine: a fixture books the same slot with the same phone every
        # time, so two runs of it must not overlap and each must free its booking after.
        self._exclusive = target.set_phase is not None
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._http: httpx.AsyncClient | None = None
        self._read_audio = functools.lru_cache(maxsize=None)(read_ulaw_wav)

    @property
    def p50(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _changed(self) -> None:
        self.timeline.append((round(self._now(), 3), self.in_flight, self.finished, self.failed))
        if self.on_change is not None:
            self.on_change(self)

    async def run(self) -> None:
        # One HTTP client for every webhook, and each fixture WAV read once: per call they
        # cost the emulator enough CPU to make its own frames late while calls ramp up.
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits) as self._http:
            await self._run()

    async def _run(self) -> None:
        self.t0 = time.monotonic()
        deadline = self.t0 + self.options.max_seconds
        sem = asyncio.Semaphore(self.options.concurrency)
        for phase in self.phases:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopped_early:
                self.stopped_early = True
                for slot in phase:
                    slot.status = "not_started"
                continue
            if self.target.set_phase is not None and phase[0].today is not None:
                self.target.set_phase(phase[0].today, dict(phase[0].slow_tools))
            tasks = [
                asyncio.create_task(self._one(slot, sem), name=f"loadtest-{slot.index}")
                for slot in phase
            ]
            _, pending = await asyncio.wait(tasks, timeout=remaining)
            if pending:
                self.stopped_early = True
                for task in pending:
                    task.cancel()
                # Cancelled calls hang up (`stop`, close) on their way out; bounded.
                await asyncio.wait(pending, timeout=CLEANUP_S)
        self._changed()

    async def _one(self, slot: CallSlot, sem: asyncio.Semaphore) -> None:
        opts = self.options
        try:
            start_at = self.t0 + opts.ramp_s * slot.index / opts.calls
            if start_at > time.monotonic():
                await asyncio.sleep(start_at - time.monotonic())  # the ramp schedule itself
            lock = self._locks[slot.script.name] if self._exclusive else contextlib.nullcontext()
            async with lock, sem:
                await self._call(slot)
        except asyncio.CancelledError:
            if slot.status == "pending":
                slot.status = "not_started"
            raise

    def _make_call(self, target: StreamTarget, speed: float, record_audio: bool) -> EmulatedCall:
        assert self.target.out_lat_us is not None
        return StampedCall(
            target, self.target.out_lat_us, every=STAMP_EVERY, speed=speed,
            record_audio=record_audio,
        )  # fmt: skip

    async def _call(self, slot: CallSlot) -> None:
        t = self.target
        slot.status = "running"
        slot.started_s = self._now()
        self.in_flight += 1
        self._changed()
        try:
            result = await run_script(
                slot.script,
                base_url=t.base_url,
                auth_token=t.auth_token,
                public_url=t.public_url,
                speed=self.options.speed,
                records=t.records,
                store=t.store,
                today=slot.today,
                fetch_record=t.fetch_record,
                make_call=self._make_call if t.out_lat_us is not None else None,
                http=self._http,
                read_audio=self._read_audio,
            )
        except asyncio.CancelledError:
            slot.status = "timed_out"
            raise
        except Exception as exc:  # one bad call must not end the run: record it
            slot.status = "failed"
            slot.error = f"{type(exc).__name__}: {exc}"
        else:
            slot.result = result
            slot.status = "ok" if result.ok else "failed"
            self.latencies += result.latencies_ms
            if self._exclusive and t.store is not None:
                await _free_bookings(t.store, slot.script.from_)
        finally:
            slot.ended_s = self._now()
            self.in_flight -= 1
            self.finished += 1
            if slot.status != "ok":
                self.failed += 1
            self._changed()


async def _free_bookings(store: Any, phone: str) -> None:
    """Cancel what this run of a fixture booked, so its next run finds the slot free."""
    try:
        for booking in await store.find_by_phone(phone):
            await store.cancel(booking.booking_id)
    except Exception:  # cleanup trouble shows up as the next run's failure, with a reason
        log.exception("could not free the bookings of %s", phone)


# ---------------------------------------------------------------- entry points


async def run_loadtest(
    options: LoadTestOptions,
    *,
    scripts: Sequence[CallScript] | None = None,
    on_change: Callable[[LoadRun], None] | None = None,
) -> dict[str, Any]:
    """Run the load test; returns the report (a JSON-ready dict)."""
    bad = options.problems()
    if bad:
        raise ValueError("; ".join(bad))
    scripts = list(scripts) if scripts is not None else load_scripts(options.fixtures)
    if not scripts:
        raise ScriptError(f"{options.fixtures}: no call scripts (*.yaml) here")
    phases = plan_calls(scripts, options)
    started_at = dt.datetime.now(dt.UTC)
    bridge: dict[str, Any] | None = None
    async with open_target(options, phases[0][0].today) as target:
        settle_heap()  # the emulator's own pauses would show up as late frames and gaps
        run = LoadRun(options, phases, target, on_change)
        usage = Usage.now(target.stack) if target.stack is not None else None
        cpu0, wall0 = time.process_time(), time.monotonic()
        await run.run()
        wall_s, cpu_s = time.monotonic() - wall0, time.process_time() - cpu0
        if target.stack is not None and usage is not None and target.out_lat_us is not None:
            results = [s.result for s in run.slots if s.result is not None]
            bridge = await bridge_figures(
                target.stack,
                usage,
                call_minutes=sum(r.duration_s for r in results) / 60,
                frames_sent=sum(r.frames_sent for r in results),
                out_lat_us=target.out_lat_us,
            )
    report = build_report(run, wall_s=wall_s, cpu_s=cpu_s, started_at=started_at)
    report["bridge"] = bridge
    if bridge is not None:  # caller audio that never reached the model is lost too
        report["frames"]["lost_in"] = bridge["lost_in_frames"]
        report["frames"]["lost"] += bridge["lost_in_frames"] + bridge["provider_violations"]
    return report


class _Progress:
    """A rich progress bar on a terminal; one line per finished call elsewhere (CI logs)."""

    def __init__(self, console: Any, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self.live = console.is_terminal
        self._done: set[int] = set()
        self.progress = Progress(
            TextColumn("[bold]calls"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]failed {task.fields[failed]}[/]"),
            TextColumn("in flight {task.fields[in_flight]}"),
            TextColumn("p50 {task.fields[p50]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not self.live,
        )
        self.task = self.progress.add_task("calls", total=total, failed=0, in_flight=0, p50="-")

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, run: LoadRun) -> None:
        p50 = run.p50
        self.progress.update(
            self.task,
            completed=run.finished,
            failed=run.failed,
            in_flight=run.in_flight,
            p50="-" if p50 is None else f"{p50:.0f} ms",
        )
        if not self.live:
            for slot in sorted(run.slots, key=lambda s: s.ended_s or 0):
                if slot.ended_s is None or slot.index in self._done:
                    continue
                self._done.add(slot.index)
                why = f": {slot.failures[0][:120]}" if slot.status != "ok" and slot.failures else ""
                self.console.print(
                    f"[{run.finished}/{len(run.slots)}] {slot.script.name} {slot.status}{why}"
                )


async def run_loadtest_command(args: Any) -> int:
    """The CLI: progress while it runs, then the table and the report files."""
    from rich.console import Console

    console = Console(highlight=False)
    options = LoadTestOptions.from_args(args)
    bad = options.problems()
    if options.url and not (options.auth_token or os.environ.get("TWILIO_AUTH_TOKEN")):
        bad.append("--url needs --auth-token (or TWILIO_AUTH_TOKEN): webhooks must be signed")
    if bad:
        for problem in bad:
            console.print(f"[red]{problem}[/]")
        return 2
    try:
        scripts = load_scripts(options.fixtures)
    except ScriptError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    if not scripts:
        console.print(f"[red]{options.fixtures}: no call scripts (*.yaml) here[/]")
        return 2
    if missing := unbuilt(scripts):
        console.print(f"[red]{len(missing)} caller line(s) have no audio yet ({missing[0].audio}): "
                      f"run `phone-agent fixtures build {options.fixtures}`[/]")
        return 2
    console.print(
        f"[dim]{options.mode}: {options.calls} calls from {len(scripts)} fixtures, "
        f"{options.concurrency} at once, stop at {options.max_seconds:g} s[/]"
    )
    with _Progress(console, options.calls) as progress:
        report = await run_loadtest(options, scripts=scripts, on_change=progress)
    print_report(console, report)
    if options.report is not None:
        files = write_report(report, options.report)
        console.print(f"report: {files.json}  {files.html}")
        if files.charts_note:
            console.print(f"[yellow]{files.charts_note}[/]")
    calls = report["calls"]
    return 0 if calls["ok"] == calls["requested"] else 1
