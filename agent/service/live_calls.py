"""Which instance holds which live call, and a control channel that reaches them all.

A call is pinned to the process that holds its WebSocket, but an admin request may land
on any instance behind the load balancer. With Redis (REDIS_URL):

- each live call is a hash `<prefix>:live:<call sid>` (instance, started_at, flow,
  caller) with a TTL its holder keeps refreshing, plus a sorted-set index to list them.
  An instance that dies stops refreshing and its calls drop out within the TTL;
- the pub/sub channel `<prefix>:control` carries JSON commands to every instance:
  `{"op": "hangup", "call_sid": ...}` is acted on by the instance holding the call,
  `{"op": "snapshot", ...}` asks it for the live record, and `{"op": "ended", ...}`
  announces that a call is over (so whoever asked for the hang-up can answer).

The prefix is `REDIS_PREFIX` (default `phone-agent`): instances that share it act as one
service; another prefix on the same Redis is another service that never sees these calls.

Without Redis, `LocalRegistry` offers the same API inside one process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "phone-agent"
LIVE_TTL_S = 30.0  # a dead instance's calls vanish from the registry after this long


def control_channel(prefix: str = DEFAULT_PREFIX) -> str:
    """The pub/sub channel of the instances sharing `prefix`."""
    return f"{prefix}:control"


def new_instance_id() -> str:
    """hostname-pid-random: readable in logs, unique even when pids repeat in containers."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LiveCall:
    call_sid: str
    instance: str
    started_at: float
    flow: str
    caller: str = ""  # already masked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Holder(Protocol):
    """The process's side of the registry: what it can do to the calls it holds."""

    async def hang_up_local(self, call_sid: str, outcome: str) -> bool:
        """End a call this process holds; False if it holds no such call."""
        ...

    def snapshot_local(self, call_sid: str) -> dict[str, Any] | None:
        """The current record of a call this process holds, or None."""
        ...


class Registry(Protocol):
    instance_id: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def add(self, call: LiveCall) -> None: ...
    async def remove(self, call_sid: str, outcome: str) -> None: ...
    async def live(self) -> list[LiveCall]: ...
    async def get(self, call_sid: str) -> LiveCall | None: ...
    async def hang_up(self, call_sid: str, outcome: str, wait_s: float) -> str | None: ...
    async def snapshot(self, call_sid: str, timeout_s: float) -> dict[str, Any] | None: ...


def open_registry(
    redis_url: str | None, holder: Holder, instance_id: str | None = None, *, prefix: str = DEFAULT_PREFIX
) -> Registry:
    instance_id = instance_id or new_instance_id()
    if redis_url:
        return RedisRegistry(redis_url, holder, instance_id, prefix=prefix)
    return LocalRegistry(holder, instance_id)


class _EndedWaiters:
    """Futures waiting for "call X ended", resolved locally or from the control channel."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[str]]] = {}

    def expect(self, call_sid: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(call_sid, []).append(future)
        return future

    def resolve(self, call_sid: str, outcome: str) -> None:
        for future in self._waiting.pop(call_sid, []):
            if not future.done():
                future.set_result(outcome)

    def forget(self, call_sid: str, future: asyncio.Future[str]) -> None:
        waiting = self._waiting.get(call_sid)
        if waiting and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self._waiting[call_sid]


async def _wait(future: asyncio.Future[str], timeout_s: float) -> str | None:
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)
    except TimeoutError:
        return None


class LocalRegistry:
    """One process, no Redis: the registry is a dict and the channel a function call."""

    def __init__(self, holder: Holder, instance_id: str) -> None:
        self.holder = holder
        self.instance_id = instance_id
        self._calls: dict[str, LiveCall] = {}
        self._ended = _EndedWaiters()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add(self, call: LiveCall) -> None:
        self._calls[call.call_sid] = call

    async def remove(self, call_sid: str, outcome: str) -> None:
        self._calls.pop(call_sid, None)
        self._ended.resolve(call_sid, outcome)

    async def live(self) -> list[LiveCall]:
        return sorted(self._calls.values(), key=lambda c: c.started_at)

    async def get(self, call_sid: str) -> LiveCall | None:
        return self._calls.get(call_sid)

    async def hang_up(self, call_sid: str, outcome: str, wait_s: float) -> str | None:
        """End the call and wait (up to wait_s) until it is over; its outcome, or None."""
        ended = self._ended.expect(call_sid)
        try:
            if not await self.holder.hang_up_local(call_sid, outcome):
                return None
            return await _wait(ended, wait_s)
        finally:
            self._ended.forget(call_sid, ended)

    async def snapshot(self, call_sid: str, timeout_s: float) -> dict[str, Any] | None:
        return self.holder.snapshot_local(call_sid)


class RedisRegistry:
    """The registry and control channel in Redis, shared by every instance."""

    def __init__(
        self,
        url: str,
        holder: Holder,
        instance_id: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: float = LIVE_TTL_S,
        channel: str | None = None,
    ) -> None:
        self.holder = holder
        self.instance_id = instance_id
        self.ttl_s = ttl_s
        self.channel = channel or control_channel(prefix)
        self._prefix = prefix
        self._redis = aioredis.from_url(url, decode_responses=True)
        self._local: dict[str, LiveCall] = {}
        self._ended = _EndedWaiters()
        self._subscribed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ keys

    def _key(self, call_sid: str) -> str:
        return f"{self._prefix}:live:{call_sid}"

    @property
    def _index(self) -> str:
        return f"{self._prefix}:live-index"

    # ------------------------------------------------------------ lifecycle

    async def start(self, subscribe_timeout_s: float = 5.0) -> None:
        """Subscribe to the control channel (waits for Redis to confirm) and start refreshing."""
        self._listener = asyncio.create_task(self._listen(), name="registry-listener")
        self._refresher = asyncio.create_task(self._refresh(), name="registry-refresh")
        try:
            await asyncio.wait_for(self._subscribed.wait(), subscribe_timeout_s)
        except TimeoutError:
            # Serve anyway: local calls work; remote hang-ups arrive once Redis answers.
            log.error("control channel: not subscribed after %.0fs; retrying in the background",
                      subscribe_timeout_s)

    async def close(self) -> None:
        tasks = [t for t in (self._listener, self._refresher, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._redis.aclose()

    # ------------------------------------------------------------ registry

    async def add(self, call: LiveCall) -> None:
        self._local[call.call_sid] = call
        try:
            await self._write(call)
        except Exception as exc:  # never fail a call over the registry: refresh retries
            log.warning("registry: could not add call %s: %s", call.call_sid, exc)

    async def _write(self, call: LiveCall) -> None:
        fields = {k: str(v) for k, v in call.to_dict().items()}
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key(call.call_sid), mapping=fields)
            pipe.pexpire(self._key(call.call_sid), int(self.ttl_s * 1000))
            pipe.zadd(self._index, {call.call_sid: call.started_at})
            await pipe.execute()
        if call.call_sid not in self._local:
            # The call ended while we were writing: don't leave a ghost entry behind.
            await self._delete(call.call_sid)

    async def _delete(self, call_sid: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._key(call_sid))
            pipe.zrem(self._index, call_sid)
            await pipe.execute()

    async def remove(self, call_sid: str, outcome: str) -> None:
        self._local.pop(call_sid, None)
        self._ended.resolve(call_sid, outcome)
        try:
            await self._delete(call_sid)
            await self._publish({"op": "ended", "call_sid": call_sid, "outcome": outcome})
        except Exception as exc:
            log.warning("registry: could not remove call %s: %s", call_sid, exc)

    async def live(self) -> list[LiveCall]:
        sids = await self._redis.zrange(self._index, 0, -1)
        if not sids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.hgetall(self._key(sid))
            found = await pipe.execute()
        calls = [_live_call(h) for h in found if h]
        stale = [sid for sid, h in zip(sids, found, strict=True) if not h]
        if stale:  # their holder stopped refreshing (crashed): drop them from the index
            await self._redis.zrem(self._index, *stale)
        return calls

    async def get(self, call_sid: str) -> LiveCall | None:
        if call_sid in self._local:
            return self._local[call_sid]
        found = await self._redis.hgetall(self._key(call_sid))
        return _live_call(found) if found else None

    # ------------------------------------------------------------ control

    async def hang_up(self, call_sid: str, outcome: str, wait_s: float) -> str | None:
        """End the call wherever it lives and wait (up to wait_s) for it to be over.

        Returns the outcome, or None if nobody confirmed in time (no such call, or its
        instance is gone)."""
        ended = self._ended.expect(call_sid)
        try:
            if call_sid in self._local:
                if not await self.holder.hang_up_local(call_sid, outcome):
                    return None
            else:
                await self._publish({"op": "hangup", "call_sid": call_sid, "outcome": outcome})
            return await _wait(ended, wait_s)
        finally:
            self._ended.forget(call_sid, ended)

    async def snapshot(self, call_sid: str, timeout_s: float) -> dict[str, Any] | None:
        """The live record of a call, from whichever instance holds it."""
        if call_sid in self._local:
            return self.holder.snapshot_local(call_sid)
        reply_to = f"{self._prefix}:reply:{uuid.uuid4().hex}"
        await self._publish({"op": "snapshot", "call_sid": call_sid, "reply_to": reply_to})
        got = await self._redis.blpop([reply_to], timeout=timeout_s)
        return json.loads(got[1]) if got else None

    async def _publish(self, message: dict[str, Any]) -> None:
        message = {**message, "from": self.instance_id}
        await self._redis.publish(self.channel, json.dumps(message))

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self._subscribed.set()
                            backoff = 0.5
                        elif message["type"] == "message":
                            self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._subscribed.clear()
                log.warning("control channel lost (%s); resubscribing in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)  # back-off before reconnecting, not a sync point
                backoff = min(backoff * 2, 10.0)

    def _dispatch(self, data: str) -> None:
        try:
            message = json.loads(data)
            op, call_sid = message["op"], str(message["call_sid"])
        except (ValueError, KeyError, TypeError):
            log.warning("control channel: ignoring malformed message %.200r", data)
            return
        if op == "ended":
            self._ended.resolve(call_sid, str(message.get("outcome", "")))
        elif call_sid not in self._local:
            return  # another instance holds it
        elif op == "hangup":
            log.info("call %s: hang-up requested by %s", call_sid, message.get("from"))
            self._spawn(self.holder.hang_up_local(call_sid, str(message.get("outcome") or "admin_hangup")))
        elif op == "snapshot" and isinstance(message.get("reply_to"), str):
            self._spawn(self._answer_snapshot(call_sid, message["reply_to"]))

    async def _answer_snapshot(self, call_sid: str, reply_to: str) -> None:
        record = self.holder.snapshot_local(call_sid)
        if record is None:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(reply_to, json.dumps(record, default=str))
            pipe.expire(reply_to, 30)  # the asker may have given up already
            await pipe.execute()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("control command failed", exc_info=task.exception())

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)  # a period timer, not a sync point
            try:
                await self.refresh_once()
            except Exception as exc:
                log.warning("registry: refresh failed (%s); retrying next period", exc)

    async def refresh_once(self) -> None:
        """Keep our calls' entries alive; re-create any that Redis lost (restart, flush)."""
        for call in list(self._local.values()):
            await self._write(call)


def _live_call(h: dict[str, str]) -> LiveCall:
    return LiveCall(
        call_sid=h.get("call_sid", ""),
        instance=h.get("instance", ""),
        started_at=float(h.get("started_at") or 0.0),
        flow=h.get("flow", ""),
        caller=h.get("caller", ""),
    )

