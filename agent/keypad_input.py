"""Digits the caller types on the keypad, gathered into one entry for the model.

An entry ends with '#' or after `DTMF_IDLE_S` of no keys. With `keypad: sensitive` the
digits never reach the model or the record: both get a reference (agent/keypad_secrets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agent.callrecord import CallRecord
from agent.keypad_secrets import HIDDEN_DIGIT, KeypadSecrets, masked, model_text
from agent.realtime import RealtimeSession

DTMF_IDLE_S = 2.0  # digits typed on the keypad end with '#' or this much quiet


class KeypadInput:
    def __init__(
        self,
        session: RealtimeSession,
        record: CallRecord,
        secrets: KeypadSecrets | None,
        spawn: Callable[[Coroutine[Any, Any, Any], str], None],
    ) -> None:
        self._session = session
        self._record = record
        self._secrets = secrets
        self._spawn = spawn
        self._digits: list[str] = []
        self._quiet: asyncio.Task[None] | None = None

    def key(self, digit: str) -> None:
        self._record.event("dtmf", digit=HIDDEN_DIGIT if self._secrets is not None else digit)
        if digit == "#":
            self.flush()
            return
        self._digits.append(digit)
        if self._quiet:
            self._quiet.cancel()
        self._quiet = asyncio.create_task(self._after_quiet())

    async def _after_quiet(self) -> None:
        await asyncio.sleep(DTMF_IDLE_S)
        self.flush()

    def flush(self) -> None:
        if self._quiet and self._quiet is not asyncio.current_task():
            self._quiet.cancel()
        if not self._digits:
            return
        digits = "".join(self._digits)
        self._digits.clear()
        if self._secrets is not None:
            ref = self._secrets.add(digits)
            self._record.transcript("caller", f"[keypad] {masked(digits)} ({ref})")
            self._spawn(self._session.send_text(model_text(ref, digits)), "keypad")
            return
        self._record.transcript("caller", f"[keypad] {digits}")
        text = f"(The caller typed on the keypad: {digits})"
        self._spawn(self._session.send_text(text), "keypad")

    def close(self) -> None:
        if self._quiet:
            self._quiet.cancel()
