"""Storage: one protocol (`Store`), two real backends, and `open_store` to pick one.

store = open_store(settings.redis_url, settings.data_dir)
async with store:
    booking = await store.book(day, "10:00", "Ada", "+15550100", ctx.idempotency_key)
"""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from tools.store.base import (
    Booking,
    BookingStatus,
    NotFound,
    SlotTaken,
    Store,
    StoreError,
    StoreUnavailable,
    check_slot,
    new_booking_id,
)
from tools.store.redis_backend import RedisStore
from tools.store.sqlite_backend import SqliteStore

__all__ = [
    "DB_FILENAME",
    "Booking",
    "BookingStatus",
    "NotFound",
    "RedisStore",
    "SlotTaken",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "check_slot",
    "new_booking_id",
    "open_store",
]

DB_FILENAME = "phone-agent.db"


def open_store(
    redis_url: str | None,
    data_dir: Path | str,
    *,
    prefix: str = "phone-agent",
    client: aioredis.Redis | None = None,
) -> Store:
    """Redis when a URL is configured (multi-instance), else SQLite at DATA_DIR/phone-agent.db.

    Nothing connects here; the first operation does. Close with `await store.close()`
    or use `async with store:`.
    """
    if client is not None:
        return RedisStore(client=client, prefix=prefix)
    if redis_url:
        return RedisStore(redis_url, prefix=prefix)
    return SqliteStore(Path(data_dir) / DB_FILENAME)
