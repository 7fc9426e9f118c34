"""`phone-agent data`: personal data from a shell, on the store the service uses
(REDIS_URL, else DATA_DIR/phone-agent.db, read from the environment or `.env`).

    phone-agent data delete --phone +15551234567   a caller's bookings and call records
    phone-agent data purge                         one retention purge now (the service
                                                   also runs one at start and hourly)
"""

from __future__ import annotations

import argparse
import sys

from agent.service.caller_key import CallerKeyError, load_caller_hasher
from agent.service.forget import NotAPhoneNumber, caller_number, forget_caller
from agent.service.retention import Retention
from agent.service.settings import Settings
from tools.store import Store, open_store


async def run_data_command(args: argparse.Namespace) -> int:
    settings = Settings()
    store = open_store(settings.redis_url, settings.data_dir)
    try:
        if args.data_command == "delete":
            return await _delete(store, settings, args.phone)
        return await _purge(store, settings)
    except (CallerKeyError, NotAPhoneNumber) as exc:
        print(f"phone-agent data {args.data_command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: say so, no traceback
        print(f"phone-agent data {args.data_command}: {store!r}: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()


async def _delete(store: Store, settings: Settings, number: str) -> int:
    phone = caller_number(number)  # before touching the store
    hasher = await load_caller_hasher(store, settings.caller_hash_key, adopt=False)
    done = await forget_caller(store, hasher, phone)
    print(f"{done.caller}: deleted {done.bookings} booking(s) and {done.records} call record(s) "
          f"from {store!r}")
    return 0


async def _purge(store: Store, settings: Settings) -> int:
    retention = Retention(lambda: store, booking_days=settings.booking_retention_days,
                          interval_s=settings.purge_interval_s)
    purged = await retention.purge_once()
    print(f"deleted {purged.bookings} booking(s) on days before {purged.before.isoformat()} "
          f"and {purged.expired_records} expired call record(s) from {store!r}")
    return 0
