"""The server and a fake OpenAI provider, each in its own process, for load runs.

    async with ProcessStack.start(scenario={"default_reply": "..."}) as stack:
        ... dial stack.base_url with stack.auth_token ...
        print(await stack.fake_stats())

`phone-agent loadtest --provider fake-openai` and `tests/bench/bench_bridge.py` use it.
One process each (server, fake, the emulated phones in the caller's process) lets a
load run use every core, as a deployment would, and lets each one's CPU be read on its
own from /proc/<pid>/stat. The fake stamps its replies and times stamped caller frames
(`agent.devkit.bridge_probe`), so the server's hop is timed across processes.

Roles talk JSON lines over stdin/stdout; closing stdin ends a role.

    python -m agent.devkit.process_stack fake --scenario '{...}'
    python -m agent.devkit.process_stack server --realtime-url ws://... --api-key K
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.devkit.bridge_probe import summary_us
from agent.service.runtime import event_loop_runner, settle_heap
from agent.service.settings import Settings

FRAME = 160  # bytes of μ-law per 20 ms
APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
START_TIMEOUT_S = 60.0


def machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) clock ticks over all CPUs since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the roles


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def fake_main(scenario_args: dict[str, Any]) -> None:
    """The fake OpenAI server, timing stamped caller frames and stamping reply audio."""
    # The server role need not load the fake (and the openai SDK it checks against).
    from agent.devkit import fake_openai as fake
    from agent.devkit.stamping_fake import StampingFake

    scenario = fake.Scenario(rate_limits=False, light=True, **scenario_args)
    async with StampingFake(scenario) as server:
        settle_heap()
        _reply({"ready": True, "url": server.url, "api_key": scenario.api_key})
        lines = await _stdin_lines()
        while line := (await lines.readline()).decode().strip():
            if line == "reset":
                server.reset()
                _reply({"ok": True})
            elif line == "window":  # from now on: inbound latencies only
                server.in_lat_us = []
                _reply({"ok": True})
            elif line == "stats":
                _reply(server.stats())
            elif line == "idle":  # once every session has closed (bounded)
                with contextlib.suppress(TimeoutError):
                    await server.wait_for(lambda: all(s.closed for s in server.sessions), 30)
                _reply(server.stats())
            else:
                _reply({"error": f"unknown command {line!r}"})


async def server_main(
    realtime_url: str, api_key: str, max_calls: int, flows_file: str | None = None
) -> None:
    """The phone-agent app under uvicorn, every flow on `realtime_url`, admin API on."""
    import logging

    from agent.devkit.stack import local_stack  # noqa: PLC0415 - the fake role need not load it

    logging.basicConfig(level=logging.WARNING)
    admin_token = secrets.token_hex(16)
    async with local_stack(
        engine=False,
        realtime_url=realtime_url,
        openai_api_key=api_key,
        max_concurrent_calls=max_calls,
        overload_lag_ms=Settings().overload_lag_ms,  # its own process: the guard as `serve` has it
        admin_token=admin_token,
        flows_file=Path(flows_file) if flows_file else None,
    ) as stack:
        settle_heap()
        _reply({
            "ready": True, "url": stack.base_url, "auth_token": stack.auth_token,
            "admin_token": admin_token,
        })  # fmt: skip
        lines = await _stdin_lines()
        while await lines.readline():
            pass  # stdin closed: the run is over


# ---------------------------------------------------------------- the parent's side


class Child:
    """A role in its own process, driven by lines on stdin/stdout."""

    def __init__(
        self, proc: asyncio.subprocess.Process, info: dict[str, Any], module: str = ""
    ) -> None:
        self.proc = proc
        self.info = info
        self.module = module

    @classmethod
    async def start(
        cls, *args: str, module: str = "agent.devkit.process_stack", cwd: Path | None = None
    ) -> Child:
        """`python -m module *args` (a role here, or another program that answers the same
        way: one JSON line when ready, ends when its stdin closes)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=cwd,
        )  # fmt: skip
        child = cls(proc, {}, module)
        try:
            child.info = await child._line(START_TIMEOUT_S)
        except BaseException:
            await child.stop()
            raise
        return child

    @property
    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    async def _line(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(
                f"{sys.executable} -m {self.module} exited ({await self.proc.wait()}); "
                "its error is above"
            )
        return json.loads(line)

    async def ask(self, command: str, timeout: float = 60) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._line(timeout)

    async def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()  # our own child, by its handle
            await self.proc.wait()


@dataclass
class ProcessStack:
    fake: Child
    server: Child

    @property
    def base_url(self) -> str:
        return str(self.server.info["url"])

    @property
    def auth_token(self) -> str:
        return str(self.server.info["auth_token"])

    @property
    def admin_token(self) -> str:
        return str(self.server.info["admin_token"])

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        scenario: dict[str, Any] | None = None,
        max_calls: int = 100_000,
        flows_file: Path | None = None,
    ) -> AsyncIterator[ProcessStack]:
        fake = await Child.start("fake", "--scenario", json.dumps(scenario or {}))
        try:
            server = await Child.start(
                "server", "--realtime-url", fake.info["url"], "--api-key",
                fake.info["api_key"], "--max-calls", str(max_calls),
                *(["--flows", str(flows_file)] if flows_file else []),
            )  # fmt: skip
            try:
                yield cls(fake, server)
            finally:
                await server.stop()
        finally:
            await fake.stop()


@dataclass
class Usage:
    """CPU of each process and of the whole machine at one moment."""

    server_s: float
    fake_s: float
    own_s: float
    machine: tuple[int, int, int]
    at: float

    @classmethod
    def now(cls, stack: ProcessStack) -> Usage:
        return cls(
            stack.server.cpu_s, stack.fake.cpu_s, time.process_time(), machine_ticks(),
            time.monotonic(),
        )  # fmt: skip

    def cost_since(self, earlier: Usage) -> dict[str, Any]:
        """Each process's share of a core, and how busy the whole machine was, between
        `earlier` and this moment (`wall_s` and `server_cpu_s` unrounded)."""
        wall = max(1e-9, self.at - earlier.at)
        busy, steal, total = (b - a for a, b in zip(earlier.machine, self.machine, strict=True))
        server_s = self.server_s - earlier.server_s
        return {
            "wall_s": wall,
            "server_cpu_s": server_s,
            "server_core_pct": round(100 * server_s / wall, 1),
            "fake_core_pct": round(100 * (self.fake_s - earlier.fake_s) / wall, 1),
            "emulator_core_pct": round(100 * (self.own_s - earlier.own_s) / wall, 1),
            # The whole machine (every process, ours and anyone else's): ~100 = saturated.
            "machine_busy_pct": round(100 * busy / max(1, total), 1),
            "machine_steal_pct": round(100 * steal / max(1, total), 1),
        }


async def bridge_figures(
    stack: ProcessStack,
    since: Usage,
    *,
    call_minutes: float,
    frames_sent: int,
    out_lat_us: list[int],
) -> dict[str, Any]:
    """The server's cost and hop latency since `since`, once every call has hung up."""
    cost = Usage.now(stack).cost_since(since)
    del cost["wall_s"]
    final = await stack.fake.ask("idle")
    server_s = cost["server_cpu_s"]
    return {
        "in_us": final["in_us"],
        "out_us": summary_us(out_lat_us),
        **cost,
        "server_cpu_s": round(server_s, 2),
        "server_cpu_s_per_call_min": round(server_s / call_minutes, 3) if call_minutes else None,
        "frames_sent": frames_sent,
        "frames_appended": final["frames_in"],
        "lost_in_frames": max(0, frames_sent - final["frames_in"]),
        "provider_violations": final["violations"] + final["internal_errors"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agent.devkit.process_stack")
    sub = parser.add_subparsers(dest="role", required=True)
    f = sub.add_parser("fake", help="the fake OpenAI Realtime server")
    f.add_argument(
        "--scenario", default="{}", help="JSON: agent.devkit.fake_openai Scenario fields"
    )
    s = sub.add_parser("server", help="the phone-agent app, every flow on --realtime-url")
    s.add_argument("--realtime-url", required=True)
    s.add_argument("--api-key", required=True)
    s.add_argument("--max-calls", type=int, default=100_000)
    s.add_argument("--flows", default=None, help="a flows file (default: the example flows)")
    args = parser.parse_args(argv)
    run = event_loop_runner()
    if args.role == "fake":
        run(fake_main(json.loads(args.scenario)))
    else:
        run(server_main(args.realtime_url, args.api_key, args.max_calls, args.flows))


if __name__ == "__main__":
    main()
