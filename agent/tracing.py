"""Per-turn traces over OpenTelemetry (optional: the `otel` extra and
OTEL_EXPORTER_OTLP_ENDPOINT).

Each call is a trace: a `call` span for its life, a `turn` span per answer from the
caller's last speech to the first bot audio heard, with events for what happened in it
(transcripts, first audio sent, first audio heard, barge-in) and a `tool` span per tool
call. Spans go out over OTLP/HTTP from the SDK's own export thread, in batches: nothing
waits on the collector on the call path. Without the extra or the setting, every call
gets `NO_TRACE`, which does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)


class CallTrace(Protocol):
    def event(self, name: str, data: Mapping[str, Any], at: float | None = None) -> None:
        """Something happened on the call; `at` is a `time.monotonic()` reading (now if
        None)."""

    def close(self) -> None: ...


class _NoTrace:
    def event(self, name: str, data: Mapping[str, Any], at: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


NO_TRACE: CallTrace = _NoTrace()


def _ns(at: float | None) -> int:
    """A monotonic reading as wall-clock nanoseconds (what spans carry)."""
    if at is None:
        return time.time_ns()
    return time.time_ns() - int((time.monotonic() - at) * 1e9)


class Tracing:
    """The process's tracer (OTLP/HTTP exporter, batch processor)."""

    def __init__(self, endpoint: str, service_name: str = "phone-agent") -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        traces_url = endpoint.rstrip("/")
        if not traces_url.endswith("/v1/traces"):
            traces_url += "/v1/traces"  # OTLP/HTTP: the base endpoint, as the spec's env var
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
        self._tracer = self._provider.get_tracer("phone-agent")
        self.endpoint = traces_url

    def call(self, call_sid: str, flow: str, provider: str) -> CallTrace:
        return _OtelCallTrace(self._tracer, call_sid, flow, provider)

    def shutdown(self) -> None:
        """Flush and stop the exporter (blocking: run it in a thread)."""
        self._provider.shutdown()


def open_tracing(endpoint: str | None) -> Tracing | None:
    if not endpoint:
        return None
    try:
        tracing = Tracing(endpoint)
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed "
                    "(pip install 'phone-agent[otel]'): no traces")
        return None
    log.info("tracing calls to %s", tracing.endpoint)
    return tracing


class _OtelCallTrace:
    def __init__(self, tracer: Any, call_sid: str, flow: str, provider: str) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._call = tracer.start_span(
            "call", attributes={"call.sid": call_sid, "call.flow": flow, "call.provider": provider}
        )
        self._context = trace.set_span_in_context(self._call)
        self._turn: Any = None
        self._turns = 0

    def _open_turn(self, at: float | None) -> Any:
        self._turns += 1
        self._turn = self._tracer.start_span(
            "turn", context=self._context, start_time=_ns(at), attributes={"turn.index": self._turns}
        )
        return self._turn

    def _end_turn(self, at: float | None) -> None:
        if self._turn is not None:
            self._turn.end(end_time=_ns(at))
            self._turn = None

    def event(self, name: str, data: Mapping[str, Any], at: float | None = None) -> None:
        try:
            self._event(name, data, at)
        except Exception:  # a tracing bug must never break a call
            log.exception("trace event %s failed", name)

    def _event(self, name: str, data: Mapping[str, Any], at: float | None) -> None:
        attrs = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)}
        if name == "speech_end":
            self._end_turn(at)
            self._open_turn(at).add_event("end of speech", attrs, _ns(at))
        elif name == "turn_latency":
            if self._turn is not None:
                self._turn.set_attribute("turn.latency_ms", float(data.get("ms", 0)))
                self._turn.set_attribute("turn.latency_end", str(data.get("end", "")))
                self._turn.add_event("first audio " + str(data.get("end", "heard")), attrs, _ns(at))
            self._end_turn(at)
        elif name == "tool_done":
            ms = float(data.get("ms") or 0.0)
            end = _ns(at)
            parent = self._trace.set_span_in_context(self._turn) if self._turn is not None else self._context
            span = self._tracer.start_span("tool", context=parent, start_time=end - int(ms * 1e6),
                                           attributes={f"tool.{k}": v for k, v in attrs.items()})
            span.end(end_time=end)
        elif name == "call_ended":
            self._end_turn(at)
            self._call.set_attribute("call.outcome", str(data.get("outcome", "")))
            self._call.end(end_time=_ns(at))
        else:
            (self._turn or self._call).add_event(name.replace("_", " "), attrs, _ns(at))

    def close(self) -> None:
        self._end_turn(None)
        if self._call.is_recording():
            self._call.end()
