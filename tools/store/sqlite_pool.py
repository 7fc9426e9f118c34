"""Blocking sqlite3 behind an async API: a private thread pool, one connection per thread.

sqlite3 connections must not be shared between threads, and every query blocks, so each
worker thread lazily opens its own connection (WAL, busy timeout) and the event loop only
ever awaits futures. The first connection creates the schema.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SqlitePool", "immediate"]

T = TypeVar("T")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that holds the database write lock from its first statement.

    Plain BEGIN takes the lock only at the first write, so two readers-then-writers can
    both pass a check and then one fails with "database is locked"; IMMEDIATE serialises
    the whole read-check-write instead (waiting up to the busy timeout).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqlitePool:
    def __init__(
        self, path: Path, schema: str, *, threads: int = 4, busy_timeout_s: float = 30.0
    ) -> None:
        self.path = path
        self._schema = schema
        self._busy_timeout_s = busy_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-store")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._schema_ready = False
        self.closed = False

    def conn(self) -> sqlite3.Connection:
        """This worker thread's connection (call only from inside `run`)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; `timeout` is the busy wait.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,  # only so close() may run on another thread
        )
        conn.row_factory = sqlite3.Row
        self._use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe in WAL
        with self._lock:
            self._connections.append(conn)
            if not self._schema_ready:
                with immediate(conn):
                    for statement in self._schema.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                self._schema_ready = True
        self._local.conn = conn
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # Switching the journal mode needs a lock that SQLite does not wait for with the
        # busy timeout: a connection opening while another thread or process writes gets
        # "database is locked" at once (seen in CI). Retry within the busy timeout; this
        # runs on the pool's worker thread, never on the event loop.
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.closed:
            raise RuntimeError(f"SQLite store {str(self.path)!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # shutdown(wait=True) blocks until in-flight queries finish: keep it off the loop.
        await asyncio.to_thread(self._executor.shutdown, True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
