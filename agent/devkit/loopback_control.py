"""Twilio's REST call control, for a server whose calls come from the emulator.

`phone-agent call`, the load test and the tests have no Twilio account: when a call is
hung up or transferred, this does what Twilio does to the media stream (it ends: the
socket closes) and records what Twilio would have been asked to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LoopbackControl:
    def __init__(self, find_call: Callable[[str], Any]) -> None:
        self._find_call = find_call
        self.requests: list[tuple[str, str, str]] = []  # (op, call_sid, detail)

    async def hangup(self, call_sid: str) -> None:
        self.requests.append(("hangup", call_sid, ""))
        await self._close(call_sid, "completed")

    async def transfer(self, call_sid: str, number: str, caller_id: str | None = None) -> None:
        # Twilio runs the new <Dial> TwiML: the stream gets `stop` and the socket closes.
        self.requests.append(("transfer", call_sid, number))
        await self._close(call_sid, "transferred")

    async def _close(self, call_sid: str, reason: str) -> None:
        call = self._find_call(call_sid)
        if call is not None:
            await call.stream.close(1000, reason)
