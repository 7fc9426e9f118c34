"""Several real `phone-agent serve` processes sharing one Redis, for the multi-instance tests.

Each instance gets its own PUBLIC_URL host (so webhook signatures are per instance, as
behind a real balancer with per-pod URLs), while the stream-token secret, Twilio auth
token, admin token, Redis and the fake OpenAI server are shared. Each cluster has a
REDIS_PREFIX of its own: clusters of parallel tests share the Redis server but never a
key or a control message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from telephony.testing.emulator import StreamTarget, dial_webhook
from tests.ops.procs import ServerProcess, serve_process

FLOWS_YAML = """\
default_flow: desk
flows:
  desk:
    provider: openai
    model: gpt-realtime
    voice: marin
    greeting: "Hello, Riverside Clinic, how can I help?"
    instructions: "You book appointments. Keep answers short."
    tools: [check_availability, book_appointment, end_call]
    max_call_seconds: 600
"""
DESK_NUMBER = "+15550001000"


def far_monday() -> dt.date:
    """A random Monday centuries ahead: this run's bookings can't meet another run's."""
    day = dt.date(2400, 1, 1) + dt.timedelta(weeks=random.randrange(100_000))
    return day - dt.timedelta(days=day.weekday())


def random_caller() -> str:
    return "+1555" + "".join(random.choice("0123456789") for _ in range(7))


@dataclass
class Cluster:
    servers: list[ServerProcess]
    auth_token: str
    admin_token: str
    today: dt.date
    caller: str
    redis_url: str | None
    redis_prefix: str
    call_sids: list[str]

    def admin(self, server: ServerProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.base_url, timeout=15,
                                 headers={"Authorization": f"Bearer {self.admin_token}"})

    async def dial(self, server: ServerProcess, **kwargs: str) -> StreamTarget:
        """Twilio's signed webhook to `server`; the stream URL points back at it."""
        target = await dial_webhook(server.base_url, self.auth_token, to=DESK_NUMBER,
                                    from_=self.caller, public_url=server.public_url, **kwargs)
        self.call_sids.append(target.call_sid)
        return target


@contextlib.asynccontextmanager
async def cluster(
    tmp: Path, *, instances: int, openai_url: str, openai_key: str, redis_url: str | None,
    extra_env: dict[str, str] | None = None, instance_env: list[dict[str, str]] | None = None,
    public_urls: bool = True,
) -> AsyncIterator[Cluster]:
    """`instances` servers; `instance_env[i]` adds to server i's environment. Without
    `public_urls` no PUBLIC_URL is set (behind a proxy, with TRUST_FORWARDED_HEADERS)."""
    flows = tmp / "flows.yaml"
    flows.write_text(FLOWS_YAML)
    shared = {
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "STREAM_TOKEN_SECRET": secrets.token_hex(32),
        "ADMIN_TOKEN": secrets.token_hex(16),
        "OPENAI_REALTIME_URL": openai_url,
        "OPENAI_API_KEY": openai_key,
        "FLOWS_FILE": str(flows),
        "TOOLS_TODAY": far_monday().isoformat(),
        "REDIS_PREFIX": f"test-cluster-{uuid.uuid4().hex[:12]}",
        **({"REDIS_URL": redis_url} if redis_url else {}),
        **(extra_env or {}),
    }
    result = Cluster([], shared["TWILIO_AUTH_TOKEN"], shared["ADMIN_TOKEN"],
                     dt.date.fromisoformat(shared["TOOLS_TODAY"]), random_caller(), redis_url,
                     shared["REDIS_PREFIX"], [])
    try:
        async with contextlib.AsyncExitStack() as stack:
            for i in range(instances):
                name = chr(ord("a") + i)
                home = tmp / name
                home.mkdir()
                env = {**shared, "DATA_DIR": str(home / "data"), **(instance_env or [{}] * instances)[i]}
                if public_urls:
                    env["PUBLIC_URL"] = f"https://{name}.phone-agent.test"
                result.servers.append(await stack.enter_async_context(serve_process(env, cwd=home)))
            yield result
    finally:
        if redis_url:
            await forget_in_redis(redis_url, result)


async def forget_in_redis(url: str, run: Cluster) -> None:
    """Delete every key this cluster wrote (all of them start with its prefix)."""
    client = aioredis.from_url(url, decode_responses=True)
    try:
        for pattern in (f"{{{run.redis_prefix}}}:*", f"{run.redis_prefix}:*"):
            keys = [k async for k in client.scan_iter(match=pattern, count=500)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
