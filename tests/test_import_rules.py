"""The house rules of imports (DESIGN §1 and §1a), checked on every module's own imports.

    telephony, tools        import nothing of ours (telephony.testing may use telephony)
    production code         never imports the test kit (agent.devkit, telephony.testing)
                            nor `tests`; only the CLI, the composition root, may
    providers               know agent.realtime and telephony's codecs, not the call path
                            or the service
    the call path           knows agent.realtime, not a provider, the service or the engine
    the offline engine      imports only what it shares on purpose (telephony.audio)
    nothing shipped         imports `tests`

Every `import` counts, also those inside functions: a lazy import is still an import.
`make lint` runs this file too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "telephony", "tools")
OURS = (*PACKAGES, "tests")

TEST_KIT = ("agent.devkit", "telephony.testing")
CALL_PATH = (
    "agent.call", "agent.call_states", "agent.callrecord", "agent.filler_player",
    "agent.fillers", "agent.flow_tools", "agent.flows", "agent.phone_line", "agent.realtime",
    "agent.toolrunner", "agent.hook_config", "agent.http_tools", "agent.outbound_http",
    "agent.signing", "agent.flow_webhook",
)  # fmt: skip


def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[str]:
    """Absolute names of our modules that `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from agent.devkit import stack` imports agent.devkit.stack too
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in found if name.split(".")[0] in OURS]


@dataclass(frozen=True)
class Rule:
    name: str
    applies: tuple[str, ...]  # modules the rule is about (prefixes)
    forbidden: tuple[str, ...]  # what they may not import (prefixes)
    exempt: tuple[str, ...] = ()  # modules of `applies` the rule does not cover
    only: tuple[str, ...] | None = None  # if set: the only ours they may import


RULES = (
    Rule("telephony imports nothing of ours", ("telephony",), ("agent", "tools", "tests")),
    Rule("tools import nothing of ours", ("tools",), ("agent", "telephony", "tests")),
    Rule(
        "production never imports the test kit",
        PACKAGES,
        (*TEST_KIT, "tests"),
        exempt=(*TEST_KIT, "agent.cli"),
    ),
    Rule("nothing shipped imports tests", PACKAGES, ("tests",)),
    Rule(
        "providers know neither the call path nor the service",
        ("agent.providers",),
        (*[m for m in CALL_PATH if m != "agent.realtime"], "agent.service", "agent.local",
         "agent.devkit", "agent.cli", "tools"),
    ),  # fmt: skip
    Rule(
        "the call path knows no provider, no service, no engine",
        CALL_PATH,
        ("agent.providers", "agent.service", "agent.local", "agent.devkit", "agent.cli"),
    ),
    Rule(
        "the offline engine imports only what it shares on purpose",
        ("agent.local",),
        (),
        only=("agent.local", "telephony.audio"),
    ),
)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def broken(rule: Rule, sources: dict[str, Path]) -> list[str]:
    out: list[str] = []
    for module, path in sources.items():
        if not _within(module, *rule.applies) or _within(module, *rule.exempt):
            continue
        for name in _imports(path, module):
            bad = _within(name, *rule.forbidden) or (
                rule.only is not None and not _within(name, *rule.only)
            )
            if bad:
                out.append(f"{module} imports {name}")
    return sorted(set(out))


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_import_rule_holds(rule: Rule) -> None:
    offenders = broken(rule, _sources())
    assert not offenders, f"{rule.name}:\n  " + "\n  ".join(offenders)


def test_the_rules_would_catch_a_break(tmp_path: Path) -> None:
    """The checker itself: an upward import, a lazy one and a relative one are all seen."""
    pkg = tmp_path / "telephony"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("def f():\n    from agent.call import Call\n")
    (pkg / "rel.py").write_text("from .testing import emulator\n")
    assert _imports(pkg / "bad.py", "telephony.bad") == ["agent.call", "agent.call.Call"]
    assert "telephony.testing.emulator" in _imports(pkg / "rel.py", "telephony.rel")
    sources = {"telephony.bad": pkg / "bad.py", "telephony.rel": pkg / "rel.py"}
    assert broken(RULES[0], sources) == ["telephony.bad imports agent.call", "telephony.bad imports agent.call.Call"]
    assert broken(RULES[2], sources) == [
        "telephony.rel imports telephony.testing", "telephony.rel imports telephony.testing.emulator"
    ]


@pytest.mark.parametrize(
    ("imports", "must_not_load"),
    [
        ("tools, tools.store, tools.orders, tools.appointments", ("agent", "telephony", "tests")),
        ("agent.service.app, agent.service.serve", ("agent.devkit", "telephony.testing", "tests")),
    ],
)
def test_what_importing_really_loads(imports: str, must_not_load: tuple[str, ...]) -> None:
    """At run time too: the service as `serve` loads it pulls in no test kit."""
    import subprocess
    import sys

    code = (
        f"import sys, {imports};"
        f"bad = [m for m in sys.modules if m.startswith({must_not_load!r})];"
        "print(','.join(sorted(bad)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT
    )
    assert out.stdout.strip() == ""
