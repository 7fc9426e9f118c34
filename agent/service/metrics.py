"""Prometheus metrics for one server process (its own registry: tests run several apps).

Every label takes values from a fixed set: a name a model invents, or a provider's
free-text reason, must never become a new time series (each one costs memory here and
in Prometheus for as long as it is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS_MS = (50, 100, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000, 5000, 10000)
FAST_BUCKETS_MS = (0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000)
UNKNOWN = "unknown"
# Why providers replace a session (agent/providers/*/session.py); anything else is "other".
RECONNECT_REASONS = frozenset({"max_session", "session_expired", "connection_lost", "goaway"})

EventHook = Callable[[str, dict[str, Any]], None]


def reconnect_reason(reason: str) -> str:
    """'connection lost: 1006 (abnormal closure)' -> 'connection_lost'; unknown -> 'other'."""
    head = reason.split(":", 1)[0].strip().lower().replace(" ", "_")
    return head if head in RECONNECT_REASONS else "other"


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.active_calls = Gauge("phone_agent_active_calls", "Calls in progress", registry=r)
        self.calls_total = Counter("phone_agent_calls_total", "Calls ended, by outcome", ["outcome"], registry=r)
        self.turn_latency = Histogram(
            "phone_agent_turn_latency_ms",
            "Voice-to-voice: the caller's last speech -> the first bot audio heard "
            "(end=heard, from mark echoes) or, with no echo, sent (end=sent)",
            ["end"], buckets=LATENCY_BUCKETS_MS, registry=r)
        self.filler_onset = Histogram(
            "phone_agent_filler_onset_ms", "filler_after_ms deadline -> first filler frame sent to Twilio",
            buckets=FAST_BUCKETS_MS, registry=r)
        self.fillers = Counter("phone_agent_fillers_total", "Fillers played", ["cached"], registry=r)
        self.barge_in_clear = Histogram(
            "phone_agent_barge_in_clear_ms", "Barge-in event -> Twilio clear sent",
            buckets=FAST_BUCKETS_MS, registry=r)
        self.false_interruptions = Counter(
            "phone_agent_false_interruptions_total",
            "Caller sounds over a reply judged noise (short, no words): the reply resumed",
            registry=r)
        self.tool_latency = Histogram(
            "phone_agent_tool_latency_ms", "Tool call duration", ["tool"],
            buckets=LATENCY_BUCKETS_MS, registry=r)
        self.tool_errors = Counter(
            "phone_agent_tool_errors_total", "Tool calls that failed or timed out", ["tool", "status"],
            registry=r)
        self.provider_errors = Counter(
            "phone_agent_provider_errors_total", "Provider errors", ["fatal"], registry=r)
        self.calls_rejected = Counter(
            "phone_agent_calls_rejected_total", "New calls answered busy, by why", ["reason"], registry=r)
        self.loop_lag = Gauge(
            "phone_agent_event_loop_lag_ms", "How late the event loop ran a 50 ms timer (last sample)",
            registry=r)
        self.control_errors = Counter(
            "phone_agent_twilio_control_errors_total",
            "Hang-ups and transfers Twilio's REST API refused or could not be reached for",
            ["op"], registry=r)
        self.provider_reconnects = Counter(
            "phone_agent_provider_reconnects_total", "Provider reconnects", ["reason"], registry=r)
        self.prewarmed = Counter(
            "phone_agent_prewarmed_sessions_total",
            "Model sessions opened during the webhook: claimed by their stream, or closed "
            "unclaimed (caller gone, or the stream reached another instance)", ["outcome"],
            registry=r)

        self.flow_webhooks = Counter(
            "phone_agent_flow_webhook_total", "Flow webhooks, used or fallen back from, by why",
            ["outcome", "reason"], registry=r)
        self.flow_webhook_latency = Histogram(
            "phone_agent_flow_webhook_latency_ms", "Flow webhook request -> answer checked",
            buckets=LATENCY_BUCKETS_MS, registry=r)
        self.http_tool_requests = Counter(
            "phone_agent_http_tool_requests_total",
            "HTTP tool requests by tool and result (2xx..5xx, timeout, connection, too_large)",
            ["tool", "result"], registry=r)

    def for_call(self, declared_tools: Collection[str]) -> EventHook:
        """The event hook for one call whose flow declares `declared_tools`: any other tool
        name (one the model made up) is counted as `unknown`."""
        known = frozenset(declared_tools)

        def hook(name: str, data: dict[str, Any]) -> None:
            if name == "tool_done" and data.get("name") not in known:
                data = {**data, "name": UNKNOWN}
            self.on_event(name, data)

        return hook

    def on_http(self, kind: str, name: str, result: str, _ms: float) -> None:
        """Outbound requests (agent/outbound_http.py); flow webhooks are counted by outcome."""
        if kind == "tool":
            self.http_tool_requests.labels(name, result).inc()

    def on_event(self, name: str, data: dict[str, Any]) -> None:
        """The Call's event hook (tool names as given: use `for_call` to bound them)."""
        if name == "call_started":
            self.active_calls.inc()
        elif name == "call_ended":
            self.active_calls.dec()
            self.calls_total.labels(data.get("outcome", "unknown")).inc()
        elif name == "turn_latency":
            self.turn_latency.labels("sent" if data.get("end") == "sent" else "heard").observe(data["ms"])
        elif name == "filler":
            self.fillers.labels(str(bool(data.get("cached"))).lower()).inc()
        elif name == "barge_in":
            self.barge_in_clear.observe(data["clear_ms"])
        elif name == "false_interruption":
            self.false_interruptions.inc()
        elif name == "filler_onset":
            self.filler_onset.observe(data["ms"])
        elif name == "tool_done":
            self.tool_latency.labels(data["name"]).observe(data["ms"])
            if data["status"] not in ("ok",):
                self.tool_errors.labels(data["name"], data["status"]).inc()
        elif name == "provider_error":
            self.provider_errors.labels(str(bool(data.get("fatal"))).lower()).inc()
        elif name == "control_failed":
            self.control_errors.labels("transfer" if data.get("op") == "transfer" else "hangup").inc()
        elif name == "provider_reconnect":
            self.provider_reconnects.labels(reconnect_reason(str(data.get("reason", "")))).inc()

    async def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
