"""Whether this process takes a new call now: draining, at capacity, or overloaded.

The voice webhook asks before answering (busy -> `<Reject reason="busy">`) and `/readyz`
reports the same, so a load balancer sends new calls elsewhere while live ones go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent.service.metrics import Metrics
from agent.service.overload import LoopLag
from agent.service.settings import Settings

log = logging.getLogger(__name__)


class Admission:
    def __init__(self, settings: Settings, metrics: Metrics, live_calls: Callable[[], int]) -> None:
        self.settings = settings
        self.metrics = metrics
        self.live_calls = live_calls
        self.lag = LoopLag(settings.overload_lag_ms, on_sample=metrics.loop_lag.set)
        self.draining = False
        self._drain_deadline: float | None = None  # loop time when draining gives up

    def begin_drain(self) -> None:
        """Stop taking calls (the webhook answers busy, /readyz 503); live calls go on."""
        if self.draining:
            return
        self.draining = True
        self._drain_deadline = asyncio.get_running_loop().time() + self.settings.drain_deadline_s
        log.info("draining: %d live calls, deadline %.0fs", self.live_calls(), self.settings.drain_deadline_s)

    def drain_left_s(self) -> float:
        """Seconds until the drain deadline (counted from the first `begin_drain`)."""
        self.begin_drain()
        assert self._drain_deadline is not None
        return max(0.0, self._drain_deadline - asyncio.get_running_loop().time())

    def busy_reason(self) -> str | None:
        """Why a new call would be turned away now, or None."""
        if self.draining:
            return "draining"
        if self.live_calls() >= self.settings.max_concurrent_calls:
            return "capacity"
        if self.lag.overloaded:
            return "overloaded"
        return None

    def busy(self) -> bool:
        return self.busy_reason() is not None

    def turn_away(self) -> bool:
        """The voice webhook's question: True (and counted, and logged why) to answer busy."""
        reason = self.busy_reason()
        if reason is None:
            return False
        self.metrics.calls_rejected.labels(reason).inc()
        log.warning("turning a new call away: %s (%d live, loop lag %.0f ms)",
                    reason, self.live_calls(), self.lag.lag_ms)
        return True
