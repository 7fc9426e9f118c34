"""Admin API: delete one caller's data (bookings and call records).

    DELETE /admin/callers/{phone}    phone in E.164 (+15551234567; %2B for the + is fine)

Answers `{"caller": "+1555***4567", "bookings": 2, "records": 3}`: how many of each went.
Same bearer token as the rest of the admin API; `phone-agent data delete` does the same
from a shell.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.service.admin import JSON, require_token
from agent.service.forget import NotAPhoneNumber, caller_number, forget_caller
from agent.service.shared import Shared

log = logging.getLogger(__name__)


def caller_routes(token: str, shared: Shared) -> list[BaseRoute]:
    async def delete_caller(request: Request) -> Response:
        try:
            phone = caller_number(request.path_params["phone"])
        except NotAPhoneNumber as exc:
            return JSON({"error": str(exc)}, status_code=400)
        hasher = shared.caller_keys.current(shared.store)
        if hasher is None:
            return JSON({"error": "the caller-hash key has not loaded from the store yet; "
                                  "try again shortly"}, status_code=503)
        try:
            done = await forget_caller(shared.store, hasher, phone)
        except Exception as exc:  # noqa: BLE001 - the store's own error, said plainly
            log.exception("admin: deleting a caller's data failed")
            return JSON({"error": f"could not delete: {exc}"}, status_code=503)
        return JSON(done.to_dict())

    return [Route("/admin/callers/{phone}", require_token(token, delete_caller), methods=["DELETE"])]
