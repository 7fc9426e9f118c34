"""Personal data in the SQLite store: bookings purged after their day, one caller's data
deleted on request, expired records removed from the file.

A mixin of `SqliteStore` (it uses the store's connection pool), kept apart so that the
booking logic and the data-protection duties each read on their own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from typing import Any

from tools.store.sqlite_pool import SqlitePool, immediate

__all__ = ["SqlitePersonalData", "check_field"]

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_field(field: str) -> None:
    """A top-level record field name; anything else could not be a JSON path we build."""
    if not isinstance(field, str) or not _FIELD.match(field):
        raise ValueError(f"field must be a plain name like 'caller_hash', got {field!r}")


class SqlitePersonalData:
    _pool: SqlitePool  # set by SqliteStore

    # -- bookings --------------------------------------------------------------------
    async def purge_bookings(self, before: dt.date) -> int:
        if not isinstance(before, dt.date) or isinstance(before, dt.datetime):
            raise TypeError(f"before must be a datetime.date, got {type(before).__name__}")
        return await self._pool.run(self._delete_bookings, "day < ?", before.isoformat())

    async def delete_bookings_of(self, phone: str) -> int:
        if not phone:
            raise ValueError("delete_bookings_of() needs a phone number")
        return await self._pool.run(self._delete_bookings, "phone = ?", phone)

    def _delete_bookings(self, where: str, arg: str) -> int:
        # `where` is one of the two constants above, never caller input.
        conn = self._pool.conn()
        with immediate(conn):
            # Idempotency keys first: left behind, a replayed call would find a booking id
            # that no longer exists instead of writing afresh.
            conn.execute(
                "DELETE FROM idempotency WHERE booking_id IN "
                f"(SELECT booking_id FROM bookings WHERE {where})",
                (arg,),
            )
            return conn.execute(f"DELETE FROM bookings WHERE {where}", (arg,)).rowcount

    # -- records ---------------------------------------------------------------------
    async def delete_records_where(self, kind: str, field: str, value: str) -> int:
        check_field(field)
        return await self._pool.run(self._delete_records_where, kind, f"$.{field}", value)

    def _delete_records_where(self, kind: str, path: str, value: str) -> int:
        conn = self._pool.conn()
        with immediate(conn):
            return conn.execute(
                "DELETE FROM records WHERE kind = ? AND json_extract(value, ?) = ?",
                (kind, path, value),
            ).rowcount

    async def purge_expired_records(self) -> int:
        return await self._pool.run(self._purge_expired_records)

    def _purge_expired_records(self) -> int:
        # Expired rows are otherwise removed only on the next write: an idle line would
        # keep records on disk past their retention.
        conn = self._pool.conn()
        with immediate(conn):
            return conn.execute(
                "DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (time.time(),),
            ).rowcount

    async def put_record_if_absent(
        self, kind: str, key: str, value: dict[str, Any]
    ) -> dict[str, Any]:
        payload = json.dumps(value, separators=(",", ":"))
        return await self._pool.run(self._put_record_if_absent, kind, key, payload)

    def _put_record_if_absent(self, kind: str, key: str, payload: str) -> dict[str, Any]:
        conn: sqlite3.Connection = self._pool.conn()
        with immediate(conn):
            row = conn.execute(
                "SELECT value FROM records WHERE kind = ? AND key = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (kind, key, time.time()),
            ).fetchone()
            if row is not None:
                stored: dict[str, Any] = json.loads(row[0])
                return stored
            conn.execute(
                "INSERT OR REPLACE INTO records (kind, key, value, expires_at) VALUES (?, ?, ?, NULL)",
                (kind, key, payload),
            )
        fresh: dict[str, Any] = json.loads(payload)
        return fresh
