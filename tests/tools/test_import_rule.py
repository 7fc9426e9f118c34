"""DESIGN.md §1: `tools` imports nothing of ours from `agent` or `telephony`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tools

FORBIDDEN = ("agent", "telephony")
PACKAGE = Path(tools.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_source_file_imports_upwards() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not offenders, "\n".join(offenders)


def test_importing_tools_loads_neither_agent_nor_telephony() -> None:
    code = (
        "import sys, tools, tools.store, tools.orders, tools.appointments;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('agent', 'telephony')];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
