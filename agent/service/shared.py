"""What every call of one process shares: store, stream tokens, filler clips, Twilio's
REST control and metrics. Opened by the app's lifespan, closed after the last call."""

from __future__ import annotations

import logging
import secrets

from agent.fillers import FillerCache
from agent.phone_line import CallControl
from agent.service.caller_key import CallerKeys
from agent.service.metrics import Metrics
from agent.service.settings import Settings
from agent.service.used_tokens import RedisUsedTokens
from telephony.control import TwilioControl
from telephony.tokens import MemoryUsedTokens, StreamTokens, UsedTokens
from tools.store import Store, open_store

log = logging.getLogger(__name__)


class Shared:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secret = settings.stream_token_secret or secrets.token_hex(32)
        # Single use across instances needs the shared Redis (nothing connects until used).
        self.used_tokens: UsedTokens = (
            RedisUsedTokens(settings.redis_url) if settings.redis_url else MemoryUsedTokens()
        )
        self.tokens = StreamTokens(secret.encode(), ttl_s=settings.stream_token_ttl_s, used=self.used_tokens)
        self._store: Store | None = None
        self.fillers = FillerCache()
        # Hang-up and transfer: Twilio's REST API, or (in-process runs with no Twilio
        # account) a stand-in that does to the stream what Twilio would.
        self.control: CallControl | None = None
        self.metrics = Metrics()
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
        self._store = open_store(s.redis_url, s.data_dir)
        self.fillers = FillerCache(self._store)
        await self.caller_keys.load(self._store)
        if s.twilio_account_sid and s.twilio_auth_token and self.control is None:
            self.control = TwilioControl(s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base_url)

    async def close(self) -> None:
        await self.caller_keys.aclose()
        if self._store is not None:
            await self._store.close()
        await self.used_tokens.close()
