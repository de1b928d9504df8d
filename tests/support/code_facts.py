"""What each function's code needs at run time, read from the source (AST), not from the catalog.

The deployment grants what ``shared.catalog`` declares; these facts are derived independently so
a test can compare the two. For a function ``f`` the code is ``functions/f.py`` and every
first-party module it imports (at any depth, lazy imports inside functions included), stopping
at ``shared.wiring``, the one place adapters are built. What ``f`` needs is then what the
``wiring`` builders it names need, followed through ``wiring``'s own calls:

(a string naming a first-party module, as ``importlib`` takes it, counts as an import)

* the secrets it reads: every ``settings.<name>_secret`` a reached builder touches;
* whether it acts as team mailboxes: a reached builder calls ``_delegated_credentials``;
* whether it publishes, and where: it reaches ``wiring.queue`` and its modules call
  ``.publish(Topic.X...)``.

This over-approximates (a module imported for one helper counts whole), which is the safe side
for "every secret a function reads is granted"; the catalog test demands equality, so an
over-grant shows up too and gets looked at.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("functions", "shared")
WIRING = "shared.wiring"
DELEGATION_BUILDER = "_delegated_credentials"
QUEUE_BUILDER = "queue"
_DOTTED = re.compile(r"(functions|shared)(\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class Needs:
    secret_settings: frozenset[str]
    gmail: bool
    publishes: bool
    topics: frozenset[str]  # Topic member names (SYNC_REQUESTS, ...)


def module_file(module: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST, root: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # Modules imported by name (``importlib``), like the admin API's route modules.
            names = [node.value] if _DOTTED.fullmatch(node.value) else []
        else:
            continue
        for name in names:
            if name.split(".")[0] in FIRST_PARTY and module_file(name, root) is not None:
                found.add(name)
    return found


def closure(start: str, root: Path = ROOT) -> dict[str, ast.AST]:
    """Every first-party module reachable from module ``start``, parsed; wiring not entered."""
    parsed: dict[str, ast.AST] = {}
    first = module_file(start, root)
    if first is None:
        raise FileNotFoundError(start)
    pending: list[tuple[str, Path]] = [(start, first)]
    while pending:
        name, path = pending.pop()
        if name in parsed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        parsed[name] = tree
        for module in _imports(tree, root):
            if module == WIRING or module in parsed:
                continue
            file = module_file(module, root)
            if file is not None:
                pending.append((module, file))
    return parsed


def wiring_builders(source: str) -> dict[str, tuple[set[str], set[str]]]:
    """Each top-level function of ``wiring``: (secret settings it touches, builders it names)."""
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    names = {node.name for node in functions}
    builders: dict[str, tuple[set[str], set[str]]] = {}
    for node in functions:
        secrets = {
            sub.attr
            for sub in ast.walk(node)
            if isinstance(sub, ast.Attribute) and sub.attr.endswith("_secret")
        }
        calls = {
            sub.id
            for sub in ast.walk(node)
            if isinstance(sub, ast.Name) and sub.id in names and sub.id != node.name
        }
        builders[node.name] = (secrets, calls)
    return builders


def _reach(builders: dict[str, tuple[set[str], set[str]]], start: set[str]) -> set[str]:
    seen: set[str] = set()
    pending = [name for name in start if name in builders]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += [callee for callee in builders[name][1] if callee not in seen]
    return seen


def wiring_references(trees: dict[str, ast.AST]) -> set[str]:
    """``wiring.<name>`` attributes and ``from shared.wiring import <name>`` across modules."""
    used: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "wiring"
            ):
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module == WIRING:
                used |= {alias.name for alias in node.names}
    return used


def _publish_topics(call: ast.Call) -> set[str]:
    """``Topic.X`` named in the arguments of a ``.publish(...)`` call (empty for other calls)."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "publish"):
        return set()
    return {
        sub.attr
        for arg in call.args
        for sub in ast.walk(arg)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.value, ast.Name)
        and sub.value.id == "Topic"
    }


def _definitions(tree: ast.AST) -> dict[str, ast.AST]:
    return {
        node.name: node
        for node in getattr(tree, "body", [])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _aliases(tree: ast.AST, modules: set[str]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Names bound to first-party modules, and names bound to their functions."""
    module_alias: dict[str, str] = {}
    function_alias: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                bound = alias.asname or alias.name
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    module_alias[bound] = full
                elif node.module in modules:
                    function_alias[bound] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    module_alias[alias.asname] = alias.name
    return module_alias, function_alias


def published_topics(trees: dict[str, ast.AST]) -> set[str]:
    """Topics of the ``publish`` calls reachable by calls from the function package's code.

    Roots: every top-level function of a ``functions.*`` module in ``trees`` (entry points and
    route handlers). Edges: calls of a function by name (same module or imported) or through
    a module alias (``sync.run_sync``). A service module imported only for a helper therefore
    does not lend the function the topics its other functions publish to.
    """
    modules = set(trees)
    definitions = {name: _definitions(tree) for name, tree in trees.items()}
    aliases = {name: _aliases(tree, modules) for name, tree in trees.items()}
    pending = [
        (module, function)
        for module in modules
        if module.startswith("functions.")
        for function in definitions[module]
    ]
    seen: set[tuple[str, str]] = set()
    topics: set[str] = set()
    while pending:
        module, function = pending.pop()
        if (module, function) in seen or function not in definitions.get(module, {}):
            continue
        seen.add((module, function))
        module_alias, function_alias = aliases[module]
        for node in ast.walk(definitions[module][function]):
            if not isinstance(node, ast.Call):
                continue
            topics |= _publish_topics(node)
            callee = node.func
            if isinstance(callee, ast.Name):
                if callee.id in definitions[module]:
                    pending.append((module, callee.id))
                elif callee.id in function_alias:
                    pending.append(function_alias[callee.id])
            elif (
                isinstance(callee, ast.Attribute)
                and isinstance(callee.value, ast.Name)
                and callee.value.id in module_alias
            ):
                pending.append((module_alias[callee.value.id], callee.attr))
    return topics


def needs_of_trees(trees: dict[str, ast.AST], wiring_source: str) -> Needs:
    builders = wiring_builders(wiring_source)
    reached = _reach(builders, wiring_references(trees))
    secrets = set().union(*(builders[name][0] for name in reached)) if reached else set()
    publishes = QUEUE_BUILDER in reached
    return Needs(
        secret_settings=frozenset(secrets),
        gmail=DELEGATION_BUILDER in reached,
        publishes=publishes,
        topics=frozenset(published_topics(trees)) if publishes else frozenset(),
    )


def function_needs(name: str, root: Path = ROOT) -> Needs:
    """What the deployed function ``name`` needs, from ``functions/<name>.py`` onwards."""
    trees = closure(f"functions.{name}", root)
    wiring_source = (root / "shared" / "wiring.py").read_text(encoding="utf-8")
    return needs_of_trees(trees, wiring_source)


def logged_error_events(root: Path = ROOT) -> set[str]:
    """``events.X`` names in the ``extra`` of ``logger.error`` (or critical/exception) calls."""
    found: set[str] = set()
    for package in FIRST_PARTY:
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("error", "critical", "exception")
                ):
                    continue
                for keyword in node.keywords:
                    if keyword.arg != "extra":
                        continue
                    for sub in ast.walk(keyword.value):
                        if (
                            isinstance(sub, ast.Attribute)
                            and isinstance(sub.value, ast.Name)
                            and sub.value.id == "events"
                        ):
                            found.add(sub.attr)
    return found
