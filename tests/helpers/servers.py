"""Run a real ASGI app under uvicorn on a free port, inside the test's event loop.

    async with run_app(app) as base_url:      # "http://127.0.0.1:54321"
        ...

The shipped `agent.devkit.stack.run_app` is the one implementation: the listening socket
is bound before uvicorn starts (port 0), so there is no race for the port, and readiness
is an event set after uvicorn's own startup, not a poll.
"""

from __future__ import annotations

import socket

from agent.devkit.stack import run_app

__all__ = ["free_port", "run_app"]


def free_port() -> int:
    """A port that was free a moment ago (prefer `run_app`, which cannot race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
