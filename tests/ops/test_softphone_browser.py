"""The softphone in a real headless Chromium, a WAV file as its microphone, against a real
server: the page places the call through the admin API, speaks Twilio's side of the media
stream into /twilio/media, and the call is judged from its stored record and the page.

Chromium's fake capture device plays the file once (`%noloop`) from the moment the page
opens the microphone: a pause for the greeting, the order request, then the caller cuts
into the answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import soxr

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import Stack, local_stack
from telephony.audio import ulaw_to_pcm16
from telephony.wav import read_ulaw_wav
from tests.ops.devtools import Page, headless_chromium

TOKEN = "softphone-" + "p" * 24
ORDER_TO = "+15550002000"  # example flows: order-status
AUDIO = Path(__file__).parents[2] / "agent/devkit/calls/audio/order-status"
RATE = 48000


def microphone_wav(path: Path, parts: list[float | Path]) -> Path:
    """A 48 kHz PCM WAV for Chromium's fake microphone: seconds of silence, or 8 kHz μ-law lines."""
    chunks = []
    for part in parts:
        if isinstance(part, Path):
            pcm = np.frombuffer(ulaw_to_pcm16(read_ulaw_wav(part)), dtype=np.int16).astype(float)
            chunks.append(soxr.resample(pcm, 8000, RATE))
        else:
            chunks.append(np.zeros(int(part * RATE)))
    data = np.clip(np.concatenate(chunks), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(data.tobytes())
    return path


def save_png(path: Path, data_b64: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(data_b64))


def browser_flags(microphone: Path) -> list[str]:
    return [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900",
    ]


@contextlib.asynccontextmanager
async def softphone(stack: Stack, microphone: Path) -> AsyncIterator[Page]:
    async with headless_chromium(*browser_flags(microphone)) as page:
        await page.navigate(f"{stack.base_url}/console/phone#token={TOKEN}&to={quote(ORDER_TO)}")
        await page.wait_for("document.body.dataset.ready === '1'")
        yield page


async def place_call(page: Page) -> str:
    await page.evaluate("document.getElementById('call').click()")
    await page.wait_for("window.softphone.state === 'live' || window.softphone.state === 'failed'")
    stats = await page.evaluate("window.softphone")
    assert stats["state"] == "live", (stats, page.console)
    return str(stats["callSid"])


async def stats_of(page: Page) -> dict[str, Any]:
    return dict(await page.evaluate("JSON.parse(JSON.stringify(window.softphone))"))


@pytest.mark.speech_call
async def test_a_call_from_the_browser_looks_up_an_order_and_is_barged_in_on(tmp_path: Path) -> None:
    shots = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR") or tmp_path)  # kept for a human if set
    microphone = microphone_wav(tmp_path / "mic.wav", [
        5.0, AUDIO / "01.wav",  # greeting; "Hi, can you check on my order? It's four five six seven."
        2.2, AUDIO / "03.wav",  # into the answer: "No, that's all, thanks. Bye."
        4.0,
    ])  # fmt: skip
    async with local_stack(data_dir=tmp_path, admin_token=TOKEN) as stack:
        records: dict[str, asyncio.Future[dict[str, Any]]] = {}
        stack.watch(record_collector(records))
        async with softphone(stack, microphone) as page:
            sid = await place_call(page)
            records[sid] = asyncio.get_running_loop().create_future()
            # The caller says goodbye; the bot ends the call (or we hang up at the deadline).
            with contextlib.suppress(TimeoutError):
                await page.wait_for("window.softphone.state === 'ended'", timeout=30)
            await page.evaluate("window.softphone.state === 'live' && document.getElementById('hangup').click()")
            await asyncio.wait_for(records[sid], 15)
            await page.wait_for("window.softphone.recordStored", timeout=10)
            stats = await stats_of(page)
            stats["console"] = page.console[-20:]
            timeline = await page.evaluate("document.getElementById('timeline').textContent")
            shot = await page.send("Page.captureScreenshot", format="png")
            save_png(shots / "phone-agent-softphone.png", shot["data"])
            # After hang-up the call is in the console's list like any other.
            listed = await page.evaluate("""fetch("/admin/calls?limit=5", {headers: {Authorization:
                "Bearer " + sessionStorage.getItem("phone-agent-admin-token")}}).then((r) => r.json())""")
            record = await stack.store.get_record("call", sid)
    assert record is not None
    assert sid in [row["call_sid"] for row in listed["recent"]]

    # The engine understood the caller and the order tool ran.
    tools = [(t["name"], t.get("arguments")) for t in record["tool_calls"]]
    assert ("lookup_order", {"order_number": "4567"}) in tools, (record["transcript_lines"], record["events"], record.get("outcome"), stats)
    heard = " ".join(line["text"] for line in record["transcript_lines"] if line["role"] == "caller").lower()
    assert "order" in heard, heard
    # The page played the bot's audio and echoed the marks; the barge-in cleared it.
    assert stats["playedBytes"] > 8000 * 3, stats  # over 3 s heard
    assert stats["marksEchoed"] >= stats["marksIn"] - 1 and stats["marksEchoed"] > 5, stats
    # Each mark came back only once the audio ahead of it had played (on the audio clock,
    # to within one 128-sample render quantum: currentTime is where the quantum starts).
    early = [(waited, owed) for waited, owed in stats["markWaits"] if waited < owed - 6.0]
    assert not early and any(owed > 100 for _, owed in stats["markWaits"]), stats["markWaits"]
    assert stats["clears"] >= 1, stats
    assert any(e["kind"] == "barge_in" for e in record["events"]), record["events"]
    # ... and the live view showed it as it happened.
    assert "lookup_order" in timeline and "caller interrupted" in timeline
    print("softphone stats:", {k: v for k, v in stats.items() if k not in ("markEchoMs", "markWaits")},
          "mark echo ms (median):", float(np.median(stats["markEchoMs"])),
          "waited - owed ms (min, median, max):",
          np.percentile([w - o for w, o in stats["markWaits"]], [0, 50, 100]).round(1).tolist())


async def test_the_same_page_calls_a_flow_on_the_openai_protocol(tmp_path: Path) -> None:
    """The page against a flow on an OpenAI Realtime server (the fake that speaks its wire
    protocol): the same stream, the provider's tool call, the caller hanging up."""
    microphone = microphone_wav(tmp_path / "mic.wav", [4.0, AUDIO / "01.wav", 8.0])
    scenario = Scenario(turns=[ScriptedTurn(transcript="Can you check on order 4567?", reply="",
                                            tool=ToolStep("lookup_order", {"order_number": "4567"},
                                                          reply="Your order {output}"))])
    async with FakeOpenAIRealtime(scenario) as fake, local_stack(
        data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key=scenario.api_key,
        admin_token=TOKEN,
    ) as stack:
        records: dict[str, asyncio.Future[dict[str, Any]]] = {}
        stack.watch(record_collector(records))
        async with softphone(stack, microphone) as page:
            sid = await place_call(page)
            records[sid] = asyncio.get_running_loop().create_future()
            await page.wait_for("document.getElementById('timeline').textContent.includes('lookup_order → ok')",
                                timeout=25)
            # The answer plays to its last mark, then the caller hangs up.
            await page.wait_for("(s => s.playedBytes > 16000 && s.marksEchoed === s.marksIn)(window.softphone)",
                                timeout=15)
            await page.evaluate("document.querySelector('[data-digit=\"5\"]').click()")  # the keypad
            await page.wait_for("document.getElementById('timeline').textContent.includes('keypad 5')")
            await page.evaluate("document.getElementById('hangup').click()")
            await asyncio.wait_for(records[sid], 15)
            stats = await stats_of(page)
        record = await stack.store.get_record("call", sid)
    assert record is not None and record["outcome"] == "caller_hung_up", record
    assert [(t["name"], t["arguments"]) for t in record["tool_calls"]] == [("lookup_order", {"order_number": "4567"})]
    assert stats["framesSent"] > 100 and stats["marksEchoed"] == stats["marksIn"] > 0, stats
    assert stats["dtmfSent"] == 1 and any(e["kind"] == "dtmf" and e["digit"] == "5" for e in record["events"])
