"""Tools for bridge tests, referenced from flows as `tests.agent.slow_tools:NAME`."""

from __future__ import annotations

import asyncio

from tools.registry import tool


@tool(timeout_s=10)
async def slow_lookup(seconds: float) -> dict:
    """Look something up slowly.

    Args:
        seconds: How long the lookup takes.
    """
    await asyncio.sleep(seconds)
    return {"status": "found", "took_s": seconds}


@tool(timeout_s=5, idempotent=True, retries=1)
async def flaky_lookup(order: str) -> dict:
    """A lookup whose backend is down.

    Args:
        order: The order number.
    """
    raise ConnectionError("inventory backend unreachable")


@tool(timeout_s=0.3, filler=False)
async def stuck_lookup(order: str) -> dict:
    """A lookup that hangs.

    Args:
        order: The order number.
    """
    await asyncio.sleep(30)
    return {"never": True}


@tool(background=True, scheduling="WHEN_IDLE", timeout_s=10)
async def background_report(topic: str) -> dict:
    """Prepare a report in the background.

    Args:
        topic: What the report is about.
    """
    await asyncio.sleep(0.5)
    return {"report": f"all good on {topic}"}
