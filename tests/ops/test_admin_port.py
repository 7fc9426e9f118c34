"""ADMIN_PORT on a real `phone-agent serve`: the admin API, console and /metrics move to
their own port and are gone from the public one, whatever the request says."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from tests.ops.cluster import FLOWS_YAML
from tests.ops.procs import serve_process


async def test_admin_routes_live_only_on_the_admin_port(tmp_path: Path) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(FLOWS_YAML)
    admin_token = secrets.token_hex(16)
    env = {"TWILIO_AUTH_TOKEN": secrets.token_hex(16), "ADMIN_TOKEN": admin_token, "ADMIN_PORT": "0",
           "FLOWS_FILE": str(flows), "DATA_DIR": str(tmp_path / "data")}
    async with serve_process(env, cwd=tmp_path) as server:
        assert server.admin_url and server.admin_url != server.base_url
        bearer = {"Authorization": f"Bearer {admin_token}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=bearer) as public:
            for path in ("/admin/calls", "/console/", "/metrics"):
                assert (await public.get(path)).status_code == 404, path
            # A Host header naming the admin port changes nothing: the socket decides.
            admin_host = server.admin_url.removeprefix("http://")
            assert (await public.get("/admin/calls", headers={"Host": admin_host})).status_code == 404
            assert (await public.get("/healthz")).text == "ok"
            assert (await public.post("/twilio/voice")).status_code == 403  # Twilio's routes stay
        async with httpx.AsyncClient(base_url=server.admin_url) as admin:
            assert (await admin.get("/admin/calls")).status_code == 401
            assert (await admin.get("/admin/calls", headers=bearer)).status_code == 200
            assert "phone_agent_active_calls" in (await admin.get("/metrics")).text
            assert (await admin.get("/console/")).status_code == 200
            assert (await admin.get("/readyz")).status_code == 200
            assert (await admin.post("/twilio/voice")).status_code == 404  # and not the reverse
