"""Reads call records from a phone-agent's admin API (`agent/service/admin.py`), e.g. for a load
test against a server in another process or on another host."""

from __future__ import annotations

import asyncio

import httpx

from agent.callrecord import CallRecord

POLL_S = 0.2  # a record lands a few ms after the call's socket closes


class AdminClient:
    """`GET /admin/calls/{sid}` with the bearer token, over one pooled connection set."""

    def __init__(self, base_url: str, token: str, *, max_connections: int = 16) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def finished_record(self, call_sid: str, timeout: float = 15.0) -> CallRecord | None:  # noqa: ASYNC109
        """The call's stored record once it has ended; None if it is still live (or
        unknown) after `timeout`. A wrong token or a server error raises, with its reason."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            response = await self._client.get(f"/admin/calls/{call_sid}")
            if response.status_code == 401:
                raise PermissionError("admin API: the admin token was refused (401)")
            if response.status_code not in (200, 404):
                raise RuntimeError(
                    f"admin API answered {response.status_code}: {response.text[:200]}"
                )
            if response.status_code == 200:
                body = response.json()
                if not body.get("live") and body.get("record"):
                    return CallRecord.from_dict(body["record"])
            if loop.time() >= deadline:
                return None
            # The admin API has no "wait until ended"; a short poll interval is the contract.
            await asyncio.sleep(POLL_S)
