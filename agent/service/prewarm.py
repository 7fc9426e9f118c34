"""Provider sessions opened while Twilio is still on its way to our media stream.

Between our TwiML answer and the stream's `start`, Twilio fetches the TwiML, opens a
WebSocket and sends `connected` + `start`: a few hundred ms in which the model session
(TLS, handshake, `session.update`) can already open, so the greeting starts that much
sooner. The voice webhook starts a session for the call sid; the media stream takes it.
A session nobody takes (the caller hung up while ringing, or the stream landed on
another instance) is closed after `ttl_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from agent.realtime import RealtimeSession

log = logging.getLogger(__name__)


@dataclass
class Warm:
    flow: str
    session: RealtimeSession
    connecting: asyncio.Task[None]  # session.connect(); its exception is the caller's to see
    expiry: asyncio.TimerHandle | None = None


class WarmSessions:
    def __init__(
        self, ttl_s: float, limit: int, on_outcome: Callable[[str], None] | None = None
    ) -> None:
        self.ttl_s = ttl_s
        self.limit = limit  # never more sessions waiting than this
        self.on_outcome = on_outcome  # "claimed" or "unclaimed", once per warmed session
        self._warm: dict[str, Warm] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._warm)

    def start(self, call_sid: str, flow: str, session: RealtimeSession) -> bool:
        """Begin opening `session` for `call_sid`; False (and nothing started) if one is
        already warming for it or the limit is reached."""
        if not call_sid or call_sid in self._warm or len(self._warm) >= self.limit:
            return False
        loop = asyncio.get_running_loop()
        connecting = loop.create_task(session.connect(), name=f"prewarm-{call_sid}")
        # Retrieved here so an unused session's failure is not "never retrieved" noise.
        connecting.add_done_callback(_quiet)
        warm = Warm(flow, session, connecting)
        warm.expiry = loop.call_later(self.ttl_s, self._expire, call_sid)
        self._warm[call_sid] = warm
        return True

    def take(self, call_sid: str, flow: str) -> Warm | None:
        """The session warmed for this call and flow, if any (it is then the caller's)."""
        warm = self._warm.get(call_sid)
        if warm is None or warm.flow != flow:
            return None
        del self._warm[call_sid]
        if warm.expiry is not None:
            warm.expiry.cancel()
        self._tell("claimed")
        return warm

    async def close_all(self) -> None:
        for call_sid in list(self._warm):
            self._expire(call_sid)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _expire(self, call_sid: str) -> None:
        warm = self._warm.pop(call_sid, None)
        if warm is None:
            return
        log.info("call %s: warmed %s session not claimed, closing it", call_sid, warm.flow)
        self._tell("unclaimed")
        task = asyncio.get_running_loop().create_task(_close(warm))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


    def _tell(self, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(outcome)


async def _close(warm: Warm) -> None:
    warm.connecting.cancel()
    with contextlib.suppress(BaseException):
        await warm.connecting
    with contextlib.suppress(Exception):
        await warm.session.close()


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
