"""How a customer's backend knows a request came from us: HMAC-SHA256 over timestamp and body.

Every flow-webhook and HTTP-tool request carries

    X-Phone-Agent-Timestamp: <unix seconds>
    X-Phone-Agent-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is inside the MAC, so a captured request cannot be replayed later than the
receiver's tolerance; `v1=` leaves room for a second scheme during a key or hash change.
The receiver's side is three lines (README, "Verify a request"); `verify` is the same.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Phone-Agent-Timestamp"
SIGNATURE_HEADER = "X-Phone-Agent-Signature"
TOLERANCE_S = 300


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True if `headers` sign `body` with `secret` within `tolerance_s` of now.

    `headers` must look names up case-insensitively (Starlette's and httpx's do)."""
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    given = headers.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or not given:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(secret, timestamp, body))
