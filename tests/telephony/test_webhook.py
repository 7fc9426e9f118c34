"""Voice/status webhooks over real HTTP, signed exactly as Twilio signs them."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from telephony.numbers import mask_number
from telephony.tokens import MemoryUsedTokens, StreamTokens, TokenError
from telephony.webhook import WebhookConfig, voice_routes
from tests.helpers.servers import run_app

TOKEN = "twilio-auth-token-for-tests"
PUBLIC = "https://agent.example.com"
CALL = "CA" + "1" * 32
FORM = {
    "CallSid": CALL,
    "AccountSid": "AC" + "2" * 32,
    "From": "+15551112222",
    "To": "+15553334444",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
}


def sign(url: str, form: Mapping[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, dict(form))


def stream_tokens() -> StreamTokens:
    return StreamTokens(b"s" * 32, used=MemoryUsedTokens())


def config(**overrides: Any) -> WebhookConfig:
    values: dict[str, Any] = {"public_url": PUBLIC, "auth_token": TOKEN, "tokens": stream_tokens()}
    values.update(overrides)
    return WebhookConfig(**values)


@asynccontextmanager
async def serve(
    cfg: WebhookConfig,
    choose_flow: Callable[[Mapping[str, str]], Any] = lambda form: "main",
    on_status: Callable[[dict[str, str]], Any] | None = None,
    extra: list[Route] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=voice_routes(cfg, choose_flow, on_status) + (extra or []))
    async with run_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        yield client


def parse(body: str) -> ET.Element:
    return ET.fromstring(body)


def stream_parameters(root: ET.Element) -> dict[str, str]:
    stream = root.find("./Connect/Stream")
    assert stream is not None
    return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


# ---------------------------------------------------------------- signatures


def test_docs_test_vector() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert sign(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


async def test_docs_test_vector_accepted_end_to_end() -> None:
    cfg = config(public_url="https://mycompany.com", auth_token="12345")
    voice = voice_routes(cfg, lambda form: "main", None)[0]
    extra = [Route("/myapp.php", voice.endpoint, methods=["POST"])]
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    async with serve(cfg, extra=extra) as client:
        r = await client.post(
            "/myapp.php?foo=1&bar=2",
            data=params,
            headers={"X-Twilio-Signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
        )
    assert r.status_code == 200, r.text
    assert parse(r.text).find("./Connect/Stream") is not None


async def test_forged_signature_is_403_and_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.webhook")
    async with serve(config()) as client:
        forged = sign(f"{PUBLIC}/twilio/voice", FORM, token="not-the-token")
        r = await client.post("/twilio/voice", data=FORM, headers={"X-Twilio-Signature": forged})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/plain")
    records = [rec for rec in caplog.records if rec.name == "telephony.webhook"]
    assert records and records[0].levelno == logging.WARNING
    text = caplog.text
    assert "invalid X-Twilio-Signature" in text
    assert TOKEN not in text and "+15551112222" not in text and "+15553334444" not in text


async def test_missing_signature_is_403(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.webhook")
    async with serve(config()) as client:
        r = await client.post("/twilio/voice", data=FORM)
    assert r.status_code == 403
    assert "missing X-Twilio-Signature" in caplog.text


async def test_tampered_form_is_403() -> None:
    async with serve(config()) as client:
        signature = sign(f"{PUBLIC}/twilio/voice", FORM)
        r = await client.post(
            "/twilio/voice",
            data={**FORM, "To": "+19999999999"},
            headers={"X-Twilio-Signature": signature},
        )
    assert r.status_code == 403


async def test_wrong_public_url_scheme_is_403() -> None:
    # Configured http:// but Twilio signed the https:// URL it called.
    async with serve(config(public_url="http://agent.example.com")) as client:
        signature = sign(f"{PUBLIC}/twilio/voice", FORM)
        r = await client.post("/twilio/voice", data=FORM, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 403


async def test_query_string_is_part_of_the_signed_url() -> None:
    seen: list[Mapping[str, str]] = []

    def choose(params: Mapping[str, str]) -> str:
        seen.append(params)
        return params["flow"]

    async with serve(config(), choose_flow=choose) as client:
        url = f"{PUBLIC}/twilio/voice?flow=sales&x=a%20b"
        good = sign(url, FORM)
        r = await client.post(
            "/twilio/voice?flow=sales&x=a%20b", data=FORM, headers={"X-Twilio-Signature": good}
        )
        assert r.status_code == 200
        # The same signature does not cover a different query string.
        r2 = await client.post(
            "/twilio/voice?flow=admin&x=a%20b", data=FORM, headers={"X-Twilio-Signature": good}
        )
        assert r2.status_code == 403
    assert stream_parameters(parse(r.text))["flow"] == "sales"
    assert seen[0]["To"] == FORM["To"] and seen[0]["flow"] == "sales"


async def test_non_default_port_in_public_url_is_kept() -> None:
    # RequestValidator also accepts the URL with its port stripped (Twilio signs both
    # ways); what matters here is that we pass the configured port through.
    cfg = config(public_url="https://agent.example.com:8443")
    async with serve(cfg) as client:
        ok = sign("https://agent.example.com:8443/twilio/voice", FORM)
        other_host = sign("https://agent.example.org:8443/twilio/voice", FORM)
        r_ok = await client.post("/twilio/voice", data=FORM, headers={"X-Twilio-Signature": ok})
        r_bad = await client.post(
            "/twilio/voice", data=FORM, headers={"X-Twilio-Signature": other_host}
        )
    assert (r_ok.status_code, r_bad.status_code) == (200, 403)
    stream = parse(r_ok.text).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://agent.example.com:8443/twilio/media"


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tunnel.example.net"}


async def test_forwarded_headers_honoured_when_trusted() -> None:
    cfg = config(public_url=None, trust_forwarded_headers=True)
    async with serve(cfg) as client:
        signature = sign("https://tunnel.example.net/twilio/voice", FORM)
        r = await client.post(
            "/twilio/voice", data=FORM, headers={**FORWARDED, "X-Twilio-Signature": signature}
        )
    assert r.status_code == 200, r.text
    stream = parse(r.text).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://tunnel.example.net/twilio/media"


async def test_forwarded_headers_ignored_when_not_trusted() -> None:
    cfg = config(public_url=None, trust_forwarded_headers=False)
    async with serve(cfg) as client:
        signature = sign("https://tunnel.example.net/twilio/voice", FORM)
        r = await client.post(
            "/twilio/voice", data=FORM, headers={**FORWARDED, "X-Twilio-Signature": signature}
        )
        assert r.status_code == 403
        # Without a proxy, the URL as seen directly is what must be signed.
        direct = sign(f"{client.base_url}/twilio/voice", FORM)
        r2 = await client.post("/twilio/voice", data=FORM, headers={"X-Twilio-Signature": direct})
        assert r2.status_code == 200


async def test_public_url_wins_over_forwarded_headers() -> None:
    cfg = config(trust_forwarded_headers=True)
    async with serve(cfg) as client:
        spoofed = sign("https://tunnel.example.net/twilio/voice", FORM)
        r = await client.post(
            "/twilio/voice", data=FORM, headers={**FORWARDED, "X-Twilio-Signature": spoofed}
        )
    assert r.status_code == 403


async def test_oversized_body_is_rejected() -> None:
    async with serve(config()) as client:
        big = {**FORM, "Junk": "x" * 70_000}
        r = await client.post(
            "/twilio/voice",
            data=big,
            headers={"X-Twilio-Signature": sign(f"{PUBLIC}/twilio/voice", big)},
        )
    assert r.status_code == 403


# ---------------------------------------------------------------- voice answer


async def test_voice_answers_connect_stream_with_parameters() -> None:
    tokens = stream_tokens()
    async with serve(config(tokens=tokens), choose_flow=lambda f: "booking") as client:
        r = await client.post(
            "/twilio/voice",
            data=FORM,
            headers={"X-Twilio-Signature": sign(f"{PUBLIC}/twilio/voice", FORM)},
        )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    root = parse(r.text)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://agent.example.com/twilio/media"
    params = stream_parameters(root)
    assert params["flow"] == "booking"
    assert params["from"] == FORM["From"] and params["to"] == FORM["To"]
    assert len(params["token"]) < 200
    # bound to this call and these parameters, usable once
    with pytest.raises(TokenError, match="parameters changed"):
        await tokens.verify(params["token"], CALL, {**params, "flow": "vip"})
    await tokens.verify(params["token"], CALL, params)


async def test_async_flow_chooser_is_awaited() -> None:
    async def choose(params: Mapping[str, str]) -> str:
        return "from-redis"

    async with serve(config(), choose_flow=choose) as client:
        r = await client.post(
            "/twilio/voice",
            data=FORM,
            headers={"X-Twilio-Signature": sign(f"{PUBLIC}/twilio/voice", FORM)},
        )
    assert stream_parameters(parse(r.text))["flow"] == "from-redis"


@pytest.mark.parametrize("chooser", [lambda f: None, lambda f: 1 / 0])
async def test_no_flow_says_sorry_and_hangs_up(chooser: Callable[[Mapping[str, str]], Any]) -> None:
    async with serve(config(), choose_flow=chooser) as client:
        r = await client.post(
            "/twilio/voice",
            data=FORM,
            headers={"X-Twilio-Signature": sign(f"{PUBLIC}/twilio/voice", FORM)},
        )
    assert r.status_code == 200
    root = parse(r.text)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "Sorry" in (root.find("Say").text or "")  # type: ignore[union-attr]


async def test_busy_rejects_the_call() -> None:
    async with serve(config(busy=lambda: True)) as client:
        r = await client.post(
            "/twilio/voice",
            data=FORM,
            headers={"X-Twilio-Signature": sign(f"{PUBLIC}/twilio/voice", FORM)},
        )
    root = parse(r.text)
    reject = root.find("Reject")
    assert reject is not None and reject.get("reason") == "busy"


async def test_busy_state_is_not_revealed_to_unsigned_requests() -> None:
    async with serve(config(busy=lambda: True)) as client:
        r = await client.post("/twilio/voice", data=FORM)
    assert r.status_code == 403


async def test_voice_is_post_only() -> None:
    async with serve(config()) as client:
        r = await client.get("/twilio/voice")
    assert r.status_code == 405


# ---------------------------------------------------------------- status callback


STATUS_FORM = {**FORM, "CallStatus": "completed", "CallDuration": "42", "SequenceNumber": "0"}


async def test_status_callback_validated_and_delivered() -> None:
    got: list[dict[str, str]] = []
    async with serve(config(), on_status=got.append) as client:
        url = f"{PUBLIC}/twilio/status"
        r = await client.post(
            "/twilio/status",
            data=STATUS_FORM,
            headers={"X-Twilio-Signature": sign(url, STATUS_FORM)},
        )
        forged = await client.post(
            "/twilio/status", data=STATUS_FORM, headers={"X-Twilio-Signature": "AAAA"}
        )
    assert r.status_code == 204 and r.content == b""
    assert forged.status_code == 403
    assert got == [STATUS_FORM]


async def test_async_status_handler_and_failure() -> None:
    got: list[dict[str, str]] = []

    async def record(fields: dict[str, str]) -> None:
        got.append(fields)
        if fields["CallStatus"] == "failed":
            raise RuntimeError("store down")

    url = f"{PUBLIC}/twilio/status"
    failed = {**STATUS_FORM, "CallStatus": "failed"}
    async with serve(config(), on_status=record) as client:
        ok = await client.post(
            "/twilio/status",
            data=STATUS_FORM,
            headers={"X-Twilio-Signature": sign(url, STATUS_FORM)},
        )
        bad = await client.post(
            "/twilio/status", data=failed, headers={"X-Twilio-Signature": sign(url, failed)}
        )
    assert (ok.status_code, bad.status_code) == (204, 500)
    assert len(got) == 2


async def test_status_without_handler_still_answers_204() -> None:
    async with serve(config(), on_status=None) as client:
        url = f"{PUBLIC}/twilio/status"
        r = await client.post(
            "/twilio/status",
            data=STATUS_FORM,
            headers={"X-Twilio-Signature": sign(url, STATUS_FORM)},
        )
    assert r.status_code == 204


# ---------------------------------------------------------------- config and helpers


@pytest.mark.parametrize(
    "url",
    [
        "agent.example.com",
        "ftp://agent.example.com",
        "https://agent.example.com/prefix",
        "https://a.b?x=1",
    ],
)
def test_public_url_must_be_an_origin(url: str) -> None:
    with pytest.raises(ValueError):
        config(public_url=url)


def test_public_url_with_trailing_slash_is_fine() -> None:
    config(public_url="https://agent.example.com/")


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+15551112222", "+1555***2222"),  # the same form as call records and JSON logs
        ("+442071234567", "+4420***4567"),
        ("+1555123", "***5123"),  # too short to keep a prefix
        ("123", "***"),
        (None, "-"),
        ("client:alice", "***lice"),  # a Twilio Client identity, not a number
    ],
)
def test_mask_number(number: str | None, masked: str) -> None:
    assert mask_number(number) == masked


def test_rejection_log_holds_back_a_flood(caplog: pytest.LogCaptureFixture) -> None:
    from telephony.webhook import _RejectionLog

    now = [100.0]
    log = _RejectionLog(per_second=5, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="telephony.webhook")
    for i in range(20):
        log.warn("rejected %d", i)
    now[0] += 1.0
    log.warn("rejected %d", 99)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [*(f"rejected {i}" for i in range(5)),
                     "rejected 15 more unsigned webhooks (not logged one by one)", "rejected 99"]
