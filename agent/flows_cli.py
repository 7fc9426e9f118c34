"""`phone-agent flows check | try | schema`: a flows file checked before a call depends on it.

`check` validates everything a call will need (tools, webhooks, HTTP tools, their
environment variables); `try` performs a flow's webhook as a call would and prints the
flow the call would get; `schema` prints the published JSON Schema of a webhook answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import yaml

from agent.flow_tools import tool_name
from agent.flow_webhook import CallFacts, answer_schema, resolve
from agent.flows import Flow, Flows, FlowsError, load_flows
from agent.hook_config import HttpToolConfig
from agent.outbound_http import OutboundHttp


def add_flows_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="flows_command", required=True)
    c = sub.add_parser("check", help="validate a flows file; every error with its line and field")
    c.add_argument("file", type=Path)
    t = sub.add_parser("try", help="perform a flow's webhook as a call would; print the resolved flow")
    t.add_argument("flow", help="the flow the call would start with")
    t.add_argument("--from", dest="from_", required=True, help="the caller's number")
    t.add_argument("--to", required=True, help="the number called")
    t.add_argument("--flows", type=Path, default=None, help="flows file (default: FLOWS_FILE or the example)")
    t.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter as Twilio would pass it (repeatable)")
    sub.add_parser("schema", help="print the JSON Schema a flow webhook's answer must fit")


def flows_command(args: argparse.Namespace) -> int:
    if args.flows_command == "schema":
        print(json.dumps(answer_schema(), indent=2))
        return 0
    if args.flows_command == "try":
        return asyncio.run(_try(args))
    return _check(args.file)


def _load(path: Path | None, *, check_env: bool) -> Flows | None:
    try:
        return load_flows(path, check_env=check_env)
    except FlowsError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _check(path: Path) -> int:
    flows = _load(path, check_env=True)
    if flows is None:
        return 1
    print(f"{path}: OK, {len(flows.flows)} flows, {len(flows.numbers)} numbers")
    for name, flow in flows.flows.items():
        tools = [f"{t.name} (HTTP)" if isinstance(t, HttpToolConfig) else t for t in flow.tools]
        hook = f", webhook {flow.webhook.url}" if flow.webhook else ""
        keypad = ", keypad: sensitive" if flow.keypad == "sensitive" else ""
        print(f"  {name}: {flow.provider}, tools: {', '.join(tools) or 'none'}{hook}{keypad}")
    return 0


async def _try(args: argparse.Namespace) -> int:
    from agent.service.settings import Settings

    flows = _load(args.flows or Settings().flows_file, check_env=False)
    if flows is None:
        return 1
    flow = flows.get(args.flow)
    if flow is None:
        print(f"no flow {args.flow!r} (flows: {', '.join(flows.flows)})", file=sys.stderr)
        return 1
    params = dict(p.split("=", 1) for p in args.param if "=" in p)
    call = CallFacts("CA" + "0" * 32, args.from_, args.to, {"Direction": "inbound", **params})
    http = OutboundHttp()
    try:
        resolution = await resolve(flows, flow, call, http)
    finally:
        await http.aclose()
    outcome = resolution.outcome
    if outcome is None:
        print(f"flow {flow.name!r} has no webhook: calls get the static flow")
    elif outcome.status == "used":
        print(f"webhook answered in {outcome.latency_ms:.0f} ms: {outcome.detail}")
    else:
        print(f"webhook fell back to the static flow after {outcome.latency_ms:.0f} ms: "
              f"{outcome.reason}: {outcome.detail}")
    print(yaml.safe_dump({resolution.flow.name: _shown(resolution.flow)}, sort_keys=False,
                         allow_unicode=True, width=100), end="")
    return 1 if outcome is not None and outcome.status != "used" else 0


def _shown(flow: Flow) -> dict[str, object]:
    """What a call of the flow gets, as YAML a person reads (HTTP tools by name and URL)."""
    data = flow.model_dump(mode="json", exclude={"name", "webhook"})
    data["tools"] = [
        f"{t.name} (HTTP {t.method} {t.url})" if isinstance(t, HttpToolConfig) else tool_name(t)
        for t in flow.tools
    ]
    return data
