"""The suite's own layout, checked rather than hoped for.

Helpers live in ``tests/support/``; a test module that imports another test module (or a
conftest) runs that module's fixtures and tests' import-time code where nobody looks, and moving
one test then breaks another. And every folder of tests belongs to exactly one ``make`` tier
target, so ``make test-<tier>`` runs all of a tier and no test runs in two tiers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
MAKEFILE = ROOT / "Makefile"


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, absolute (relative imports resolved against ``package``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parents = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parents, base] if base else parents)
            found.add(base)
            # ``from tests.integration import test_capture`` names the module in the alias.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden_imports(source: str, package: str) -> list[str]:
    """What ``source`` imports from the suite outside ``tests.support``: test modules, conftests
    and tier folders' modules alike (helpers belong in the support package)."""
    return sorted(
        module
        for module in imported_modules(source, package)
        if module.split(".")[0] == "tests"
        and module != "tests"
        and module.split(".")[1] != "support"
    )


def test_no_test_module_imports_another_test_module_or_a_conftest() -> None:
    offenders = {
        str(path.relative_to(ROOT)): forbidden_imports(
            path.read_text(), ".".join(path.relative_to(ROOT).parts[:-1])
        )
        for path in sorted(TESTS.rglob("*.py"))
        if path.name.startswith("test_") or path.parent.name == "support"
    }
    offenders = {path: bad for path, bad in offenders.items() if bad}
    assert offenders == {}, "import helpers from tests.support instead"


def test_the_import_check_sees_a_test_module_and_a_conftest() -> None:
    # The check above must be able to fail: a module importing a test module and a conftest.
    source = (
        "from tests.integration.test_capture import sync_all\n"
        "from . import conftest\n"
        "import tests.e2e.test_admin_crm\n"
        "from tests.support.sync import sync_once\n"
        "from tests import support\n"
    )
    assert forbidden_imports(source, "tests.sandbox") == [
        "tests.e2e.test_admin_crm",
        "tests.integration.test_capture",
        "tests.integration.test_capture.sync_all",
        "tests.sandbox",
        "tests.sandbox.conftest",
    ]


def tier_targets(makefile: str) -> dict[str, list[str]]:
    """Each target named in ``TIER_TARGETS``, with the ``tests/...`` paths its recipe runs."""
    match = re.search(r"^TIER_TARGETS\s*:=\s*(.+)$", makefile, re.MULTILINE)
    assert match, "the Makefile lists its tier targets in TIER_TARGETS"
    targets: dict[str, list[str]] = {}
    for name in match.group(1).split():
        recipe = re.search(rf"^{re.escape(name)}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.MULTILINE)
        assert recipe, f"{name} has no recipe"
        targets[name] = re.findall(r"(?<![\w/])(tests(?:/[\w.-]+)*)", recipe.group(1))
    return targets


def folders_of_tests(tests: Path) -> set[str]:
    """Every folder (relative to the repo root) that holds a ``test_*.py`` file."""
    return {str(path.parent.relative_to(tests.parent)) for path in tests.rglob("test_*.py")}


def owners(folders: set[str], targets: dict[str, list[str]]) -> dict[str, list[str]]:
    """For each folder, the targets whose paths contain it."""
    return {
        folder: sorted(
            name
            for name, paths in targets.items()
            if any(folder == path or folder.startswith(path.rstrip("/") + "/") for path in paths)
        )
        for folder in sorted(folders)
    }


def test_every_test_folder_belongs_to_exactly_one_make_target() -> None:
    targets = tier_targets(MAKEFILE.read_text())
    assert {"test-unit", "test-contract", "test-integration", "test-e2e"} <= set(targets)
    wrong = {
        folder: names
        for folder, names in owners(folders_of_tests(TESTS), targets).items()
        if len(names) != 1
    }
    assert wrong == {}, "each folder of tests needs exactly one tier target in the Makefile"


def test_the_folder_check_sees_a_folder_in_none_and_one_in_two() -> None:
    makefile = (
        "TIER_TARGETS := test-a test-b\n\n"
        "test-a: setup\n\t$(PY) -m pytest -q tests/unit tests/e2e\n\n"
        "test-b: setup\n\t$(PY) -m pytest -q tests/e2e\n"
    )
    found = owners({"tests/unit", "tests/e2e", "tests/sandbox"}, tier_targets(makefile))
    assert found == {
        "tests/e2e": ["test-a", "test-b"],
        "tests/sandbox": [],
        "tests/unit": ["test-a"],
    }
