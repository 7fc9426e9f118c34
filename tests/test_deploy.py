"""deploy/: manifests parse, carry what production needs, and probe real routes."""

from __future__ import annotations

from pathlib import Path

import yaml
from starlette.routing import Route

from agent.service.app import create_app
from agent.service.settings import Settings

DEPLOY = Path(__file__).parent.parent / "deploy"


def docs() -> dict[str, dict]:
    out = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc and "apiVersion" in doc and "kind" in doc, path
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def app_paths(tmp_path: Path) -> set[str]:
    app = create_app(Settings(data_dir=tmp_path, twilio_auth_token="x"))
    return {r.path for r in app.routes if isinstance(r, Route)}


def test_deployment_drains_and_probes_real_routes(tmp_path: Path) -> None:
    d = docs()
    dep = d["Deployment/phone-agent"]["spec"]["template"]["spec"]
    assert dep["terminationGracePeriodSeconds"] >= 300
    (container,) = dep["containers"]
    assert "preStop" in container["lifecycle"]
    paths = app_paths(tmp_path)
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in paths
    assert dep["securityContext"]["runAsNonRoot"] is True
    for kind in ("Service/phone-agent", "HorizontalPodAutoscaler/phone-agent",
                 "PodDisruptionBudget/phone-agent", "StatefulSet/redis", "Service/redis"):
        assert kind in d
    sel = d["Service/phone-agent"]["spec"]["selector"]
    assert sel == d["Deployment/phone-agent"]["spec"]["selector"]["matchLabels"]


def test_compose_has_redis_two_replicas_and_ws_proxy() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "app1", "app2", "proxy"} <= set(services)
    assert services["app1"]["environment"]["REDIS_URL"].startswith("redis://redis")
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in nginx
    docker = (DEPLOY / "Dockerfile").read_text()
    assert "USER agent" in docker and docker.count("FROM ") >= 2
