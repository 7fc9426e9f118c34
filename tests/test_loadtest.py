"""`phone-agent loadtest` end to end: server and fake OpenAI provider in their own
processes (`--provider fake-openai`), or a server elsewhere (`--url`).

Real time throughout (the emulator sends a frame every 20 ms), so the fixtures are
the shortest ones and the runs small.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.devkit import BUNDLED_CALLS
from agent.devkit import fake_openai as fake_module
from agent.devkit.loadtest import LoadRun, Target, run_loadtest
from agent.devkit.loadtest_plan import FAKE_SCENARIO, LoadTestOptions, plan_calls
from agent.devkit.loadtest_report import percentile, summarise, write_report
from agent.devkit.loadtest_summary import build_report
from agent.devkit.scripts import load_script
from agent.devkit.stack import local_stack
from tests.helpers.speed import BEHAVIOUR_SPEED

CALLS = BUNDLED_CALLS
SHORT = ("goodbye", "hangup-during-tool", "barge-in")  # barge-in: clear latency too


@pytest.fixture
def fixtures_dir(tmp_path: Path) -> Path:
    """A fixtures folder with just the short scripts (their audio via a symlink)."""
    out = tmp_path / "calls"
    out.mkdir()
    for name in SHORT:
        shutil.copy(CALLS / f"{name}.yaml", out / f"{name}.yaml")
    (out / "audio").symlink_to(CALLS / "audio", target_is_directory=True)
    return out


def test_loadtest_against_the_fake_provider_writes_a_sane_report(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "reports" / "run"
    code = main([
        "loadtest", "--fixtures", str(fixtures_dir), "--calls", "3", "--concurrency", "3",
        "--provider", "fake-openai", "--report", str(report_path), "--max-seconds", "120",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "reports" / "run.json").read_text())

    calls = report["calls"]
    assert calls == {
        "requested": 3, "started": 3, "peak_in_flight": 3, "finished": 3, "ok": 3,
        "failed": 0, "timed_out": 0, "not_started": 0,
    }  # fmt: skip
    assert report["failures"] == [] and not report["stopped_early"]
    assert report["mode"] == "local processes: server + fake OpenAI"
    v2v = report["latency_ms"]["voice_to_voice"]
    # goodbye 1 reply, barge-in 3, hangup-during-tool 0 (hangs up first).
    assert v2v["n"] >= 4
    assert 0 < v2v["p50"] <= v2v["p95"] <= v2v["p99"] <= v2v["max"] < 5000
    clear = report["latency_ms"]["barge_in_to_clear"]
    assert clear["n"] >= 1 and 0 < clear["p50"] < 2000  # the barge-in call
    marks = report["latency_ms"]["mark_round_trip"]
    assert marks["n"] > 10 and marks["p50"] > 0
    # The server paces bot audio to ~200 ms ahead of playout.
    assert report["latency_ms"]["playback_lead"]["max"] <= 300
    assert report["latency_ms"]["filler_onset"]["n"] == 0  # in-process: measured, none due

    frames = report["frames"]
    assert frames["approx_sent"] > 3 * 200  # three calls of several seconds each
    # Late frames are this client's own scheduling delays: small unless the machine is
    # swamped (the suite runs beside other work on two cores), never most of them.
    assert frames["late_pct"] < 50
    assert frames["violations"] == 0
    assert frames["lost"] < 50  # no audio missing inside replies (tolerance: noisy host)
    assert report["tools"]["errors"] == 0  # the server's records, read over its admin API
    assert report["expectations"].startswith("not checked")
    # The server's own hop, timed by stamps in the audio, and its CPU on its own.
    bridge = report["bridge"]
    assert bridge["in_us"]["n"] > 100 and bridge["out_us"]["n"] >= 3  # >= a reply per call
    for way in ("in_us", "out_us"):
        assert 0 < bridge[way]["p50"] <= bridge[way]["p99"] <= bridge[way]["max"] < 2_000_000
    assert bridge["lost_in_frames"] == 0 and frames["lost_in"] == 0
    assert bridge["frames_appended"] == bridge["frames_sent"] > 3 * 200
    assert bridge["provider_violations"] == 0
    assert bridge["server_cpu_s"] > 0 and bridge["server_cpu_s_per_call_min"] > 0
    assert report["cpu"]["process_s"] > 0 and report["cpu"]["per_call_s"] > 0
    assert len(report["per_call"]) == 3
    assert {c["script"] for c in report["per_call"]} == set(SHORT)
    # Calls over time: in flight never above the concurrency, all completed at the end.
    assert max(row[1] for row in report["timeline"]) == 3
    assert report["timeline"][-1][1:] == [0, 3, 0]

    html = (tmp_path / "reports" / "run.html").read_text()
    for png in ("run-latency.png", "run-timeline.png"):
        assert (tmp_path / "reports" / png).stat().st_size > 1000
        assert f"src='{png}'" in html
    assert "voice-to-voice" in html and "mark round trip" in html
    assert "voice-to-voice" in out and "report:" in out  # the terminal table
    assert "bridge in (phone -> provider)" in out and "bridge out" in html


async def test_max_seconds_stops_the_run_and_reports_timed_out_calls(tmp_path: Path) -> None:
    # caller-silent stays on the line for 12 s: still running at the 3 s limit.
    script = load_script(CALLS / "caller-silent.yaml")
    options = LoadTestOptions(
        calls=3, concurrency=2, provider="fake-openai", max_seconds=3.0, report=None
    )
    report = await run_loadtest(options, scripts=[script])

    assert report["stopped_early"]
    assert report["calls"]["timed_out"] == 2  # the two in flight
    assert report["calls"]["not_started"] == 1  # waiting for a slot when time ran out
    assert report["calls"]["ok"] == 0
    assert [g["calls"] for g in report["failures"]] == [2]
    assert "timed out" in report["failures"][0]["reason"]
    # Hung up promptly: the limit plus the in-flight calls' clean hang-up.
    assert report["wall_s"] < 3.0 + 10.0
    assert {c["status"] for c in report["per_call"]} == {"timed_out", "not_started"}
    files = write_report(report, tmp_path / "cut")
    assert json.loads(files.json.read_text())["calls"]["timed_out"] == 2


async def test_remote_target_signs_webhooks_and_reports_what_it_cannot_see(
    tmp_path: Path,
) -> None:
    scenario = fake_module.Scenario(rate_limits=False, **FAKE_SCENARIO)
    script = load_script(CALLS / "hangup-during-tool.yaml")
    async with (
        fake_module.FakeOpenAIRealtime(scenario) as fake,
        local_stack(
            data_dir=tmp_path, engine=False, realtime_url=fake.url,
            openai_api_key=scenario.api_key, admin_token="admin-secret",
        ) as stack,
    ):  # fmt: skip
        # What a remote run can and cannot see, not how fast: the phones' clock runs 4x.
        remote = LoadTestOptions(
            calls=2, concurrency=2, url=stack.base_url, auth_token=stack.auth_token, report=None,
            speed=BEHAVIOUR_SPEED,
        )
        report = await run_loadtest(remote, scripts=[script])
        wrong = dataclasses.replace(remote, auth_token="not-the-token")
        forbidden = await run_loadtest(wrong, scripts=[script])
        admin = await run_loadtest(
            dataclasses.replace(remote, admin_token="admin-secret"), scripts=[script]
        )
        bad_admin = await run_loadtest(
            dataclasses.replace(remote, admin_token="wrong", calls=1), scripts=[script]
        )

    # Remote: no call records, so no filler onset, tool results or expectations...
    assert report["latency_ms"]["filler_onset"] is None and report["tools"] is None
    assert report["expectations"].startswith("not checked (remote")
    assert report["cpu"]["scope"] == "emulator only"
    # ...but everything the phone sees is measured.
    assert report["calls"]["ok"] == 2
    assert report["latency_ms"]["mark_round_trip"]["n"] > 0
    assert report["latency_ms"]["playback_lead"]["n"] >= 2  # the greetings at least
    # A wrong token: the server answers 403; each call records why, the run goes on.
    assert forbidden["calls"]["failed"] == 2
    (group,) = forbidden["failures"]
    assert group["calls"] == 2 and "403" in group["reason"]
    # With the admin token the records come from its admin API: tool calls are seen.
    assert admin["calls"]["ok"] == 2
    assert admin["tools"] is not None and admin["latency_ms"]["filler_onset"] is not None
    assert admin["expectations"].startswith("not checked (remote")  # its calendar, its store
    assert all(c["outcome"] not in (None, "unknown") for c in admin["per_call"])  # recorded
    (group,) = bad_admin["failures"]
    assert "admin token was refused" in group["reason"]


def test_without_matplotlib_the_html_says_there_are_no_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    # A run that never got going: the report must still render.
    options = LoadTestOptions(calls=2, provider="fake-openai", report=None)
    run = LoadRun(
        options,
        plan_calls([load_script(CALLS / "goodbye.yaml")], options),
        Target("http://127.0.0.1:9", "token"),
    )
    for slot in run.slots:
        slot.status = "not_started"
    report = build_report(run, wall_s=0.5, cpu_s=0.1, started_at=dt.datetime.now(dt.UTC))
    files = write_report(report, tmp_path / "r.json")
    assert files.json == tmp_path / "r.json" and files.html == tmp_path / "r.html"
    assert files.charts == [] and "matplotlib" in (files.charts_note or "")
    assert "matplotlib is not installed" in files.html.read_text()


def test_percentiles_and_summary() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 95) == 7.0
    s = summarise(values)
    assert (s["n"], s["p50"], s["max"]) == (100, 50.5, 100.0)
    assert summarise([])["p50"] is None


def test_offline_engine_calls_run_in_one_phase_per_fixture_day() -> None:
    scripts = [load_script(CALLS / f"{n}.yaml") for n in ("booking", "order-status", "cancel")]
    phases = plan_calls(scripts, LoadTestOptions(calls=7, provider="local"))
    days = [p[0].today for p in phases]
    assert len(set(days)) == len(days)  # one phase per distinct day
    assert all(slot.today == phase[0].today for phase in phases for slot in phase)
    assert sum(len(p) for p in phases) == 7
    # The fake provider ignores days and expectations: one phase, caller hangs up last.
    (fake,) = plan_calls(scripts, LoadTestOptions(calls=4, provider="fake-openai"))
    assert fake[0].script.expect.tools == [] and fake[0].script.steps[-1].kind == "hangup"


def test_a_fixture_that_slows_a_tool_runs_in_a_phase_of_its_own() -> None:
    # order-status and hangup-during-tool share a day; only the second slows lookup_order
    # (to hear the filler), and tool delays are per server: two phases, never mixed.
    names = ("order-status", "hangup-during-tool")
    scripts = [load_script(CALLS / f"{n}.yaml") for n in names]
    phases = plan_calls(scripts, LoadTestOptions(calls=4, provider="local"))
    assert [[s.script.name for s in p] for p in phases] == [[names[0]] * 2, [names[1]] * 2]
    assert phases[0][0].today == phases[1][0].today
    assert [p[0].slow_tools for p in phases] == [(), (("lookup_order", 6000),)]
    run = LoadRun(
        LoadTestOptions(calls=4, provider="local", report=None), phases,
        Target("http://127.0.0.1:9", "token"),
    )  # fmt: skip
    for slot in run.slots:
        slot.status = "not_started"
    report = build_report(run, wall_s=1.0, cpu_s=0.1, started_at=dt.datetime.now(dt.UTC))
    assert [p["slow_tools"] for p in report["phases"]] == [{}, {"lookup_order": 6000}]
    assert any("lookup_order +6000 ms" in note for note in report["notes"])
