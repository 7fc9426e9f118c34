"""An empty auth token is no key at all: the webhook refuses to be built with one, and
only an explicit `unsigned` (local experiments) takes requests without a signature."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette

from telephony.tokens import MemoryUsedTokens, StreamTokens
from telephony.webhook import WebhookConfig, voice_routes
from tests.helpers.servers import run_app

FORM = {"CallSid": "CA" + "3" * 32, "From": "+15551112222", "To": "+15553334444"}


def tokens() -> StreamTokens:
    return StreamTokens(b"s" * 32, used=MemoryUsedTokens())


def test_an_empty_auth_token_is_refused() -> None:
    with pytest.raises(ValueError, match="auth_token is empty"):
        WebhookConfig(public_url="https://agent.example.com", auth_token="", tokens=tokens())


async def test_unsigned_takes_requests_without_a_signature_and_warns_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = WebhookConfig(public_url=None, auth_token="", tokens=tokens(), unsigned=True)
    app = Starlette(routes=voice_routes(config, lambda form: "main"))
    caplog.set_level(logging.WARNING, logger="telephony.webhook")
    async with run_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        for _ in range(2):
            r = await client.post("/twilio/voice", data=FORM)
            assert r.status_code == 200 and "<Stream" in r.text
    warned = [r for r in caplog.records if "UNSIGNED webhook accepted" in r.getMessage()]
    assert len(warned) == 2
