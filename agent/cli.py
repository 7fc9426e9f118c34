"""`phone-agent`: serve, call, loadtest, engine, fixtures, twilio, flows, data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.devkit import BUNDLED_CALLS, DEMO_CALL
from agent.service.logs import setup_logging

if TYPE_CHECKING:
    from agent.service.serve import Listeners
    from agent.service.settings import Settings


def bundled_or_path(value: str) -> Path:
    """A script path, or the bare name of a call bundled with the package."""
    path = Path(value)
    bundled = BUNDLED_CALLS / f"{value}.yaml"
    if not path.exists() and path.suffix == "" and bundled.is_file():
        return bundled
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phone-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the phone agent (Twilio webhook + media stream)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--local", action="store_true", help="run the offline engine in-process and use it for every flow")
    p.add_argument("--flows", type=Path, default=None, help="flows.yaml (default: FLOWS_FILE or the example)")
    p.add_argument("--unsigned-webhooks", action="store_true",
                   help="local experiments without Twilio: accept webhooks without a signature "
                        "(warns on each; localhost only). `--local` without TWILIO_AUTH_TOKEN "
                        "on localhost implies it")

    p = sub.add_parser("engine", help="run the offline speech engine (OpenAI Realtime protocol)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)

    p = sub.add_parser("flows", help="call-flow files: check, try a flow's webhook, its schema")
    from agent.flows_cli import add_flows_arguments

    add_flows_arguments(p)

    p = sub.add_parser("call", help="run one recorded call fixture and print the conversation live")
    p.add_argument("--fixture", type=bundled_or_path, default=DEMO_CALL,
                   help="a call script, or the name of a bundled one (e.g. booking, order-status)")
    p.add_argument("--url", default=None, help="a running server (default: in-process with the local engine)")
    p.add_argument("--auth-token", default=None, help="Twilio auth token the server checks (with --url)")
    p.add_argument("--public-url", default=None, help="the server's PUBLIC_URL (with --url)")
    p.add_argument("--out", type=Path, default=Path("out"), help="where the bot audio WAV goes")
    p.add_argument("--speed", type=float, default=1.0)

    p = sub.add_parser("loadtest", help="many emulated calls at once; latency report")
    p.add_argument("--fixtures", type=Path, default=BUNDLED_CALLS,
                   help="folder of call scripts, cycled to make --calls calls")
    p.add_argument("--calls", type=int, default=20, help="how many calls in all")
    p.add_argument("--concurrency", type=int, default=4,
                   help="at most this many at once (offline engine: keep to 2-4)")
    p.add_argument("--url", default=None, help="a running server (default: in-process)")
    p.add_argument("--auth-token", default=None,
                   help="Twilio auth token the server checks (with --url; default $TWILIO_AUTH_TOKEN)")
    p.add_argument("--public-url", default=None, help="the server's PUBLIC_URL (with --url)")
    p.add_argument("--admin-token", default=None,
                   help="with --url: read call records (tools, fillers) from its admin API")
    p.add_argument("--ramp", type=float, default=0.0, help="seconds over which to start calls")
    p.add_argument("--report", type=Path, default=Path("reports/loadtest"),
                   help="writes PATH.json, PATH.html and PATH-*.png")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="stop then: in-flight calls hang up and count as timed out")
    p.add_argument("--provider", choices=["local", "fake-openai"], default="local",
                   help="in-process server's model (without --url): the offline engine, "
                        "or the bundled fake OpenAI server (expectations not checked)")

    p = sub.add_parser("fixtures", help="recorded call fixtures")
    xsub = p.add_subparsers(dest="fixtures_command", required=True)
    b = xsub.add_parser("build", help="render caller lines to 8 kHz μ-law WAV")
    b.add_argument("dir", type=Path, nargs="?", default=BUNDLED_CALLS)
    b.add_argument("--force", action="store_true")
    i = xsub.add_parser("import", help="cut a recorded caller side into a call script (lines + text)")
    i.add_argument("wav", type=Path, help="the caller's side of a call, any common WAV")
    i.add_argument("--into", type=Path, default=Path("fixtures"), help="folder for the script and its lines")
    i.add_argument("--flow", required=True, help="the flow the call is for")
    i.add_argument("--name", default=None, help="script name (default: from the file name)")
    i.add_argument("--to", default="+15550001000")
    i.add_argument("--from", dest="from_", default="+15551239999")
    i.add_argument("--no-transcribe", action="store_true", help="leave the lines' text for you to write")
    i.add_argument("--force", action="store_true", help="replace a script of that name")

    p = sub.add_parser("eval", help="how well the offline engine understands callers (held-out set)")
    from agent.devkit.eval.command import add_eval_arguments

    add_eval_arguments(p)

    p = sub.add_parser("twilio", help="set up Twilio from the command line")
    tsub = p.add_subparsers(dest="twilio_command", required=True)
    t = tsub.add_parser("configure", help="point a number's voice and status webhooks at PUBLIC_URL")
    t.add_argument("--number", required=True)
    t = tsub.add_parser("call", help="place an outbound call into a flow")
    t.add_argument("--to", required=True)
    t.add_argument("--from", dest="from_", required=True)
    t.add_argument("--flow", default=None)

    p = sub.add_parser("data", help="personal data: delete a caller's data, purge old data")
    dsub = p.add_subparsers(dest="data_command", required=True)
    d = dsub.add_parser("delete", help="delete a caller's bookings and call records")
    d.add_argument("--phone", required=True, help="the caller's number in E.164, e.g. +15551234567")
    dsub.add_parser("purge", help="delete bookings and records past their retention, now")

    args = parser.parse_args(argv)
    # Interactive commands print their own live view: only warnings from the logs there.
    quiet = args.command in ("call", "loadtest", "fixtures", "flows", "eval", "data")
    setup_logging(None if os.environ.get("LOG_LEVEL") or not quiet else "WARNING")
    handler = _COMMANDS[args.command]
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    from agent.service import preflight
    from agent.service.serve import bind_listeners
    from agent.service.settings import Settings

    settings = Settings()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    if args.flows:
        settings.flows_file = args.flows
    unsigned = preflight.unsigned_webhooks(settings, switch=args.unsigned_webhooks, local=args.local)
    # Trying the offline agent in a browser needs the console, and so an admin token: on
    # this machine only, `--local` makes one up for the run and prints the page to open.
    made_up_token = args.local and not settings.admin_token and preflight.is_loopback(settings.host)
    if made_up_token:
        import secrets

        settings.admin_token = secrets.token_urlsafe(24)
    report = preflight.check(settings, unsigned=unsigned)
    log = logging.getLogger("agent.cli")
    for warning in report.warnings:
        log.warning(warning)
    if report.errors:
        print("phone-agent serve: not starting, fix these settings first:", file=sys.stderr)
        for error in report.errors:
            print(f"  - {error}", file=sys.stderr)
        return 2
    if unsigned:
        log.warning("webhooks are NOT authenticated (--unsigned-webhooks, or --local without "
                    "TWILIO_AUTH_TOKEN): local experiments only")
    try:
        listeners = bind_listeners(settings.host, settings.port, settings.admin_port)
    except OSError as exc:
        print(f"phone-agent serve: cannot listen on {settings.host} (PORT {settings.port}, "
              f"ADMIN_PORT {settings.admin_port}): {exc}", file=sys.stderr)
        return 1
    if made_up_token:
        port = listeners.admin_port or listeners.public.getsockname()[1]
        print(f"Talk to it: http://127.0.0.1:{port}/console/phone#token={settings.admin_token}"
              "\n(the console: /console/; this admin token lasts until the server stops)", flush=True)
    from agent.service.runtime import event_loop_runner

    event_loop_runner()(_run_server(settings, listeners, local=args.local, unsigned=unsigned))
    return 0


async def _run_server(
    settings: Settings, listeners: Listeners, *, local: bool, unsigned: bool
) -> None:
    import secrets

    import uvicorn

    from agent.service.app import create_app
    from agent.service.serve import SHUTDOWN_GRACE_S, DrainingServer, PortSplit

    engine = None
    if local:
        from agent.local.server import engine_port, serve_engine

        # The engine checks a token of its own: never the OpenAI key.
        settings.local_engine_token = settings.local_engine_token or secrets.token_urlsafe(32)
        engine = await serve_engine("127.0.0.1", 0, token=settings.local_engine_token)
        port = engine_port(engine)
        settings.local_engine_url = f"ws://127.0.0.1:{port}/v1/realtime"
        settings.force_local = True
    app = create_app(settings, unsigned_webhooks=unsigned)
    admin_app, admin_port = app.state.admin_app, listeners.admin_port
    asgi = app if admin_app is None or admin_port is None else PortSplit(app, admin_app, admin_port)
    config = uvicorn.Config(
        asgi,
        host=settings.host,
        port=listeners.public.getsockname()[1],
        ws_max_size=64 * 1024,  # a Twilio frame is < 1 KiB; cap abuse at the ASGI layer
        ws_per_message_deflate=False,  # compressing base64 μ-law: ~12% CPU for nothing
        log_config=None,
        proxy_headers=True,
        # The drain itself happens before uvicorn's shutdown (see DrainingServer); this is
        # only how long connections then get to close.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    from agent.service.runtime import settle_heap

    settle_heap()
    try:
        await DrainingServer(config, app.state.service, listeners).serve(sockets=listeners.sockets)
    finally:
        if engine is not None:
            engine.close()


def _engine(args: argparse.Namespace) -> int:
    from agent.local.server import run_engine
    from agent.service.settings import Settings

    run_engine(args.host, args.port, token=Settings().local_engine_token)
    return 0


def _flows(args: argparse.Namespace) -> int:
    from agent.flows_cli import flows_command

    return flows_command(args)


def _call(args: argparse.Namespace) -> int:
    from agent.devkit.runner import run_call_command

    return asyncio.run(run_call_command(args))


def _loadtest(args: argparse.Namespace) -> int:
    from agent.devkit.loadtest import run_loadtest_command
    from agent.service.runtime import event_loop_runner

    # uvloop: at hundreds of calls the emulated phones are the busiest process here.
    return int(event_loop_runner()(run_loadtest_command(args)))


def _fixtures(args: argparse.Namespace) -> int:
    if args.fixtures_command == "import":
        from agent.devkit.import_call import import_command

        return import_command(args)
    from agent.devkit.build import build_fixtures

    return build_fixtures(args.dir, force=args.force)


def _eval(args: argparse.Namespace) -> int:
    from agent.devkit.eval.command import eval_command

    return eval_command(args)


def _data(args: argparse.Namespace) -> int:
    from agent.service.data_command import run_data_command

    return asyncio.run(run_data_command(args))


def _twilio(args: argparse.Namespace) -> int:
    from agent.service.twilio_setup import run_twilio_command

    return asyncio.run(run_twilio_command(args))


_COMMANDS = {
    "serve": _serve,
    "engine": _engine,
    "flows": _flows,
    "call": _call,
    "loadtest": _loadtest,
    "fixtures": _fixtures,
    "eval": _eval,
    "twilio": _twilio,
    "data": _data,
}


if __name__ == "__main__":
    logging.basicConfig()
    sys.exit(main())
