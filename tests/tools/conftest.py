"""Store fixtures: every store test runs on a real SQLite file and on the real Redis.

Redis is not optional: if it does not answer, the Redis half of the suite fails (it
does not skip), because `make test` guarantees one is running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from tools.store import RedisStore, SqliteStore, Store, open_store

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The Redis URL, after checking it answers; fails the test with the reason if not."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis at {REDIS_URL} is not reachable ({exc}). `make test` starts one; "
            "or set REDIS_URL to a running server.",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def purge_prefix(url: str, prefix: str) -> int:
    """Delete every key a RedisStore with `prefix` may have written."""
    client = aioredis.from_url(url)
    deleted = 0
    try:
        for pattern in ("{" + prefix + "}:*", prefix + ":*"):
            keys = [k async for k in client.scan_iter(match=pattern, count=500)]
            if keys:
                deleted += await client.delete(*keys)
    finally:
        await client.aclose()
    return deleted


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = open_store(None, tmp_path / "data")
    assert isinstance(store, SqliteStore)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisStore]:
    url = require_redis()
    prefix = unique_prefix()
    store = open_store(url, "unused", prefix=prefix)
    assert isinstance(store, RedisStore)
    try:
        yield store
    finally:
        await store.close()
        await purge_prefix(url, prefix)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    """The same tests, once per backend."""
    return request.getfixturevalue(f"{request.param}_store")
