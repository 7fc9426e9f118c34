"""Redis backend: shared state for many instances behind one load balancer.

Every booking write is one Lua script, so check-slot / check-idempotency / write happen
atomically on the server whatever the number of clients. All booking keys share one
hash tag (`{prefix}`), which keeps the scripts valid on Redis Cluster: the keys a
script touches must live in one slot.
"""

from __future__ import annotations

import datetime as dt
import json
import time as _time
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tools.store.base import Booking, NotFound, SlotTaken, check_slot, new_booking_id
from tools.store.outages import unavailable_on
from tools.store.redis_personal import RedisPersonalData

# Redis down, unreachable or too slow (the client's socket timeouts): nothing was done.
_outage = unavailable_on(
    lambda exc: isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)
)

__all__ = ["RedisStore"]

# Long enough to cover any replay of a call (Twilio retries, our own retries, a
# re-run of a recorded fixture), short enough that the keys do not pile up forever.
IDEMPOTENCY_TTL_S = 30 * 24 * 3600
_ATTEMPTS = 8

# KEYS: idem, slots(day), booking, phone-set
# ARGV: time, booking_id, day, name, phone ('' = none), now, idem_ttl
_BOOK = """
local prior = redis.call('GET', KEYS[1])
if prior then return {'replay', prior} end
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if holder then return {'taken', holder} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'collision', ARGV[2]} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'booking_id', ARGV[2], 'day', ARGV[3], 'time', ARGV[1],
           'name', ARGV[4], 'phone', ARGV[5], 'status', 'active',
           'created_at', ARGV[6], 'updated_at', ARGV[6])
if ARGV[5] ~= '' then redis.call('SADD', KEYS[4], ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[7])
return {'ok', ARGV[2]}
"""

# The caller read the booking first to learn which slot/phone keys to declare; if the
# booking moved in between, the script says 'stale' and the caller reads again.
# KEYS: idem ('' flag in ARGV), booking, slots(day), phone-set
# ARGV: booking_id, day, time, now, use_idem ('1'/'0'), idem_ttl
_CANCEL = """
if ARGV[5] == '1' then
  local prior = redis.call('GET', KEYS[1])
  if prior then return {'replay', prior} end
end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', ARGV[1]} end
local st = redis.call('HMGET', KEYS[2], 'status', 'day', 'time')
if st[2] ~= ARGV[2] or st[3] ~= ARGV[3] then return {'stale', ARGV[1]} end
if st[1] == 'active' then
  if redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[3]) end
  redis.call('HSET', KEYS[2], 'status', 'cancelled', 'updated_at', ARGV[4])
  redis.call('SREM', KEYS[4], ARGV[1])
end
if ARGV[5] == '1' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[6]) end
return {'ok', ARGV[1]}
"""

# KEYS: idem, booking, old slots(day), new slots(day)
# ARGV: booking_id, old_day, old_time, new_day, new_time, now, idem_ttl
_RESCHEDULE = """
local prior = redis.call('GET', KEYS[1])
if prior then return {'replay', prior} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', ARGV[1]} end
local st = redis.call('HMGET', KEYS[2], 'status', 'day', 'time')
if st[1] ~= 'active' then return {'inactive', ARGV[1]} end
if st[2] ~= ARGV[2] or st[3] ~= ARGV[3] then return {'stale', ARGV[1]} end
if ARGV[2] ~= ARGV[4] or ARGV[3] ~= ARGV[5] then
  local holder = redis.call('HGET', KEYS[4], ARGV[5])
  if holder then return {'taken', holder} end
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[1])
  if redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[3]) end
  redis.call('HSET', KEYS[2], 'day', ARGV[4], 'time', ARGV[5], 'updated_at', ARGV[6])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[7])
return {'ok', ARGV[1]}
"""

# Record write + recency index in one step; a counter (not the clock) orders writes, so
# two writes in the same microsecond still list in the order they happened.
# KEYS: record, index, seq   ARGV: key, json, ttl_ms ('' = none)
_PUT_RECORD = """
local seq = redis.call('INCR', KEYS[3])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('ZADD', KEYS[2], seq, ARGV[1])
return seq
"""


def _now() -> str:
    return repr(_time.time())


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _hash_to_booking(h: dict[bytes, bytes]) -> Booking:
    d = {_s(k): _s(v) for k, v in h.items()}
    return Booking(
        booking_id=d["booking_id"],
        day=dt.date.fromisoformat(d["day"]),
        time=d["time"],
        name=d["name"],
        phone=d["phone"] or None,
        status=d["status"],  # type: ignore[arg-type]  # written only by our scripts
        created_at=float(d["created_at"]),
        updated_at=float(d["updated_at"]),
    )


class RedisStore(RedisPersonalData):
    """`Store` on Redis (set REDIS_URL); safe for any number of app instances."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "phone-agent",
    ) -> None:
        """On `client` (shared, bytes replies; the caller closes it) or a client of its own
        for `url`."""
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must not contain braces (it becomes a hash tag): {prefix!r}")
        if (url is None) == (client is None):
            raise ValueError("RedisStore takes a url or a client, not both")
        self.url = url
        self.prefix = prefix
        self._owns_client = client is None
        # Bytes in, bytes out: blobs are audio; text fields are decoded explicitly.
        self._redis = client or aioredis.from_url(
            url or "", decode_responses=False, socket_connect_timeout=2.0, socket_timeout=2.0
        )
        self._book_script = self._redis.register_script(_BOOK)
        self._cancel_script = self._redis.register_script(_CANCEL)
        self._reschedule_script = self._redis.register_script(_RESCHEDULE)
        self._put_record_script = self._redis.register_script(_PUT_RECORD)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    @_outage
    async def ping(self) -> None:
        """Raise if Redis does not answer (for readiness checks)."""
        await self._redis.ping()

    # -- key layout ------------------------------------------------------------------
    def _k(self, *parts: str) -> str:
        return ":".join(("{" + self.prefix + "}", *parts))

    def _idem(self, key: str) -> str:
        return self._k("idem", key)

    def _booking(self, booking_id: str) -> str:
        return self._k("booking", booking_id)

    def _slots(self, day: dt.date | str) -> str:
        return self._k("slots", day if isinstance(day, str) else day.isoformat())

    def _phone(self, phone: str | None) -> str:
        return self._k("phone", phone or "")

    def _rec(self, kind: str, *parts: str) -> str:
        # Hash tag per kind: a record and its index must share a slot, kinds need not.
        return ":".join((self.prefix, "rec", "{" + kind + "}", *parts))

    def _blob(self, key: str) -> str:
        return ":".join((self.prefix, "blob", key))

    # -- bookings --------------------------------------------------------------------
    @_outage
    async def book(
        self, day: dt.date, time: str, name: str, phone: str | None, idem_key: str
    ) -> Booking:
        check_slot(day, time)
        if not idem_key:
            raise ValueError("book() needs a non-empty idem_key")
        for _ in range(_ATTEMPTS):
            booking_id = new_booking_id()
            now = _now()
            status, ref = await self._book_script(
                keys=[self._idem(idem_key), self._slots(day), self._booking(booking_id),
                      self._phone(phone)],
                args=[time, booking_id, day.isoformat(), name, phone or "", now,
                      IDEMPOTENCY_TTL_S],
            )  # fmt: skip
            status = _s(status)
            if status == "ok":  # we wrote exactly these fields: no second round trip
                created = float(now)
                return Booking(
                    booking_id, day, time, name, phone or None, "active", created, created
                )
            if status == "replay":
                return await self.get(_s(ref))
            if status == "taken":
                raise SlotTaken(day, time)
            # 'collision': that random id exists already; draw another.
        raise RuntimeError("could not allocate a unique booking id")

    @_outage
    async def cancel(self, booking_id: str, idem_key: str | None = None) -> Booking:
        if idem_key is not None:
            prior = await self.get_by_idem(idem_key)
            if prior is not None:
                return prior
        for _ in range(_ATTEMPTS):
            current = await self.get(booking_id)
            status, ref = await self._cancel_script(
                keys=[self._idem(idem_key or ""), self._booking(booking_id),
                      self._slots(current.day), self._phone(current.phone)],
                args=[booking_id, current.day.isoformat(), current.time, _now(),
                      "1" if idem_key else "0", IDEMPOTENCY_TTL_S],
            )  # fmt: skip
            status = _s(status)
            if status in ("ok", "replay"):
                return await self.get(_s(ref))
            if status == "missing":
                raise NotFound(booking_id)
            # 'stale': rescheduled between our read and the script; read again.
        raise RuntimeError(f"booking {booking_id!r} kept changing; cancel not applied")

    @_outage
    async def reschedule(
        self, booking_id: str, new_day: dt.date, new_time: str, idem_key: str
    ) -> Booking:
        check_slot(new_day, new_time)
        if not idem_key:
            raise ValueError("reschedule() needs a non-empty idem_key")
        prior = await self.get_by_idem(idem_key)
        if prior is not None:
            return prior
        for _ in range(_ATTEMPTS):
            current = await self.get(booking_id)
            if not current.active:
                raise NotFound(booking_id, "it was cancelled")
            status, ref = await self._reschedule_script(
                keys=[self._idem(idem_key), self._booking(booking_id),
                      self._slots(current.day), self._slots(new_day)],
                args=[booking_id, current.day.isoformat(), current.time, new_day.isoformat(),
                      new_time, _now(), IDEMPOTENCY_TTL_S],
            )  # fmt: skip
            status = _s(status)
            if status in ("ok", "replay"):
                return await self.get(_s(ref))
            if status == "taken":
                raise SlotTaken(new_day, new_time)
            if status == "missing":
                raise NotFound(booking_id)
            if status == "inactive":
                raise NotFound(booking_id, "it was cancelled")
        raise RuntimeError(f"booking {booking_id!r} kept changing; reschedule not applied")

    @_outage
    async def get(self, booking_id: str) -> Booking:
        h = cast(dict[bytes, bytes], await self._redis.hgetall(self._booking(booking_id)))
        if not h:
            raise NotFound(booking_id)
        return _hash_to_booking(h)

    @_outage
    async def get_by_idem(self, idem_key: str) -> Booking | None:
        ref = await self._redis.get(self._idem(idem_key))
        if ref is None:
            return None
        return await self.get(_s(ref))

    @_outage
    async def booked_times(self, day: dt.date) -> list[str]:
        return sorted(_s(t) for t in await self._redis.hkeys(self._slots(day)))

    @_outage
    async def find_by_phone(self, phone: str) -> list[Booking]:
        ids = await self._redis.smembers(self._phone(phone))
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for booking_id in ids:
                pipe.hgetall(self._booking(_s(booking_id)))
            hashes = await pipe.execute()
        bookings = [_hash_to_booking(h) for h in hashes if h]
        return sorted((b for b in bookings if b.active), key=lambda b: (b.day, b.time))

    # -- records -----------------------------------------------------------------------
    @_outage
    async def put_record(
        self, kind: str, key: str, value: dict[str, Any], ttl_s: float | None = None
    ) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        payload = json.dumps(value, separators=(",", ":"))
        ttl_ms = "" if ttl_s is None else str(max(1, int(ttl_s * 1000)))
        await self._put_record_script(
            keys=[self._rec(kind, "item", key), self._rec(kind, "index"), self._rec(kind, "seq")],
            args=[key, payload, ttl_ms],
        )

    @_outage
    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._rec(kind, "item", key))
        return json.loads(raw) if raw is not None else None

    @_outage
    async def list_records(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        index = self._rec(kind, "index")
        out: list[dict[str, Any]] = []
        start = 0
        while len(out) < limit:
            keys = cast(list[bytes], await self._redis.zrevrange(index, start, start + limit - 1))
            if not keys:
                break
            values = await self._redis.mget([self._rec(kind, "item", _s(k)) for k in keys])
            expired = [k for k, v in zip(keys, values, strict=True) if v is None]
            out.extend(json.loads(v) for v in values if v is not None)
            if expired:  # the record's TTL fired; drop it from the recency index too
                await self._redis.zrem(index, *expired)
            start += len(keys) - len(expired)
        return out[:limit]

    @_outage
    async def take_record(self, kind: str, key: str) -> dict[str, Any] | None:
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC: atomic
            pipe.getdel(self._rec(kind, "item", key))
            pipe.zrem(self._rec(kind, "index"), key)
            raw, _ = await pipe.execute()
        return json.loads(raw) if raw is not None else None

    @_outage
    async def delete_record(self, kind: str, key: str) -> bool:
        return await self.take_record(kind, key) is not None

    # -- blobs -------------------------------------------------------------------------
    @_outage
    async def put_blob(self, key: str, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"blob data must be bytes, got {type(data).__name__}")
        await self._redis.set(self._blob(key), bytes(data))

    @_outage
    async def get_blob(self, key: str) -> bytes | None:
        return cast(bytes | None, await self._redis.get(self._blob(key)))
