"""Small worker pools that run the most urgent job first.

Speech models are CPU bound and the machine has few cores, so when several calls want
work at once the order matters more than the parallelism: the first words of a reply
(someone is waiting in silence) go before the second sentence of another reply (it will
not be played for another second or two), and a final transcription goes before a
speculative one.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

URGENT, SOON, LATER = 0, 1, 2


class PriorityPool:
    def __init__(self, workers: int, name: str) -> None:
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], Any], Future[Any]]] = queue.PriorityQueue()
        self._seq = itertools.count()  # FIFO within one priority
        for i in range(workers):
            # daemon: the pool is process-wide and must not keep the interpreter alive
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((priority, next(self._seq), lambda: fn(*args), future))
        return future

    async def run(self, priority: int, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(priority, fn, *args))

    def _work(self) -> None:
        while True:
            _, _, job, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued (the response was interrupted)
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)
