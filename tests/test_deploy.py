"""deploy/ as shipped: manifests parse, carry every setting `serve` needs to start, probe
real routes, keep admin and metrics off the public entrance, run locked down; the image
is built from a lock file. (The files run for real in tests/ops/test_behind_nginx.py;
Docker cannot run here, so the Dockerfile is checked as text.)"""

from __future__ import annotations

import re
import secrets
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.routing import BaseRoute, Route, WebSocketRoute

from agent.service.app import create_app
from agent.service.preflight import check
from agent.service.settings import Settings

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"
PUBLIC_PREFIX = "/twilio/"


def k8s() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc and "apiVersion" in doc and "kind" in doc, path
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def secrets_example() -> dict[str, str]:
    """The secrets' names from deploy/secrets.env.example, each with a fresh value."""
    names = [line.split("=", 1)[0] for line in (DEPLOY / "secrets.env.example").read_text().splitlines()
             if line and not line.startswith("#")]
    values = {name: secrets.token_hex(32) for name in names}
    values["TWILIO_ACCOUNT_SID"] = "AC" + secrets.token_hex(16)
    return values


def settings_from(env: dict[str, str], tmp_path: Path) -> Settings:
    """Settings exactly as `serve` would read them from this environment (no .env)."""
    fields = {k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields}
    return Settings(_env_file=None, data_dir=tmp_path, **fields)  # type: ignore[call-arg]


def paths(routes: list[BaseRoute]) -> set[str]:
    return {r.path for r in routes if isinstance(r, Route | WebSocketRoute)}


def image_pinned(image: str) -> bool:
    """A tag other than latest (or a digest): the same manifest runs the same image."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


# ---------------------------------------------------------------- Kubernetes


def app_container(docs: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = docs["Deployment/phone-agent"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_k8s_starts_with_its_secret_and_refuses_without(tmp_path: Path) -> None:
    _, container = app_container(k8s())
    assert container["envFrom"] == [{"secretRef": {"name": "phone-agent"}}]
    env = {"HOST": "0.0.0.0", **container_env(container)}  # HOST: the image's default
    report = check(settings_from({**env, **secrets_example()}, tmp_path))
    assert report.errors == []
    assert "PUBLIC_URL" not in env and env["TRUST_FORWARDED_HEADERS"] == "true"
    # Without the secret the pod would not start: the example names what is required.
    missing = " ".join(check(settings_from(env, tmp_path)).errors)
    assert "TWILIO_AUTH_TOKEN" in missing and "STREAM_TOKEN_SECRET" in missing


def test_k8s_probes_real_routes_and_drains(tmp_path: Path) -> None:
    docs = k8s()
    pod, container = app_container(docs)
    assert pod["terminationGracePeriodSeconds"] >= 300
    assert "preStop" in container["lifecycle"]
    env = container_env(container)
    app = create_app(settings_from({**env, **secrets_example()}, tmp_path))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["admin"] == int(env["ADMIN_PORT"]) != ports["http"]
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "http" and get["path"] in paths(app.routes), probe
    # Prometheus scrapes the admin port, where /metrics is.
    notes = docs["Deployment/phone-agent"]["spec"]["template"]["metadata"]["annotations"]
    assert int(notes["prometheus.io/port"]) == ports["admin"]
    assert notes["prometheus.io/path"] in paths(app.state.admin_app.routes)
    for kind in ("Service/phone-agent", "Service/phone-agent-admin", "HorizontalPodAutoscaler/phone-agent",
                 "PodDisruptionBudget/phone-agent", "StatefulSet/redis", "Service/redis"):
        assert kind in docs
    sel = docs["Service/phone-agent"]["spec"]["selector"]
    assert sel == docs["Deployment/phone-agent"]["spec"]["selector"]["matchLabels"]


def test_k8s_ingress_publishes_only_twilio_routes(tmp_path: Path) -> None:
    docs = k8s()
    _, container = app_container(docs)
    app = create_app(settings_from({**container_env(container), **secrets_example()}, tmp_path))
    public = paths(app.routes)
    service = docs["Service/phone-agent"]["spec"]["ports"]
    assert [p["targetPort"] for p in service] == ["http"]  # never the admin port
    rules = docs["Ingress/phone-agent"]["spec"]["rules"]
    routed = [p for rule in rules for p in rule["http"]["paths"]]
    assert routed
    for entry in routed:
        assert entry["path"].startswith(PUBLIC_PREFIX), entry
        assert entry["backend"]["service"] == {"name": "phone-agent", "port": {"name": "http"}}
        assert any(p == entry["path"] or p.startswith(entry["path"] + "/") for p in public), entry
    assert {"/twilio/voice", "/twilio/media"} <= {e["path"] for e in routed}
    assert docs["Ingress/phone-agent"]["spec"]["tls"]


@pytest.mark.parametrize("name", ["Deployment/phone-agent", "StatefulSet/redis"])
def test_k8s_pods_run_locked_down(name: str) -> None:
    pod = k8s()[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod.get("automountServiceAccountToken") is False
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod["containers"]:
        assert image_pinned(container["image"]), container["image"]
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes or name.startswith("StatefulSet"), mount


def test_k8s_app_can_write_where_it_writes() -> None:
    pod, container = app_container(k8s())
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    data_dir = dockerfile_env()["DATA_DIR"]
    for path in (data_dir, "/tmp"):
        assert path in mounts and "emptyDir" in volumes[mounts[path]], path


# ---------------------------------------------------------------- compose + nginx


def nginx_conf() -> str:
    return (DEPLOY / "nginx.conf").read_text()


def test_compose_apps_start_as_configured(tmp_path: Path) -> None:
    services = compose()["services"]
    apps = {name: s for name, s in services.items() if name.startswith("app")}
    assert len(apps) >= 2 and {"redis", "proxy"} <= set(services)
    for name, app in apps.items():
        env = {"HOST": "0.0.0.0", **app["environment"]}
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["TRUST_FORWARDED_HEADERS"] == "true" and "PUBLIC_URL" not in env
        assert env["STREAM_ROUTE"] == name
        assert app["env_file"] == ["../.env"]
        assert check(settings_from({**env, **secrets_example()}, tmp_path)).errors == [], name
        assert app["read_only"] is True and app["cap_drop"] == ["ALL"]
        # Writable despite the read-only root: /tmp, and DATA_DIR on a volume of its own.
        assert "/tmp" in app["tmpfs"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in app["volumes"]}
        assert mounts[dockerfile_env()["DATA_DIR"]] in compose()["volumes"]
        # The admin port is published, if at all, to this machine only.
        for published in app.get("ports", []):
            assert published.startswith("127.0.0.1:") and published.endswith(f":{env['ADMIN_PORT']}")
    for service in services.values():
        assert "image" not in service or image_pinned(service["image"]), service


def test_nginx_routes_each_app_and_only_twilio_paths() -> None:
    conf = nginx_conf()
    services = compose()["services"]
    apps = [name for name in services if name.startswith("app")]
    assert services["proxy"]["volumes"] == ["./nginx.conf:/etc/nginx/nginx.conf:ro"]
    for name in apps:
        # Webhooks to any app; the app's own streams back to it, the others as backup.
        assert re.search(rf"upstream phone_agent \{{[^}}]*server {name}:8000", conf), name
        assert re.search(rf"upstream {name} \{{\s*server {name}:8000", conf), name
        assert re.search(rf"/twilio/media/{name} {name};", conf), name
    locations = re.findall(r"location\s+(?:=\s+)?(\S+)\s*\{([^}]*)\}", conf)
    assert "/" in dict(locations) and len(locations) == conf.count("location ")
    for path, body in locations:
        if "proxy_pass" in body:
            assert path.startswith(PUBLIC_PREFIX), path
        else:
            assert path == "/" and "return 404" in body
    assert "proxy_set_header X-Forwarded-Proto $forwarded_proto" in conf
    assert "proxy_set_header Upgrade $http_upgrade" in conf


# ---------------------------------------------------------------- the image


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", dockerfile())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in dockerfile_instructions():
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def test_dockerfile_copies_what_exists_and_the_context_holds() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore  # everything else (.env, .git, .venv, data/) stays out
    copies = [rest for word, rest in dockerfile_instructions() if word == "COPY"]
    sources = []
    for rest in copies:
        if rest.startswith("--from"):
            continue
        sources += shlex.split(rest)[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in included, f"{source} is not in .dockerignore's ! list"


def test_dockerfile_installs_the_lock_with_hashes_and_runs_unprivileged() -> None:
    steps = dockerfile_instructions()
    froms = [rest.split()[0] for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2 and all(image_pinned(f) for f in froms), froms
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "--require-hashes" in runs and 'requirements${EXTRAS:+-$EXTRAS}.lock' in runs
    assert "--no-build-isolation" in runs  # our wheel is built with the locked setuptools
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert any(word == "USER" for word, _ in steps[last_from:])  # the runtime stage itself
    assert dockerfile_env()["HOST"] == "0.0.0.0"
    # DATA_DIR is made in the image for the runtime user (volumes mounted there inherit it).
    assert f"install -d -o agent -g agent {dockerfile_env()['DATA_DIR']}" in runs


def locked(path: Path) -> dict[str, str]:
    text = path.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M))
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 4)[-1])
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
    return {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}


def requirement_names(reqs: list[str]) -> set[str]:
    names = set()
    for req in reqs:
        if "python_version >= '3.13'" in req:
            continue  # the image is Python 3.11
        names.add(re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]).lower())
    return names


@pytest.mark.parametrize("extra", ["", "local"])
def test_lock_files_cover_pyproject(extra: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = locked(DEPLOY / f"requirements{'-' + extra if extra else ''}.lock")
    wanted = requirement_names(project["project"]["dependencies"])
    if extra:
        wanted |= requirement_names(project["project"]["optional-dependencies"][extra])
    wanted |= requirement_names(project["build-system"]["requires"])
    missing = sorted(wanted - set(lock))
    assert missing == [], f"not in the lock: {missing}; run `make lock`"
