"""HTTP tools: a flow's tool that is a signed POST to the customer's backend.

An `HttpTool` is a `tools.registry.Tool` like any Python tool, so the ToolRunner gives it
the same timeout, fillers, background delivery, cancel-on-barge-in and retries, and the
model sees it the same way on every provider. A call POSTs

    {"call_sid", "caller", "tool_call_id", "idempotency_key", "flow", "tool", "arguments"}

signed like the flow webhook (agent/signing.py); the JSON answer goes to the model. What
goes wrong becomes what a failing Python tool gives: a timeout is a `TimeoutError`, the
rest a `ToolFailure` whose sentence the model can say, retryable where trying again may
help (no connection, 5xx, 408/425/429), not where it cannot (4xx, an answer not JSON).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.hook_config import HttpToolConfig, missing_env
from agent.outbound_http import HttpReply, OutboundHttp, ReplyTooLarge
from agent.signing import signed_headers
from tools.json_params import check_value
from tools.registry import Tool, ToolArgumentError, ToolContext, ToolFailure

log = logging.getLogger(__name__)

RETRYABLE_4XX = {408, 425, 429}
# The HTTP deadline is the tool's; the runner's own timeout is a backstop just after it,
# so a slow backend is reported by the request (and counted as such), not cut mid-way.
BACKSTOP_S = 0.5
USER_AGENT = "phone-agent/1 (+http-tool)"


@dataclass(frozen=True)
class HttpTool(Tool):
    config: HttpToolConfig | None = field(default=None, repr=False, compare=False)
    http: OutboundHttp | None = field(default=None, repr=False, compare=False)

    def bind(self, args: dict[str, Any] | None) -> dict[str, Any]:
        """The model's arguments, checked against the declared JSON Schema."""
        args = self.arguments_object(args)
        problems = check_value(self.parameters, args)
        if problems:
            raise ToolArgumentError(self.name, "; ".join(problems))
        return args

    async def invoke(self, args: dict[str, Any] | None, ctx: ToolContext) -> Any:
        arguments = self.bind(args)
        assert self.config is not None and self.http is not None  # set by http_tool()
        return await _post(self.config, self.http, arguments, ctx)


def http_tool(config: HttpToolConfig, http: OutboundHttp) -> HttpTool:
    async def not_callable(**_: Any) -> Any:  # `Tool.fn` is required; invoke() is the way in
        raise TypeError(f"HTTP tool {config.name!r} runs through invoke()")

    return HttpTool(
        name=config.name,
        description=config.description,
        parameters=config.parameters,
        fn=not_callable,
        timeout_s=config.timeout_s + BACKSTOP_S,
        filler=config.filler,
        filler_phrases=tuple(config.filler_phrases),
        background=config.background,
        scheduling=config.scheduling,
        cancel_on_barge_in=config.cancel_on_barge_in,
        idempotent=config.idempotent,
        retries=config.retries,
        config=config,
        http=http,
    )


async def _post(
    config: HttpToolConfig, http: OutboundHttp, arguments: dict[str, Any], ctx: ToolContext
) -> Any:
    name = config.name
    unset = missing_env(config.env_names())
    if unset:
        log.error("HTTP tool %s: environment variable(s) %s not set", name,
                  ", ".join(v for _, v in unset))
        raise ToolFailure(f"The {name} service is not set up on this line.", retryable=False)
    body = json.dumps({
        "call_sid": ctx.call_sid,
        "caller": ctx.caller,
        "tool_call_id": ctx.tool_call_id,
        "idempotency_key": ctx.idempotency_key,
        "flow": ctx.flow,
        "tool": name,
        "arguments": arguments,
    }, separators=(",", ":")).encode()  # fmt: skip
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": ctx.idempotency_key,
        **{header: os.environ[env] for header, env in config.headers_from_env.items()},
    }
    if config.secret_env:
        headers.update(signed_headers(os.environ[config.secret_env].encode(), body))
    try:
        reply = await http.send(
            config.method, config.url, body, headers, timeout_s=config.timeout_s,
            kind="tool", name=name,
        )  # fmt: skip
    except httpx.TransportError as exc:
        raise ToolFailure(f"The {name} service cannot be reached right now.", retryable=True) from exc
    except ReplyTooLarge as exc:
        raise ToolFailure(f"The {name} service sent an answer too long to use.", retryable=False) from exc
    return _answer(name, reply)


def _answer(name: str, reply: HttpReply) -> Any:
    if reply.ok:
        if reply.status == 204 or not reply.body.strip():
            return {"ok": True}
        try:
            return json.loads(reply.body)
        except ValueError:
            raise ToolFailure(
                f"The {name} service sent an answer that is not JSON.", retryable=False
            ) from None
    said = _backend_error(reply.body)
    if reply.status >= 500:
        raise ToolFailure(
            f"The {name} service had a problem (HTTP {reply.status}).", retryable=True
        )
    message = said or f"The {name} service refused the request (HTTP {reply.status})."
    raise ToolFailure(message, retryable=reply.status in RETRYABLE_4XX)


def _backend_error(body: bytes) -> str | None:
    """A short `{"error": "..."}` sentence from a refusing backend, if it gave one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) and 0 < len(error) <= 200 else None
