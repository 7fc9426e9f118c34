"""Personal data in the Redis store: bookings purged after their day, one caller's data
deleted on request.

A mixin of `RedisStore` (it uses the store's client and key layout). Bookings have no
index by day or by phone that covers cancelled ones, so both deletions SCAN the
booking hashes (all under the store's one hash tag) and then remove each booking with
its slot entry, phone-set entry and idempotency keys in one script, re-checking inside
the script that the booking is still the one that was read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis

from tools.store.sqlite_personal import check_field

__all__ = ["RedisPersonalData"]

_BATCH = 500
_ATTEMPTS = 8

# KEYS: booking, slots(day), phone-set, idem keys...   ARGV: booking_id, day, phone
# 1: deleted; 0: already gone; -1: the booking moved or changed since it was read.
_DELETE_BOOKING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local st = redis.call('HMGET', KEYS[1], 'day', 'time', 'phone')
if st[1] ~= ARGV[2] or st[3] ~= ARGV[3] then return -1 end
if redis.call('HGET', KEYS[2], st[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], st[2]) end
redis.call('SREM', KEYS[3], ARGV[1])
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: record, index, seq   ARGV: key, json
_PUT_IF_ABSENT = """
local current = redis.call('GET', KEYS[1])
if current then return current end
local seq = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return ARGV[2]
"""

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def _glob(literal: str) -> str:
    """`literal` as a SCAN MATCH pattern that matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", literal)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisPersonalData:
    prefix: str
    _redis: aioredis.Redis  # set by RedisStore

    if TYPE_CHECKING:  # RedisStore's key layout

        def _k(self, *parts: str) -> str: ...
        def _booking(self, booking_id: str) -> str: ...
        def _slots(self, day: dt.date | str) -> str: ...
        def _phone(self, phone: str | None) -> str: ...
        def _rec(self, kind: str, *parts: str) -> str: ...

    # -- bookings --------------------------------------------------------------------
    async def purge_bookings(self, before: dt.date) -> int:
        if not isinstance(before, dt.date) or isinstance(before, dt.datetime):
            raise TypeError(f"before must be a datetime.date, got {type(before).__name__}")
        cutoff = before.isoformat()  # ISO dates order as strings do
        return await self._delete_bookings(lambda fields: fields["day"] < cutoff)

    async def delete_bookings_of(self, phone: str) -> int:
        if not phone:
            raise ValueError("delete_bookings_of() needs a phone number")
        return await self._delete_bookings(lambda fields: fields["phone"] == phone)

    async def _delete_bookings(self, doomed: Callable[[dict[str, str]], bool]) -> int:
        targets = {bid: f for bid, f in (await self._scan_bookings()).items() if doomed(f)}
        if not targets:
            return 0
        idem = await self._idem_keys_of(set(targets))
        script = self._redis.register_script(_DELETE_BOOKING)
        deleted = 0
        for booking_id, fields in targets.items():
            for _ in range(_ATTEMPTS):
                keys = [self._booking(booking_id), self._slots(fields["day"]),
                        self._phone(fields["phone"] or None), *idem.get(booking_id, [])]  # fmt: skip
                outcome = int(await script(keys=keys, args=[booking_id, fields["day"], fields["phone"]]))
                if outcome != -1:
                    deleted += outcome
                    break
                # Rescheduled between the scan and now: judge it again as it is.
                fresh = await self._booking_fields(booking_id)
                if fresh is None or not doomed(fresh):
                    break
                fields = fresh
        return deleted

    async def _scan_bookings(self) -> dict[str, dict[str, str]]:
        """booking_id -> {day, phone} of every booking, whatever its status."""
        marker = self._booking("")
        out: dict[str, dict[str, str]] = {}
        batch: list[str] = []

        async def read(keys: list[str]) -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, ["day", "phone"])
                rows = await pipe.execute()
            for key, (day, phone) in zip(keys, rows, strict=True):
                if day is not None:  # deleted since the scan saw it
                    out[key[len(marker):]] = {"day": _s(day), "phone": _s(phone or b"")}

        async for raw in self._redis.scan_iter(match=_glob(marker) + "*", count=_BATCH):
            batch.append(_s(raw))
            if len(batch) >= _BATCH:
                await read(batch)
                batch = []
        if batch:
            await read(batch)
        return out

    async def _booking_fields(self, booking_id: str) -> dict[str, str] | None:
        day, phone = await self._redis.hmget(self._booking(booking_id), ["day", "phone"])
        if day is None:
            return None
        return {"day": _s(day), "phone": _s(phone or b"")}

    async def _idem_keys_of(self, booking_ids: set[str]) -> dict[str, list[str]]:
        """The idempotency keys that point at these bookings (each is a plain string)."""
        out: dict[str, list[str]] = {}
        batch: list[str] = []

        async def read(keys: list[str]) -> None:
            values = await self._redis.mget(keys)
            for key, value in zip(keys, values, strict=True):
                if value is not None and _s(value) in booking_ids:
                    out.setdefault(_s(value), []).append(key)

        async for raw in self._redis.scan_iter(match=_glob(self._k("idem")) + ":*", count=_BATCH):
            batch.append(_s(raw))
            if len(batch) >= _BATCH:
                await read(batch)
                batch = []
        if batch:
            await read(batch)
        return out

    # -- records -----------------------------------------------------------------------
    async def delete_records_where(self, kind: str, field: str, value: str) -> int:
        check_field(field)
        index = self._rec(kind, "index")
        deleted = 0
        batch: list[str] = []

        async def sweep(keys: list[str]) -> int:
            raws = await self._redis.mget([self._rec(kind, "item", k) for k in keys])
            gone = [k for k, raw in zip(keys, raws, strict=True) if raw is None]
            doomed = [
                k for k, raw in zip(keys, raws, strict=True)
                if raw is not None and _matches(raw, field, value)
            ]  # fmt: skip
            if not doomed and not gone:
                return 0
            async with self._redis.pipeline(transaction=True) as pipe:
                for k in doomed:
                    pipe.delete(self._rec(kind, "item", k))
                pipe.zrem(index, *doomed, *gone)  # expired ones leave the index too
                results = await pipe.execute()
            return sum(int(r) for r in results[: len(doomed)])

        async for member, _score in self._redis.zscan_iter(index, count=_BATCH):
            batch.append(_s(member))
            if len(batch) >= _BATCH:
                deleted += await sweep(batch)
                batch = []
        if batch:
            deleted += await sweep(batch)
        return deleted

    async def purge_expired_records(self) -> int:
        """Redis deletes expired keys itself; nothing is left to purge."""
        return 0

    async def put_record_if_absent(
        self, kind: str, key: str, value: dict[str, Any]
    ) -> dict[str, Any]:
        payload = json.dumps(value, separators=(",", ":"))
        script = self._redis.register_script(_PUT_IF_ABSENT)
        raw = await script(
            keys=[self._rec(kind, "item", key), self._rec(kind, "index"), self._rec(kind, "seq")],
            args=[key, payload],
        )
        return cast(dict[str, Any], json.loads(raw))


def _matches(raw: bytes | str, field: str, value: str) -> bool:
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get(field) == value
