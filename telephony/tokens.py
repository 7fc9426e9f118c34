"""Short-lived, single-use stream tokens.

The voice webhook (signed by Twilio) issues a token bound to the call sid and to the
stream's other parameters (flow, caller, called number); it travels to the Media Stream
as a `<Parameter>` and is checked on `start` before anything expensive is opened, so a
stream cannot claim another flow or caller than the webhook chose. A token is an
HMAC-SHA256 over (call sid, expiry, nonce, digest of the parameters):

    v2.<b64url call sid>.<expiry unix s>.<b64url nonce>.<b64url params digest>.<b64url hmac>

Single use is enforced by a `UsedTokens` store (memory here, Redis in the agent layer
for multi-instance deployments) that claims the nonce exactly once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Protocol

_VERSION = "v2"
_MAX_CALL_SID = 64
_SHAPE = re.compile(
    r"v2\.[A-Za-z0-9_-]{2,90}\.[0-9]{1,12}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"
)
TOKEN_PARAMETER = "token"  # the <Parameter> that carries the token; it binds the others


class TokenError(Exception):
    """A stream token was rejected; `reason` is one of the short reasons below."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    WRONG_CALL = "wrong call"
    WRONG_PARAMETERS = "parameters changed"
    ALREADY_USED = "already used"

    def __init__(self, reason: str) -> None:
        super().__init__(f"stream token rejected: {reason}")
        self.reason = reason


class TokenUncheckable(Exception):
    """The token is genuine (signature, expiry, call, parameters) but whether it was used
    before cannot be told: the store of used tokens does not answer."""


class UsedTokens(Protocol):
    """Remembers which token ids were already used, across instances if need be."""

    async def claim(self, token_id: str, ttl_s: int) -> bool:
        """True the first time `token_id` is claimed (remember it for ttl_s), else False."""
        ...

    async def close(self) -> None:
        """Release connections, if any."""


class MemoryUsedTokens:
    """In-process `UsedTokens`: an expiring dict, swept lazily. One process only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires: dict[str, float] = {}
        self._next_sweep = 0.0

    async def claim(self, token_id: str, ttl_s: int) -> bool:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        expires = self._expires.get(token_id)
        if expires is not None and expires > now:
            return False
        # No await between check and set: atomic with respect to other tasks.
        self._expires[token_id] = now + ttl_s
        return True

    async def close(self) -> None:
        pass

    def _sweep(self, now: float) -> None:
        self._expires = {k: v for k, v in self._expires.items() if v > now}
        self._next_sweep = now + 30.0

    def __len__(self) -> int:
        return len(self._expires)


def _params_digest(parameters: Mapping[str, str]) -> str:
    """A digest of the stream's parameters other than the token itself (order-free)."""
    bound = sorted((k, v) for k, v in parameters.items() if k != TOKEN_PARAMETER)
    canonical = json.dumps(bound, ensure_ascii=False, separators=(",", ":")).encode()
    return _b64(hashlib.sha256(canonical).digest()[:16])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    """Issues and verifies stream tokens (see module doc)."""

    def __init__(
        self,
        secret: bytes,
        ttl_s: int = 60,
        used: UsedTokens | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("stream token secret must be at least 16 bytes")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._secret = secret
        self.ttl_s = ttl_s
        self._used: UsedTokens = used if used is not None else MemoryUsedTokens()
        self._clock = clock

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, call_sid: str, parameters: Mapping[str, str] | None = None) -> str:
        """A token for `call_sid` whose stream must carry exactly `parameters` (besides
        the token)."""
        if not call_sid or len(call_sid) > _MAX_CALL_SID:
            raise ValueError(f"call_sid must be 1..{_MAX_CALL_SID} chars")
        expiry = int(self._clock()) + self.ttl_s
        nonce = _b64(secrets.token_bytes(12))
        digest = _params_digest(parameters or {})
        body = f"{_VERSION}.{_b64(call_sid.encode())}.{expiry}.{nonce}.{digest}"
        return f"{body}.{self._sign(body)}"

    async def verify(
        self, token: str, call_sid: str, parameters: Mapping[str, str] | None = None
    ) -> None:
        """Accept `token` once for `call_sid` and exactly the `parameters` it was issued
        with (a `token` entry among them is ignored), or raise TokenError with the reason."""
        if not isinstance(token, str) or not _SHAPE.fullmatch(token):
            raise TokenError(TokenError.MALFORMED)
        _, sid_b64, expiry_text, nonce, digest, signature = token.split(".")
        try:
            token_sid = _unb64(sid_b64).decode("utf-8")
        except (binascii.Error, ValueError):
            raise TokenError(TokenError.MALFORMED) from None
        body = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._sign(body), signature):
            raise TokenError(TokenError.BAD_SIGNATURE)
        remaining = int(expiry_text) - self._clock()
        if remaining <= 0:
            raise TokenError(TokenError.EXPIRED)
        if not hmac.compare_digest(token_sid.encode(), call_sid.encode()):
            raise TokenError(TokenError.WRONG_CALL)
        if not hmac.compare_digest(_params_digest(parameters or {}), digest):
            raise TokenError(TokenError.WRONG_PARAMETERS)
        # Claim last, so a token presented for the wrong call is not burnt by it. Keep the
        # claim a little past expiry so a replay never outlives its "used" record.
        try:
            first_use = await self._used.claim(nonce, int(remaining) + 2)
        except Exception as exc:
            raise TokenUncheckable(f"cannot tell if the token was used: {exc!r}") from exc
        if not first_use:
            raise TokenError(TokenError.ALREADY_USED)
