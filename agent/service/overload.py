"""Turn new calls away while this process is too loaded to serve another one well.

A fixed call cap is too low for a fast machine and too high for a slow or shared one.
What every caller feels is the event loop's lag: each frame of each call waits on it.
`LoopLag` samples that lag and says "overloaded" while its median over the last couple
of seconds stays above a limit; the webhook then answers busy and /readyz says 503 (a
balancer sends new calls to another instance) before the live calls start to break up.
A median ignores one slow moment (a collection, a burst of call set-ups); hysteresis
(leave only below half the limit) keeps it from flapping.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import deque
from collections.abc import Callable

INTERVAL_S = 0.05
WINDOW_S = 2.0


class LoopLag:
    def __init__(
        self,
        limit_ms: float,
        *,
        interval_s: float = INTERVAL_S,
        window_s: float = WINDOW_S,
        on_sample: Callable[[float], None] | None = None,
    ) -> None:
        """`limit_ms` <= 0 turns the guard off (lag is still measured)."""
        self.limit_ms = limit_ms
        self.interval_s = interval_s
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()  # (when, lag ms)
        self._since: float | None = None  # first sample: judge only once a window is full
        self._on_sample = on_sample
        self.overloaded = False
        self.lag_ms = 0.0  # median over the window

    def note(self, now: float, lag_ms: float) -> None:
        """One sample at `now` (s): how late a timer that was due fired (ms)."""
        lag_ms = max(0.0, lag_ms)
        if self._on_sample is not None:
            self._on_sample(lag_ms)
        self._samples.append((now, lag_ms))
        while self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        if self._since is None:
            self._since = now
        if now - self._since < self.window_s:
            return  # start-up: not a whole window yet
        self.lag_ms = statistics.median(lag for _, lag in self._samples)
        if self.limit_ms <= 0:
            return
        if self.overloaded:
            self.overloaded = self.lag_ms >= self.limit_ms / 2
        else:
            self.overloaded = self.lag_ms >= self.limit_ms

    async def run(self) -> None:
        """Sample until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            self.note(now, (now - due) * 1000)
