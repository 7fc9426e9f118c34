"""The README's backend example, as printed, on a call through the offline engine.

The Python and YAML blocks of the README's "Personalise calls" section are taken as they
are: the backend runs under uvicorn on a free port, the flows file points at it, and a
recorded caller (the bundled order-status lines) calls from Maria's number. The engine
(VAD, whisper, policy, piper) speaks the greeting the webhook resolved, and its built-in
`lookup_order` is the HTTP tool: the answer it speaks (December 3) comes from the README's
backend, not from the demo orders (order 4567 arrives on November 28 there).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import warnings
from pathlib import Path

import pytest

from agent.devkit import BUNDLED_CALLS
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack, run_app
from telephony.testing.emulator import EmulatedCall, dial_webhook
from telephony.wav import read_ulaw_wav

ROOT = Path(__file__).resolve().parents[2]
LINES = BUNDLED_CALLS / "audio" / "order-status"  # "...It's four five six seven." / "...Bye."
MARIA = "+15551230001"
GREETING = "Hi Maria, welcome back to Acme! Calling about an order?"


def readme_block(language: str, first_line: str) -> str:
    text = (ROOT / "README.md").read_text()
    for block in re.findall(rf"```{language}\n(.*?)```", text, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README has no {language} block starting {first_line!r}")


def test_the_readme_backend_is_about_twenty_lines() -> None:
    code = [line for line in readme_block("python", "# backend.py").splitlines()
            if line.strip() and not line.startswith("#")]
    assert len(code) <= 24


async def _call(stack):
    records: dict = {}
    stack.watch(record_collector(records))
    target = await dial_webhook(stack.base_url, stack.auth_token, to="+15550002000", from_=MARIA)
    records[target.call_sid] = asyncio.get_running_loop().create_future()
    async with EmulatedCall(target) as call:
        await call.wait_for_bot_reply(timeout=30)
        await call.say(read_ulaw_wav(LINES / "01.wav"))
        await call.wait_for_bot_reply(timeout=40)
        await call.say(read_ulaw_wav(LINES / "03.wav"))
        await call.wait_for_bot_reply(timeout=20)
    return await asyncio.wait_for(records[target.call_sid], 20)


@pytest.mark.local
@pytest.mark.speech_call
async def test_the_readme_backend_personalises_a_call_on_the_offline_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHONE_AGENT_SECRET", "readme-example-secret")
    source = tmp_path / "readme_backend.py"
    source.write_text(readme_block("python", "# backend.py"))
    spec = importlib.util.spec_from_file_location("readme_backend", source)
    assert spec is not None and spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)

    async with run_app(backend.app) as backend_url:
        flows = tmp_path / "flows.yaml"
        flows.write_text(readme_block("yaml", "# flows.yaml").replace("https://backend.example.com", backend_url))
        for attempt in (1, 2):
            async with local_stack(data_dir=tmp_path / f"run{attempt}", flows_file=flows) as stack:
                record = await _call(stack)
            said = " ".join(line["text"] for line in record.transcript_lines if line["role"] == "bot")
            if "december 3" in said.lower() or attempt == 2:
                break
            # tiny.en occasionally mishears a synthetic voice (see tests/e2e): one fresh try.
            warnings.warn(f"first run misheard: {record.transcript_lines}", stacklevel=1)

    lines = "\n".join(f"{line['role']}: {line['text']}" for line in record.transcript_lines)
    first = record.transcript_lines[0]
    assert (first["role"], first["text"]) == ("bot", GREETING), lines
    (event,) = [e for e in record.events if e["kind"] == "flow_webhook"]
    assert event["status"] == "used" and "variables=name" in event["detail"]
    (lookup,) = [t for t in record.tool_calls if t["name"] == "lookup_order"]
    assert lookup["status"] == "ok" and lookup["arguments"] == {"order_number": "4567"}, lines
    assert lookup["result"] == {"found": True, "order_number": "4567", "status": "shipped", "eta": "2026-12-03"}
    assert "shipped" in said.lower() and "december 3" in said.lower(), lines
