"""Plays a recorded call fixture through the Twilio emulator and checks what happened.

`phone-agent call` uses it to print the conversation live; the e2e tests and the load
test use `run_script` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agent.callrecord import CallRecord
from agent.devkit.expectations import (
    check_expectations,
    resolve_day,
)
from agent.devkit.scripts import (
    CallScript,
    Hangup,
    Interrupt,
    Pause,
    PressKeys,
    Say,
    ScriptError,
    WaitBot,
    load_script,
    unbuilt,
)
from telephony.testing.emulator import (
    CallEnded,
    EmulatedCall,
    StreamTarget,
    TurnMetrics,
    dial_webhook,
)
from telephony.wav import read_ulaw_wav
from tools.appointments import normalise_phone

DTMF_GAP_MS = 150


@dataclass
class CallResult:
    script: str
    call_sid: str
    ok: bool
    failures: list[str]
    outcome: str
    turns: list[TurnMetrics]
    record: CallRecord | None
    frames_late: int = 0
    max_lateness_ms: float = 0.0
    violations: int = 0
    duration_s: float = 0.0
    frames_sent: int = 0
    error: str | None = None
    bookings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latencies_ms(self) -> list[float]:
        return [t.response_latency_ms for t in self.turns if t.response_latency_ms is not None]

    @property
    def clear_latencies_ms(self) -> list[float]:
        return [t.clear_latency_ms for t in self.turns if t.clear_latency_ms is not None]


async def seed_bookings(store: Any, script: CallScript, today: dt.date) -> None:
    """The appointments the script's caller already has (`bookings:`), made from its
    number. Each run seeds under keys of its own: a load test runs a fixture again on the
    same store once the previous run's bookings are freed."""
    run = secrets.token_hex(4)
    phone = normalise_phone(script.from_)
    for i, b in enumerate(script.bookings):
        day = resolve_day(b.day, today) if b.day.startswith("@") else dt.date.fromisoformat(b.day)
        await store.book(day, b.time, b.name, phone, f"fixture-seed:{script.name}:{run}:{i}")


def business_today(script: CallScript) -> dt.date:
    """The fixture's `today` when it is still ahead, else the next Mon-Thu (so that
    "tomorrow" is a business day). Fixtures with absolute dates pin `today`."""
    real = dt.date.today()
    if script.today and script.today >= real:
        return script.today
    day = real + dt.timedelta(days=1)
    while day.weekday() > 3:
        day += dt.timedelta(days=1)
    return day


async def run_script(
    script: CallScript,
    *,
    base_url: str,
    auth_token: str,
    public_url: str | None = None,
    speed: float = 1.0,
    records: dict[str, asyncio.Future[CallRecord]] | None = None,
    store: Any = None,
    on_call: Callable[[str], None] | None = None,
    wav_dir: Path | None = None,
    today: dt.date | None = None,
    fetch_record: Callable[[str], Awaitable[CallRecord | None]] | None = None,
    make_call: Callable[[StreamTarget, float, bool], EmulatedCall] | None = None,
    http: httpx.AsyncClient | None = None,
    read_audio: Callable[[Path], bytes] = read_ulaw_wav,
    reply_quiet_ms: float = 700,
) -> CallResult:
    """Run one fixture against a server. The call record comes from `records` (in-process
    runs: call sids to futures the server resolves when the call ends) or `fetch_record`
    (e.g. the admin API of a server elsewhere). `make_call(target, speed, record_audio)`
    builds the emulated phone (default: `EmulatedCall`). Many calls at once should share
    one `http` client and a caching `read_audio`: a client per call costs a TLS context,
    and fixture WAVs read per call are disk reads on the event loop. `reply_quiet_ms`: the
    call time of quiet after which the caller takes the bot's reply as finished."""
    t0 = time.monotonic()
    if store is not None and script.bookings:
        await seed_bookings(store, script, today or business_today(script))
    target = await dial_webhook(
        base_url, auth_token, to=script.to, from_=script.from_, public_url=public_url,
        flow=script.flow, client=http,
    )
    fut: asyncio.Future[CallRecord] | None = None
    if records is not None:
        fut = asyncio.get_running_loop().create_future()
        records[target.call_sid] = fut
    if on_call:
        on_call(target.call_sid)
    error: str | None = None
    hung_up_by_caller = False
    record_audio = wav_dir is not None  # 200 calls' audio in memory for nothing otherwise
    if make_call is not None:
        call = make_call(target, speed, record_audio)
    else:
        call = EmulatedCall(target, speed=speed, record_audio=record_audio)
    try:
        async with call:
            for step in script.steps:
                if isinstance(step, WaitBot):
                    await call.wait_for_bot_reply(timeout=step.timeout_s, quiet_ms=reply_quiet_ms)
                elif isinstance(step, Say):
                    await call.say(read_audio(step.audio))
                elif isinstance(step, Interrupt):
                    await call.interrupt_after(step.after_ms, read_audio(step.audio))
                elif isinstance(step, PressKeys):
                    for i, digit in enumerate(step.digits, 1):
                        await call.dtmf(digit)
                        if i == len(step.digits):
                            # The input ends with the last key, not after the pause: a
                            # server may answer at once, and that audio is this turn's.
                            call.end_of_input("keypad")
                        await call.pause(DTMF_GAP_MS)
                elif isinstance(step, Pause):
                    await call.pause(step.ms)
                elif isinstance(step, Hangup):
                    hung_up_by_caller = True
                    break
            if not hung_up_by_caller and not call.closed:
                # Script done: let the bot finish (it may be ending the call itself).
                with contextlib.suppress(TimeoutError, CallEnded):
                    await asyncio.wait_for(call.wait_closed(), 8.0)
    except CallEnded as exc:
        error = None if call.closed_by_server else f"call ended early: {exc}"
    except (TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    if wav_dir is not None:
        await asyncio.to_thread(_save_wav, call, wav_dir / f"{script.name}.wav")

    record: CallRecord | None = None
    if fut is not None:
        try:
            record = await asyncio.wait_for(fut, 15.0)
        except TimeoutError:
            error = error or "the server never finished the call record"
        finally:
            records.pop(target.call_sid, None)  # type: ignore[union-attr]
    elif fetch_record is not None:
        try:
            record = await fetch_record(target.call_sid)
        except Exception as exc:  # the call itself happened: say why its record is missing
            error = error or f"could not read the call record: {exc}"
        else:
            if record is None:
                error = error or "the server never finished the call record"
    bookings = []
    if store is not None:
        bookings = [b.to_dict() for b in await store.find_by_phone(script.from_)]
    summary = call.summary()
    failures: list[str] = [error] if error else []
    outcome = record.outcome if record else ("closed_by_server" if call.closed_by_server else "unknown")
    if record is not None:
        bot_text = " ".join(line["text"] for line in record.transcript_lines if line["role"] == "bot")
        barge_ins = sum(1 for e in record.events if e["kind"] == "barge_in")
        failures += check_expectations(
            script.expect, record.tool_calls, bot_text, outcome, bookings, barge_ins,
            today=today or business_today(script),
        )
    failures += [f"protocol violation: {v}" for v in call.violations]
    return CallResult(
        script=script.name,
        call_sid=target.call_sid,
        ok=not failures,
        failures=failures,
        outcome=outcome,
        turns=list(call.turns),
        record=record,
        frames_late=summary.frames_late,
        max_lateness_ms=summary.max_lateness_ms,
        violations=len(call.violations),
        duration_s=time.monotonic() - t0,
        frames_sent=summary.frames_sent,
        error=error,
        bookings=bookings,
    )


def _save_wav(call: EmulatedCall, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    call.save_wav(path)


def record_collector(records: dict[str, asyncio.Future[CallRecord]]) -> Callable[[str, str, dict], None]:
    """A server listener that resolves `records[call_sid]` when that call finishes."""

    def listen(call_sid: str, kind: str, data: dict[str, Any]) -> None:
        if kind == "finished":
            fut = records.get(call_sid)
            if fut is not None and not fut.done():
                fut.set_result(data["record"])

    return listen


# ---------------------------------------------------------------- the CLI command


async def run_call_command(args: Any) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    try:
        script = load_script(args.fixture)
    except ScriptError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    if missing := unbuilt([script]):
        console.print(f"[red]{args.fixture}: {len(missing)} caller line(s) have no audio yet "
                      f"({missing[0].audio}): run `phone-agent fixtures build {args.fixture.parent}`[/]")
        return 2
    records: dict[str, asyncio.Future[CallRecord]] = {}
    printer = _LivePrinter(console)
    if args.url:
        token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")
        console.print(f"[bold]{script.name}[/]: {script.description.strip()}")
        result = await run_script(
            script, base_url=args.url, auth_token=token, public_url=args.public_url,
            speed=args.speed, wav_dir=args.out,
        )
    else:
        from agent.devkit.stack import local_stack

        today = business_today(script)  # the stack's TOOLS_TODAY: tools and engine alike
        console.print("[dim]starting the offline engine and an in-process server...[/]")
        async with local_stack(tools_today=today.isoformat(), tool_delays_ms=script.slow_tools) as stack:
            stack.watch(record_collector(records))
            stack.watch(printer)
            console.print(f"[bold]{script.name}[/]: {script.description.strip()}  [dim](today={today})[/]")
            result = await run_script(
                script, base_url=stack.base_url, auth_token=stack.auth_token, speed=args.speed,
                records=records, store=stack.store, wav_dir=args.out, today=today,
            )
    print_summary(console, result, args.out)
    return 0 if result.ok else 1


class _LivePrinter:
    def __init__(self, console: Any) -> None:
        self.console = console

    def __call__(self, call_sid: str, kind: str, data: dict[str, Any]) -> None:
        t = f"[dim]{data.get('t', 0):6.2f}s[/]"
        c = self.console
        if kind == "transcript":
            who = "[cyan]caller[/]" if data["role"] == "caller" else "[green]bot   [/]"
            c.print(f"{t} {who} {data['text']}")
        elif kind == "tool_call":
            c.print(f"{t} [yellow]tool   {data['name']}({_args(data.get('arguments'))})[/]")
        elif kind == "tool_result":
            fillers = f" filler: {', '.join(data['fillers'])}" if data.get("fillers") else ""
            c.print(f"{t} [yellow]       -> {data['status']} in {data['ms']:.0f} ms{fillers}[/]")
        elif kind == "filler":
            c.print(f"{t} [magenta]filler {data['phrase']!r}{' (cached)' if data.get('cached') else ''}[/]")
        elif kind == "barge_in":
            c.print(f"{t} [red]barge-in: caller heard {data.get('heard_ms')} ms, cleared[/]")
        elif kind == "turn_latency":
            c.print(f"{t} [dim]       (server turn latency {data['ms']:.0f} ms)[/]")
        elif kind in ("provider_error", "apology"):
            c.print(f"{t} [red]{kind} {data.get('message', '')}[/]")


def _args(arguments: Any) -> str:
    if not isinstance(arguments, dict):
        return str(arguments)
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def print_summary(console: Any, result: CallResult, wav_dir: Path | None) -> None:
    from rich.table import Table

    table = Table(title=f"{result.script}: per-turn latency (emulator, voice-to-voice)")
    for col in ("turn", "caller stopped -> first bot audio", "barge-in -> clear", "bot audio played"):
        table.add_column(col, justify="right")
    for turn in result.turns:
        table.add_row(
            str(turn.index),
            _ms(turn.response_latency_ms),
            _ms(turn.clear_latency_ms),
            f"{turn.bot_audio_played_ms:.0f} ms",
        )
    console.print(table)
    lat = result.latencies_ms
    if lat:
        console.print(f"voice-to-voice p50 {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms")
    console.print(f"outcome: {result.outcome}; frames late: {result.frames_late}; "
                  f"protocol violations: {result.violations}")
    for b in result.bookings:
        console.print(f"booking in store: {b['day']} {b['time']} {b['name']} ({b['status']})")
    if wav_dir is not None:
        console.print(f"bot audio: {wav_dir / (result.script + '.wav')}")
    if result.ok:
        console.print("[bold green]PASS[/] all expectations met")
    else:
        console.print("[bold red]FAIL[/]")
        for failure in result.failures:
            console.print(f"  - {failure}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
