"""The built wheel works outside a checkout: a bundled call through the offline engine and
a load test against the bundled fake OpenAI server, from a fresh virtualenv in a folder
that holds no checkout.

The package's own code comes only from the wheel. Its third-party dependencies come from
the test run's environment (a `.pth` line), so the test takes seconds and needs no
network; that the wheel's declared dependencies install from PyPI is what `make demo`
does on every fresh clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from agent.devkit import BUNDLED_CALLS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    # Built from a copy: a build writes into its source tree (build/, *.egg-info), and
    # parallel test workers each build their own.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache", "data",
        "reports", "out", "node_modules"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(dist)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    wheel = next(dist.glob("phone_agent-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # Dependencies from this environment; its own editable phone-agent is not activated
    # (a .pth line adds a path, and the .pth files inside it are not read).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", "--ignore-installed", str(wheel)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


def _run(venv: Path, env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "phone-agent"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_the_package_comes_from_the_wheel(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    venv, env = installed
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import agent, telephony, tools, agent.devkit; print(agent.__file__); "
         "print(agent.devkit.DEMO_CALL.is_file())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    where, demo = out.stdout.split()
    assert Path(where).is_relative_to(venv), where
    assert demo == "True"


@pytest.mark.local
@pytest.mark.speech_call
def test_a_bundled_call_runs_from_the_installed_package(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    # The shortest bundled call that runs a tool: the package's own audio, flows and tools.
    done = _run(venv, env, "call", "--fixture", "transfer", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "transfer_call" in done.stdout
    assert (tmp_path / "out" / "transfer.wav").is_file()


def test_a_fake_openai_load_test_runs_from_the_installed_package(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    venv, env = installed
    report = tmp_path / "report"
    # Two short bundled calls (the loader cycles a folder): what is tested is that the load
    # test, its fake and its report run from the wheel, not how long calls can be.
    fixtures = tmp_path / "calls"
    (fixtures / "audio").mkdir(parents=True)
    for name in ("goodbye", "transfer"):
        shutil.copy(BUNDLED_CALLS / f"{name}.yaml", fixtures)
        shutil.copytree(BUNDLED_CALLS / "audio" / name, fixtures / "audio" / name)
    done = _run(
        venv, env, "loadtest", "--provider", "fake-openai", "--fixtures", str(fixtures),
        "--calls", "2", "--concurrency", "2", "--report", str(report), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(report.with_suffix(".json").read_text())
    assert data["calls"]["ok"] == 2, data["calls"]
