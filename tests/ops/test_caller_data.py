"""Deleting one caller's data: the keyed caller hash, `phone-agent data delete`, and
`DELETE /admin/callers/{phone}` on a real server, each on a SQLite file and on Redis.

The CLI and the server use the store's default Redis prefix, as in production: these
tests use numbers and far-future days of their own and delete what they wrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from agent.cli import main
from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.stack import local_stack
from agent.service.caller_key import (
    KEY_KIND,
    KEY_NAME,
    CallerHasher,
    CallerKeyError,
    CallerKeys,
    load_caller_hasher,
)
from agent.service.retention import utc_today
from telephony.numbers import mask_number
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.tools.conftest import purge_prefix, require_redis, unique_prefix
from tools.store import DB_FILENAME, NotFound, RedisStore, SqliteStore, Store, open_store

TOKEN = "admin-" + "d" * 24
ORDER_TO = "+15550002000"  # the example flows route this number to order-status
BACKENDS = ["sqlite", "redis"]


def number() -> str:
    return "+1555" + "".join(random.choice("0123456789") for _ in range(7))


def far_day() -> dt.date:
    """Centuries ahead: no other test's slot, and no retention purge, meets it."""
    return dt.date(2400, 1, 1) + dt.timedelta(days=random.randrange(300_000))


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A private store per test (own SQLite file, own Redis prefix)."""
    if request.param == "sqlite":
        async with SqliteStore(tmp_path / DB_FILENAME) as sqlite:
            yield sqlite
        return
    url, prefix = require_redis(), unique_prefix()
    try:
        async with RedisStore(url, prefix=prefix) as redis_store:
            yield redis_store
    finally:
        await purge_prefix(url, prefix)


# ---------------------------------------------------------------- the caller hash


def test_the_hash_is_of_the_number_not_its_spelling() -> None:
    hasher = CallerHasher(b"k" * 32)
    assert hasher("+1 (555) 123-4567") == hasher("+15551234567")
    assert hasher("+15551234567") != hasher("+15551234568")
    assert hasher("+15551234567") != CallerHasher(b"j" * 32)("+15551234567")  # keyed
    assert hasher("anonymous") is None and hasher(None) is None
    assert "k" * 32 not in repr(hasher)
    with pytest.raises(CallerKeyError, match="at least 16 characters"):
        CallerKeys("too-short")


async def test_a_generated_key_is_made_once_and_found_again(store: Store) -> None:
    hashers = await asyncio.gather(*(load_caller_hasher(store, "", adopt=True) for _ in range(8)))
    assert len({h.key_id for h in hashers}) == 1  # concurrent first starts agree
    stored = await store.get_record(KEY_KIND, KEY_NAME)
    assert stored is not None and stored["key_id"] == hashers[0].key_id and "key" in stored
    assert await load_caller_hasher(store, "", adopt=False) == hashers[0]  # the CLI's view
    # A CLI given a key of its own would find none of the records: refused, saying why.
    with pytest.raises(CallerKeyError, match="unset it here"):
        await load_caller_hasher(store, "x" * 32, adopt=False)


async def test_a_configured_key_is_recorded_and_another_is_refused_or_warned_about(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first = await load_caller_hasher(store, "a" * 32, adopt=True)
    assert await store.get_record(KEY_KIND, KEY_NAME) == {"key_id": first.key_id}  # not the key
    assert await load_caller_hasher(store, "a" * 32, adopt=False) == first
    with pytest.raises(CallerKeyError, match="use the service's CALLER_HASH_KEY"):
        await load_caller_hasher(store, "b" * 32, adopt=False)
    with pytest.raises(CallerKeyError, match="set the same one here"):
        await load_caller_hasher(store, "", adopt=False)
    # The service restarted with a new key: it says what that costs, and records it.
    caplog.set_level(logging.WARNING, logger="agent.service.caller_key")
    second = await load_caller_hasher(store, "b" * 32, adopt=True)
    assert "can no longer be found by number" in caplog.text
    assert await store.get_record(KEY_KIND, KEY_NAME) == {"key_id": second.key_id}


# ---------------------------------------------------------------- phone-agent data delete


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str | None) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    data = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.delenv("CALLER_HASH_KEY", raising=False)
    if redis_url:
        monkeypatch.setenv("REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    return data


async def _seed(store: Store, phone: str, sids: list[str], days: list[dt.date]) -> None:
    hasher = await load_caller_hasher(store, "", adopt=True)
    for i, day in enumerate(days):
        booking = await store.book(day, "10:00", "Caller", phone, f"{phone}:seed{i}")
        if i == 1:
            await store.cancel(booking.booking_id, f"{phone}:cancel{i}")  # cancelled: deleted too
    for sid in sids:
        await store.put_record("call", sid, {"call_sid": sid, "caller": mask_number(phone),
                                             "caller_hash": hasher(phone)}, ttl_s=3600)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cli_deletes_a_callers_bookings_and_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    redis_url = require_redis() if backend == "redis" else None
    data = _env(monkeypatch, tmp_path, redis_url)
    ada, bob = number(), number()
    ada_sids = [f"CAada{random.getrandbits(64):x}", f"CAada{random.getrandbits(64):x}"]
    bob_sid = f"CAbob{random.getrandbits(64):x}"
    async with open_store(redis_url, data) as store:
        await _seed(store, ada, ada_sids, [far_day(), far_day()])
        await _seed(store, bob, [bob_sid], [far_day()])
    try:
        rc = await asyncio.to_thread(main, ["data", "delete", "--phone", ada])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert f"{mask_number(ada)}: deleted 2 booking(s) and 2 call record(s)" in out
        async with open_store(redis_url, data) as store:
            assert await store.find_by_phone(ada) == []
            assert [await store.get_record("call", sid) for sid in ada_sids] == [None, None]
            assert len(await store.find_by_phone(bob)) == 1  # nobody else's data
            assert (await store.get_record("call", bob_sid))["caller"] == mask_number(bob)
        again = await asyncio.to_thread(main, ["data", "delete", "--phone", ada])
        assert again == 0 and "deleted 0 booking(s) and 0 call record(s)" in capsys.readouterr().out
    finally:
        async with open_store(redis_url, data) as store:
            await store.delete_bookings_of(bob)
            await store.delete_record("call", bob_sid)


async def test_cli_purges_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _env(monkeypatch, tmp_path, None)
    monkeypatch.setenv("BOOKING_RETENTION_DAYS", "10")
    today = utc_today()
    async with open_store(None, data) as store:
        old = await store.book(today - dt.timedelta(days=11), "10:00", "Ada", number(), "c1:t1")
        kept = await store.book(today - dt.timedelta(days=10), "10:00", "Ada", number(), "c1:t2")
    assert await asyncio.to_thread(main, ["data", "purge"]) == 0
    cutoff = (today - dt.timedelta(days=10)).isoformat()
    assert f"deleted 1 booking(s) on days before {cutoff} and 0 expired call record(s)" in capsys.readouterr().out
    async with open_store(None, data) as store:
        assert await store.get(kept.booking_id) == kept
        with pytest.raises(NotFound):
            await store.get(old.booking_id)


async def test_cli_errors_are_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _env(monkeypatch, tmp_path, None)
    assert await asyncio.to_thread(main, ["data", "delete", "--phone", "5551234567"]) == 2
    assert "not an E.164 phone number like +15551234567: '5551234567'" in capsys.readouterr().err
    async with open_store(None, data) as store:
        await load_caller_hasher(store, "", adopt=True)  # the service uses a stored key
    monkeypatch.setenv("CALLER_HASH_KEY", "c" * 32)
    assert await asyncio.to_thread(main, ["data", "delete", "--phone", number()]) == 2
    assert "this CALLER_HASH_KEY is not the key the service hashes callers with" in capsys.readouterr().err
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    assert await asyncio.to_thread(main, ["data", "purge"]) == 1
    assert "phone-agent data purge: RedisStore" in capsys.readouterr().err


# ---------------------------------------------------------------- the admin API


async def _record_ttl_s(stack: object, backend: str, sid: str, tmp_path: Path) -> float:
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
            (expires_at,) = conn.execute(
                "SELECT expires_at FROM records WHERE kind = 'call' AND key = ?", (sid,)).fetchone()
        return float(expires_at) - time.time()
    store = stack.store  # type: ignore[attr-defined]
    client = aioredis.from_url(require_redis())
    try:
        return await client.pttl(store._rec("call", "item", sid)) / 1000
    finally:
        await client.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_admin_api_deletes_a_callers_data_on_a_real_server(tmp_path: Path, backend: str) -> None:
    redis_url = require_redis() if backend == "redis" else None
    caller, other = number(), number()
    scenario = Scenario(ms_per_char=15)
    async with FakeOpenAIRealtime(scenario) as fake:
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key, admin_token=TOKEN,
                               redis_url=redis_url, record_retention_days=3) as stack, \
                httpx.AsyncClient(base_url=stack.base_url) as http:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            sids: dict[str, str] = {}
            try:
                for phone in (caller, other):
                    target = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=phone)
                    async with EmulatedCall(target) as call:
                        await call.wait_for_bot_reply(timeout=10)
                    sids[phone] = target.call_sid
                    assert await stack.service.switchboard.wait_idle(10)  # record saved
                    await stack.store.book(far_day(), "10:00", "Someone", phone, f"{target.call_sid}:t1")

                stored = await stack.store.get_record("call", sids[caller])
                assert stored is not None and stored["caller"] == mask_number(caller)
                assert stored["caller_hash"] == stack.service.shared.caller_keys.current(stack.store)(caller)
                # RECORD_RETENTION_DAYS=3 is the record's TTL.
                ttl = await _record_ttl_s(stack, backend, sids[caller], tmp_path)
                assert 3 * 86400 - 120 < ttl <= 3 * 86400

                assert (await http.delete(f"/admin/callers/{caller}")).status_code == 401
                r = await http.delete(f"/admin/callers/{caller}", headers=auth)
                assert r.status_code == 200, r.text
                assert r.json() == {"caller": mask_number(caller), "bookings": 1, "records": 1}
                assert (await http.get(f"/admin/calls/{sids[caller]}", headers=auth)).status_code == 404
                assert await stack.store.find_by_phone(caller) == []
                # The other caller's call and booking are untouched.
                assert (await http.get(f"/admin/calls/{sids[other]}", headers=auth)).status_code == 200
                assert len(await stack.store.find_by_phone(other)) == 1
                # %2B for the '+' works too; a second request finds nothing left.
                again = await http.delete(f"/admin/callers/%2B{caller[1:]}", headers=auth)
                assert again.json() == {"caller": mask_number(caller), "bookings": 0, "records": 0}
                bad = await http.delete("/admin/callers/12345", headers=auth)
                assert bad.status_code == 400 and "E.164" in bad.json()["error"]
            finally:
                for phone in (caller, other):
                    await stack.store.delete_bookings_of(phone)
                    if phone in sids:
                        await stack.store.delete_record("call", sids[phone])
    fake.assert_clean()


async def test_a_store_unreachable_at_start_delays_the_key_but_no_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.service.caller_key")

    class Unreachable:
        """A real store that does not answer its first read."""

        def __init__(self, store: Store) -> None:
            self.store, self.failed = store, False

        async def get_record(self, kind: str, key: str) -> dict | None:
            if not self.failed:
                self.failed = True
                raise ConnectionError("connection refused")
            return await self.store.get_record(kind, key)

        def __getattr__(self, name: str) -> object:
            return getattr(self.store, name)

    async with SqliteStore(tmp_path / DB_FILENAME) as real:
        flaky = Unreachable(real)
        keys = CallerKeys("")
        await keys.load(flaky)  # type: ignore[arg-type]  # the service starts anyway
        assert "could not load the caller-hash key" in caplog.text
        assert keys.current(flaky) is None  # type: ignore[arg-type]  # a call now: no hash, no wait
        assert keys._loading is not None
        await keys._loading  # the background retry
        hasher = keys.current(flaky)  # type: ignore[arg-type]
        assert hasher is not None and hasher == await load_caller_hasher(real, "", adopt=False)
        await keys.aclose()
