"""A caller who owes an answer and says nothing: ask once, then say goodbye.

The bridge does this, not the model, so every provider behaves the same. The countdown
starts only once the bot's turn has been *heard* (its audio played), and only while no
tool runs; anything the caller does (speech, keypad) stops it and forgives earlier
silences. The first silence of `after_s` prompts ("Are you still there?"); a second one
in a row ends the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class SilenceWatch:
    def __init__(
        self,
        after_s: float,
        *,
        heard: Callable[[], Awaitable[object]],
        prompt: Callable[[], Awaitable[None]],
        give_up: Callable[[], Awaitable[None]],
        name: str = "silence",
    ) -> None:
        """`heard()` returns once the bot's audio so far has played; `prompt()` asks
        the caller once; `give_up()` says goodbye and ends the call. `after_s` <= 0: off."""
        self.after_s = after_s
        self._heard = heard
        self._prompt = prompt
        self._give_up = give_up
        self._name = name
        self._timer: asyncio.Task[None] | None = None
        self.prompts = 0  # silences in a row so far
        self.caller_speaking = False  # between the provider's speech started and stopped
        self.closed = False

    def answer_due(self) -> None:
        """The bot has finished its turn: the caller owes an answer once it is heard."""
        if self.after_s <= 0 or self.closed or self.caller_speaking:
            return
        self._stop()
        self._timer = asyncio.create_task(self._countdown(), name=self._name)

    def caller_active(self) -> None:
        """The caller spoke or typed: no answer is owed, earlier silences are forgiven."""
        self.prompts = 0
        self._stop()

    def bot_busy(self) -> None:
        """The bot speaks again or a tool runs: not the caller's turn (yet)."""
        self._stop()

    async def aclose(self) -> None:
        self.closed = True
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    def _stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _countdown(self) -> None:
        await self._heard()
        await asyncio.sleep(self.after_s)  # the silence itself: a timer, not a sync point
        self._timer = None
        self.prompts += 1
        if self.prompts == 1:
            await self._prompt()
        else:
            self.closed = True
            await self._give_up()
