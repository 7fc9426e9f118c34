"""`phone-agent twilio configure` and `phone-agent twilio call`: Twilio set-up from the shell.

    phone-agent twilio configure --number +15550001000
        -> the number's voice URL = $PUBLIC_URL/twilio/voice, status = $PUBLIC_URL/twilio/status
    phone-agent twilio call --to +15551230000 --from +15550001000 [--flow order-status]
        -> Twilio dials out and, when answered, asks $PUBLIC_URL/twilio/voice?flow=... for TwiML

Settings come from the environment (or .env): TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
PUBLIC_URL; TWILIO_API_BASE_URL points the client elsewhere (tests, proxies).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from typing import TextIO
from urllib.parse import urlencode, urlsplit

from agent.flows import FlowsError, load_flows
from agent.service.settings import Settings
from telephony.control import ControlError, TwilioControl

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EXIT_OK, EXIT_TWILIO, EXIT_CONFIG = 0, 1, 2


class SetupError(Exception):
    """A setting or argument is missing or wrong; the message says how to fix it."""


def _check_number(label: str, number: str) -> str:
    number = number.strip()
    if not E164.match(number):
        raise SetupError(f"{label} {number!r} is not an E.164 number like +15550001000")
    return number


def public_base(settings: Settings) -> str:
    """PUBLIC_URL without a trailing slash, refused if Twilio could never reach it."""
    if not settings.public_url:
        raise SetupError(
            "PUBLIC_URL is not set: Twilio needs the public https:// address of this service "
            "(your domain, or a tunnel such as cloudflared) to call it"
        )
    url = settings.public_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(f"PUBLIC_URL must be an https:// URL, got {url!r}")
    if parts.path or parts.query:
        raise SetupError(f"PUBLIC_URL must be an origin without a path, got {url!r}")
    host = parts.hostname
    try:
        private = ipaddress.ip_address(host).is_private or ipaddress.ip_address(host).is_loopback
    except ValueError:
        private = host == "localhost" or host.endswith(".local")
    if private:
        raise SetupError(
            f"PUBLIC_URL is {url}, which Twilio cannot reach. Set PUBLIC_URL to the public "
            "https:// address of this service (your domain, or a tunnel such as cloudflared)."
        )
    return url


def control_from(settings: Settings) -> TwilioControl:
    missing = [name for name, value in (("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                                        ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token)) if not value]
    if missing:
        raise SetupError(
            f"{' and '.join(missing)} not set: put them in the environment or .env "
            "(Twilio console -> Account -> API keys & tokens)"
        )
    if not settings.twilio_account_sid.startswith("AC"):
        raise SetupError("TWILIO_ACCOUNT_SID should start with AC (the Account SID, not an API key)")
    return TwilioControl(settings.twilio_account_sid, settings.twilio_auth_token,
                         settings.twilio_api_base_url)


async def configure(settings: Settings, number: str, out: TextIO) -> str:
    number = _check_number("--number", number)
    base = public_base(settings)
    control = control_from(settings)
    voice, status = f"{base}/twilio/voice", f"{base}/twilio/status"
    sid = await control.configure_number(number, voice, status)
    print(f"{number} ({sid}) now calls {voice}", file=out)
    print(f"  status callback: {status}", file=out)
    return sid


async def place(settings: Settings, to: str, from_: str, flow: str | None, out: TextIO) -> str:
    to, from_ = _check_number("--to", to), _check_number("--from", from_)
    base = public_base(settings)
    if flow is not None:
        _check_flow(settings, flow)
    control = control_from(settings)
    voice = f"{base}/twilio/voice" + ("?" + urlencode({"flow": flow}) if flow else "")
    sid = await control.place_call(to, from_, voice, f"{base}/twilio/status")
    print(f"calling {to} from {from_}: call {sid}" + (f", flow {flow}" if flow else ""), file=out)
    return sid


def _check_flow(settings: Settings, flow: str) -> None:
    try:
        flows = load_flows(settings.flows_file)
    except FlowsError as exc:
        raise SetupError(f"cannot check --flow: {exc.source} has problems "
                         "(run `phone-agent flows check`)") from None
    if flows.get(flow) is None:
        known = ", ".join(sorted(flows.flows)) or "none"
        raise SetupError(f"no flow named {flow!r} (flows: {known})")


async def run_twilio_command(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """The `phone-agent twilio ...` subcommands; returns the process exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    settings = Settings()
    try:
        if args.twilio_command == "configure":
            await configure(settings, args.number, out)
        elif args.twilio_command == "call":
            await place(settings, args.to, args.from_, args.flow, out)
        else:
            raise SetupError(f"unknown twilio command {args.twilio_command!r}")
    except SetupError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_CONFIG
    except ControlError as exc:
        status = f" (HTTP {exc.status}, Twilio code {exc.code})" if exc.status else ""
        print(f"error: Twilio refused: {exc}{status}", file=err)
        return EXIT_TWILIO
    return EXIT_OK
