"""Services reach the outside world only through ports: no service module imports an adapter
(not even for a type annotation), so that wiring alone chooses and builds adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "shared" / "services"


def _imported(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("path", sorted(SERVICES.glob("*.py")), ids=lambda p: p.name)
def test_a_service_imports_no_adapter_and_no_wiring(path: Path) -> None:
    wrong = [
        name
        for name in _imported(path)
        if name.startswith(("shared.adapters", "shared.wiring", "shared.web"))
        or name in ("shared.adapters", "shared.wiring", "shared.web")
    ]
    assert wrong == []
