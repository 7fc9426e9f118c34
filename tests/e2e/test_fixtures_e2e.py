"""Every shipped call fixture, end to end: emulator -> real server -> offline engine
(VAD, whisper, policy, piper) -> real tools on a fresh SQLite store. Its expectations
(tool calls, words said, bookings persisted, barge-ins, outcome) must all hold."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from agent.devkit import BUNDLED_CALLS
from agent.devkit.runner import business_today, record_collector, run_script
from agent.devkit.scripts import load_scripts
from agent.devkit.stack import local_stack
from tests.helpers.speed import SPEECH_CALL_QUIET_MS, SPEECH_CALL_SPEED

CALLS = BUNDLED_CALLS
SCRIPTS = {s.name: s for s in load_scripts(CALLS)}


def test_at_least_ten_fixtures_ship() -> None:
    assert len(SCRIPTS) >= 10


async def _run(script, today, data_dir: Path):
    records: dict = {}
    async with local_stack(data_dir=data_dir, tools_today=today.isoformat(),
                           tool_delays_ms=script.slow_tools) as stack:
        stack.watch(record_collector(records))
        return await run_script(
            script, base_url=stack.base_url, auth_token=stack.auth_token,
            records=records, store=stack.store, today=today,
            speed=SPEECH_CALL_SPEED, reply_quiet_ms=SPEECH_CALL_QUIET_MS,
        )


async def _run_twice_at_most(script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    today = business_today(script)  # local_stack's TOOLS_TODAY, which the engine follows
    result = await _run(script, today, tmp_path / "first")
    if not result.ok:
        # tiny.en's transcript depends on timing (the engine transcribes speculatively),
        # so a synthetic voice is occasionally misheard. One fresh try; a bridge bug
        # fails both. The first failure is kept in the report either way.
        warnings.warn(f"{script.name}: first run failed, retrying once: {result.failures}", stacklevel=1)
        result = await _run(script, today, tmp_path / "second")
    return result


@pytest.mark.local
@pytest.mark.speech_call
@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_fixture_end_to_end(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = await _run_twice_at_most(SCRIPTS[name], tmp_path, monkeypatch)
    lines = result.record.transcript_lines if result.record else []
    transcript = "\n".join(f"  {line['role']}: {line['text']}" for line in lines) or "  (no record)"
    assert result.ok, f"{name} failed:\n- " + "\n- ".join(result.failures) + f"\n{transcript}"
    assert result.violations == 0


@pytest.mark.local
@pytest.mark.speech_call
async def test_a_call_made_of_real_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order-status call with its lines as a person's phone would save them: 44.1 kHz
    stereo PCM16 with room noise. Imported by `fixtures build`, the call must still get
    the order looked up and answered."""
    import wave

    import numpy as np
    import soxr
    import yaml

    from agent.devkit.build import build_fixtures, pink_noise
    from agent.devkit.recordings import read_recording

    original = SCRIPTS["order-status"]
    (tmp_path / "recordings").mkdir()
    raw = yaml.safe_load(original.path.read_text())
    for line in original.lines():
        samples, _ = read_recording(line.audio)
        hifi = soxr.resample(samples, 8000, 44100)
        hifi = hifi + pink_noise(len(hifi), -45, line.index)  # the room it was recorded in
        target = tmp_path / "recordings" / f"line{line.index}.wav"
        with wave.open(str(target), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(44100)
            stereo = np.stack([hifi, hifi], axis=1)
            w.writeframes((np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes())
        raw["steps"][line.index]["recording"] = f"recordings/{target.name}"
    raw["name"] = "order-status-recorded"
    (tmp_path / "order-status-recorded.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert build_fixtures(tmp_path) == 0
    (script,) = load_scripts(tmp_path)
    assert {line.voice for line in script.lines()} == {"recording"}

    result = await _run_twice_at_most(script, tmp_path, monkeypatch)
    assert result.ok, result.failures
