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
- no `--url`, `--provider fake-openai`: the server and the fake OpenAI Realtime server
  from `tests/fakes` (a source checkout only), each in its own process
  (`agent.devkit.process_stack`) so the run uses every core. Replies are a tone, so fixture
  expectations (tools, words, bookings) are not checked; the bridge is: audio stamped
  at each end times the server's hop both ways (`agent.devkit.bridge_probe`), and each
  process's CPU is read on its own.

A run is bounded: N calls, and `--max-seconds`, at which in-flight calls are hung up
and reported as timed out. One failed call never stops the run: its error is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.callrecord import CallRecord
from agent.devkit import BUNDLED_CALLS
from agent.devkit.admin_client import AdminClient
from agent.devkit.bridge_probe import StampedCall
from agent.devkit.loadtest_report import percentile, print_report, summarise, write_report
from agent.devkit.process_stack import ProcessStack, Usage, bridge_figures
from agent.devkit.runner import CallResult, business_today, record_collector, run_script
from agent.devkit.scripts import (
    CallScript,
    Expectations,
    Hangup,
    ScriptError,
    load_scripts,
    unbuilt,
)
from agent.service.runtime import settle_heap
from telephony.testing.emulator import EmulatedCall, StreamTarget
from telephony.wav import read_ulaw_wav

log = logging.getLogger(__name__)

CLEANUP_S = 10.0  # after --max-seconds: time for cancelled calls to hang up cleanly
LOCAL_ENGINE_COMFORT = 4  # the offline engine's speech models fall behind beyond this
FRAME_MS = 20
STAMP_EVERY = 5  # stamp one caller frame in five: a sample every 100 ms per call


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

    The offline engine's "today" is one per process (LOCAL_ENGINE_TODAY) and so are the
    server's tool delays, while fixtures pin different days and some slow a tool down
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
    os.environ["LOCAL_ENGINE_TODAY"] = today.isoformat()
    async with local_stack(tools_today=today.isoformat(), max_concurrent_calls=limit) as stack:
        stack.watch(record_collector(records))

        def set_phase(day: dt.date, delays: dict[str, int]) -> None:
            # Read when a call opens its session: safe between phases, never during one.
            os.environ["LOCAL_ENGINE_TODAY"] = day.isoformat()
            stack.service.settings.tools_today = day.isoformat()
            stack.service.settings.tool_delays_ms = delays

        yield Target(
            stack.base_url, stack.auth_token, None, records, stack.store, set_phase
        )


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


# ---------------------------------------------------------------- the report


def _gap_ms(result: CallResult) -> float:
    """Silence the caller heard inside bot replies: the phone's 20 ms ticks with nothing
    to play between two frames of one turn's audio (audio the server did not deliver in
    time, or a deliberate pause such as filler -> answer)."""
    return sum(turn.underrun_ms for turn in result.turns)


def _gap_ms_while_late(result: CallResult) -> float:
    """The part of `_gap_ms` heard while this client itself ran late: its busy loop may
    have read the audio late, so those gaps may be the load generator's, not the server's."""
    return sum(turn.underrun_while_late_ms for turn in result.turns)


def _reason_key(reason: str) -> str:
    # Same failure, different numbers (sids, ms, dates): one group.
    return re.sub(r"\d+(\.\d+)?", "#", reason)[:160]


def build_report(
    run: LoadRun, *, wall_s: float, cpu_s: float, started_at: dt.datetime
) -> dict[str, Any]:
    opts = run.options
    slots = run.slots
    results = [s.result for s in slots if s.result is not None]
    in_process = not opts.url
    fake = in_process and opts.provider == "fake-openai"
    sees_records = run.target.sees_records
    status = Counter(s.status for s in slots)

    v2v = [x for r in results for x in r.latencies_ms]
    clear = [x for r in results for x in r.clear_latencies_ms]
    marks = [d for r in results for t in r.turns for d in t.mark_echo_delays_ms]
    lead = [t.max_playback_lead_ms for r in results for t in r.turns if t.bot_audio_received_ms]
    records = [r.record for r in results if r.record is not None]
    filler = [
        x for rec in records for tc in rec.tool_calls for x in tc.get("filler_onset_ms") or ()
    ]

    tools: dict[str, Any] | None = None
    if sees_records:
        calls = [tc for rec in records for tc in rec.tool_calls]
        by_status = Counter(str(tc.get("status")) for tc in calls)
        bad = [tc for tc in calls if tc.get("status") not in ("ok", "cancelled")]
        tools = {
            "calls": len(calls),
            "errors": len(bad),  # error / timeout; `cancelled` (barge-in, hang-up) apart
            "by_status": dict(by_status),
            "errors_by_tool": dict(Counter(f"{tc.get('name')}: {tc.get('status')}" for tc in bad)),
        }

    gap_ms = sum(_gap_ms(r) for r in results)
    gap_frames = int(gap_ms // FRAME_MS)
    gap_frames_late = int(sum(_gap_ms_while_late(r) for r in results) // FRAME_MS)
    violations = sum(r.violations for r in results)
    approx_sent = int(sum(r.duration_s for r in results) * 1000 / FRAME_MS * opts.speed)
    late = sum(r.frames_late for r in results)

    groups: dict[str, dict[str, Any]] = {}
    for slot in slots:
        reasons = slot.failures if slot.status == "failed" else []
        if slot.status == "timed_out":
            reasons = [f"timed out: still running at --max-seconds {opts.max_seconds:g}"]
        for reason in dict.fromkeys(reasons):
            g = groups.setdefault(
                _reason_key(reason), {"reason": reason, "calls": 0, "scripts": []}
            )
            g["calls"] += 1
            if slot.script.name not in g["scripts"]:
                g["scripts"].append(slot.script.name)

    finished = status["ok"] + status["failed"]
    notes = [
        "Latencies are wall-clock and measured at the emulated phone; on a shared machine "
        "(other tests, few cores) they are noisy: compare runs on the same machine only.",
        "Frames late = caller frames the emulator itself sent > 5 ms after their 20 ms "
        "deadline: high values mean this client was overloaded and inflate every latency.",
        "Frames lost = silence inside a bot reply (audio not delivered in time; includes "
        "deliberate pauses such as filler -> answer) in 20 ms frames, plus protocol violations"
        " (and, with the fake provider, caller frames that never reached it). Gap frames "
        "heard while this client ran late may be its own: its loop may have read the audio late.",
    ]
    if len(run.phases) > 1:
        kinds = ", ".join(_phase_name(p[0]) for p in run.phases)
        notes.append(
            f"Fixtures pin {len(run.phases)} different days or tool delays ({kinds}); the "
            "offline engine's calendar and the server's tool delays are per process, so those "
            "ran as consecutive phases."
        )
    if in_process and not fake and opts.concurrency > LOCAL_ENGINE_COMFORT:
        notes.append(
            f"Concurrency {opts.concurrency} with the offline engine: its speech models are "
            f"CPU-bound, latencies above {LOCAL_ENGINE_COMFORT} calls mostly measure them."
        )

    if fake:
        expectations = "not checked (fake provider: replies are a tone)"
    elif not in_process:
        expectations = "not checked (remote: they need the server's call records)"
    else:
        expectations = f"checked: {status['ok']} of {finished} finished calls met theirs"
    scope = "emulator only"
    if fake:
        scope = "emulator only (server and fake provider: see bridge)"
    elif in_process:
        scope = "emulator + server + offline engine"

    return {
        "version": 1,
        "started_at": started_at.isoformat(timespec="seconds"),
        "mode": opts.mode,
        "config": {
            "fixtures": str(opts.fixtures),
            "calls": opts.calls,
            "concurrency": opts.concurrency,
            "ramp_s": opts.ramp_s,
            "max_seconds": opts.max_seconds,
            "url": opts.url,
            "provider": None if opts.url else opts.provider,
            "speed": opts.speed,
        },
        "wall_s": round(wall_s, 2),
        "stopped_early": run.stopped_early,
        "calls": {
            "requested": len(slots),
            "started": sum(1 for s in slots if s.started_s is not None),
            "peak_in_flight": max((row[1] for row in run.timeline), default=0),
            "finished": finished,
            "ok": status["ok"],
            "failed": status["failed"],
            "timed_out": status["timed_out"],
            "not_started": status["not_started"] + status["pending"],
        },
        "failures": sorted(groups.values(), key=lambda g: -g["calls"]),
        "latency_ms": {
            "voice_to_voice": summarise(v2v),
            "barge_in_to_clear": summarise(clear),
            "mark_round_trip": summarise(marks),
            "filler_onset": summarise(filler) if sees_records else None,
            "playback_lead": summarise(lead),
        },
        "frames": {
            "approx_sent": approx_sent,
            "late": late,
            "late_pct": round(100 * late / approx_sent, 3) if approx_sent else 0.0,
            "late_calls": sum(1 for r in results if r.frames_late),
            "max_lateness_ms": round(max((r.max_lateness_ms for r in results), default=0.0), 1),
            "gap_ms": round(gap_ms, 1),
            "gap_frames": gap_frames,
            "gap_frames_while_late": gap_frames_late,
            "violations": violations,
            "lost": gap_frames + violations,
        },
        "tools": tools,
        "expectations": expectations,
        "cpu": {
            "process_s": round(cpu_s, 2),
            "per_call_s": round(cpu_s / finished, 3) if finished else 0.0,
            "cores": round(cpu_s / wall_s, 2) if wall_s > 0 else 0.0,
            "scope": scope,
        },
        "phases": [
            {
                "today": p[0].today.isoformat() if p[0].today else None,
                "slow_tools": dict(p[0].slow_tools),
                "calls": len(p),
            }
            for p in run.phases
        ],
        "timeline_columns": ["t_s", "in_flight", "completed", "failed_or_timed_out"],
        "timeline": [list(row) for row in run.timeline],
        "samples": {
            "voice_to_voice": [round(x, 1) for x in v2v],
            "barge_in_to_clear": [round(x, 1) for x in clear],
            "mark_round_trip": [round(x, 1) for x in marks],
            "filler_onset": [round(x, 1) for x in filler],
        },
        "per_call": [_call_row(s) for s in slots],
        "notes": notes,
    }


def _phase_name(slot: CallSlot) -> str:
    delays = ", ".join(f"{name} +{ms} ms" for name, ms in slot.slow_tools)
    return f"{slot.today}" + (f" with {delays}" if delays else "")


def _call_row(slot: CallSlot) -> dict[str, Any]:
    row: dict[str, Any] = {
        "index": slot.index,
        "script": slot.script.name,
        "status": slot.status,
        "started_s": None if slot.started_s is None else round(slot.started_s, 2),
        "ended_s": None if slot.ended_s is None else round(slot.ended_s, 2),
        "error": slot.error,
    }
    r = slot.result
    if r is not None:
        lat = r.latencies_ms
        row.update(
            call_sid=r.call_sid,
            outcome=r.outcome,
            duration_s=round(r.duration_s, 2),
            turns=len(r.turns),
            v2v_ms=[round(x, 1) for x in lat],
            v2v_p50_ms=round(percentile(lat, 50), 1) if lat else None,
            clear_ms=[round(x, 1) for x in r.clear_latencies_ms],
            frames_sent=r.frames_sent,
            frames_late=r.frames_late,
            max_lateness_ms=round(r.max_lateness_ms, 1),
            gap_ms=round(_gap_ms(r), 1),
            violations=r.violations,
            failures=r.failures,
        )
    return row


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
