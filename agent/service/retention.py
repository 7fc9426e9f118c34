"""Personal data kept only as long as needed: the periodic purge.

Bookings go `BOOKING_RETENTION_DAYS` after their day (whatever their status), and SQLite
drops expired call records from its file (Redis expires them itself; call records get
their TTL, `RECORD_RETENTION_DAYS`, when they are saved). The purge runs when the
service starts and then every `PURGE_INTERVAL_S`, in a task the app's lifespan owns.

It reads the wall clock, never `TOOLS_TODAY`: a date pinned for a demo must not make a
service delete real bookings. Several instances purging at once is harmless: each
deletion is idempotent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from tools.store import Store

log = logging.getLogger(__name__)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class Purged:
    before: dt.date  # bookings on days before this went
    bookings: int
    expired_records: int


class Retention:
    def __init__(
        self,
        store: Callable[[], Store],
        *,
        booking_days: int,
        interval_s: float,
        today: Callable[[], dt.date] = utc_today,
    ) -> None:
        if booking_days < 0:
            raise ValueError(f"booking_days must be >= 0, got {booking_days}")
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._store = store
        self.booking_days = booking_days
        self.interval_s = interval_s
        self._today = today
        self.rounds = 0  # purges attempted, failed ones included
        self.last: Purged | None = None
        self.last_error: BaseException | None = None
        self._changed = asyncio.Condition()

    def cutoff(self) -> dt.date:
        """Bookings on days before this are past their retention."""
        return self._today() - dt.timedelta(days=self.booking_days)

    async def purge_once(self) -> Purged:
        store = self._store()
        before = self.cutoff()
        purged = Purged(before, await store.purge_bookings(before), await store.purge_expired_records())
        if purged.bookings or purged.expired_records:
            log.info("retention: deleted %d bookings before %s and %d expired call records",
                     purged.bookings, before.isoformat(), purged.expired_records)
        return purged

    async def run(self) -> None:
        """Purge now, then every `interval_s`, until cancelled. A failed round (store
        down) is logged and the next one tries again: never fatal to the service."""
        while True:
            try:
                self.last = await self.purge_once()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - logged; the next round retries
                self.last_error = exc
                log.warning("retention: purge failed, next try in %.0f s: %s", self.interval_s, exc)
            async with self._changed:
                self.rounds += 1
                self._changed.notify_all()
            await asyncio.sleep(self.interval_s)

    async def wait_rounds(self, n: int) -> None:
        """Until at least `n` purges have run (tests and operations wait on this)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.rounds >= n)
