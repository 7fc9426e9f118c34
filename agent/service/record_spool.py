"""Call records the store could not take, kept on disk until it can.

A call that ends while Redis is down must not lose its record. `save` tries the store;
on failure the record goes to `DATA_DIR/spool/records/<call sid>.json` (written to a
temporary name, then renamed, so a crash never leaves half a file), and `run` writes the
spooled records to the store once it answers again, oldest first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.store import Store

log = logging.getLogger(__name__)

RETRY_S = 5.0  # how often spooled records are offered to the store again


class RecordSpool:
    def __init__(self, directory: Path, store: Callable[[], Store], ttl_s: int) -> None:
        self.directory = directory
        self._store = store
        self._ttl_s = ttl_s
        self._waiting = asyncio.Event()  # set while records wait on disk

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime)

    async def save(self, call_sid: str, record: dict[str, Any]) -> None:
        """Into the store, or onto disk if the store does not take it."""
        try:
            await self._store().put_record("call", call_sid, record, ttl_s=self._ttl_s)
            return
        except Exception as exc:
            log.warning("call %s: record not stored (%s); spooled to %s", call_sid, exc, self.directory)
        await asyncio.to_thread(self._write, call_sid, record)
        self._waiting.set()

    def _write(self, call_sid: str, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = "".join(c for c in call_sid if c.isalnum() or c in "-_")[:64] or "call"
        final = self.directory / f"{name}.json"
        tmp = final.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, final)

    async def flush(self) -> int:
        """Offer every spooled record to the store; how many it took. Stops at the
        first refusal (the store is still down)."""
        stored = 0
        for path in self.pending():
            try:
                record = json.loads(await asyncio.to_thread(path.read_text))
            except (OSError, ValueError) as exc:
                log.error("spooled record %s is unreadable (%s); left in place", path.name, exc)
                continue
            try:
                sid = str(record.get("call_sid") or path.stem)
                await self._store().put_record("call", sid, record, ttl_s=self._ttl_s)
            except Exception as exc:
                log.info("store still refuses spooled records (%s); %d waiting", exc, len(self.pending()))
                return stored
            path.unlink(missing_ok=True)
            stored += 1
        if stored:
            log.info("wrote %d spooled call records to the store", stored)
        if not self.pending():
            self._waiting.clear()
        return stored

    async def run(self) -> None:
        """Until cancelled: while records wait on disk, offer them every RETRY_S."""
        if self.pending():
            self._waiting.set()
        while True:
            await self._waiting.wait()
            await self.flush()
            if self._waiting.is_set():
                await asyncio.sleep(RETRY_S)  # a retry period, not synchronisation
