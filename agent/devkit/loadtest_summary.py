"""A load run's report, as the plain dict that goes into its JSON file.

Latency percentiles (voice-to-voice, barge-in-to-clear, mark round trip, filler onset),
frames late and lost, tool errors, failures by reason, and one row per call.
`agent.devkit.loadtest_report` turns it into the terminal table and the HTML page.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from agent.devkit.loadtest_plan import LOCAL_ENGINE_COMFORT
from agent.devkit.loadtest_report import percentile, summarise
from agent.devkit.runner import CallResult
from telephony.audio import FRAME_MS

if TYPE_CHECKING:
    from agent.devkit.loadtest import CallSlot, LoadRun

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
