"""Real `phone-agent serve` processes for the operations tests.

    async with serve_process(env, cwd=tmp_path) as server:   # port 0: no race for a port
        server.base_url   # "http://127.0.0.1:43121", read from uvicorn's startup log line
        server.proc.send_signal(signal.SIGTERM)
        await server.wait_exit(10)

The process's stderr (JSON log lines) is read continuously: a test can wait for a line
(event-driven, bounded), and a failing test prints the server's log. The process is
killed in `finally` whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

STARTED = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
ADMIN_STARTED = re.compile(r"admin API, console and /metrics on http://127\.0\.0\.1:(\d+)")
# Settings come only from what a test passes: never from the developer's shell or .env.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass
class ServerProcess:
    proc: asyncio.subprocess.Process
    public_url: str
    base_url: str = ""
    admin_url: str = ""  # with ADMIN_PORT: where the admin API, console and /metrics are
    lines: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/twilio/media"

    @property
    def log(self) -> str:
        return "\n".join(self.lines[-200:])

    def messages(self) -> list[str]:
        out = []
        for line in self.lines:
            try:
                out.append(str(json.loads(line).get("msg", "")))
            except ValueError:
                out.append(line)
        return out

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())
            self._changed.set()
        self._changed.set()  # EOF: wake waiters so they see the process is gone

    async def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> str:  # noqa: ASYNC109
        """The first log line (message text) matching `predicate`, waiting up to `timeout` s."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                self._changed.clear()
                messages = self.messages()
                for message in messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(messages)
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.log}")
                await self._changed.wait()

    async def wait_exit(self, timeout: float) -> int:  # noqa: ASYNC109
        return await asyncio.wait_for(self.proc.wait(), timeout)


def server_command() -> list[str]:
    script = Path(sys.executable).with_name("phone-agent")
    if script.exists():  # the installed console script: exactly what an operator runs
        return [str(script), "serve"]
    return [sys.executable, "-m", "agent.cli", "serve"]


def server_env(env: dict[str, str]) -> dict[str, str]:
    full_env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    if "PYTHONPATH" in os.environ:  # a worktree's code over the installed one
        full_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    full_env.update(
        {"HOST": "127.0.0.1", "PORT": "0", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json",
         "PYTHONUNBUFFERED": "1"}
    )
    full_env.update(env)
    return full_env


async def serve_refused(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 30.0  # noqa: ASYNC109
) -> tuple[int, str]:
    """Run `phone-agent serve ARGS` expecting it to refuse to start: (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *server_command(), *args, cwd=cwd, env=server_env(env),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode("utf-8", "replace")


@contextlib.asynccontextmanager
async def serve_process(
    env: dict[str, str], *args: str, cwd: Path, startup_timeout: float = 30.0
) -> AsyncIterator[ServerProcess]:
    full_env = server_env(env)
    proc = await asyncio.create_subprocess_exec(
        *server_command(),
        *args,
        cwd=cwd,  # no stray .env from the repository
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    server = ServerProcess(proc, public_url=env.get("PUBLIC_URL", ""))
    server._reader = asyncio.create_task(server._read())
    try:
        started = await server.wait_line(lambda m: STARTED.search(m) is not None, startup_timeout)
        match = STARTED.search(started)
        assert match is not None
        server.base_url = f"http://127.0.0.1:{match.group(1)}"
        if "ADMIN_PORT" in env:
            admin = await server.wait_line(lambda m: ADMIN_STARTED.search(m) is not None, 5)
            admin_match = ADMIN_STARTED.search(admin)
            assert admin_match is not None
            server.admin_url = f"http://127.0.0.1:{admin_match.group(1)}"
        yield server
    except BaseException:
        print(f"--- server log ({cwd}) ---\n{server.log}", file=sys.stderr)
        raise
    finally:
        if proc.returncode is None:
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server._reader, 5)
