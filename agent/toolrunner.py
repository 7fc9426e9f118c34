"""Runs the model's tool calls so that a caller is never left in silence.

Each call runs as a task owned by the runner (so the call can cancel it). If a tool is
still running after the flow's `filler_after_ms`, a filler plays; a long one gets a second,
different phrase later. The filler is cut the moment the result is ready. Exceptions and
timeouts become `{"error": ..., "retryable": ...}` for the model to speak a recovery;
idempotent tools are retried with backoff first. A tool can never kill the call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.realtime import RealtimeSession, ToolCall
from tools.registry import Tool, ToolArgumentError, ToolContext, ToolFailure

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (0.2, 0.5, 1.0)


class FillerControl(Protocol):
    """What the runner needs of a filler player (agent/filler_player.py): start one, cut it."""

    async def play_filler(self, phrase: str, deadline: float, onsets: list[float]) -> bool:
        """Start a filler now; False if it could not (e.g. the bot is already talking).

        When its first frame goes to Twilio, append ms since `deadline` (monotonic) to
        `onsets`: the filler onset the caller experiences."""

    async def cut_filler(self) -> None:
        """Stop a playing filler at once; no-op when none plays."""


class ArgumentGuard(Protocol):
    """Stands between the model and the tools (agent/keypad_secrets.py): references in
    the model's arguments become real values only for the tool, and results are
    scrubbed of those values before the model or the record sees them."""

    def resolve(self, tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The arguments the tool runs with, and whether they hold a secret. Raises
        ToolArgumentError for a reference the model made up."""
        ...

    def scrub(self, value: Any) -> Any:
        """`value` with the secrets put back as references."""
        ...


@dataclass
class ToolCallRecord:
    call_id: str
    name: str
    arguments: dict[str, Any]
    started: float
    result: dict[str, Any] | None = None
    duration_ms: float | None = None
    attempts: int = 0
    fillers: list[str] = field(default_factory=list)
    filler_onset_ms: list[float] = field(default_factory=list)
    status: str = "running"  # running | ok | error | timeout | cancelled


@dataclass
class FillerPolicy:
    after_ms: int
    second_after_ms: int
    phrases: tuple[str, ...]
    second_phrases: tuple[str, ...]


class ToolRunner:
    def __init__(
        self,
        *,
        session: RealtimeSession,
        tools: dict[str, Tool],
        filler: FillerPolicy,
        player: FillerControl,
        context: Callable[[ToolCall], ToolContext],
        on_record: Callable[[ToolCallRecord], Awaitable[None] | None] | None = None,
        guard: ArgumentGuard | None = None,
    ) -> None:
        self._session = session
        self._tools = tools
        self._filler = filler
        self._player = player
        self._context = context
        self._on_record = on_record
        self._guard = guard
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._phrase_turn = 0
        self.records: list[ToolCallRecord] = []

    @property
    def running(self) -> int:
        return len(self._tasks)

    def start(self, call: ToolCall) -> None:
        record = ToolCallRecord(call.call_id, call.name, call.arguments, time.monotonic())
        self.records.append(record)
        task = asyncio.create_task(self._run(call, record), name=f"tool:{call.name}")
        self._tasks[call.call_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(call.call_id, None))

    async def cancel(self, call_ids: tuple[str, ...] | list[str]) -> None:
        """Provider said these calls are void (Gemini toolCallCancellation)."""
        for cid in call_ids:
            task = self._tasks.get(cid)
            if task:
                task.cancel()

    async def on_barge_in(self) -> None:
        """Caller spoke: cancel the tools whose policy says so; cut any filler."""
        await self._player.cut_filler()
        for cid, task in list(self._tasks.items()):
            tool = self._tools.get(self._name_of(cid))
            if tool is not None and tool.cancel_on_barge_in:
                task.cancel()

    def _name_of(self, call_id: str) -> str:
        for r in self.records:
            if r.call_id == call_id:
                return r.name
        return ""

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ one call

    async def _run(self, call: ToolCall, record: ToolCallRecord) -> None:
        tool = self._tools.get(call.name)
        try:
            if tool is None:
                known = ", ".join(sorted(self._tools)) or "none"
                result = {"error": f"unknown tool {call.name!r}; tools: {known}", "retryable": False}
                record.status = "error"
                await self._session.send_tool_result(call, result)
            elif tool.background:
                await self._session.acknowledge_background(call)
                result = self._scrub(await self._execute(tool, call, record))
                await self._session.send_background_result(call, result, tool.scheduling)
            else:
                work = asyncio.create_task(self._execute(tool, call, record))
                try:
                    if tool.filler:
                        await self._fill_while(work, record, tool)
                    result = self._scrub(await work)
                finally:
                    work.cancel()
                # Cut the filler before the model starts speaking the result.
                await self._player.cut_filler()
                await self._session.send_tool_result(call, result)
            record.result = result
        except asyncio.CancelledError:
            record.status = "cancelled"
            await self._player.cut_filler()
            raise
        except Exception:  # a broken provider must not leave a task exception behind
            log.exception("tool %s: could not deliver its result", call.name)
            record.status = "error"
        finally:
            record.duration_ms = (time.monotonic() - record.started) * 1000
            await self._notify(record)

    async def _fill_while(self, work: asyncio.Task[Any], record: ToolCallRecord, tool: Tool) -> None:
        """Wait for `work`; play a filler at each threshold it outlasts."""
        first = self._filler.after_ms / 1000
        second = max(self._filler.second_after_ms / 1000, first)
        phrases = tuple(tool.filler_phrases or ()) or self._filler.phrases
        for threshold, pool in ((first, phrases), (second, self._filler.second_phrases)):
            remaining = record.started + threshold - time.monotonic()
            if remaining > 0:
                done, _ = await asyncio.wait({work}, timeout=remaining)
                if done:
                    return
            if work.done() or not pool:
                return
            phrase = pool[self._phrase_turn % len(pool)]
            self._phrase_turn += 1
            deadline = record.started + threshold
            if await self._player.play_filler(phrase, deadline, record.filler_onset_ms):
                record.fillers.append(phrase)
        await asyncio.wait({work})

    async def _execute(self, tool: Tool, call: ToolCall, record: ToolCallRecord) -> dict[str, Any]:
        ctx = self._context(call)
        try:
            arguments, secret = self._arguments(tool, call)
        except ToolArgumentError as exc:
            record.status = "error"
            return {"error": f"bad arguments: {exc}", "retryable": False}
        attempts = 1 + (tool.retries if tool.idempotent else 0)
        for attempt in range(attempts):
            record.attempts = attempt + 1
            try:
                async with asyncio.timeout(tool.timeout_s):
                    value = await tool.invoke(arguments, ctx)
                record.status = "ok"
                return value if isinstance(value, dict) else {"result": value}
            except ToolArgumentError as exc:
                record.status = "error"
                return {"error": f"bad arguments: {exc}", "retryable": False}
            except TimeoutError:
                record.status = "timeout"
                log.warning("tool %s timed out after %.1fs", tool.name, tool.timeout_s)
                error = {"error": f"{tool.name} took too long to answer", "retryable": True}
            except asyncio.CancelledError:
                raise
            except ToolFailure as exc:  # the tool says what the caller may be told
                record.status = "error"
                log.warning("tool %s: %s (%r)", tool.name, exc, exc.__cause__ or exc)
                error = {"error": str(exc), "retryable": exc.retryable}
                if not exc.retryable:
                    return error  # the tool knows trying again cannot help
            except Exception as exc:
                record.status = "error"
                # A traceback of a tool that held secret arguments may quote them.
                log.warning("tool %s failed: %s", tool.name, self._scrub(_short(exc)),
                            exc_info=not secret)
                error = {"error": f"{tool.name} failed: {_short(exc)}", "retryable": tool.idempotent}
            if attempt + 1 < attempts:
                await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
        return error

    def _arguments(self, tool: Tool, call: ToolCall) -> tuple[dict[str, Any], bool]:
        if self._guard is None:
            return call.arguments, False
        return self._guard.resolve(tool.name, call.arguments)

    def _scrub(self, value: Any) -> Any:
        return value if self._guard is None else self._guard.scrub(value)

    async def _notify(self, record: ToolCallRecord) -> None:
        if self._on_record is None:
            return
        try:
            out = self._on_record(record)
            if asyncio.iscoroutine(out):
                await out
        except Exception:
            log.exception("tool record hook failed")


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) <= 200 else text[:197] + "..."
