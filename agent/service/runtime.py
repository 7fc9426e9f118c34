"""The process around the service: which event loop runs it, and a heap the collector
leaves alone. Used by `phone-agent serve` and by every process the test kit starts."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any


def event_loop_runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """uvloop when installed (uvicorn[standard] brings it on Linux): cheaper per message,
    which counts at hundreds of calls."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def settle_heap() -> None:
    """Call once the process is set up (modules imported, app built): collect, then
    move every object alive now out of the cyclic collector's sight (`gc.freeze`).

    Those objects (modules, schemas, SDK types: most of the heap) never become garbage,
    yet each full collection walks them all: here ~150,000 of them took 107-157 ms, a
    pause of the whole event loop that every call in the process would hear as a gap."""
    gc.collect()
    gc.freeze()
