"""Deleting one caller's data on request: their bookings and their call records.

Used by `phone-agent data delete --phone` and `DELETE /admin/callers/{phone}`. Bookings
carry the caller's normalised number; call records carry only a keyed hash of it
(`agent/service/caller_key.py`), so the number is hashed with the service's key first.

Not covered: a call of that caller still in progress (its record is saved when it ends:
run the deletion again after), and logs, which hold numbers only masked.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from agent.service.caller_key import CallerHasher
from telephony.numbers import mask_number
from tools.appointments import normalise_phone
from tools.store import Store

log = logging.getLogger(__name__)


class NotAPhoneNumber(ValueError):
    pass


@dataclass(frozen=True)
class Forgotten:
    caller: str  # masked
    bookings: int
    records: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def caller_number(text: str) -> str:
    """The number as bookings store it; only E.164 (+ and country code), because a
    number without its country code would silently match nothing."""
    phone = normalise_phone(text)
    if phone is None or not phone.startswith("+") or not 8 <= len(phone) <= 16:
        raise NotAPhoneNumber(f"not an E.164 phone number like +15551234567: {text[:40]!r}")
    return phone


async def forget_caller(store: Store, hasher: CallerHasher, number: str) -> Forgotten:
    phone = caller_number(number)
    bookings = await store.delete_bookings_of(phone)
    records = 0
    caller_hash = hasher(phone)
    if caller_hash is not None:
        records = await store.delete_records_where("call", "caller_hash", caller_hash)
    done = Forgotten(mask_number(phone), bookings, records)
    log.info("deleted the data of caller %s: %d bookings, %d call records",
             done.caller, bookings, records)
    return done
