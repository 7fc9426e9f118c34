"""The console in a real headless Chromium against a real server: one finished call, one live.

No DevTools protocol: the token (and the call to open) ride in the URL fragment, Chromium
renders with a virtual-time budget and dumps the DOM (or a screenshot). Chromium comes from
Debian's package: `make test` runs `tests/ops/ensure_chromium.sh`, which installs it if missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep, tone
from agent.devkit.runner import record_collector
from agent.devkit.stack import Stack, local_stack
from telephony.testing.emulator import EmulatedCall, dial_webhook

TOKEN = "console-" + "t" * 24
ORDER_TO = "+15550002000"  # example flows: order-status
ENSURE = Path(__file__).with_name("ensure_chromium.sh")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:  # installing takes minutes: that is `make test`'s job, not a test's
        pytest.fail(f"chromium is not installed: run `bash {ENSURE}` (make test does)", pytrace=False)
    return found


async def run_chromium(url: str, *extra: str, timeout: float = 60) -> str:  # noqa: ASYNC109
    with tempfile.TemporaryDirectory(prefix="console-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--virtual-time-budget=5000", "--window-size=1400,900", *extra, url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


@pytest.fixture
def screenshot(tmp_path: Path) -> Path:
    """Where the console screenshot goes (CONSOLE_SCREENSHOT_DIR keeps it for a human)."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "phone-agent-console.png"


def rendered_png(path: Path) -> bool:
    """A PNG with real content (a blank page compresses to a few hundred bytes)."""
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


@dataclass
class Calls:
    stack: Stack
    finished: str
    live: str


@contextlib.asynccontextmanager
async def server_with_calls(tmp_path: Path) -> AsyncIterator[Calls]:
    scenario = Scenario(turns=[ScriptedTurn(transcript="Where is order 4567?", reply="",
                                    tool=ToolStep("lookup_order", {"order_number": "4567"},
                                                  reply="Your order {output}"))])
    async with FakeOpenAIRealtime(scenario) as fake, local_stack(
        data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key=scenario.api_key,
        admin_token=TOKEN,
    ) as stack:
        records: dict = {}
        stack.watch(record_collector(records))
        first = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_="+15551230001")
        records[first.call_sid] = asyncio.get_running_loop().create_future()
        async with EmulatedCall(first, speed=4) as call:  # a whole call with a tool round trip
            await call.wait_for_bot_reply(timeout=10)
            await call.say(tone(700, hz=300.0, amplitude=6000))
            await call.wait_for_bot_reply(timeout=15)
        await asyncio.wait_for(records[first.call_sid], 10)  # stored
        second = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_="+15551230002")
        async with EmulatedCall(second) as live:
            await live.wait_for_bot_reply(timeout=10)
            yield Calls(stack, first.call_sid, second.call_sid)


async def test_console_lists_live_and_recent_calls_and_shows_a_timeline(
    tmp_path: Path, screenshot: Path
) -> None:
    async with server_with_calls(tmp_path) as calls:
        base = calls.stack.base_url
        dom = await run_chromium(f"{base}/console/#token={TOKEN}&call={calls.finished}", "--dump-dom")
        live_table = dom.split('id="live"')[1].split("</table>")[0]
        recent_table = dom.split('id="recent"')[1].split("</table>")[0]
        assert f'data-sid="{calls.live}"' in live_table and "Hang up" in live_table
        assert f'data-sid="{calls.finished}"' in recent_table and "caller_hung_up" in recent_table
        assert calls.live not in recent_table
        # The finished call's timeline: transcripts, the tool call and its result, the end.
        timeline = dom.split('id="timeline"')[1].split("</ol>")[0]
        assert "lookup_order" in timeline and '"order_number":"4567"' in timeline
        assert "lookup_order → ok in" in timeline
        assert "call ended: caller_hung_up" in timeline
        assert 'id="login" hidden' in dom.replace('hidden=""', "hidden")

        # A wrong token shows the sign-in form again with the reason, and no calls.
        denied = await run_chromium(f"{base}/console/#token=wrong", "--dump-dom")
        assert "That admin token was not accepted." in denied
        assert calls.live not in denied

        await run_chromium(f"{base}/console/#token={TOKEN}&call={calls.finished}", f"--screenshot={screenshot}")
    assert rendered_png(screenshot)
