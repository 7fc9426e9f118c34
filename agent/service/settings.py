"""Service settings from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # The https:// origin Twilio reaches us at; signatures are checked against it. Unset:
    # the request's own scheme and Host, or X-Forwarded-Proto/Host behind a trusted proxy.
    public_url: str | None = None
    trust_forwarded_headers: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    # Admin API, console and /metrics on a port of their own (absent from `port`); 0 picks
    # a free one. Unset: everything on `port`.
    admin_port: int | None = None
    # This instance's name in the proxy's routing (deploy/nginx.conf): media streams for
    # calls it answered are sent to /twilio/media/<name>, so they reach the instance that
    # warmed their model session.
    stream_route: str | None = None

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    # Tests point the twilio client at a local stand-in for the REST API.
    twilio_api_base_url: str | None = None

    openai_api_key: str = ""
    openai_realtime_url: str = "wss://api.openai.com/v1/realtime"
    gemini_api_key: str = ""
    gemini_live_url: str = (
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )

    # Per-turn traces over OTLP/HTTP (with the `otel` extra): the collector's base URL,
    # the standard OpenTelemetry variable.
    otel_exporter_otlp_endpoint: str | None = None
    redis_url: str | None = None
    # Every Redis name this service uses starts with it (keys, the control channel), so
    # two deployments, or parallel test runs, can share one Redis without meeting.
    # No braces: it becomes the store's Redis Cluster hash tag.
    redis_prefix: str = Field(default="phone-agent", pattern=r"^[^{}\s]+$")
    data_dir: Path = Path("data")
    flows_file: Path | None = None
    admin_token: str = ""
    # A backstop: new calls are turned away first when the event loop's median lag over
    # 2 s reaches overload_lag_ms (agent/service/overload.py; 0 turns that off).
    max_concurrent_calls: int = 1000
    overload_lag_ms: float = 40.0
    # Open the model session while Twilio fetches the TwiML and dials the media stream
    # (agent/service/prewarm.py); an unclaimed one closes after prewarm_ttl_s.
    prewarm_sessions: bool = True
    prewarm_ttl_s: float = 15.0
    # Stream tokens are HMACs with this key; a random one per process is fine for one
    # instance, several instances behind a balancer must share it.
    stream_token_secret: str = Field(default="")
    stream_token_ttl_s: int = 60
    drain_deadline_s: float = 300.0
    # Bot audio per Twilio `media` message (ms): the frames between two marks (100 ms
    # apart) go out as one message, a socket write each instead of one per 20 ms frame.
    # 20 sends every frame on its own, as Twilio sends the caller's.
    media_message_ms: int = Field(default=100, ge=20, le=1000)

    # Personal data (agent/service/retention.py, caller_key.py). Call records expire this
    # many days after the call; bookings are deleted this many days after their day.
    record_retention_days: int = Field(default=30, ge=1)
    booking_retention_days: int = Field(default=30, ge=0)
    purge_interval_s: float = Field(default=3600.0, gt=0)
    # Keys the hash that lets a caller's records be found by number for deletion. Unset:
    # a random key kept in the store. Changing it orphans older records' hashes.
    caller_hash_key: str = ""

    # The offline engine (flows with `provider: local`, or every flow under `serve --local`).
    local_engine_url: str = "ws://127.0.0.1:8765/v1/realtime"
    # The bearer token the engine checks (`phone-agent engine` prints or reads it; `serve
    # --local` makes one). Never the OpenAI key: that would hand it to whatever listens there.
    local_engine_token: str = ""
    force_local: bool = False
    # Demos and fixtures only: the date treated as today (YYYY-MM-DD), the one clock: the
    # business tools count from it and every model session (the offline engine too) is told it.
    tools_today: str | None = None
    # Demos and fixtures only: make named tools this much slower (ms), e.g. to hear a filler.
    tool_delays_ms: dict[str, int] = Field(default_factory=dict)

    @field_validator("public_url", "admin_port", "stream_route", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `PUBLIC_URL=` in a .env or a compose file means "not set", not "the empty URL".
        return None if isinstance(value, str) and not value.strip() else value
