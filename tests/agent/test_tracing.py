"""Issue 14: each call is a trace and each turn a span, exported over OTLP/HTTP.

A stand-in collector (real uvicorn on a free port) decodes what the exporter posts with
OpenTelemetry's own protobuf types; a real call through the emulator and the fake
OpenAI server, with a tool call, must arrive as one trace: a `call` span, a `turn` span
per answer (end of speech -> first audio heard, with its latency), a `tool` span."""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn, ToolStep
from agent.devkit.runner import record_collector
from agent.devkit.stack import local_stack, run_app
from tests.agent.conftest import dial, speech_like


class Collector:
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []

    async def traces(self, request: Request) -> Response:
        body = ExportTraceServiceRequest()
        body.ParseFromString(await request.body())
        self.requests.append(body)
        self.content_types.append(request.headers.get("content-type", ""))
        return Response(ExportTraceServiceResponse().SerializeToString(),
                        media_type="application/x-protobuf")

    def spans(self) -> list:  # noqa: ANN201
        return [span for r in self.requests for rs in r.resource_spans
                for ss in rs.scope_spans for span in ss.spans]


async def test_a_call_is_a_trace_and_each_turn_a_span(tmp_path: Path) -> None:
    collector = Collector()
    app = Starlette(routes=[Route("/v1/traces", collector.traces, methods=["POST"])])
    scenario = Scenario(turns=[ScriptedTurn(
        transcript="where is 4567", reply="",
        tool=ToolStep("lookup_order", {"order_number": "4567"}, reply="It shipped."))])
    async with run_app(app) as collector_url, FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key,
                               otel_exporter_otlp_endpoint=collector_url) as stack:
            stack.watch(record_collector(records))
            target, call = await dial(stack, records, to="+15550002000", from_="+15551230001")
            async with call:
                await call.wait_for_bot_reply(timeout=10)
                await call.say(speech_like(600))
                await call.wait_for_bot_reply(timeout=15)
            record = await asyncio.wait_for(records[target.call_sid], 10)
        # The app's shutdown flushed the exporter.
    spans = collector.spans()
    assert collector.content_types and all(c == "application/x-protobuf" for c in collector.content_types)
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (call_span,) = by_name["call"]
    attrs = {a.key: a.value.string_value for a in call_span.attributes}
    assert attrs["call.sid"] == target.call_sid and attrs["call.flow"] == "order-status"
    assert attrs["call.outcome"] == record.outcome
    assert {s.trace_id for s in spans} == {call_span.trace_id}  # one trace
    (turn,) = by_name["turn"]
    assert turn.parent_span_id == call_span.span_id
    events = [e.name for e in turn.events]
    assert events[0] == "end of speech" and events[-1] == "first audio heard"
    assert "transcript" in events and "tool call" in events and "first audio sent" in events
    turn_attrs = {a.key: a.value for a in turn.attributes}
    latency = turn_attrs["turn.latency_ms"].double_value
    assert latency == record.turn_latencies_ms[0] or abs(latency - record.turn_latencies_ms[0]) < 0.1
    assert abs((turn.end_time_unix_nano - turn.start_time_unix_nano) / 1e6 - latency) < 5
    (tool,) = by_name["tool"]
    assert tool.parent_span_id == turn.span_id
    assert {a.key: a.value.string_value for a in tool.attributes}["tool.name"] == "lookup_order"
