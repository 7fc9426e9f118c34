"""The one HTTP client for requests to a customer's backend (flow webhooks, HTTP tools).

One pooled `httpx.AsyncClient` per process: a call's webhook and tool requests reuse warm
connections (TLS set up once per host), and a slow backend cannot open sockets without
bound. Each request has its own deadline, enforced on the whole exchange (connect, send,
a slow-dripping body), and a cap on the answer's size; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

MAX_REPLY_BYTES = 256 * 1024
# (kind "webhook" | "tool", name, result, ms): metrics, with a bounded set of results.
Observer = Callable[[str, str, str, float], None]


class ReplyTooLarge(Exception):
    """The answer was longer than the caller of `send` allows."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    content_type: str
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def check_url(url: str) -> str:
    """`url` if a backend can be reached at it; ValueError saying what is wrong otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"has no host: {url!r}")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use headers_from_env for them")
    if parts.fragment:
        raise ValueError(f"must not have a #fragment: {url!r}")
    return url


class OutboundHttp:
    def __init__(self, *, max_connections: int = 200, observe: Observer | None = None) -> None:
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
        self._client: httpx.AsyncClient | None = None
        self.observe = observe

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Redirects are answers, not something to follow with a signed body.
            self._client = httpx.AsyncClient(limits=self._limits, follow_redirects=False)
        return self._client

    async def send(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        kind: str,
        name: str,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> HttpReply:
        """The backend's answer. Raises TimeoutError past `timeout_s`, httpx.TransportError
        when it cannot be reached, ReplyTooLarge past `max_bytes`."""
        started = time.monotonic()
        result = "cancelled"
        try:
            async with asyncio.timeout(timeout_s):
                reply = await self._exchange(method, url, body, headers, timeout_s, max_bytes, started)
            result = f"{reply.status // 100}xx"
            return reply
        except (TimeoutError, httpx.TimeoutException):
            result = "timeout"
            raise TimeoutError(f"no answer within {timeout_s:g} s") from None
        except httpx.TransportError:
            result = "connection"
            raise
        except ReplyTooLarge:
            result = "too_large"
            raise
        finally:
            if self.observe is not None:
                self.observe(kind, name, result, (time.monotonic() - started) * 1000)

    async def _exchange(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str],
        timeout_s: float, max_bytes: int, started: float,
    ) -> HttpReply:  # fmt: skip
        request = self.client.build_request(
            method, url, content=body, headers=dict(headers), timeout=httpx.Timeout(timeout_s)
        )
        response = await self.client.send(request, stream=True)
        try:
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    raise ReplyTooLarge(f"answer longer than {max_bytes} bytes")
        finally:
            await response.aclose()
        return HttpReply(
            status=response.status_code,
            body=bytes(data),
            content_type=response.headers.get("content-type", ""),
            elapsed_ms=(time.monotonic() - started) * 1000,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
