"""Every shipped call fixture, end to end: emulator -> real server -> offline engine
(VAD, whisper, policy, piper) -> real tools on a fresh SQLite store. Its expectations
(tool calls, words said, bookings persisted, barge-ins, outcome) must all hold."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from agent.fixture_runner import business_today, record_collector, run_script
from agent.fixtures import load_scripts
from agent.inprocess import local_stack

CALLS = Path(__file__).parent.parent / "fixtures" / "calls"
SCRIPTS = {s.name: s for s in load_scripts(CALLS)}


def test_at_least_ten_fixtures_ship() -> None:
    assert len(SCRIPTS) >= 10


async def _run(script, today, data_dir: Path):
    records: dict = {}
    async with local_stack(data_dir=data_dir, tools_today=today.isoformat(),
                           tool_delays_ms=script.slow_tools) as stack:
        stack.service.listeners.append(record_collector(records))
        return await run_script(
            script, base_url=stack.base_url, auth_token=stack.auth_token,
            records=records, store=stack.service.store, today=today,
        )


@pytest.mark.local
@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_fixture_end_to_end(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = SCRIPTS[name]
    today = business_today(script)
    monkeypatch.setenv("LOCAL_ENGINE_TODAY", today.isoformat())
    result = await _run(script, today, tmp_path / "first")
    if not result.ok:
        # tiny.en's transcript depends on timing (the engine transcribes speculatively),
        # so a synthetic voice is occasionally misheard. One fresh try; a bridge bug
        # fails both. The first failure is kept in the report either way.
        warnings.warn(f"{name}: first run failed, retrying once: {result.failures}", stacklevel=1)
        result = await _run(script, today, tmp_path / "second")
    lines = result.record.transcript_lines if result.record else []
    transcript = "\n".join(f"  {line['role']}: {line['text']}" for line in lines) or "  (no record)"
    assert result.ok, f"{name} failed:\n- " + "\n- ".join(result.failures) + f"\n{transcript}"
    assert result.violations == 0
