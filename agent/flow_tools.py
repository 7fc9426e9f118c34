"""The tools a flow can list: the business tools from `tools/`, user tools by import path,
HTTP tools on the customer's backend (agent/http_tools.py), and the two call-control
tools the call itself handles (hang up, transfer)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import Any

from agent.hook_config import HttpToolConfig
from agent.http_tools import http_tool
from agent.outbound_http import OutboundHttp
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


# A flow's `tools:` entry: a tool's name or import path, or an HTTP tool.
ToolRef = str | HttpToolConfig


def resolve_tool(ref: str) -> Tool | ToolSpec:
    """A registry name, a `module:function` path, or a call-control tool name."""
    if ref in CONTROL_SPECS:
        return CONTROL_SPECS[ref]
    return REGISTRY.resolve(ref)


def tool_name(ref: ToolRef) -> str:
    """The name the model knows the tool by (an import path names its function)."""
    if isinstance(ref, HttpToolConfig):
        return ref.name
    return resolve_tool(ref).name


def tools_for(
    refs: list[ToolRef],
    delays_ms: dict[str, int] | None = None,
    http: OutboundHttp | None = None,
) -> tuple[dict[str, Tool], tuple[ToolSpec, ...]]:
    """The runnable tools of a flow and what the model is told about all of them.

    HTTP tools send their requests through `http` (the process's pooled client); without
    one (describing a flow, not running it) they get a client of their own."""
    runnable: dict[str, Tool] = {}
    specs: list[ToolSpec] = []
    for ref in refs:
        if isinstance(ref, HttpToolConfig):
            tool: Tool | ToolSpec = http_tool(ref, http or OutboundHttp())
        else:
            tool = resolve_tool(ref)
        if isinstance(tool, ToolSpec):
            specs.append(tool)
            continue
        if delays_ms and delays_ms.get(tool.name) and isinstance(ref, str):
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
