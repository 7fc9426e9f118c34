"""Rendering a load-test report: a terminal table, JSON, and an HTML page with PNG charts.

`agent.devkit.loadtest` builds the report as a plain dict (what goes into the JSON file); this
module only turns that dict into things people read. Charts need matplotlib (the
`report` extra); without it the HTML is written without them and says so.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (key in report["latency_ms"], label, what it measures)
LATENCY_ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "voice_to_voice",
        "voice-to-voice",
        "caller's last speech frame sent -> first bot audio received",
    ),
    (
        "barge_in_to_clear",
        "barge-in -> clear",
        "first caller speech over bot audio -> Twilio `clear`",
    ),
    ("mark_round_trip", "mark round trip", "mark received -> echoed (after its audio played)"),
    ("filler_onset", "filler onset", "tool's filler_after_ms deadline -> filler started (server)"),
    (
        "playback_lead",
        "playback lead",
        "most bot audio queued at the phone, per turn (ms of audio)",
    ),
)


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """n, p50/p95/p99, max and mean (None when there are no values), rounded to 0.1."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
        "mean": round(sum(values) / len(values), 1),
    }


# ---------------------------------------------------------------- terminal


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _us_pair(stats: dict[str, Any]) -> str:
    if not stats.get("n"):
        return "no samples"
    return (
        f"p50 {stats['p50'] / 1000:.2f} / p99 {stats['p99'] / 1000:.2f} / max "
        f"{stats['max'] / 1000:.1f} ms (n {stats['n']})"
    )


def bridge_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The server's own hop and cost (fake-provider runs, server in its own process)."""
    b = report.get("bridge")
    if not b:
        return []
    per_min = b["server_cpu_s_per_call_min"]
    return [
        ("bridge in (phone -> provider)", _us_pair(b["in_us"])),
        ("bridge out (provider -> phone)", _us_pair(b["out_us"])),
        (
            "server CPU",
            f"{b['server_core_pct']:.1f}% of a core; "
            + ("-" if per_min is None else f"{per_min:.3f} CPU-s per call-minute"),
        ),
        (
            "CPU elsewhere",
            f"fake provider {b['fake_core_pct']:.1f}%, emulator {b['emulator_core_pct']:.1f}% "
            f"of a core; machine {b['machine_busy_pct']:.0f}% busy "
            f"(steal {b['machine_steal_pct']:.0f}%)",
        ),
        (
            "caller frames lost",
            f"{b['lost_in_frames']} ({b['frames_appended']} of {b['frames_sent']} reached the "
            f"provider); provider saw {b['provider_violations']} protocol violations",
        ),
    ]


def print_report(console: Any, report: dict[str, Any]) -> None:
    """The report as rich tables (what a person reads right after the run)."""
    from rich.table import Table

    cfg, calls = report["config"], report["calls"]
    console.print(
        f"[bold]load test[/]: {report['mode']}, {cfg['calls']} calls at concurrency "
        f"{cfg['concurrency']}, ramp {cfg['ramp_s']:g} s, {report['wall_s']:.1f} s wall"
        + ("  [red](stopped at --max-seconds)[/]" if report["stopped_early"] else "")
    )
    lat = Table(title="latency (ms, wall clock; lead = ms of audio)")
    for col in ("metric", "n", "p50", "p95", "p99", "max"):
        lat.add_column(col, justify="left" if col == "metric" else "right")
    for key, label, _ in LATENCY_ROWS:
        stats = report["latency_ms"].get(key)
        if stats is None:
            lat.add_row(label, "n/a", "", "", "", "")
            continue
        lat.add_row(label, str(stats["n"]), *(_ms(stats[k]) for k in ("p50", "p95", "p99", "max")))
    console.print(lat)

    frames, cpu, tools = report["frames"], report["cpu"], report["tools"]
    summary = Table(title="calls, frames, tools, cost", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    summary.add_row(
        "calls",
        f"{calls['ok']} ok, {calls['failed']} failed, {calls['timed_out']} timed out, "
        f"{calls['not_started']} not started (of {calls['requested']})",
    )
    summary.add_row(
        "frames late (emulator)",
        f"{frames['late']} of ~{frames['approx_sent']} ({frames['late_pct']:.2f}%), "
        f"in {frames['late_calls']} calls, worst {frames['max_lateness_ms']:.0f} ms",
    )
    summary.add_row(
        "frames lost",
        f"{frames['lost']} ({frames['gap_frames']} in gaps inside replies = "
        f"{frames['gap_ms']:.0f} ms{_while_late(frames)}, {frames['violations']} protocol violations)",
    )
    if tools is None:
        summary.add_row("tool calls", "n/a (remote server: no call records)")
    else:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(tools["by_status"].items())) or "none"
        summary.add_row("tool calls", f"{tools['calls']} ({statuses}); errors {tools['errors']}")
    summary.add_row("expectations", report["expectations"])
    for what, value in bridge_rows(report):
        summary.add_row(what, value)
    summary.add_row(
        "CPU (this process)",
        f"{cpu['process_s']:.1f} s, {cpu['per_call_s']:.2f} s per call, "
        f"{cpu['cores']:.2f} cores busy ({cpu['scope']})",
    )
    console.print(summary)

    if report["failures"]:
        fail = Table(title="failures, grouped")
        fail.add_column("calls", justify="right")
        fail.add_column("reason (first example)")
        fail.add_column("fixtures")
        for group in report["failures"]:
            fail.add_row(str(group["calls"]), group["reason"], ", ".join(group["scripts"]))
        console.print(fail)
    for note in report["notes"]:
        console.print(f"[dim]note: {note}[/]")


# ---------------------------------------------------------------- files


@dataclass
class ReportFiles:
    json: Path
    html: Path
    charts: list[Path] = field(default_factory=list)
    charts_note: str | None = None  # why there are no charts


def report_base(path: Path) -> Path:
    """`reports/run`, `reports/run.json` and `reports/run.html` all mean `reports/run`."""
    return path.with_suffix("") if path.suffix in (".json", ".html") else path


def write_report(report: dict[str, Any], path: Path) -> ReportFiles:
    """PATH.json, PATH.html and PATH-*.png next to them."""
    base = report_base(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        json=base.parent / f"{base.name}.json", html=base.parent / f"{base.name}.html"
    )
    files.charts, files.charts_note = render_charts(report, base)
    report["files"] = {
        "json": files.json.name,
        "html": files.html.name,
        "charts": [c.name for c in files.charts],
    }
    files.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    files.html.write_text(render_html(report, files.charts, files.charts_note))
    return files


def render_charts(report: dict[str, Any], base: Path) -> tuple[list[Path], str | None]:
    """Latency histograms and calls-over-time as PNGs; ([], why) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display here; must precede pyplot
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (pip install 'phone-agent[report]'): no charts"

    out: list[Path] = []
    samples = report["samples"]
    panels = [(k, label) for k, label, _ in LATENCY_ROWS[:4] if samples.get(k)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
        for ax, (key, label) in zip(axes[0], panels, strict=True):
            values = samples[key]
            ax.hist(values, bins=min(40, max(5, len(values) // 3)), color="#4472c4")
            stats = report["latency_ms"][key]
            for q, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
                ax.axvline(stats[q], color="#c00000", linestyle=style, label=f"{q} {stats[q]:.0f}")
            ax.set_title(f"{label} (n={len(values)})", fontsize=10)
            ax.set_xlabel("ms")
            ax.legend(fontsize=8)
        fig.tight_layout()
        out.append(base.parent / f"{base.name}-latency.png")
        fig.savefig(out[-1], dpi=90)
        plt.close(fig)

    timeline = report["timeline"]
    if timeline:
        t = [row[0] for row in timeline]
        fig, ax = plt.subplots(figsize=(8, 3.4))
        ax.step(t, [row[1] for row in timeline], where="post", label="in flight")
        ax.step(t, [row[2] for row in timeline], where="post", label="completed (any outcome)")
        ax.step(t, [row[3] for row in timeline], where="post", label="failed / timed out")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("calls")
        ax.set_title("calls over time", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out.append(base.parent / f"{base.name}-timeline.png")
        fig.savefig(out[-1], dpi=90)
        plt.close(fig)
    return out, None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return html.escape(str(value))


def render_html(report: dict[str, Any], charts: Sequence[Path], charts_note: str | None) -> str:
    """A self-contained page; charts are referenced by relative path (same folder)."""
    e = html.escape
    cfg, calls, frames, cpu = report["config"], report["calls"], report["frames"], report["cpu"]
    parts: list[str] = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>phone-agent load test {e(report['started_at'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        ".bad{color:#b00}.note{color:#666}</style></head><body>",
        "<h1>phone-agent load test</h1>",
        f"<p>{e(report['mode'])} &middot; started {e(report['started_at'])} &middot; "
        f"{cfg['calls']} calls, concurrency {cfg['concurrency']}, ramp {cfg['ramp_s']:g} s, "
        f"fixtures {e(str(cfg['fixtures']))} &middot; wall {report['wall_s']:.1f} s"
        + (
            " &middot; <b class='bad'>stopped at --max-seconds</b>"
            if report["stopped_early"]
            else ""
        )
        + "</p>",
        "<h2>Calls</h2><table><tr><th>requested</th><th>ok</th><th>failed</th>"
        "<th>timed out</th><th>not started</th></tr>",
        f"<tr><td>{calls['requested']}</td><td>{calls['ok']}</td><td>{calls['failed']}</td>"
        f"<td>{calls['timed_out']}</td><td>{calls['not_started']}</td></tr></table>",
        "<h2>Latency (ms)</h2><table><tr><th>metric</th><th>n</th><th>p50</th><th>p95</th>"
        "<th>p99</th><th>max</th><th>what</th></tr>",
    ]
    for key, label, what in LATENCY_ROWS:
        s = report["latency_ms"].get(key)
        if s is None:
            parts.append(f"<tr><td>{e(label)}</td><td colspan=5>n/a</td><td>{e(what)}</td></tr>")
            continue
        cells = "".join(f"<td>{_cell(s[k])}</td>" for k in ("n", "p50", "p95", "p99", "max"))
        parts.append(f"<tr><td>{e(label)}</td>{cells}<td>{e(what)}</td></tr>")
    parts.append("</table>")

    tools = report["tools"]
    tool_text = (
        "n/a (remote server: no call records)"
        if tools is None
        else f"{tools['calls']} calls, {tools['errors']} errors; by status "
        + ", ".join(f"{k}: {v}" for k, v in sorted(tools["by_status"].items()))
    )
    parts += [
        "<h2>Frames, tools, cost</h2><table>",
        f"<tr><td>frames late (emulator)</td><td>{frames['late']} of ~{frames['approx_sent']} "
        f"({frames['late_pct']:.2f}%) in {frames['late_calls']} calls, worst "
        f"{frames['max_lateness_ms']:.0f} ms</td></tr>",
        f"<tr><td>frames lost</td><td>{frames['lost']}: {frames['gap_frames']} frames of gaps "
        f"inside replies ({frames['gap_ms']:.0f} ms{_while_late(frames)}), {frames['violations']} protocol "
        "violations</td></tr>",
        f"<tr><td>tool calls</td><td>{e(tool_text)}</td></tr>",
        f"<tr><td>expectations</td><td>{e(report['expectations'])}</td></tr>",
        *(f"<tr><td>{e(what)}</td><td>{e(value)}</td></tr>" for what, value in bridge_rows(report)),
        f"<tr><td>CPU, this process</td><td>{cpu['process_s']:.1f} s total, "
        f"{cpu['per_call_s']:.2f} s per call, {cpu['cores']:.2f} cores busy "
        f"({e(cpu['scope'])})</td></tr></table>",
    ]
    if report["failures"]:
        parts.append(
            "<h2>Failures</h2><table><tr><th>reason</th><th>calls</th><th>fixtures</th></tr>"
        )
        for g in report["failures"]:
            parts.append(
                f"<tr><td class='bad'>{e(g['reason'])}</td><td>{g['calls']}</td>"
                f"<td>{e(', '.join(g['scripts']))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Charts</h2>")
    if charts:
        parts += [f"<p><img src='{e(c.name)}' alt='{e(c.stem)}'></p>" for c in charts]
    else:
        parts.append(f"<p class='note'>{e(charts_note or 'no data to chart')}</p>")
    parts.append(
        "<h2>Calls</h2><details><summary>per call</summary><table><tr><th>#</th><th>fixture</th>"
        "<th>status</th><th>outcome</th><th>s</th><th>v2v p50</th><th>late</th><th>why</th></tr>"
    )
    for c in report["per_call"]:
        why = "; ".join(c.get("failures") or []) or (c.get("error") or "")
        parts.append(
            f"<tr><td>{c['index']}</td><td>{e(c['script'])}</td><td>{e(c['status'])}</td>"
            f"<td>{_cell(c.get('outcome'))}</td><td>{_cell(c.get('duration_s'))}</td>"
            f"<td>{_cell(c.get('v2v_p50_ms'))}</td><td>{_cell(c.get('frames_late'))}</td>"
            f"<td>{e(why[:300])}</td></tr>"
        )
    parts.append("</table></details>")
    parts += [f"<p class='note'>{e(n)}</p>" for n in report["notes"]]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _while_late(frames: dict[str, Any]) -> str:
    """How many gap frames came while the emulator itself ran late (older reports: none)."""
    late = frames.get("gap_frames_while_late", 0)
    return f", {late} of them while this client ran late" if late else ""
