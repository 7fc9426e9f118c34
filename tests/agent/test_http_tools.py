"""An HTTP tool against a real server (uvicorn): what each way of failing becomes, the
headers it sends, and one connection pool shared by all requests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.devkit.stack import run_app
from agent.hook_config import HttpToolConfig
from agent.http_tools import http_tool
from agent.outbound_http import OutboundHttp
from agent.signing import verify
from tools.registry import ToolContext, ToolFailure

CTX = ToolContext(call_sid="CA" + "7" * 32, caller="+15551230001", tool_call_id="call_1", flow="orders")


async def _hang(_request: Request) -> Response:
    await asyncio.Event().wait()  # never answers; the client's deadline ends it
    return Response()


async def _status(request: Request) -> Response:
    code = int(request.path_params["code"])
    return JSONResponse({"error": "Order 12 does not exist."} if code == 404 else {"ok": True}, status_code=code)


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"signed": verify(b"tool-secret", request.headers, body),
                         "auth": request.headers.get("authorization"),
                         "idem": request.headers.get("idempotency-key"),
                         "port": request.client.port if request.client else None})


async def _huge(_request: Request) -> Response:
    return JSONResponse({"x": "y" * 300_000})


@pytest.fixture
async def backend() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/hang", _hang, methods=["POST"]), Route("/status/{code}", _status, methods=["POST"]),
                            Route("/echo", _echo, methods=["POST"]), Route("/huge", _huge, methods=["POST"])])
    async with run_app(app) as base:
        yield base


def _tool(url: str, **extra: object) -> HttpToolConfig:
    return HttpToolConfig(name="lookup_order", description="Look up an order.", url=url,
                          secret_env="TOOL_SECRET", **extra)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_SECRET", "tool-secret")


async def _invoke(config: HttpToolConfig, http: OutboundHttp | None = None):
    own = http is None
    http = http or OutboundHttp()
    try:
        return await http_tool(config, http).invoke({}, CTX)
    finally:
        if own:
            await http.aclose()


async def test_a_backend_slower_than_timeout_s_is_a_timeout(backend: str) -> None:
    with pytest.raises(TimeoutError):  # the ToolRunner speaks it as "took too long", retryable
        await _invoke(_tool(backend + "/hang", timeout_s=0.3))


async def test_a_backend_not_listening_is_retryable(backend: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ToolFailure) as info:
        await _invoke(_tool(f"http://127.0.0.1:{port}/x"))
    assert info.value.retryable and "cannot be reached" in str(info.value)


@pytest.mark.parametrize(("code", "retryable", "says"), [
    (404, False, "Order 12 does not exist."),  # the backend's own sentence
    (400, False, "refused the request (HTTP 400)"),
    (429, True, "refused the request (HTTP 429)"),
    (503, True, "had a problem (HTTP 503)"),
    (302, False, "refused the request (HTTP 302)"),  # redirects are not followed with a signed body
])  # fmt: skip
async def test_each_status_is_the_failure_a_python_tool_would_raise(
    backend: str, code: int, retryable: bool, says: str
) -> None:
    with pytest.raises(ToolFailure) as info:
        await _invoke(_tool(f"{backend}/status/{code}"))
    assert info.value.retryable is retryable and says in str(info.value)


async def test_an_answer_too_long_is_refused(backend: str) -> None:
    with pytest.raises(ToolFailure, match="too long to use") as info:
        await _invoke(_tool(backend + "/huge"))
    assert not info.value.retryable


async def test_headers_are_signed_and_taken_from_the_environment(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TOKEN", "Bearer abc")
    answer = await _invoke(_tool(backend + "/echo", headers_from_env={"Authorization": "ORDERS_TOKEN"}))
    assert answer["signed"] is True and answer["auth"] == "Bearer abc"
    assert answer["idem"] == CTX.idempotency_key
    monkeypatch.delenv("ORDERS_TOKEN")
    with pytest.raises(ToolFailure, match="not set up on this line") as info:
        await _invoke(_tool(backend + "/echo", headers_from_env={"Authorization": "ORDERS_TOKEN"}))
    assert not info.value.retryable


async def test_requests_share_one_pool_of_connections(backend: str) -> None:
    http = OutboundHttp()
    try:
        ports = {(await _invoke(_tool(backend + "/echo"), http))["port"] for _ in range(5)}
    finally:
        await http.aclose()
    assert len(ports) == 1  # one kept-alive connection, not a new one per call
