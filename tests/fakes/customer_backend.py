"""A customer's backend, standing in for the real one: real Starlette under uvicorn on a
free port, answering a flow webhook and HTTP tools the way a test needs.

Every request's signature is checked with the three lines the README gives customers
(not with our own `agent.signing`), and a request that fails them gets 401: a test whose
webhook or tool was answered therefore proves the signature held. `requests` keeps what
arrived, for assertions.

    async with customer_backend() as backend:
        backend.url("/flow")            # http://127.0.0.1:PORT/flow
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from agent.devkit.stack import run_app

KNOWN_CALLERS = {"+15551230001": "Maria"}
SLOW_TOOL_S = 1.2  # longer than the test flows' filler_after_ms, shorter than the timeout


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool


@dataclass
class CustomerBackend:
    secret: str
    base_url: str = ""
    requests: list[Seen] = field(default_factory=list)
    # What /flow/hang waits for: released when the backend stops, never as a clock.
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base_url + path

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def _read(self, request: Request) -> tuple[dict[str, Any], bool]:
        body = await request.body()
        # The README's three lines, as a customer would paste them:
        ts, sig = request.headers["x-phone-agent-timestamp"], request.headers["x-phone-agent-signature"]
        expected = "v1=" + hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(sig, expected) and abs(time.time() - int(ts)) < 300
        data = json.loads(body)
        self.requests.append(Seen(request.url.path, dict(request.headers), data, valid))
        return data, valid

    # ------------------------------------------------------------ flow webhooks

    async def personal(self, request: Request) -> Response:
        call, valid = await self._read(request)
        if not valid:
            return Response(status_code=401)
        name = KNOWN_CALLERS.get(call["from"])
        if name is None:
            return JSONResponse({})
        return JSONResponse({
            "greeting": "Hello {{name}}, welcome back to Acme. Is this about your order?",
            "instructions": "You help {{name}}, a returning customer, with Acme orders.",
            "variables": {"name": name},
            "tools": ["lookup_order", "end_call"],
        })  # fmt: skip

    async def hang(self, request: Request) -> Response:
        await self._read(request)
        await self.release.wait()  # past any webhook's timeout: the caller must not wait
        return JSONResponse({"greeting": "Too late to be said."})

    async def garbage(self, request: Request) -> Response:
        await self._read(request)
        return JSONResponse({"greting": "Hi", "tools": ["lookup_order", "make_coffee"], "voice": 7})

    async def not_json(self, request: Request) -> Response:
        await self._read(request)
        return PlainTextResponse("<html>Gateway error</html>", headers={"content-type": "text/html"})

    # ------------------------------------------------------------ HTTP tools

    async def order(self, request: Request) -> Response:
        call, valid = await self._read(request)
        if not valid:
            return Response(status_code=401)
        number = str(call["arguments"].get("order_number", ""))
        return JSONResponse({"found": True, "order_number": number, "status": "shipped",
                             "eta": "2026-12-03", "carrier": "Acme Express"})

    async def slow_order(self, request: Request) -> Response:
        await asyncio.sleep(SLOW_TOOL_S)  # the backend being slow, not a test waiting
        return await self.order(request)

    async def broken(self, request: Request) -> Response:
        await self._read(request)
        return JSONResponse({"error": "database on fire"}, status_code=500)

    async def text(self, request: Request) -> Response:
        await self._read(request)
        return PlainTextResponse("order 4567: shipped")

    def app(self) -> Starlette:
        routes = [
            ("/flow", self.personal), ("/flow/hang", self.hang), ("/flow/garbage", self.garbage),
            ("/flow/not-json", self.not_json), ("/tools/order", self.order),
            ("/tools/slow-order", self.slow_order), ("/tools/broken", self.broken),
            ("/tools/text", self.text),
        ]  # fmt: skip
        return Starlette(routes=[Route(path, fn, methods=["POST"]) for path, fn in routes])


@contextlib.asynccontextmanager
async def customer_backend(secret: str | None = None) -> AsyncIterator[CustomerBackend]:
    backend = CustomerBackend(secret or "whsec_" + secrets.token_hex(16))
    try:
        async with run_app(backend.app()) as base_url:
            backend.base_url = base_url
            try:
                yield backend
            finally:
                backend.release.set()  # let hanging handlers answer before the server stops
    finally:
        backend.release.set()
