"""Twilio REST control: hang up, transfer, place calls, point a number at us.

The official client is synchronous (requests), so every call runs in a thread
executor: a slow api.twilio.com must never stall the event loop that carries audio.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

T = TypeVar("T")

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


class ControlError(Exception):
    """A Twilio REST operation failed; `status`/`code` come from Twilio when it answered."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TwilioControl:
    """Async facade over `twilio.rest.Client` for the few call operations we need."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str | None = None,
        *,
        timeout_s: float = 10.0,
        executor: Executor | None = None,
    ) -> None:
        # A timeout so a hung request cannot pin an executor thread forever.
        self._client = Client(
            account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s)
        )
        if api_base_url is not None:
            # Tests and proxies: the library has no base URL option, but each domain has one.
            self._client.api.base_url = api_base_url.rstrip("/")
        self._executor = executor

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except TwilioRestException as exc:
            raise ControlError(f"{what}: {exc.msg}", status=exc.status, code=exc.code) from exc
        except TwilioException as exc:
            raise ControlError(f"{what}: {exc}") from exc
        except OSError as exc:  # requests' connection errors derive from OSError
            raise ControlError(f"{what}: {exc}") from exc

    async def hangup(self, call_sid: str) -> None:
        """End a live call (status=completed)."""
        call = self._client.calls(call_sid)
        await self._run("hangup", functools.partial(call.update, status="completed"))

    async def transfer(self, call_sid: str, number: str, caller_id: str | None = None) -> None:
        """Redirect the call to `<Dial>number</Dial>`; this ends its Media Stream first."""
        twiml = VoiceResponse()
        if caller_id is None:
            twiml.dial(number)
        else:
            twiml.dial(number, caller_id=caller_id)
        call = self._client.calls(call_sid)
        await self._run("transfer", functools.partial(call.update, twiml=str(twiml)))

    async def place_call(self, to: str, from_: str, url: str, status_callback: str) -> str:
        """Dial out; Twilio fetches `url` for TwiML when answered. Returns the call sid."""
        create = functools.partial(
            self._client.calls.create,
            to=to,
            from_=from_,
            url=url,
            method="POST",
            status_callback=status_callback,
            status_callback_method="POST",
            status_callback_event=STATUS_EVENTS,
        )
        call = await self._run("place_call", create)
        return str(call.sid)

    async def configure_number(self, phone_number: str, voice_url: str, status_url: str) -> str:
        """Point `phone_number`'s voice webhook and status callback at us. Returns its PN sid."""
        numbers = self._client.incoming_phone_numbers
        found = await self._run(
            "configure_number", functools.partial(numbers.list, phone_number=phone_number, limit=20)
        )
        # The filter is a pattern match; insist on the exact number.
        matches = [n for n in found if n.phone_number == phone_number]
        if not matches:
            raise ControlError(f"configure_number: {phone_number} is not a number on this account")
        sid = str(matches[0].sid)
        update = functools.partial(
            self._client.incoming_phone_numbers(sid).update,
            voice_url=voice_url,
            voice_method="POST",
            status_callback=status_url,
            status_callback_method="POST",
        )
        await self._run("configure_number", update)
        return sid
