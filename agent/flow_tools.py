"""The tools a flow can list: the business tools from `tools/`, user tools by import path,
and the two call-control tools the call itself handles (hang up, transfer)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import Any

from agent.realtime import ToolSpec
from tools.registry import REGISTRY, Tool

# Registering the business tools is a side effect of importing their modules.
import tools.appointments  # noqa: F401,E402  isort: skip
import tools.orders  # noqa: F401,E402  isort: skip

END_CALL = ToolSpec(
    name="end_call",
    description="Hang up the call after saying goodbye, when the caller is done.",
    parameters={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why the call ends."}},
        "required": [],
    },
)
TRANSFER_CALL = ToolSpec(
    name="transfer_call",
    description="Transfer the caller to a human colleague when they ask for a person.",
    parameters={
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "What the caller needs."}},
        "required": [],
    },
)
CONTROL_SPECS = {END_CALL.name: END_CALL, TRANSFER_CALL.name: TRANSFER_CALL}


def with_delay(tool: Tool, delay_ms: int) -> Tool:
    """The same tool, `delay_ms` slower: demos and fixtures show fillers and hang-ups
    during slow tools with the real business logic."""
    fn = tool.fn

    async def slowed(**kwargs: Any) -> Any:
        await asyncio.sleep(delay_ms / 1000)
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        return await asyncio.to_thread(fn, **kwargs)

    return dataclasses.replace(tool, fn=slowed)


def resolve_tool(ref: str) -> Tool | ToolSpec:
    """A registry name, a `module:function` path, or a call-control tool name."""
    if ref in CONTROL_SPECS:
        return CONTROL_SPECS[ref]
    return REGISTRY.resolve(ref)


def tools_for(
    refs: list[str], delays_ms: dict[str, int] | None = None
) -> tuple[dict[str, Tool], tuple[ToolSpec, ...]]:
    """The runnable tools of a flow and what the model is told about all of them."""
    runnable: dict[str, Tool] = {}
    specs: list[ToolSpec] = []
    for ref in refs:
        tool = resolve_tool(ref)
        if isinstance(tool, ToolSpec):
            specs.append(tool)
            continue
        if delays_ms and delays_ms.get(tool.name):
            tool = with_delay(tool, delays_ms[tool.name])
        runnable[tool.name] = tool
        specs.append(
            ToolSpec(
                name=tool.name,
                description=tool.description,
                parameters=tool.parameters,
                background=tool.background,
                scheduling=tool.scheduling,
            )
        )
    return runnable, tuple(specs)
