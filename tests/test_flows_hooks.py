"""Webhooks and HTTP tools in flows.yaml: checked when the file loads, with the line and
field of every problem; `phone-agent flows check` also wants their environment variables,
and `flows try` performs a flow's webhook against a real (stand-in) backend."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.flow_tools import tools_for
from agent.flows import FlowsError, parse_flows
from agent.hook_config import HttpToolConfig
from agent.http_tools import HttpTool
from tests.agent.hook_flows import KNOWN_CALLER, ORDERS_TO, SECRET_ENV, STRANGER, write_flows
from tests.fakes.customer_backend import customer_backend

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
webhook: {url: "https://backend.example.com/call", secret_env: ACME_SECRET}
default_flow: orders
flows:
  orders:
    greeting: "Hi {{ name }}, Acme orders here."
    variables: {name: there}
    tools:
      - name: lookup_order
        description: Look up an order.
        parameters:
          type: object
          properties: {order_number: {type: string}}
          required: [order_number]
        url: "https://backend.example.com/tools/order"
        headers_from_env: {Authorization: ACME_TOKEN}
        background: true
        cancel_on_barge_in: true
        scheduling: SILENT
      - end_call
  own:
    webhook: {url: "http://10.0.0.5:8080/hook", timeout_ms: 300, secret_env: OWN_SECRET}
    tools: [check_availability]
"""


def test_webhooks_are_inherited_and_http_tools_signed_with_the_webhook_secret() -> None:
    flows = parse_flows(GOOD)
    orders, own = flows.flows["orders"], flows.flows["own"]
    assert orders.webhook is not None and orders.webhook.url == "https://backend.example.com/call"
    assert orders.webhook.timeout_ms == 1500  # the default
    assert own.webhook is not None and own.webhook.timeout_ms == 300
    tool = orders.tools[0]
    assert isinstance(tool, HttpToolConfig) and tool.secret_env == "ACME_SECRET"
    assert orders.with_variables({}).greeting == "Hi there, Acme orders here."
    assert orders.with_variables({"name": "Maria"}).greeting == "Hi Maria, Acme orders here."


def test_an_http_tool_is_described_to_the_model_like_a_python_tool() -> None:
    runnable, specs = tools_for(parse_flows(GOOD).flows["orders"].tools)
    tool = runnable["lookup_order"]
    assert isinstance(tool, HttpTool)
    assert (tool.background, tool.cancel_on_barge_in, tool.scheduling) == (True, True, "SILENT")
    spec = {s.name: s for s in specs}["lookup_order"]
    assert spec.parameters["required"] == ["order_number"] and spec.background is True
    assert [s.name for s in specs] == ["lookup_order", "end_call"]


BAD = """\
webhook: {url: "ftp://backend.example.com/call", secret_env: ACME_SECRET}
flows:
  orders:
    greeting: "Hello {{name}}"
    tools:
      - name: lookup_order
        description: Look up an order.
        parameters:
          type: object
          properties: {order_number: {type: string}}
          requried: [order_number]
        url: "https://user:pw@backend.example.com/tools/order"
      - lookup_order
      - name: bad name
        description: x
        url: "https://backend.example.com/x"
  lonely:
    tools:
      - name: ping
        description: Ping the backend.
        url: "https://backend.example.com/ping"
"""


def test_every_problem_with_hooks_is_reported_with_its_line() -> None:
    with pytest.raises(FlowsError) as info:
        parse_flows(BAD, "bad.yaml")
    text = "\n".join(str(p) for p in info.value.problems)
    assert "line 1: webhook.url" in text and "http:// or https://" in text
    assert "line 8: flows.orders.tools.0.parameters" in text and "unknown keyword 'requried'" in text
    assert "line 12: flows.orders.tools.0.url" in text and "credentials" in text
    assert "line 14: flows.orders.tools.2.name" in text


def test_names_twice_placeholders_without_defaults_and_unsigned_tools_are_errors() -> None:
    text = BAD.replace("ftp://", "https://").replace("requried", "required").replace(
        "user:pw@", "").replace("name: bad name", "name: other")
    with pytest.raises(FlowsError) as info:
        parse_flows(text, "bad.yaml")
    problems = "\n".join(str(p) for p in info.value.problems)
    assert "line 13: flows.orders.tools.1: a second tool named 'lookup_order'" in problems
    assert "line 4: flows.orders.greeting: {{name}} has no default" in problems
    assert "lonely" not in problems  # it signs with the file's webhook secret
    # Without a webhook to take the secret from, an HTTP tool must name one.
    with pytest.raises(FlowsError) as info:
        parse_flows(text.split("\n", 1)[1], "bad.yaml")
    problems = "\n".join(str(p) for p in info.value.problems)
    assert "line 18: flows.lonely.tools.0.secret_env: required" in problems


def test_check_env_names_each_missing_variable_where_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACME_SECRET", "ACME_TOKEN", "OWN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    parse_flows(GOOD)  # loading for `serve` does not require them
    with pytest.raises(FlowsError) as info:
        parse_flows(GOOD, check_env=True)
    problems = [str(p) for p in info.value.problems]
    assert "line 1: webhook.secret_env: environment variable ACME_SECRET is not set" in problems
    assert "line 15: flows.orders.tools.0.headers_from_env.Authorization: environment variable ACME_TOKEN is not set" in problems
    assert "line 21: flows.own.webhook.secret_env: environment variable OWN_SECRET is not set" in problems
    assert len(problems) == 3  # ACME_SECRET once, though the tool signs with it too
    monkeypatch.setenv("ACME_SECRET", "s")
    monkeypatch.setenv("ACME_TOKEN", "Bearer t")
    monkeypatch.setenv("OWN_SECRET", "o")
    parse_flows(GOOD, check_env=True)


def test_flows_check_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(GOOD)
    monkeypatch.delenv("ACME_TOKEN", raising=False)
    monkeypatch.setenv("ACME_SECRET", "s")
    monkeypatch.setenv("OWN_SECRET", "o")
    assert main(["flows", "check", str(path)]) == 1
    assert "ACME_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("ACME_TOKEN", "Bearer t")
    assert main(["flows", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "orders: openai, tools: lookup_order (HTTP), end_call, webhook https://backend.example.com/call" in out


def test_the_published_answer_schema_is_the_one_answers_are_checked_against(capsys: pytest.CaptureFixture[str]) -> None:
    published = json.loads((ROOT / "agent" / "schemas" / "flow-webhook-answer.schema.json").read_text())
    assert main(["flows", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == published, (
        "agent/schemas/flow-webhook-answer.schema.json is stale: "
        "phone-agent flows schema > agent/schemas/flow-webhook-answer.schema.json")
    assert published["additionalProperties"] is False
    assert set(published["properties"]) == {
        "flow", "greeting", "instructions", "voice", "language", "transfer_number",
        "filler_phrases", "tools", "variables"}


async def _flows_try(flows: Path, *args: str) -> tuple[int, str, str]:
    """`phone-agent flows try` in its own process, as a person would run it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "flows", "try", "orders", "--flows", str(flows), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_flows_try_performs_the_webhook_and_prints_the_resolved_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with customer_backend() as backend:
        monkeypatch.setenv(SECRET_ENV, backend.secret)
        flows = write_flows(tmp_path, backend.base_url)
        code, out, err = await _flows_try(flows, "--from", KNOWN_CALLER, "--to", ORDERS_TO)
        assert code == 0, err
        assert "webhook answered in" in out and "variables=name" in out
        assert "greeting: Hello Maria, welcome back to Acme. Is this about your order?" in out
        assert "- lookup_order (HTTP POST " in out and "slow_lookup" not in out
        assert backend.seen("/flow")[0].verified and backend.seen("/flow")[0].body["from"] == KNOWN_CALLER

        broken = write_flows(tmp_path, backend.base_url, hook="/flow/garbage")
        code, out, _ = await _flows_try(broken, "--from", STRANGER, "--to", ORDERS_TO)
        assert code == 1
        assert "fell back to the static flow" in out and "invalid_answer: " in out
        assert "greting: unknown key" in out and "voice: Input should be a valid string" in out
        assert "greeting: Hi, you've reached Acme orders." in out
