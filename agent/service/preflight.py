"""What `phone-agent serve` checks before it listens: settings that would leave the line
open to strangers, or broken in a way only callers would notice.

Kept apart from `Settings` so tests and in-process stacks can build any settings they
like; only `serve` (a process about to take real calls) refuses to start. Every problem
names the setting and says what to do; all of them are reported at once.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent.service.settings import Settings

MIN_SECRET_CHARS = 32
STREAM_ROUTE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
NEW_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


@dataclass
class Preflight:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_loopback(host: str | None) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1: nothing outside this machine reaches it."""
    if not host:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unsigned_webhooks(settings: Settings, *, switch: bool, local: bool) -> bool:
    """Whether webhooks go unchecked: the explicit switch, or `serve --local` on this
    machine without an auth token (trying the offline agent needs no Twilio account)."""
    return switch or (local and not settings.twilio_auth_token and is_loopback(settings.host))


def check(settings: Settings, *, unsigned: bool = False) -> Preflight:
    """Problems that stop `serve` (errors) and ones it only logs (warnings)."""
    out = Preflight()
    _auth(settings, unsigned, out)
    _public_url(settings, out)
    _secrets(settings, out)
    _ports(settings, out)
    return out


def _auth(s: Settings, unsigned: bool, out: Preflight) -> None:
    if unsigned:
        if not is_loopback(s.host):
            out.errors.append(
                f"--unsigned-webhooks accepts webhooks nobody signed, so it only listens on "
                f"localhost, but HOST is {s.host!r}. Use HOST=127.0.0.1, or set "
                "TWILIO_AUTH_TOKEN and drop the switch."
            )
        return
    if not s.twilio_auth_token:
        out.errors.append(
            "TWILIO_AUTH_TOKEN is not set: without it nobody can tell Twilio's webhooks from "
            "forged ones, and each forged call would open a paid model session. Set it to the "
            "auth token of the Twilio account that owns your numbers (Twilio console -> "
            "Account -> API keys & tokens). To try the service on this machine without Twilio, "
            "run `phone-agent serve --local` (or `--unsigned-webhooks`) with HOST=127.0.0.1."
        )


def _public_url(s: Settings, out: Preflight) -> None:
    if s.public_url is None:
        if not s.trust_forwarded_headers and not is_loopback(s.host):
            out.warnings.append(
                "neither PUBLIC_URL nor TRUST_FORWARDED_HEADERS is set: webhook signatures are "
                "checked against the scheme and Host this process sees, which behind a TLS "
                "proxy is not the https:// URL Twilio signed (every webhook would get 403)."
            )
        return
    parts = urlsplit(s.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        out.errors.append(
            f"PUBLIC_URL must be the https:// origin Twilio calls, like "
            f"https://agent.example.com, got {s.public_url!r}."
        )
        return
    if parts.path not in ("", "/") or parts.query:
        out.errors.append(
            f"PUBLIC_URL must be an origin without a path (https://host[:port]), got "
            f"{s.public_url!r}: the routes are served at /twilio/... on that origin."
        )
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        out.errors.append(
            f"PUBLIC_URL is {s.public_url!r}, not https://: Twilio only streams media to wss:// "
            "and signs the https:// URL it called. Terminate TLS at your proxy and set "
            "PUBLIC_URL to its https:// address (http:// is for localhost only)."
        )
    if s.trust_forwarded_headers:
        out.warnings.append(
            "PUBLIC_URL and TRUST_FORWARDED_HEADERS are both set: PUBLIC_URL is used, the "
            "X-Forwarded-Proto/Host headers are ignored."
        )


def _secrets(s: Settings, out: Preflight) -> None:
    if s.redis_url and not s.stream_token_secret:
        out.errors.append(
            "REDIS_URL is set but STREAM_TOKEN_SECRET is not: each instance would sign stream "
            "tokens with a random key of its own, and a media stream that reaches another "
            "instance than its webhook would be refused (1008). Set STREAM_TOKEN_SECRET to "
            f"the same random string on every instance, e.g. from `{NEW_SECRET}`."
        )
    elif s.stream_token_secret and len(s.stream_token_secret) < MIN_SECRET_CHARS:
        out.errors.append(
            f"STREAM_TOKEN_SECRET is {len(s.stream_token_secret)} characters; use at least "
            f"{MIN_SECRET_CHARS}, e.g. from `{NEW_SECRET}`."
        )
    if s.admin_token and len(s.admin_token) < MIN_SECRET_CHARS:
        out.errors.append(
            f"ADMIN_TOKEN is {len(s.admin_token)} characters: it guards hang-ups and call "
            f"records, use at least {MIN_SECRET_CHARS}, e.g. from `{NEW_SECRET}` (or leave it "
            "unset to switch the admin API and console off)."
        )


def _ports(s: Settings, out: Preflight) -> None:
    if s.admin_port is not None and s.admin_port != 0 and s.admin_port == s.port:
        out.errors.append(
            f"ADMIN_PORT and PORT are both {s.port}: the admin port must be another port "
            "(one your proxy does not publish), or leave ADMIN_PORT unset."
        )
    elif s.admin_port is None and s.admin_token and not is_loopback(s.host):
        out.warnings.append(
            "the admin API, console and /metrics share the public port: set ADMIN_PORT to "
            "serve them on a port of their own that your proxy does not publish."
        )
    if s.stream_route is not None and not STREAM_ROUTE.fullmatch(s.stream_route):
        out.errors.append(
            f"STREAM_ROUTE must be a lowercase name like app1 (letters, digits, '-', at most "
            f"40), got {s.stream_route!r}: it becomes a path segment the proxy routes on."
        )
