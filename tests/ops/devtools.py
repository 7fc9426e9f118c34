"""Headless Chromium driven over the DevTools protocol, with nothing but `websockets`.

    async with headless_chromium(*flags) as page:
        await page.navigate(url)
        value = await page.evaluate("1 + 1")          # awaits promises, returns JSON values

Chromium picks its own debugging port (`--remote-debugging-port=0`) and prints it; the
page target is the one it opens at start. Chromium comes from Debian's package
(tests/ops/ensure_chromium.sh, run by `make test`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

ENSURE = Path(__file__).with_name("ensure_chromium.sh")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:  # installing takes minutes: that is `make test`'s job, not a test's
        pytest.fail(f"chromium is not installed: run `bash {ENSURE}` (make test does)", pytrace=False)
    return found


class JSError(AssertionError):
    """An expression evaluated in the page threw."""


class Page:
    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []  # console.* output and uncaught exceptions, for failures
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._read_all()

    async def _read_all(self) -> None:
        async for raw in self._ws:
            msg = json.loads(raw)
            if "id" in msg:
                future = self._replies.pop(msg["id"], None)
                if future is not None and not future.done():
                    future.set_result(msg)
            elif msg.get("method") == "Runtime.consoleAPICalled":
                args = msg["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif msg.get("method") == "Runtime.exceptionThrown":
                details = msg["params"]["exceptionDetails"]
                self.console.append("uncaught: " + str(details.get("exception", {}).get("description", details)))

    async def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:  # noqa: ASYNC109
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        await self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply["result"])

    async def evaluate(self, expression: str, timeout: float = 30) -> Any:  # noqa: ASYNC109
        result = await self.send("Runtime.evaluate", timeout, expression=expression,
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise JSError(str(details.get("exception", {}).get("description", details)))
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", timeout=15)

    async def wait_for(self, expression: str, timeout: float = 15, every: float = 0.05) -> Any:  # noqa: ASYNC109
        """Poll `expression` in the page until it is truthy; its value, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(JSError):
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still false after {timeout} s; page console: {self.console[-10:]}")
            await asyncio.sleep(every)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def headless_chromium(*flags: str) -> AsyncIterator[Page]:
    with tempfile.TemporaryDirectory(prefix="devtools-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
            *flags, "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        page: Page | None = None
        try:
            assert proc.stderr is not None
            browser_url = await asyncio.wait_for(_listening(proc.stderr), 30)
            drain = asyncio.create_task(_drain(proc.stderr))
            port = int(browser_url.split(":")[2].split("/")[0])
            targets = await asyncio.to_thread(_targets, port)
            page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with websockets.connect(page_url, max_size=None) as ws:
                page = Page(ws)
                await page.send("Runtime.enable")
                await page.send("Page.enable")
                yield page
                await page.close()
            drain.cancel()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _listening(stderr: asyncio.StreamReader) -> str:
    seen = b""
    while True:
        line = await stderr.readline()
        if not line:
            raise RuntimeError(f"chromium exited before listening: {seen[-2000:].decode(errors='replace')}")
        seen += line
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()


async def _drain(stderr: asyncio.StreamReader) -> None:
    while await stderr.read(65536):  # a full pipe would block the browser
        pass


def _targets(port: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
        return list(json.load(reply))
