"""The softphone's audio path is a real program: its JS modules, run in headless Chromium,
against the server's own code on the same samples.

- μ-law: every 16-bit sample and every byte, bit-exact with telephony/audio.py.
- Resampler: 8 kHz -> the browser's rates matches soxr sample for sample (after soxr's
  half-sample delay); to 8 kHz (soxr's variable-rate engine is not linear-phase, so
  samples cannot be compared) the same gain at every tone of the telephone band, the
  same loudness frame by frame on speech, and what lies above 4 kHz removed.
- Playout: random scenarios of audio, marks, ticks and clears, through the JS Playout
  and the emulator's Python Playout: the same marks due, the same audio, the same clears.
- The Twilio messages the page builds parse with the server's own parser.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from starlette.applications import Starlette

from agent.devkit.stack import run_app
from agent.service.console import console_routes
from telephony.audio import StreamResampler, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.protocol import Connected, Dtmf, Mark, Media, Start, Stop, parse_inbound
from telephony.testing.playout import Playout
from telephony.wav import read_ulaw_wav
from tests.ops.devtools import Page, headless_chromium

TOKEN = "softphone-" + "a" * 24
SPEECH = Path(__file__).parents[2] / "agent/devkit/calls/audio/order-status/01.wav"
BAND = [300, 500, 1000, 2000, 2500, 3000, 3400]  # the telephone band, Hz


@contextlib.asynccontextmanager
async def modules_page() -> AsyncIterator[Page]:
    """A page on the console's origin (module imports need http, not file://)."""
    app = Starlette(routes=console_routes(TOKEN))
    async with run_app(app) as base, headless_chromium() as page:
        await page.navigate(f"{base}/console/")
        yield page


async def js_resample(page: Page, samples: np.ndarray, in_rate: int, out_rate: int, chunk: int) -> np.ndarray:
    out = await page.evaluate(f"""(async () => {{
        const {{ Resampler }} = await import("./resampler.js");
        const x = {json.dumps(samples.astype(int).tolist())};
        const r = new Resampler({in_rate}, {out_rate});
        const out = [];
        for (let i = 0; i < x.length; i += {chunk}) out.push(...r.process(x.slice(i, i + {chunk})));
        return out.map((v) => Math.max(-32768, Math.min(32767, Math.round(v))));
    }})()""")
    return np.array(out, dtype=float)


def py_resample(samples: np.ndarray, in_rate: int, out_rate: int, chunk: int) -> np.ndarray:
    r = StreamResampler(in_rate, out_rate)
    data = samples.astype(np.int16)
    out = b"".join(r.process(data[i : i + chunk].tobytes()) for i in range(0, len(data), chunk))
    return np.frombuffer(out, dtype=np.int16).astype(float)


def speech_8k() -> np.ndarray:
    return np.frombuffer(ulaw_to_pcm16(read_ulaw_wav(SPEECH)), dtype=np.int16).astype(float)


def tones(rate: int, freqs: list[int], seconds: float = 1.0, amplitude: float = 4000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return sum((amplitude * np.sin(2 * np.pi * f * t) for f in freqs), np.zeros(len(t)))


def gain_db(y: np.ndarray, rate: int, freq: float, amplitude: float) -> float:
    y = y[rate // 10 : -rate // 10]  # away from the edges
    t = np.arange(len(y)) / rate
    return float(20 * np.log10(max(2 * abs(np.mean(y * np.exp(-2j * np.pi * freq * t))), 1e-3) / amplitude))


def best_aligned_snr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(SNR of `a` against `b` in dB, delay in samples) at the best fractional delay."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    spectrum, freqs = np.fft.rfft(a), np.fft.rfftfreq(n)
    best = (-np.inf, 0.0)
    for delay in np.arange(-2, 2, 0.05):
        shifted = np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * delay), n)[300:-300]
        ref = b[300:-300]
        snr = 10 * np.log10(np.sum(ref**2) / max(np.sum((shifted - ref) ** 2), 1e-9))
        best = max(best, (float(snr), float(delay)))
    return best


async def test_js_mulaw_is_bit_exact_with_the_server_codec() -> None:
    async with modules_page() as page:
        got = await page.evaluate("""(async () => {
            const m = await import("./mulaw.js");
            const pcm = new Int16Array(65536).map((_, i) => i - 32768);
            const bytes = new Uint8Array(256).map((_, i) => i);
            return { enc: Array.from(m.encode(pcm)), dec: Array.from(m.decode(bytes)) };
        })()""")
    pcm = np.arange(-32768, 32768, dtype=np.int16).tobytes()
    assert bytes(got["enc"]) == pcm16_to_ulaw(pcm)  # all 65536 samples
    assert got["dec"] == np.frombuffer(ulaw_to_pcm16(bytes(range(256))), dtype=np.int16).tolist()


async def test_js_resampler_agrees_with_the_server_resampler() -> None:
    speech = speech_8k()
    # The browser's side: 48 kHz and 44.1 kHz are what sound cards run at.
    speech_48k = soxr.resample(speech, 8000, 48000) + tones(48000, [6000, 9000], len(speech) / 8000)
    async with modules_page() as page:
        # Up (bot audio to the speaker): the same samples as soxr, half a sample later.
        for rate in (48000, 44100):
            js = await js_resample(page, speech, 8000, rate, 160)
            py = py_resample(speech, 8000, rate, 160)
            # soxr holds back ~27 ms until more input comes (or a flush); nothing is lost.
            assert 0 <= len(js) - len(py) <= rate // 20, (len(js), len(py))
            snr, delay = best_aligned_snr(js, py)
            assert snr > 40, f"8 kHz -> {rate}: {snr:.1f} dB against soxr (delay {delay})"

        # Down (microphone to the line): same gain across the band, above 4 kHz gone.
        for rate in (48000, 44100):
            probe = tones(rate, BAND)
            js = await js_resample(page, probe, rate, 8000, 128)
            py = py_resample(probe, rate, 8000, 128)
            for f in BAND:
                assert abs(gain_db(js, 8000, f, 4000) - gain_db(py, 8000, f, 4000)) < 0.3, f
            above = tones(rate, [4600, 6000, 9000])  # would fold to 3400, 2000 and 1000 Hz
            js = await js_resample(page, above, rate, 8000, 128)
            py = py_resample(above, rate, 8000, 128)
            for alias in (8000 - 4600, 8000 - 6000, 9000 - 8000):
                assert gain_db(js, 8000, alias, 4000) < -80 and gain_db(py, 8000, alias, 4000) < -80

        # Speech at 48 kHz with a 6 and a 9 kHz whistle: 20 ms loudness within 1 dB of soxr's.
        js = await js_resample(page, speech_48k, 48000, 8000, 128)
    py = py_resample(speech_48k, 48000, 8000, 128)
    n = min(len(js), len(py)) // 160 * 160
    level = lambda x: 10 * np.log10(np.mean(x[:n].reshape(-1, 160) ** 2, axis=1) + 1)  # noqa: E731
    loud = level(py) > level(py).max() - 30  # frames that carry speech
    diff = np.abs(level(js) - level(py))[loud]
    assert np.percentile(diff, 95) < 1.0, f"frame loudness differs by {np.percentile(diff, 95):.2f} dB"


def playout_scenario(seed: int, steps: int = 400) -> list[list[Any]]:
    """Random operations as a phone meets them: audio of any length, marks, ticks, clears."""
    rng = random.Random(seed)
    ops: list[list[Any]] = []
    for i in range(steps):
        roll = rng.random()
        if roll < 0.30:
            ops.append(["push", rng.choice([0, 80, 160, 160, 320, 400, 1000])])
        elif roll < 0.45:
            ops.append(["mark", f"m{i}"])
        elif roll < 0.97:
            ops.append(["tick"])
        else:
            ops.append(["clear"])
    return ops


def run_python_playout(ops: list[list[Any]]) -> list[Any]:
    playout, out, fill = Playout(), [], 0
    for op in ops:
        if op[0] == "push":
            audio = bytes((fill + k) % 256 for k in range(op[1]))
            fill += op[1]
            playout.push(audio)
            out.append(None)
        elif op[0] == "mark":
            due = playout.add_mark(op[1], 0.0)
            out.append(due.name if due else None)
        elif op[0] == "tick":
            result = playout.tick()
            out.append([[m.name for m in result.finished_marks], list(result.audio)])
        else:
            marks, dropped = playout.clear()
            out.append([[m.name for m in marks], sum(n for _, n in dropped)])
    return out


async def test_js_playout_echoes_marks_and_clears_like_the_emulator() -> None:
    scenarios = [playout_scenario(seed) for seed in range(6)]
    async with modules_page() as page:
        got = await page.evaluate(f"""(async () => {{
            const {{ Playout }} = await import("./playout.js");
            return {json.dumps(scenarios)}.map((ops) => {{
                const playout = new Playout();
                let fill = 0;
                return ops.map((op) => {{
                    if (op[0] === "push") {{
                        playout.push(new Uint8Array(op[1]).map((_, k) => (fill + k) % 256));
                        fill += op[1];
                        return null;
                    }}
                    if (op[0] === "mark") {{
                        const due = playout.addMark(op[1], 0);
                        return due ? due.name : null;
                    }}
                    if (op[0] === "tick") {{
                        const r = playout.tick();
                        return [r.finishedMarks.map((m) => m.name), Array.from(r.audio)];
                    }}
                    const {{ marks, dropped }} = playout.clear();
                    return [marks.map((m) => m.name), dropped.reduce((s, [, n]) => s + n, 0)];
                }});
            }});
        }})()""")
    for ops, js in zip(scenarios, got, strict=True):
        py = run_python_playout(ops)
        assert js == py
        assert any(step and step[0] for step in js), "a scenario that never echoes a mark proves little"


async def test_the_pages_twilio_messages_parse_with_the_servers_parser() -> None:
    async with modules_page() as page:
        messages = await page.evaluate("""(async () => {
            const c = await import("./media-client.js");
            const streamSid = c.newSid("MZ"), callSid = c.newSid("CA"), accountSid = "AC" + "0".repeat(32);
            return [
                c.connectedMessage(),
                c.startMessage({ seq: 1, streamSid, accountSid, callSid, parameters: { flow: "f", token: "t" } }),
                c.mediaMessage({ seq: 2, streamSid, chunk: 1, timestampMs: 0, ulaw: new Uint8Array(160).fill(0xff) }),
                c.dtmfMessage({ seq: 3, streamSid, digit: "5" }),
                c.markMessage({ seq: 4, streamSid, name: "resp_1:3" }),
                c.stopMessage({ seq: 5, streamSid, accountSid, callSid }),
            ].map((m) => JSON.stringify(m));
        })()""")
    events = [parse_inbound(text) for text in messages]
    assert [type(e) for e in events] == [Connected, Start, Media, Dtmf, Mark, Stop]
    start, media, dtmf, mark = events[1], events[2], events[3], events[4]
    assert isinstance(start, Start) and start.custom_parameters == {"flow": "f", "token": "t"}
    assert start.call_sid.startswith("CA") and len(start.call_sid) == 34
    assert isinstance(media, Media) and media.payload == b"\xff" * 160
    assert isinstance(dtmf, Dtmf) and dtmf.digit == "5"
    assert isinstance(mark, Mark) and mark.name == "resp_1:3"

