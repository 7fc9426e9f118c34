"""`phone-agent twilio configure / call` against a local stand-in for Twilio's REST API."""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent.inprocess import run_app
from agent.twilio_setup import EXIT_CONFIG, EXIT_OK, EXIT_TWILIO, run_twilio_command
from tests.ops.procs import server_command

AC = "AC" + "a" * 32
TOKEN = "twilio-auth-token"
PN = "PN" + "b" * 32
CA = "CA" + "c" * 32
NUMBER = "+15553334444"
PUBLIC = "https://agent.example.com"
API = f"/2010-04-01/Accounts/{AC}"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    auth: str


@dataclass
class FakeTwilio:
    seen: list[Seen] = field(default_factory=list)
    numbers: list[dict[str, Any]] = field(default_factory=lambda: [{"sid": PN, "phone_number": NUMBER}])

    async def _record(self, request: Request) -> Seen:
        body = (await request.body()).decode()
        seen = Seen(request.method, request.url.path, parse_qs(request.url.query),
                    parse_qs(body, keep_blank_values=True), request.headers.get("authorization", ""))
        self.seen.append(seen)
        return seen

    def app(self) -> Starlette:
        async def list_numbers(request: Request) -> JSONResponse:
            seen = await self._record(request)
            wanted = seen.query.get("PhoneNumber", [""])[0]
            found = [n for n in self.numbers if wanted in n["phone_number"]]
            return JSONResponse({"incoming_phone_numbers": found, "page": 0, "page_size": 20,
                                 "first_page_uri": f"{API}/IncomingPhoneNumbers.json",
                                 "next_page_uri": None, "previous_page_uri": None,
                                 "uri": f"{API}/IncomingPhoneNumbers.json"})

        async def update_number(request: Request) -> JSONResponse:
            await self._record(request)
            return JSONResponse({"sid": request.path_params["sid"], "account_sid": AC})

        async def create_call(request: Request) -> JSONResponse:
            await self._record(request)
            return JSONResponse({"sid": CA, "account_sid": AC, "status": "queued"}, status_code=201)

        return Starlette(routes=[
            Route(f"{API}/IncomingPhoneNumbers.json", list_numbers, methods=["GET"]),
            Route(f"{API}/IncomingPhoneNumbers/{{sid}}.json", update_number, methods=["POST"]),
            Route(f"{API}/Calls.json", create_call, methods=["POST"]),
        ])


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio()
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
    twilio: tuple[FakeTwilio, str], tmp_path: Path
) -> None:
    fake, base = twilio
    code, out, err = await run_cli(["configure", "--number", NUMBER], cli_env(base), tmp_path)
    assert code == 0, err
    assert f"{NUMBER} ({PN}) now calls {PUBLIC}/twilio/voice" in out
    lookup, update = fake.seen
    assert (lookup.method, lookup.path, lookup.query["PhoneNumber"]) == (
        "GET", f"{API}/IncomingPhoneNumbers.json", [NUMBER])
    assert (update.method, update.path) == ("POST", f"{API}/IncomingPhoneNumbers/{PN}.json")
    assert single(update.form) == {
        "VoiceUrl": f"{PUBLIC}/twilio/voice", "VoiceMethod": "POST",
        "StatusCallback": f"{PUBLIC}/twilio/status", "StatusCallbackMethod": "POST",
    }
    assert all(s.auth == basic_auth() for s in fake.seen)


async def test_call_places_an_outbound_call_into_a_flow(
    twilio: tuple[FakeTwilio, str], tmp_path: Path
) -> None:
    fake, base = twilio
    code, out, err = await run_cli(
        ["call", "--to", "+15551112222", "--from", NUMBER, "--flow", "order-status"], cli_env(base), tmp_path)
    assert code == 0, err
    assert CA in out
    (create,) = fake.seen
    assert (create.method, create.path, create.auth) == ("POST", f"{API}/Calls.json", basic_auth())
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
    clean_env: pytest.MonkeyPatch, twilio: tuple[FakeTwilio, str]
) -> None:
    fake, base = twilio
    for name, value in cli_env(base).items():
        clean_env.setenv(name, value)
    code, err = await run_inprocess(twilio_command="configure", number="+15559990000")
    assert code == EXIT_TWILIO
    assert "+15559990000 is not a number on this account" in err
    code, _ = await run_inprocess(twilio_command="configure", number=NUMBER)
    assert code == EXIT_OK
