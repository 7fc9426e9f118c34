"""The shipped deploy/nginx.conf, run by Debian's nginx in front of test servers.

    async with run_nginx(tmp, {"app1:8000": a_addr, "app2:8000": b_addr}) as base:
        ...  # base = "http://127.0.0.1:<port>", nginx's public listener

Only what must differ here is replaced in the shipped file: the upstream addresses, the
listen address, and where its logs go (the shipped file leaves logs to the image). The
rest, routes and headers included, is exactly what an operator runs.
`tests/ops/ensure_nginx.sh` installs nginx (`make test` runs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

SHIPPED = Path(__file__).parents[2] / "deploy" / "nginx.conf"
SHIPPED_LISTEN = "listen 8080;"
START_TIMEOUT_S = 10.0


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        raise AssertionError("nginx is not installed: run `bash tests/ops/ensure_nginx.sh` (make test does)")
    return path


def render(upstreams: dict[str, str], port: int, logs: Path) -> str:
    """The shipped config with upstream `host:port`s replaced and the listener moved."""
    text = SHIPPED.read_text()
    for shipped, actual in upstreams.items():
        if shipped not in text:
            raise AssertionError(f"{shipped} is not in {SHIPPED}: the test and the file disagree")
        text = text.replace(shipped, actual)
    if SHIPPED_LISTEN not in text:
        raise AssertionError(f"{SHIPPED_LISTEN!r} is not in {SHIPPED}")
    text = text.replace(SHIPPED_LISTEN, f"listen 127.0.0.1:{port};")
    return text.replace("http {", f"http {{\n  access_log {logs / 'access.log'};", 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def run_nginx(tmp: Path, upstreams: dict[str, str]) -> AsyncIterator[str]:
    """nginx in the foreground (our child: stopped by its own pid); yields its base URL."""
    binary = nginx_binary()
    for attempt in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        prefix = tmp / f"nginx-{attempt}"
        prefix.mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(render(upstreams, port, prefix))
        error_log = prefix / "error.log"
        proc = await asyncio.create_subprocess_exec(
            binary, "-p", str(prefix), "-c", str(conf), "-e", str(error_log),
            "-g", f"daemon off; pid {prefix / 'nginx.pid'};",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            # nginx says nothing when it listens: poll the port, with a deadline.
            async with asyncio.timeout(START_TIMEOUT_S):
                while not await _accepts(port):
                    if proc.returncode is not None:
                        break
                    await asyncio.sleep(0.05)
            if proc.returncode is None:
                try:
                    yield f"http://127.0.0.1:{port}"
                finally:
                    print(f"--- nginx access log ---\n{(prefix / 'access.log').read_text()}"
                          if (prefix / "access.log").exists() else "")
                return
            log = error_log.read_text() if error_log.exists() else ""
            if "Address already in use" not in log:
                raise AssertionError(f"nginx exited ({proc.returncode}):\n{log}")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)  # fast shutdown: the master stops its workers
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    raise AssertionError("nginx could not bind a free port in 3 tries")
