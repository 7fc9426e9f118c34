"""Admin API: live and recent calls, one call's timeline, hang-up.

    GET  /admin/calls?limit=50        live calls (every instance) + recent call records
    GET  /admin/calls/{sid}           a live call's current record, or the stored one
    POST /admin/calls/{sid}/hangup    end the call on whichever instance holds it

Everything needs `Authorization: Bearer $ADMIN_TOKEN`. Without ADMIN_TOKEN the admin API
does not exist (404): an open hang-up button is worse than none. The console page that
uses it is `agent.service.console`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from agent.service.admission import Admission
from agent.service.switchboard import Switchboard

log = logging.getLogger(__name__)

_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_LIMIT = 500
HANGUP_WAIT_S = 5.0  # how long a hang-up request waits to confirm that the call ended
SNAPSHOT_WAIT_S = 1.5  # under the Redis client's 2 s reply timeout: BLPOP blocks that long

Endpoint = Callable[[Request], Awaitable[Response]]


class JSON(Response):
    """JSON that never fails on a stray non-JSON value inside a tool result."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, separators=(",", ":")).encode()


def not_found(_request: Request | None = None) -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def _unauthorized(error: str | None) -> Response:
    challenge = 'Bearer realm="phone-agent admin"'
    if error:
        challenge += f', error="{error}"'
    return JSON({"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": challenge})


def require_token(token: str, endpoint: Endpoint) -> Endpoint:
    """Wrap `endpoint` in the bearer check (constant-time compare); 404 if no token is set."""
    expected = token.encode()

    async def guarded(request: Request) -> Response:
        if not token:
            return not_found()
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _unauthorized(None)
        if not hmac.compare_digest(given.strip().encode(), expected):
            log.warning("admin: rejected a wrong bearer token for %s %s", request.method, request.url.path)
            return _unauthorized("invalid_token")
        return await endpoint(request)

    return guarded


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """A stored call record, cut down to one row of the call list."""
    latencies = record.get("turn_latencies_ms") or []
    ended, started = record.get("ended_at"), record.get("started_at")
    return {
        "call_sid": record.get("call_sid"),
        "flow": record.get("flow"),
        "caller": record.get("caller"),
        "provider": record.get("provider"),
        "started_at": started,
        "ended_at": ended,
        "duration_s": round(ended - started, 1) if ended and started else None,
        "outcome": record.get("outcome"),
        "turns": len(latencies),
        "avg_latency_ms": round(sum(latencies) / len(latencies)) if latencies else None,
        "tool_calls": len(record.get("tool_calls") or []),
    }


def admin_routes(token: str, switchboard: Switchboard, admission: Admission) -> list[BaseRoute]:
    registry = switchboard.registry
    shared = switchboard.shared
    instance_id = switchboard.instance_id

    def sid_of(request: Request) -> str | None:
        sid = request.path_params["sid"]
        return sid if _SID.match(sid) else None

    async def list_calls(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_LIMIT:
            return JSON({"error": f"limit must be an integer from 1 to {MAX_LIMIT}"}, status_code=400)
        live = []
        for call in await registry.live():
            row = call.to_dict()
            local = switchboard.calls.get(call.call_sid)
            row["local"] = call.instance == instance_id
            if local is not None:
                row["state"] = local.state.value
            live.append(row)
        live_sids = {row["call_sid"] for row in live}
        records = await shared.store.list_records("call", limit)
        recent = [summary(r) for r in records if r.get("call_sid") not in live_sids]
        return JSON({"instance": instance_id, "draining": admission.draining,
                     "live": live, "recent": recent})

    async def get_call(request: Request) -> Response:
        sid = sid_of(request)
        if sid is None:
            return JSON({"error": "bad call sid"}, status_code=400)
        holder = await registry.get(sid)
        if holder is not None:
            record = await registry.snapshot(sid, SNAPSHOT_WAIT_S)
            if record is not None:
                return JSON({"live": True, "instance": holder.instance, "record": record})
        stored = await shared.store.get_record("call", sid)
        if stored is not None:
            return JSON({"live": False, "instance": None, "record": stored})
        if holder is not None:  # live, but its instance did not answer in time
            return JSON({"live": True, "instance": holder.instance, "record": None})
        return JSON({"error": f"no call {sid}"}, status_code=404)

    async def hang_up(request: Request) -> Response:
        sid = sid_of(request)
        if sid is None:
            return JSON({"error": "bad call sid"}, status_code=400)
        holder = await registry.get(sid)
        if holder is None:
            stored = await shared.store.get_record("call", sid)
            if stored is not None:
                return JSON({"error": "call already ended", "outcome": stored.get("outcome")},
                            status_code=409)
            return JSON({"error": f"no live call {sid}"}, status_code=404)
        log.info("admin: hang-up of call %s (held by %s)", sid, holder.instance)
        outcome = await registry.hang_up(sid, "admin_hangup", HANGUP_WAIT_S)
        if outcome is None:  # sent, but not confirmed in time: the caller may poll
            return JSON({"ended": False, "instance": holder.instance}, status_code=202)
        return JSON({"ended": True, "outcome": outcome, "instance": holder.instance})

    return [
        Route("/admin/calls", require_token(token, list_calls), methods=["GET"]),
        Route("/admin/calls/{sid}", require_token(token, get_call), methods=["GET"]),
        Route("/admin/calls/{sid}/hangup", require_token(token, hang_up), methods=["POST"]),
    ]
