"""Real recordings as fixture lines: every common WAV shape in, 8 kHz μ-law out."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from agent.devkit.build import build_fixtures, is_up_to_date
from agent.devkit.recordings import read_recording, recording_to_ulaw
from agent.devkit.scripts import (
    ScriptError,
    load_script,
    read_sidecar,
)
from telephony.audio import ulaw_to_pcm16
from telephony.wav import WavFormatError, read_ulaw_wav, wav_format

_PCM, _FLOAT, _ALAW, _EXTENSIBLE = 1, 3, 6, 0xFFFE


def tone(rate: int, seconds: float = 0.5, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float64)


def wav(path: Path, tag: int, rate: int, bits: int, frames: bytes, channels: int = 1) -> Path:
    """A WAV with any format tag, written by hand (the stdlib writes PCM only)."""
    block = max(1, channels * bits // 8)  # ADPCM has blocks of its own; any nonzero will do
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if tag == _EXTENSIBLE:  # cbSize, valid bits, channel mask, then the sub-format GUID
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", _PCM) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def int_bytes(x: np.ndarray, bits: int) -> bytes:
    if bits == 8:
        return (x * 127 + 128).astype(np.uint8).tobytes()
    if bits == 24:
        v = (x * (2**23 - 1)).astype("<i4")
        return np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    return (x * (2 ** (bits - 1) - 1)).astype(f"<i{bits // 8}").tobytes()


def peak_hz(ulaw: bytes) -> float:
    pcm = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * 8000 / len(pcm))


@pytest.fixture
def recordings(tmp_path: Path) -> dict[str, Path]:
    from telephony.audio import pcm16_to_alaw

    stereo = np.stack([tone(44100), tone(44100)], axis=1).reshape(-1)
    alaw = pcm16_to_alaw(int_bytes(tone(8000), 16))
    return {
        "pcm16 stereo 44.1 kHz": wav(tmp_path / "a.wav", _PCM, 44100, 16, int_bytes(stereo, 16), channels=2),
        "pcm24 48 kHz": wav(tmp_path / "b.wav", _PCM, 48000, 24, int_bytes(tone(48000), 24)),
        "pcm32 22.05 kHz": wav(tmp_path / "c.wav", _PCM, 22050, 32, int_bytes(tone(22050), 32)),
        "pcm8 11.025 kHz": wav(tmp_path / "d.wav", _PCM, 11025, 8, int_bytes(tone(11025), 8)),
        "float32 16 kHz": wav(tmp_path / "e.wav", _FLOAT, 16000, 32, tone(16000).astype("<f4").tobytes()),
        "a-law 8 kHz": wav(tmp_path / "f.wav", _ALAW, 8000, 8, alaw),
        "extensible pcm16 24 kHz": wav(tmp_path / "g.wav", _EXTENSIBLE, 24000, 16, int_bytes(tone(24000), 16)),
    }


def test_every_common_wav_becomes_the_same_phone_line(recordings: dict[str, Path]) -> None:
    for shape, path in recordings.items():
        ulaw = recording_to_ulaw(path)
        assert abs(len(ulaw) - 4000) <= 8, shape  # 0.5 s at 8 kHz
        assert abs(peak_hz(ulaw) - 440) < 10, shape  # the tone survived resampling
        level = np.abs(np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2")).max() / 32768
        assert 0.4 < level < 0.6, shape  # its level is kept, not normalised


def test_noise_is_mixed_in_when_asked(recordings: dict[str, Path]) -> None:
    path = recordings["float32 16 kHz"]
    clean = np.frombuffer(ulaw_to_pcm16(recording_to_ulaw(path)), dtype="<i2")
    noisy = np.frombuffer(ulaw_to_pcm16(recording_to_ulaw(path, lambda n: np.full(n, 0.1, np.float32))), dtype="<i2")
    assert abs(float(np.mean(noisy.astype(float) - clean)) / 32768 - 0.1) < 0.01


def test_what_is_not_a_usable_wav_says_how_to_convert_it(tmp_path: Path) -> None:
    (tmp_path / "call.mp3").write_bytes(b"ID3\x04" + bytes(100))
    with pytest.raises(WavFormatError, match="not a WAV file.*ffmpeg"):
        read_recording(tmp_path / "call.mp3")
    adpcm = wav(tmp_path / "adpcm.wav", 2, 8000, 4, bytes(400))
    with pytest.raises(WavFormatError, match="MS ADPCM, 4 bit is not supported.*ffmpeg"):
        read_recording(adpcm)
    empty = wav(tmp_path / "empty.wav", _PCM, 8000, 16, b"")
    with pytest.raises(WavFormatError, match="no audio"):
        read_recording(empty)


SCRIPT = """\
name: real-caller
flow: order-status
to: "+15550002000"
from: "+15551239999"
steps:
  - wait_bot: {}
  - say: "Where is my order?"
    recording: recordings/caller.wav
  - wait_bot: {}
"""


def test_a_fixture_line_can_be_a_real_recording(tmp_path: Path, recordings: dict[str, Path]) -> None:
    (tmp_path / "recordings").mkdir()
    source = tmp_path / "recordings" / "caller.wav"
    source.write_bytes(recordings["pcm16 stereo 44.1 kHz"].read_bytes())
    (tmp_path / "real-caller.yaml").write_text(SCRIPT)
    assert build_fixtures(tmp_path) == 0

    (line,) = load_script(tmp_path / "real-caller.yaml").lines()
    assert line.voice == "recording" and line.recording == source
    assert wav_format(line.audio) == (7, 1, 8000, 8)  # what the emulator plays, as Twilio would
    assert read_ulaw_wav(line.audio) == recording_to_ulaw(source)
    assert read_sidecar(line.audio)["recording"] == str(source) and is_up_to_date(line)

    # A new take of the recording makes the line stale; the next build imports it.
    source.write_bytes(recordings["float32 16 kHz"].read_bytes())
    (line,) = load_script(tmp_path / "real-caller.yaml").lines()
    assert not is_up_to_date(line)
    assert build_fixtures(tmp_path) == 0 and is_up_to_date(line)


def test_a_missing_recording_fails_the_build_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    (tmp_path / "real-caller.yaml").write_text(SCRIPT)  # recordings/caller.wav never made
    (line,) = load_script(tmp_path / "real-caller.yaml").lines()  # runs need only the built audio
    assert not is_up_to_date(line)
    assert build_fixtures(tmp_path) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "real-caller step 1" in err and "no such recording" in err


def test_runs_ask_for_a_build_when_audio_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.cli import main

    monkeypatch.setenv("COLUMNS", "400")  # rich would fold the long tmp path

    (tmp_path / "real-caller.yaml").write_text(SCRIPT)
    assert main(["call", "--fixture", str(tmp_path / "real-caller.yaml")]) == 2
    assert main(["loadtest", "--fixtures", str(tmp_path), "--calls", "1"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("have no audio yet") == 2 and f"phone-agent fixtures build {tmp_path}" in out


def test_a_line_has_a_voice_or_a_recording_not_both(tmp_path: Path) -> None:
    text = SCRIPT.replace("recording: recordings/caller.wav", "recording: x.wav\n    voice: piper-joe")
    (tmp_path / "real-caller.yaml").write_text(text)
    with pytest.raises(ScriptError, match=re.escape("steps[1] (say): a line has a voice or a recording")):
        load_script(tmp_path / "real-caller.yaml")
