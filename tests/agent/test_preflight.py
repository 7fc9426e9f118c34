"""What `phone-agent serve` refuses to start with: each problem names its setting and
says what to do. (tests/ops/test_serve_guards.py runs the real command.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.service.preflight import check, is_loopback, unsigned_webhooks
from agent.service.settings import Settings

GOOD: dict[str, Any] = {
    "twilio_auth_token": "twilio-token",
    "stream_token_secret": "s" * 32,
    "admin_token": "a" * 32,
    "redis_url": "redis://redis:6379/0",
    "public_url": "https://agent.example.com",
    "host": "0.0.0.0",
    "admin_port": 9000,
}


def settings(tmp_path: Path, **changes: Any) -> Settings:
    values = {**GOOD, **changes}
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[call-arg]


def test_a_production_setup_passes(tmp_path: Path) -> None:
    report = check(settings(tmp_path))
    assert report.errors == [] and report.warnings == []


@pytest.mark.parametrize(
    ("changes", "named", "advice"),
    [
        ({"twilio_auth_token": ""}, "TWILIO_AUTH_TOKEN is not set", "serve --local"),
        ({"stream_token_secret": ""}, "STREAM_TOKEN_SECRET is not", "same random string on every instance"),
        ({"stream_token_secret": "short"}, "STREAM_TOKEN_SECRET is 5 characters", "at least 32"),
        ({"admin_token": "x" * 31}, "ADMIN_TOKEN is 31 characters", "at least 32"),
        ({"public_url": "http://agent.example.com"}, "PUBLIC_URL is 'http://agent.example.com', not https://",
         "Terminate TLS at your proxy"),
        ({"public_url": "https://agent.example.com/voice"}, "PUBLIC_URL must be an origin without a path",
         "/twilio/"),
        ({"public_url": "agent.example.com"}, "PUBLIC_URL must be the https:// origin", "https://agent"),
        ({"admin_port": 8000, "port": 8000}, "ADMIN_PORT and PORT are both 8000", "another port"),
        ({"stream_route": "App 1"}, "STREAM_ROUTE must be a lowercase name", "path segment"),
    ],
)
def test_each_mistake_is_named_with_what_to_do(
    tmp_path: Path, changes: dict[str, Any], named: str, advice: str
) -> None:
    (error,) = check(settings(tmp_path, **changes)).errors
    assert named in error and advice in error


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = settings(tmp_path, twilio_auth_token="", stream_token_secret="", admin_token="short",
                   public_url="http://agent.example.com")
    text = "\n".join(check(bad).errors)
    for name in ("TWILIO_AUTH_TOKEN", "STREAM_TOKEN_SECRET", "ADMIN_TOKEN", "PUBLIC_URL"):
        assert name in text


def test_http_public_url_is_fine_on_this_machine(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        assert check(settings(tmp_path, public_url=url)).errors == [], url


def test_unsigned_webhooks_only_on_localhost(tmp_path: Path) -> None:
    local = settings(tmp_path, twilio_auth_token="", host="127.0.0.1")
    assert check(local, unsigned=True).errors == []
    (error,) = check(settings(tmp_path, twilio_auth_token="", host="0.0.0.0"), unsigned=True).errors
    assert "--unsigned-webhooks" in error and "HOST is '0.0.0.0'" in error


def test_serve_local_implies_unsigned_only_on_localhost_without_a_token(tmp_path: Path) -> None:
    bare = settings(tmp_path, twilio_auth_token="", host="127.0.0.1")
    assert unsigned_webhooks(bare, switch=False, local=True) is True
    assert unsigned_webhooks(bare, switch=False, local=False) is False
    assert unsigned_webhooks(bare, switch=True, local=False) is True
    signed = settings(tmp_path, host="127.0.0.1")
    assert unsigned_webhooks(signed, switch=False, local=True) is False
    public = settings(tmp_path, twilio_auth_token="", host="0.0.0.0")
    assert unsigned_webhooks(public, switch=False, local=True) is False
    assert "TWILIO_AUTH_TOKEN" in check(public, unsigned=False).errors[0]


def test_warnings_for_setups_that_work_but_surprise(tmp_path: Path) -> None:
    both = check(settings(tmp_path, trust_forwarded_headers=True)).warnings
    assert any("PUBLIC_URL is used" in w for w in both)
    neither = check(settings(tmp_path, public_url=None)).warnings
    assert any("neither PUBLIC_URL nor TRUST_FORWARDED_HEADERS" in w for w in neither)
    shared = check(settings(tmp_path, admin_port=None)).warnings
    assert any("set ADMIN_PORT" in w for w in shared)


def test_blank_optional_settings_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PUBLIC_URL", "ADMIN_PORT", "STREAM_ROUTE"):
        monkeypatch.setenv(name, "")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.public_url, s.admin_port, s.stream_route) == (None, None, None)


def test_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "agent.example.com", "", None))
