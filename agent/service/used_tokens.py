"""Single-use stream tokens shared by every instance (SET NX with expiry in Redis)."""

from __future__ import annotations

import redis.asyncio as redis


class RedisUsedTokens:
    def __init__(self, url: str, prefix: str = "phone-agent") -> None:
        self._redis = redis.Redis.from_url(url)
        self._prefix = f"{prefix}:token:"  # keys: <prefix>:token:<token id>

    async def claim(self, token_id: str, ttl_s: float) -> bool:
        # NX: only the first claim of a token succeeds, on whichever instance it lands.
        ok = await self._redis.set(self._prefix + token_id, b"1", nx=True, ex=max(1, int(ttl_s) + 1))
        return bool(ok)

    async def close(self) -> None:
        await self._redis.aclose()
