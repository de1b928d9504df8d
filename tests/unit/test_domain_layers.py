"""The domain stands on its own: it imports nothing above it, and its rules take the time.

Read from the source (``ast``), not by importing, so the check sees every module whether or not
a test imports it. ``make lint``'s import contracts say the same for the whole tree; this keeps
the domain's half of it in the unit tier, where a rule that reaches up fails first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "shared" / "domain"
MODULES = sorted(DOMAIN.glob("*.py"))
# What the domain may import from this project: itself, and the error kinds it raises.
ALLOWED = ("shared.domain", "shared.errors")


def _imports(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_the_domain_imports_nothing_above_it(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    above = [
        name
        for name in _imports(tree)
        if (name == "shared" or name.startswith(("shared.", "functions")))
        and not name.startswith(ALLOWED)
    ]
    assert above == []


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_domain_rules_take_the_time_as_an_argument(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    clock_reads = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "utcnow")
            or (isinstance(node.func, ast.Attribute) and node.func.attr in {"utcnow", "now"})
        )
    ]
    # models.utcnow itself is the one clock: used as a default_factory, never called by a rule.
    if module.name == "models.py":
        clock_reads = [line for line in clock_reads if not _inside(tree, "utcnow", line)]
    assert clock_reads == []


def _inside(tree: ast.AST, function: str, line: int) -> bool:
    return any(
        isinstance(node, ast.FunctionDef)
        and node.name == function
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(tree)
    )
