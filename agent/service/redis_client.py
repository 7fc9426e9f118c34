"""The process's one Redis client: one connection pool for the store, the live-call
registry and the used stream tokens, with timeouts so that a Redis that is down or hung
costs a request about two seconds, never forever.

Replies are bytes (the store keeps audio blobs); text is decoded where it is read.
Pub/sub reads block without the socket timeout (redis-py >= 8 reads them with none).
"""

from __future__ import annotations

import redis.asyncio as aioredis

REDIS_TIMEOUT_S = 2.0  # connect, and each reply


def open_redis(url: str) -> aioredis.Redis:
    """A client for `url`; nothing connects until the first command."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        # Idle pooled connections are checked before use, so the first command after an
        # outage does not fail on a connection Redis dropped long ago.
        health_check_interval=15,
    )
