"""Operations tests: admin API, registry, several instances, drain, Twilio set-up, console.

Redis is required, never skipped: `make test` exports REDIS_URL of a server that answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis


def require_redis() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: `make test` starts a Redis and sets it", pytrace=False)
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer ({exc})", pytrace=False)
    finally:
        client.close()
    return url


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test-ops-{uuid.uuid4().hex[:10]}"


async def delete_matching(client: aioredis.Redis, *patterns: str) -> int:
    deleted = 0
    for pattern in patterns:
        keys = [k async for k in client.scan_iter(match=pattern, count=500)]
        if keys:
            deleted += await client.delete(*keys)
    return deleted
