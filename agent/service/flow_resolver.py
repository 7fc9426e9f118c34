"""The flow a call gets, from the voice webhook to the media stream, across instances.

The voice webhook resolves the flow (its flow webhook, agent/flow_webhook.py) and opens
the model session with the result. The media stream may land on another instance behind
the balancer, so the resolution is kept under a random id in the shared store (Redis
with several instances, SQLite with one) for a little longer than a stream token lives,
and in this process too (no store round trip, and no dependence on the store, when the
stream comes back here, as it usually does). The id travels as the stream's
`resolution` parameter, which the stream token binds: a stream cannot claim another.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from agent.flow_webhook import CallFacts, Resolution, WebhookOutcome, resolve, static
from agent.flows import Flow, Flows
from agent.outbound_http import OutboundHttp
from agent.service.metrics import Metrics
from tools.store import Store

log = logging.getLogger(__name__)

RESOLUTION_PARAMETER = "resolution"
KIND = "flow_resolution"
STORE_WAIT_S = 1.0  # a store that does not answer must not hold up Twilio's TwiML
EXTRA_TTL_S = 30.0  # past the stream token's life: a stream that may still come finds it


class FlowResolver:
    def __init__(
        self,
        flows: Flows,
        http: OutboundHttp,
        store: Callable[[], Store],
        metrics: Metrics,
        ttl_s: float,
    ) -> None:
        self.flows = flows
        self.http = http
        self._store = store
        self._metrics = metrics
        self.ttl_s = ttl_s + EXTRA_TTL_S
        self._here: dict[str, tuple[float, Resolution]] = {}  # id -> (expiry, resolution)
        self._forgetting: set[asyncio.Task[None]] = set()

    async def on_webhook(self, flow: Flow, form: Mapping[str, str]) -> tuple[Resolution, str | None]:
        """Resolve `flow` for the call in `form`; the id the stream must carry (None when
        the flow has no webhook: the stream's flow name says it all)."""
        call = CallFacts.from_form(form)
        resolution = await resolve(self.flows, flow, call, self.http)
        outcome = resolution.outcome
        if outcome is None:
            return resolution, None
        self._observe(call.call_sid, outcome)
        rid = secrets.token_urlsafe(12)
        self._remember(rid, resolution)
        try:
            async with asyncio.timeout(STORE_WAIT_S):
                await self._store().put_record(KIND, rid, _dump(resolution), ttl_s=self.ttl_s)
        except Exception as exc:  # this instance still has it; another would fall back
            log.warning("call %s: could not share the flow resolution: %r", call.call_sid, exc)
        return resolution, rid

    async def for_stream(self, call_sid: str, parameters: Mapping[str, str]) -> Resolution | None:
        """The resolution the voice webhook made for this stream; the static flow it
        names if there was none (or it is lost); None if no flow fits."""
        name = parameters.get("flow", "")
        rid = parameters.get(RESOLUTION_PARAMETER)
        if rid:
            found = self._here.pop(rid, None)
            if found is not None:
                self._forget_shared(rid)
                return found[1]
            try:
                # Taken, not read: a stream token is single use, and so is what it names.
                data = await self._store().take_record(KIND, rid)
                if data is not None:
                    return _load(data)
                why = "not found (expired?)"
            except Exception as exc:
                why = f"unreadable: {exc!r}"
            log.error("call %s: flow resolution %s; using the static flow %r", call_sid, why, name)
            flow = self.flows.get(name) or self.flows.choose(None, None)
            if flow is None:
                return None
            lost = WebhookOutcome("fallback", "lost", f"resolution {why}", 0.0, name, flow.name)
            self._metrics.flow_webhooks.labels("fallback", "lost").inc()
            return Resolution(static(flow).flow, lost)
        flow = self.flows.get(name) or self.flows.choose(None, None)
        return static(flow) if flow is not None else None

    def _forget_shared(self, rid: str) -> None:
        """Delete the shared copy once the stream came back here; off the call's path."""

        async def forget() -> None:
            try:
                await self._store().delete_record(KIND, rid)
            except Exception as exc:  # it expires by itself
                log.debug("flow resolution %s: not deleted: %r", rid, exc)

        task = asyncio.get_running_loop().create_task(forget(), name=f"forget-resolution-{rid}")
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    def _remember(self, rid: str, resolution: Resolution) -> None:
        now = time.monotonic()
        self._here = {k: v for k, v in self._here.items() if v[0] > now}  # few: one per ringing call
        self._here[rid] = (now + self.ttl_s, resolution)

    def _observe(self, call_sid: str, outcome: WebhookOutcome) -> None:
        self._metrics.flow_webhooks.labels(outcome.status, outcome.reason).inc()
        self._metrics.flow_webhook_latency.observe(outcome.latency_ms)
        if outcome.status == "used":
            log.info("call %s: flow webhook answered in %.0f ms: flow %r (%s)", call_sid,
                     outcome.latency_ms, outcome.flow, outcome.detail)
        else:
            log.warning("call %s: flow webhook fell back to the static flow %r after %.0f ms: "
                        "%s: %s", call_sid, outcome.flow, outcome.latency_ms, outcome.reason,
                        outcome.detail)


def _dump(resolution: Resolution) -> dict[str, Any]:
    outcome = resolution.outcome
    return {
        "flow": resolution.flow.model_dump(mode="json"),
        "outcome": outcome.to_event() if outcome else None,
    }


def _load(data: dict[str, Any]) -> Resolution:
    outcome = data.get("outcome")
    return Resolution(
        Flow.model_validate(data["flow"]),
        WebhookOutcome(**outcome) if outcome else None,
    )
