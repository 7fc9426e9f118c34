"""What every storage backend promises: the `Store` protocol, `Booking`, and the errors.

Bookings are the one place two phone calls can race for the same thing, so the contract
is strict: an active (day, time) slot has at most one booking, on every backend, across
processes; and a write carrying an idempotency key that was already used returns the
original result instead of writing again.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from tools.registry import ToolFailure

__all__ = [
    "Booking",
    "BookingStatus",
    "NotFound",
    "SlotTaken",
    "Store",
    "StoreError",
    "check_slot",
    "new_booking_id",
]

BookingStatus = Literal["active", "cancelled"]

# No 0/O, 1/I/L, 5/S, 8/B: booking ids are read aloud and typed back from speech.
_ID_ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679"
BOOKING_ID_LENGTH = 6


def new_booking_id() -> str:
    """A short, speakable, random booking id (26^6 ~ 3e8; collisions are retried)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(BOOKING_ID_LENGTH))


_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


def check_slot(day: dt.date, time: str) -> None:
    """Reject what would silently create a second key for one slot ("9:00" vs "09:00")."""
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    if not isinstance(time, str) or not _HHMM.match(time):
        raise ValueError(f"time must be 24-hour 'HH:MM', got {time!r}")


class StoreError(Exception):
    """Base class for storage errors a tool turns into a spoken answer."""


class StoreUnavailable(StoreError, ToolFailure):
    """The storage backend does not answer (Redis down, a timeout, a locked disk): nothing
    was changed, and the caller can be told so."""

    SENTENCE = "Our booking system is not answering right now."

    def __init__(self, cause: BaseException) -> None:
        super().__init__(self.SENTENCE, retryable=True)
        self.cause = cause


class SlotTaken(StoreError):
    """The (day, time) slot already has an active booking."""

    def __init__(self, day: dt.date, time: str) -> None:
        super().__init__(f"the {time} slot on {day.isoformat()} is already booked")
        self.day = day
        self.time = time


class NotFound(StoreError):
    """No such booking (or it is no longer active where an active one is needed)."""

    def __init__(self, booking_id: str, reason: str = "not found") -> None:
        super().__init__(f"booking {booking_id!r}: {reason}")
        self.booking_id = booking_id
        self.reason = reason


@dataclass(frozen=True)
class Booking:
    booking_id: str
    day: dt.date
    time: str  # "HH:MM", 24 h, already normalised by the caller
    name: str
    phone: str | None
    status: BookingStatus
    created_at: float  # unix seconds
    updated_at: float

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (phone included: this is for our code, not the model)."""
        return {
            "booking_id": self.booking_id,
            "day": self.day.isoformat(),
            "time": self.time,
            "name": self.name,
            "phone": self.phone,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@runtime_checkable
class Store(Protocol):
    """Shared state for all calls: bookings, call records, cached audio blobs."""

    # -- bookings ------------------------------------------------------------------
    async def book(
        self, day: dt.date, time: str, name: str, phone: str | None, idem_key: str
    ) -> Booking:
        """Book a free slot. Raises SlotTaken. A reused idem_key returns the first booking."""
        ...

    async def cancel(self, booking_id: str, idem_key: str | None = None) -> Booking:
        """Cancel and free the slot; cancelling a cancelled booking is a no-op. NotFound."""
        ...

    async def reschedule(
        self, booking_id: str, new_day: dt.date, new_time: str, idem_key: str
    ) -> Booking:
        """Move an active booking atomically: if the new slot is taken the old one stays."""
        ...

    async def get(self, booking_id: str) -> Booking:
        """Raises NotFound."""
        ...

    async def get_by_idem(self, idem_key: str) -> Booking | None:
        """The booking a previous write with this idempotency key touched, if any."""
        ...

    async def booked_times(self, day: dt.date) -> list[str]:
        """Sorted "HH:MM" of active bookings that day."""
        ...

    async def find_by_phone(self, phone: str) -> list[Booking]:
        """Active bookings for a phone number, soonest first."""
        ...

    # -- records (call records, registries): small JSON documents ---------------------
    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl_s: float | None = None
    ) -> None: ...

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def list_records(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        """Most recently written first; expired records are skipped."""
        ...

    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        """Read and delete in one atomic step (single-use tokens: only one taker wins)."""
        ...

    async def delete_record(self, kind: str, key: str) -> bool:
        """True if a live record was deleted."""
        ...

    # -- blobs (cached filler audio) -------------------------------------------------
    async def put_blob(self, key: str, data: bytes) -> None: ...

    async def get_blob(self, key: str) -> bytes | None: ...

    async def ping(self) -> None:
        """Raise (StoreUnavailable) if the backend does not answer: for readiness."""
        ...

    async def close(self) -> None: ...

    # -- personal data (tools/store/*_personal.py) -------------------------------------
    async def purge_bookings(self, before: dt.date) -> int:
        """Delete every booking, whatever its status, whose day is before `before`, with
        its slot, phone and idempotency entries. How many bookings went."""
        ...

    async def delete_bookings_of(self, phone: str) -> int:
        """Delete every booking, whatever its status, made from `phone` (as stored:
        normalised E.164), with its slot, phone and idempotency entries. How many went."""
        ...

    async def delete_records_where(self, kind: str, field: str, value: str) -> int:
        """Delete every record of `kind` whose top-level `field` equals `value` (a scan
        of that kind's records: for rare requests, not per call). How many went."""
        ...

    async def purge_expired_records(self) -> int:
        """Remove records whose TTL has passed but that still take space. How many."""
        ...

    async def put_record_if_absent(
        self, kind: str, key: str, value: dict[str, Any]
    ) -> dict[str, Any]:
        """Store `value` (no TTL) unless a live record has that key; the stored one wins.
        Atomic: of concurrent writers across processes, exactly one value is kept."""
        ...
