"""A recorded caller side (one WAV) becomes a call script: lines cut, saved, transcribed."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from agent.cli import main
from agent.devkit import BUNDLED_CALLS
from agent.devkit.build import build_fixtures, pink_noise
from agent.devkit.import_call import ImportProblem, import_call
from agent.devkit.recordings import read_recording
from agent.devkit.scripts import load_script, load_scripts

CALLS = BUNDLED_CALLS


def recorded_call(path: Path) -> Path:
    """The order-status caller's two lines as one 44.1 kHz stereo recording with a noisy
    room: quiet while the agent would talk, as a caller-side recording is."""
    lines = [read_recording(CALLS / "audio" / "order-status" / f"{n}.wav")[0] for n in ("01", "03")]
    gap = np.zeros(8000 * 3, dtype=np.float32)
    call = np.concatenate([gap[:4000], lines[0], gap, lines[1], gap[:8000]])
    hifi = soxr.resample(call, 8000, 44100)
    hifi = hifi + pink_noise(len(hifi), -50, 3)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes((np.clip(np.stack([hifi, hifi], axis=1), -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.local
def test_a_recorded_call_becomes_a_script_with_its_lines_and_words(tmp_path: Path) -> None:
    from agent.local.models import load_models

    stt = load_models().stt
    wav = recorded_call(tmp_path / "Customer Call 7.wav")
    path = import_call(wav, tmp_path / "fx", flow="order-status", transcribe=lambda pcm: stt.transcribe(pcm).text)
    assert path.name == "customer-call-7.yaml"
    script = load_script(path)
    lines = script.lines()
    assert [line.index for line in lines] == [1, 3]  # greeting, line, reply, line, reply
    assert "order" in lines[0].text.lower() and "bye" in lines[1].text.lower()
    for line in lines:
        seconds = len(read_recording(line.recording)[0]) / 8000
        assert 1.0 < seconds < 6.0  # one line each, not the whole call
    assert build_fixtures(tmp_path / "fx") == 0
    assert {line.voice for line in load_scripts(tmp_path / "fx")[0].lines()} == {"recording"}


def test_cli_import_without_transcription_and_its_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    wav = recorded_call(tmp_path / "call.wav")
    args = ["fixtures", "import", str(wav), "--into", str(tmp_path / "fx"), "--flow", "order-status",
            "--no-transcribe"]  # fmt: skip
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "with 2 caller lines" in out and "(line 1: write what the caller says)" in out
    assert main(args) == 2  # will not overwrite by accident
    assert "exists (--force replaces it)" in " ".join(capsys.readouterr().err.split())
    assert main([*args, "--force"]) == 0

    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as out_wav:
        out_wav.setnchannels(1)
        out_wav.setsampwidth(2)
        out_wav.setframerate(8000)
        out_wav.writeframes(bytes(16000 * 2))
    with pytest.raises(ImportProblem, match="no speech found"):
        import_call(silent, tmp_path / "fx", flow="order-status")
