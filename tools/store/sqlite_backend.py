"""SQLite backend: one file, WAL, safe across threads and processes on one host.

Queries run on `SqlitePool`'s worker threads, never on the event loop.
Writes use `BEGIN IMMEDIATE`, which takes the write lock up front: the read-check-write
in `book` is then serialised across all connections and processes, and the partial
UNIQUE index on active (day, time) is the last line of defence.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time as _time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tools.store.base import Booking, NotFound, SlotTaken, check_slot, new_booking_id
from tools.store.outages import unavailable_on
from tools.store.sqlite_personal import SqlitePersonalData
from tools.store.sqlite_pool import SqlitePool, immediate

# The file cannot be used right now (locked past the busy timeout, a full or failing
# disk, gone): an outage. Other OperationalErrors are bugs and stay what they are.
_OUTAGE_TEXT = ("locked", "disk i/o", "unable to open", "readonly", "database or disk is full")
_outage = unavailable_on(
    lambda exc: isinstance(exc, sqlite3.OperationalError)
    and any(text in str(exc).lower() for text in _OUTAGE_TEXT)
)

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bookings (
    booking_id TEXT PRIMARY KEY,
    day        TEXT NOT NULL,
    time       TEXT NOT NULL,
    name       TEXT NOT NULL,
    phone      TEXT,
    status     TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
-- The guarantee: one active booking per slot, whatever the application code does.
CREATE UNIQUE INDEX IF NOT EXISTS bookings_active_slot
    ON bookings (day, time) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS bookings_active_phone
    ON bookings (phone, day, time) WHERE status = 'active';
CREATE TABLE IF NOT EXISTS idempotency (
    key        TEXT PRIMARY KEY,
    booking_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS blobs (
    key        TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    updated_at REAL NOT NULL
);
"""

_BOOKING_COLUMNS = "booking_id, day, time, name, phone, status, created_at, updated_at"
_ID_ATTEMPTS = 8


def _row_to_booking(row: sqlite3.Row) -> Booking:
    return Booking(
        booking_id=row["booking_id"],
        day=dt.date.fromisoformat(row["day"]),
        time=row["time"],
        name=row["name"],
        phone=row["phone"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqliteStore(SqlitePersonalData):
    """`Store` on a SQLite file (the embedded default when REDIS_URL is unset)."""

    def __init__(self, path: str | Path, *, threads: int = 4, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._pool = SqlitePool(self.path, _SCHEMA, threads=threads, busy_timeout_s=busy_timeout_s)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _conn(self) -> sqlite3.Connection:
        return self._pool.conn()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._pool.run(fn, *args)

    async def close(self) -> None:
        await self._pool.close()

    @_outage
    async def ping(self) -> None:
        await self._run(lambda: self._conn().execute("SELECT 1").fetchone())

    # -- bookings --------------------------------------------------------------------
    @staticmethod
    def _select(conn: sqlite3.Connection, booking_id: str) -> Booking | None:
        row = conn.execute(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE booking_id = ?", (booking_id,)
        ).fetchone()
        return _row_to_booking(row) if row else None

    @staticmethod
    def _prior(conn: sqlite3.Connection, idem_key: str | None) -> Booking | None:
        if idem_key is None:
            return None
        row = conn.execute(
            "SELECT booking_id FROM idempotency WHERE key = ?", (idem_key,)
        ).fetchone()
        return SqliteStore._select(conn, row[0]) if row else None

    @staticmethod
    def _remember(conn: sqlite3.Connection, idem_key: str | None, booking_id: str) -> None:
        if idem_key is not None:
            conn.execute(
                "INSERT INTO idempotency (key, booking_id, created_at) VALUES (?, ?, ?)",
                (idem_key, booking_id, _time.time()),
            )

    def _book(
        self, day: dt.date, time: str, name: str, phone: str | None, idem_key: str
    ) -> Booking:
        conn = self._conn()
        for _ in range(_ID_ATTEMPTS):
            try:
                with immediate(conn):
                    prior = self._prior(conn, idem_key)
                    if prior is not None:
                        return prior
                    taken = conn.execute(
                        "SELECT 1 FROM bookings WHERE day = ? AND time = ? AND status = 'active'",
                        (day.isoformat(), time),
                    ).fetchone()
                    if taken:
                        raise SlotTaken(day, time)
                    booking_id = new_booking_id()
                    if self._select(conn, booking_id) is not None:
                        continue  # id collision: draw again
                    now = _time.time()
                    conn.execute(
                        f"INSERT INTO bookings ({_BOOKING_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
                        (booking_id, day.isoformat(), time, name, phone, now, now),
                    )
                    self._remember(conn, idem_key, booking_id)
                    return Booking(booking_id, day, time, name, phone, "active", now, now)
            except sqlite3.IntegrityError as exc:
                # Unreachable while every writer uses BEGIN IMMEDIATE; kept as a backstop.
                if "bookings_active_slot" in str(exc) or "bookings.day" in str(exc):
                    raise SlotTaken(day, time) from exc
                raise
        raise RuntimeError("could not allocate a unique booking id")

    @_outage
    async def book(
        self, day: dt.date, time: str, name: str, phone: str | None, idem_key: str
    ) -> Booking:
        check_slot(day, time)
        if not idem_key:
            raise ValueError("book() needs a non-empty idem_key")
        return await self._run(self._book, day, time, name, phone, idem_key)

    def _cancel(self, booking_id: str, idem_key: str | None) -> Booking:
        conn = self._conn()
        with immediate(conn):
            prior = self._prior(conn, idem_key)
            if prior is not None:
                return prior
            booking = self._select(conn, booking_id)
            if booking is None:
                raise NotFound(booking_id)
            if booking.active:
                now = _time.time()
                conn.execute(
                    "UPDATE bookings SET status = 'cancelled', updated_at = ? WHERE booking_id = ?",
                    (now, booking_id),
                )
                booking = Booking(
                    booking.booking_id, booking.day, booking.time, booking.name,
                    booking.phone, "cancelled", booking.created_at, now,
                )  # fmt: skip
            self._remember(conn, idem_key, booking_id)
            return booking

    @_outage
    async def cancel(self, booking_id: str, idem_key: str | None = None) -> Booking:
        return await self._run(self._cancel, booking_id, idem_key)

    def _reschedule(
        self, booking_id: str, new_day: dt.date, new_time: str, idem_key: str
    ) -> Booking:
        conn = self._conn()
        with immediate(conn):
            prior = self._prior(conn, idem_key)
            if prior is not None:
                return prior
            booking = self._select(conn, booking_id)
            if booking is None:
                raise NotFound(booking_id)
            if not booking.active:
                raise NotFound(booking_id, "it was cancelled")
            if (booking.day, booking.time) != (new_day, new_time):
                holder = conn.execute(
                    "SELECT 1 FROM bookings WHERE day = ? AND time = ? AND status = 'active'",
                    (new_day.isoformat(), new_time),
                ).fetchone()
                if holder:
                    raise SlotTaken(new_day, new_time)  # rollback: the old slot stays booked
                now = _time.time()
                conn.execute(
                    "UPDATE bookings SET day = ?, time = ?, updated_at = ? WHERE booking_id = ?",
                    (new_day.isoformat(), new_time, now, booking_id),
                )
                booking = Booking(
                    booking.booking_id, new_day, new_time, booking.name,
                    booking.phone, "active", booking.created_at, now,
                )  # fmt: skip
            self._remember(conn, idem_key, booking_id)
            return booking

    @_outage
    async def reschedule(
        self, booking_id: str, new_day: dt.date, new_time: str, idem_key: str
    ) -> Booking:
        check_slot(new_day, new_time)
        if not idem_key:
            raise ValueError("reschedule() needs a non-empty idem_key")
        return await self._run(self._reschedule, booking_id, new_day, new_time, idem_key)

    def _get(self, booking_id: str) -> Booking:
        booking = self._select(self._conn(), booking_id)
        if booking is None:
            raise NotFound(booking_id)
        return booking

    @_outage
    async def get(self, booking_id: str) -> Booking:
        return await self._run(self._get, booking_id)

    @_outage
    async def get_by_idem(self, idem_key: str) -> Booking | None:
        return await self._run(lambda: self._prior(self._conn(), idem_key))

    def _booked_times(self, day: dt.date) -> list[str]:
        rows = self._conn().execute(
            "SELECT time FROM bookings WHERE day = ? AND status = 'active' ORDER BY time",
            (day.isoformat(),),
        )
        return [r[0] for r in rows]

    @_outage
    async def booked_times(self, day: dt.date) -> list[str]:
        return await self._run(self._booked_times, day)

    def _find_by_phone(self, phone: str) -> list[Booking]:
        rows = self._conn().execute(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE phone = ? AND status = 'active' "
            "ORDER BY day, time",
            (phone,),
        )
        return [_row_to_booking(r) for r in rows]

    @_outage
    async def find_by_phone(self, phone: str) -> list[Booking]:
        return await self._run(self._find_by_phone, phone)

    # -- records -----------------------------------------------------------------------
    def _put_record(self, kind: str, key: str, payload: str, ttl_s: float | None) -> None:
        conn = self._conn()
        now = _time.time()
        with immediate(conn):
            conn.execute(
                "DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            )
            # REPLACE deletes then inserts, so the rowid grows: rowid order == write order.
            conn.execute(
                "INSERT OR REPLACE INTO records (kind, key, value, expires_at) VALUES (?, ?, ?, ?)",
                (kind, key, payload, now + ttl_s if ttl_s is not None else None),
            )

    @_outage
    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl_s: float | None = None
    ) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        payload = json.dumps(value, separators=(",", ":"))  # fail here, not on read
        await self._run(self._put_record, kind, key, payload, ttl_s)

    def _get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(
                "SELECT value FROM records WHERE kind = ? AND key = ? "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (kind, key, _time.time()),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    @_outage
    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        return await self._run(self._get_record, kind, key)

    def _list_records(self, kind: str, limit: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT value FROM records WHERE kind = ? AND (expires_at IS NULL OR expires_at > ?) "
            "ORDER BY rowid DESC LIMIT ?",
            (kind, _time.time(), limit),
        )
        return [json.loads(r[0]) for r in rows]

    @_outage
    async def list_records(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        return await self._run(self._list_records, kind, limit)

    def _take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        conn = self._conn()
        with immediate(conn):
            row = conn.execute(
                "SELECT value, expires_at FROM records WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
        expired = row["expires_at"] is not None and row["expires_at"] <= _time.time()
        return None if expired else json.loads(row["value"])

    @_outage
    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        return await self._run(self._take_record, kind, key)

    @_outage
    async def delete_record(self, kind: str, key: str) -> bool:
        return await self.take_record(kind, key) is not None

    # -- blobs -------------------------------------------------------------------------
    def _put_blob(self, key: str, data: bytes) -> None:
        conn = self._conn()
        with immediate(conn):
            conn.execute(
                "INSERT OR REPLACE INTO blobs (key, data, updated_at) VALUES (?, ?, ?)",
                (key, sqlite3.Binary(data), _time.time()),
            )

    @_outage
    async def put_blob(self, key: str, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"blob data must be bytes, got {type(data).__name__}")
        await self._run(self._put_blob, key, bytes(data))

    def _get_blob(self, key: str) -> bytes | None:
        row = self._conn().execute("SELECT data FROM blobs WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    @_outage
    async def get_blob(self, key: str) -> bytes | None:
        return await self._run(self._get_blob, key)
