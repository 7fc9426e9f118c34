"""`phone-agent twilio configure / call` against a local stand-in for Twilio's REST API."""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.devkit.stack import run_app
from agent.service.twilio_setup import EXIT_CONFIG, EXIT_OK, EXIT_TWILIO, run_twilio_command
from tests.fakes.twilio_api import AC, BASE, CA, FakeTwilioApi
from tests.ops.procs import server_command

TOKEN = "twilio-auth-token"
PN = "PN" + "b" * 32
NUMBER = "+15553334444"
PUBLIC = "https://agent.example.com"


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilioApi, str]]:
    fake = FakeTwilioApi(numbers=[{"sid": PN, "phone_number": NUMBER}])
    async with run_app(fake.app()) as base:
        yield fake, base


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{AC}:{TOKEN}".encode()).decode()


def single(form: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in form.items() if len(v) == 1}


async def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """The real console script in a child process (the fake API runs on this loop)."""
    base_env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    cmd = server_command()[:-1] + ["twilio", *args]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, env={**base_env, "LOG_FORMAT": "text", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


def cli_env(base: str) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": AC, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_URL": PUBLIC,
            "TWILIO_API_BASE_URL": base}


async def test_configure_points_the_number_at_public_url(
    twilio: tuple[FakeTwilioApi, str], tmp_path: Path
) -> None:
    fake, base = twilio
    code, out, err = await run_cli(["configure", "--number", NUMBER], cli_env(base), tmp_path)
    assert code == 0, err
    assert f"{NUMBER} ({PN}) now calls {PUBLIC}/twilio/voice" in out
    lookup, update = fake.requests
    assert (lookup.method, lookup.path, lookup.query["PhoneNumber"]) == (
        "GET", f"{BASE}/IncomingPhoneNumbers.json", [NUMBER])
    assert (update.method, update.path) == ("POST", f"{BASE}/IncomingPhoneNumbers/{PN}.json")
    assert single(update.form) == {
        "VoiceUrl": f"{PUBLIC}/twilio/voice", "VoiceMethod": "POST",
        "StatusCallback": f"{PUBLIC}/twilio/status", "StatusCallbackMethod": "POST",
    }
    assert all(s.auth == basic_auth() for s in fake.requests)


async def test_call_places_an_outbound_call_into_a_flow(
    twilio: tuple[FakeTwilioApi, str], tmp_path: Path
) -> None:
    fake, base = twilio
    code, out, err = await run_cli(
        ["call", "--to", "+15551112222", "--from", NUMBER, "--flow", "order-status"], cli_env(base), tmp_path)
    assert code == 0, err
    assert CA in out
    (create,) = fake.requests
    assert (create.method, create.path, create.auth) == ("POST", f"{BASE}/Calls.json", basic_auth())
    assert single(create.form) == {
        "To": "+15551112222", "From": NUMBER, "Method": "POST",
        "Url": f"{PUBLIC}/twilio/voice?flow=order-status",
        "StatusCallback": f"{PUBLIC}/twilio/status", "StatusCallbackMethod": "POST",
    }
    assert create.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


# ---------------------------------------------------------------- clear errors (in-process)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_URL", "TWILIO_API_BASE_URL",
                 "FLOWS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def run_inprocess(**kwargs: Any) -> tuple[int, str]:
    args = argparse.Namespace(**{"number": None, "to": None, "from_": None, "flow": None, **kwargs})
    out, err = io.StringIO(), io.StringIO()
    code = await run_twilio_command(args, out=out, err=err)
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"PUBLIC_URL": PUBLIC}, {"twilio_command": "configure", "number": NUMBER},
         "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN not set"),
        ({"PUBLIC_URL": PUBLIC, "TWILIO_ACCOUNT_SID": AC}, {"twilio_command": "configure", "number": NUMBER},
         "TWILIO_AUTH_TOKEN not set"),
        ({"TWILIO_ACCOUNT_SID": AC, "TWILIO_AUTH_TOKEN": TOKEN}, {"twilio_command": "configure", "number": NUMBER},
         "PUBLIC_URL is not set"),
        ({"TWILIO_ACCOUNT_SID": AC, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_URL": "http://127.0.0.1:8000"},
         {"twilio_command": "configure", "number": NUMBER},
         "PUBLIC_URL is http://127.0.0.1:8000, which Twilio cannot reach"),
        ({"TWILIO_ACCOUNT_SID": "SKabc", "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_URL": PUBLIC},
         {"twilio_command": "configure", "number": NUMBER}, "should start with AC"),
        ({"TWILIO_ACCOUNT_SID": AC, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_URL": PUBLIC},
         {"twilio_command": "configure", "number": "5553334444"}, "not an E.164 number"),
        ({"TWILIO_ACCOUNT_SID": AC, "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_URL": PUBLIC},
         {"twilio_command": "call", "to": "+15551112222", "from_": NUMBER, "flow": "nope"},
         "no flow named 'nope' (flows: appointment-desk, order-status)"),
    ],
)
async def test_missing_or_wrong_settings_are_explained(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], args: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    code, err = await run_inprocess(**args)
    assert code == EXIT_CONFIG
    assert message in err


async def test_a_number_not_on_the_account_is_a_twilio_error(
    clean_env: pytest.MonkeyPatch, twilio: tuple[FakeTwilioApi, str]
) -> None:
    fake, base = twilio
    for name, value in cli_env(base).items():
        clean_env.setenv(name, value)
    code, err = await run_inprocess(twilio_command="configure", number="+15559990000")
    assert code == EXIT_TWILIO
    assert "+15559990000 is not a number on this account" in err
    code, _ = await run_inprocess(twilio_command="configure", number=NUMBER)
    assert code == EXIT_OK
