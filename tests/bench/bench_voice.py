"""Voice-to-voice latency over the shipped fixtures, offline engine (make bench).

Caller's last speech frame sent by the emulator -> first bot audio frame received, per
turn, over every fixture (one call at a time, real time). Target: p50 under 700 ms.
This includes the engine's 500 ms end-of-speech silence wait, as a caller experiences it.
Peak engine memory with 4 concurrent sessions is in bench_engine.

    python -m tests.bench.bench_voice [--fixtures agent/devkit/calls]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from agent.cli import main as cli
from agent.devkit import BUNDLED_CALLS
from agent.devkit.scripts import load_scripts


def run(fixtures: Path, concurrency: int) -> None:
    n = len(load_scripts(fixtures))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "voice"
        cli(["loadtest", "--fixtures", str(fixtures), "--calls", str(n), "--concurrency",
             str(concurrency), "--report", str(report), "--max-seconds", "900"])
        data = json.loads(report.with_suffix(".json").read_text())
    v2v = data["latency_ms"]["voice_to_voice"]
    calls = data["calls"]
    print(f"voice-to-voice over {n} fixtures ({v2v['n']} turns, concurrency {concurrency}): "
          f"p50 {v2v['p50']:.0f} ms, p95 {v2v['p95']:.0f} ms, max {v2v['max']:.0f} ms "
          f"(target p50 < 700 ms); calls ok {calls.get('ok')}/{calls.get('requested')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", type=Path, default=BUNDLED_CALLS)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    run(args.fixtures, args.concurrency)
