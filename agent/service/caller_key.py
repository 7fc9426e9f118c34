"""Finding a caller's call records by number without storing the number: a keyed hash.

Records show the caller masked (+1555***4567), which cannot be searched, so each record
also carries `caller_hash` = HMAC-SHA256(key, normalised number). A plain hash would
protect nothing: there are only about 10^10 phone numbers to try. Hence the key:

- `CALLER_HASH_KEY` when set. Keep it outside the store (environment, secret manager):
  then a copy of the store alone cannot confirm whose call a record is.
- Otherwise a random key generated once and kept in the store (record
  `secret/caller-hash-key`), so every instance on that store and every restart use the
  same one, and a fresh install needs no configuration.

If the key changes, records saved before can no longer be found by number (they still
expire after RECORD_RETENTION_DAYS). The store keeps an id of the key the service uses
(an HMAC of a constant, not the key), so `phone-agent data delete` run with another key
stops with an error instead of silently finding nothing, and the service logs a warning
when it starts with a new key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from tools.appointments import normalise_phone
from tools.store import Store

log = logging.getLogger(__name__)

KEY_KIND, KEY_NAME = "secret", "caller-hash-key"
MIN_KEY_CHARS = 16
CHANGED = (
    "call records saved before can no longer be found by number for deletion "
    "(they still expire after RECORD_RETENTION_DAYS)"
)


class CallerKeyError(RuntimeError):
    """The caller-hash key is unusable, or not the one the service uses."""


@dataclass(frozen=True)
class CallerHasher:
    key: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return hmac.new(self.key, b"phone-agent caller-hash key id", hashlib.sha256).hexdigest()[:16]

    def __call__(self, number: str | None) -> str | None:
        """The hash of a caller's number; None for withheld or non-numbers."""
        phone = normalise_phone(number)
        if phone is None:
            return None
        return hmac.new(self.key, phone.encode(), hashlib.sha256).hexdigest()[:32]


def configured_hasher(configured: str) -> CallerHasher:
    if len(configured) < MIN_KEY_CHARS:
        raise CallerKeyError(
            f"CALLER_HASH_KEY must be at least {MIN_KEY_CHARS} characters "
            "(e.g. the output of `openssl rand -hex 32`)"
        )
    return CallerHasher(configured.encode())


def _generated() -> dict[str, Any]:
    hasher = CallerHasher(secrets.token_bytes(32))
    return {"key": hasher.key.hex(), "key_id": hasher.key_id}


def _from_stored(stored: dict[str, Any]) -> CallerHasher:
    try:
        return CallerHasher(bytes.fromhex(str(stored["key"])))
    except (KeyError, ValueError):
        raise CallerKeyError(f"the stored caller-hash key ({KEY_KIND}/{KEY_NAME}) is damaged") from None


async def load_caller_hasher(store: Store, configured: str, *, adopt: bool) -> CallerHasher:
    """The hasher to use with `store`. `adopt` (the service): a key different from the one
    recorded becomes the recorded one, with a warning. Without it (the CLI): a different
    key is an error, because deletion would find none of the records."""
    stored = await store.get_record(KEY_KIND, KEY_NAME)
    if configured:
        hasher = configured_hasher(configured)
        if stored is None:
            await store.put_record_if_absent(KEY_KIND, KEY_NAME, {"key_id": hasher.key_id})
        elif stored.get("key_id") != hasher.key_id:
            if not adopt:
                raise CallerKeyError(
                    "this CALLER_HASH_KEY is not the key the service hashes callers with: "
                    + ("unset it here (the service uses the key kept in the store)"
                       if "key" in stored else "use the service's CALLER_HASH_KEY")
                )
            log.warning("CALLER_HASH_KEY is new or changed: %s", CHANGED)
            await store.put_record(KEY_KIND, KEY_NAME, {"key_id": hasher.key_id})
        return hasher
    if stored is None:
        return _from_stored(await store.put_record_if_absent(KEY_KIND, KEY_NAME, _generated()))
    if "key" in stored:
        return _from_stored(stored)
    # The service used a configured key, and none is configured now.
    if not adopt:
        raise CallerKeyError(
            "the service hashes callers with its CALLER_HASH_KEY: set the same one here"
        )
    log.warning("CALLER_HASH_KEY is no longer set; using a new key kept in the store: %s", CHANGED)
    fresh = _generated()
    await store.put_record(KEY_KIND, KEY_NAME, fresh)
    return _from_stored(fresh)


class CallerKeys:
    """The service's hasher. With CALLER_HASH_KEY it is ready at once; a stored key is
    loaded when the service starts. A call never waits on the store for it: while the
    store is unreachable a record goes without a hash, and a load is retried in the
    background."""

    def __init__(self, configured: str) -> None:
        self.configured = configured
        self._hasher = configured_hasher(configured) if configured else None  # fails early
        self._loaded = False
        self._loading: asyncio.Task[None] | None = None

    async def load(self, store: Store) -> None:
        """At start: a damaged stored key stops the service (CallerKeyError); an
        unreachable store only delays the key."""
        try:
            self._hasher = await load_caller_hasher(store, self.configured, adopt=True)
            self._loaded = True
        except CallerKeyError:
            raise
        except Exception as exc:  # noqa: BLE001 - store unreachable: retried on the next call
            log.warning("could not load the caller-hash key from the store: %s", exc)

    async def _retry(self, store: Store) -> None:
        try:
            await self.load(store)
        except CallerKeyError as exc:
            log.error("caller-hash key: %s", exc)

    def current(self, store: Store) -> CallerHasher | None:
        """The hasher now (None until a stored key has loaded); never waits."""
        if not self._loaded and (self._loading is None or self._loading.done()):
            self._loading = asyncio.create_task(self._retry(store), name="caller-key")
        return self._hasher

    async def aclose(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
