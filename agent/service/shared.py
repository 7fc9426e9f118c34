"""What every call of one process shares: store, stream tokens, filler clips, Twilio's
REST control and metrics. Opened by the app's lifespan, closed after the last call."""

from __future__ import annotations

import asyncio
import logging
import secrets

from agent.fillers import FillerCache
from agent.outbound_http import OutboundHttp
from agent.phone_line import CallControl
from agent.service.caller_key import CallerKeys
from agent.service.metrics import Metrics
from agent.service.record_spool import RecordSpool
from agent.service.redis_client import open_redis
from agent.service.settings import Settings
from agent.service.used_tokens import RedisUsedTokens
from agent.tracing import open_tracing
from telephony.control import TwilioControl
from telephony.tokens import MemoryUsedTokens, StreamTokens, UsedTokens
from tools.store import Store, open_store

log = logging.getLogger(__name__)

STORE_PING_S = 1.0


class Shared:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secret = settings.stream_token_secret or secrets.token_hex(32)
        # One Redis client (one pool, timeouts) for the store, live calls and tokens;
        # nothing connects until used.
        self.redis = open_redis(settings.redis_url) if settings.redis_url else None
        # Single use across instances needs the shared Redis.
        self.used_tokens: UsedTokens = (
            RedisUsedTokens(self.redis, settings.redis_prefix) if self.redis else MemoryUsedTokens()
        )
        self.tokens = StreamTokens(secret.encode(), ttl_s=settings.stream_token_ttl_s, used=self.used_tokens)
        self._store: Store | None = None
        self._store_ok = False
        self._pinged_at = float("-inf")
        self.fillers = FillerCache()
        # Hang-up and transfer: Twilio's REST API, or (in-process runs with no Twilio
        # account) a stand-in that does to the stream what Twilio would.
        self.control: CallControl | None = None
        self.metrics = Metrics()
        self.tracing = open_tracing(settings.otel_exporter_otlp_endpoint)
        # Flow webhooks and HTTP tools: one connection pool for the process.
        self.http = OutboundHttp(observe=self.metrics.on_http)
        # Records the store cannot take right now wait on disk (agent/service/record_spool.py).
        self.records = RecordSpool(
            settings.data_dir / "spool" / "records", lambda: self.store,
            settings.record_retention_days * 86400,  # RECORD_RETENTION_DAYS
        )
        self.caller_keys = CallerKeys(settings.caller_hash_key)  # a bad key fails here

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the store opens with the app's lifespan")
        return self._store

    @property
    def ready(self) -> bool:
        return self._store is not None

    async def open(self) -> None:
        s = self.settings
        self._store = open_store(s.redis_url, s.data_dir, prefix=s.redis_prefix, client=self.redis)
        self.fillers = FillerCache(self._store)
        await self.caller_keys.load(self._store)
        if s.twilio_account_sid and s.twilio_auth_token and self.control is None:
            self.control = TwilioControl(s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base_url)

    async def store_answers(self) -> bool:
        """Whether the store answered a ping lately (asked at most once a second, and
        never waiting more than STORE_PING_S: /readyz must answer fast, also when Redis
        does not)."""
        if self._store is None:
            return False
        now = asyncio.get_running_loop().time()
        if now - self._pinged_at >= 1.0:
            self._pinged_at = now
            try:
                async with asyncio.timeout(STORE_PING_S):
                    await self._store.ping()
                self._store_ok = True
            except Exception as exc:
                if self._store_ok:
                    log.warning("store does not answer: %r", exc)
                self._store_ok = False
        return self._store_ok

    async def close(self) -> None:
        await self.caller_keys.aclose()
        await self.http.aclose()
        if self._store is not None:
            await self._store.close()
        await self.used_tokens.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.tracing is not None:  # flushes over HTTP from the exporter's thread
            await asyncio.to_thread(self.tracing.shutdown)
