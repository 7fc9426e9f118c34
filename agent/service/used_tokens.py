"""Single-use stream tokens shared by every instance (SET NX with expiry in Redis)."""

from __future__ import annotations

import redis.asyncio as aioredis


class RedisUsedTokens:
    """`telephony.tokens.UsedTokens` on the process's shared Redis client (not closed here)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "phone-agent") -> None:
        self._redis = client
        self._prefix = f"{prefix}:token:"  # keys: <prefix>:token:<token id>

    async def claim(self, token_id: str, ttl_s: float) -> bool:
        # NX: only the first claim of a token succeeds, on whichever instance it lands.
        ok = await self._redis.set(self._prefix + token_id, b"1", nx=True, ex=max(1, int(ttl_s) + 1))
        return bool(ok)

    async def close(self) -> None:
        pass  # the client belongs to the process (agent/service/shared.py)
