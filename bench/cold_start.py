"""Cold-start cost of the entry-point module: lazy wiring versus importing the heavy clients.

What it measures: in fresh Python subprocesses (``--runs`` each, default 15; the median is
reported), the wall time of

- ``import``: importing the entry-point module (``--module``, default ``functions.main``), and
- ``eager``: importing it *and* the four heavy client libraries a module-scope wiring would pull
  in (``googleapiclient.discovery``, ``google.cloud.firestore``, ``google.cloud.scheduler_v1``,
  ``google.cloud.secretmanager``).

In production the runtime has already imported functions-framework (and with it Flask and
Werkzeug) before it loads ``main.py``, so that cost is not ours to win. In BOTH configurations
the subprocess therefore imports ``functions_framework`` first, untimed, and only then times the
rest with ``time.perf_counter()``. Runs alternate between the two configurations so drift (disk
cache, CPU frequency) hits both alike, and one untimed warm-up run of each comes first so
``.pyc`` files exist, as they do in a deployed image.

The subprocess runs from the repository root with ``PYTHONPATH=.`` prepended to any inherited
``PYTHONPATH`` (which is how to point ``--module`` at a stand-in elsewhere).

A separate check imports the module alone and fails (exit status 1, reason on stderr) if it
left any of the heavy client packages in ``sys.modules``: laziness that a stray top-level import
undid is exactly the regression this guards. ``--check-only`` runs just that check.

Output: one human line per configuration, then exactly
``RESULT import_s=<median> eager_s=<median> ratio=<import/eager>`` (3 decimals) as the last
stdout line.

``--baseline DIR`` also measures another checkout of the project (say, the commit before a
change, ``git worktree add --detach DIR <commit>``) in the same run: every run times the four
children in turn (this checkout's import, the baseline's, then both eager), so drift hits both
alike. The subprocess for the baseline runs from DIR with ``PYTHONPATH=DIR``. Output then ends
with ``RESULT checkout=new ...``, ``RESULT checkout=baseline ...`` (same fields as above) and
``RESULT import_vs_baseline=<new / baseline import wall time> import_cpu_vs_baseline=<the same
for the children's CPU time>`` (on a machine other jobs share, the CPU time is the steadier
figure: wall time then includes waiting for a core); the exit status is 1 if the new import's
wall time is more than ``--max-slowdown`` (default 0.10) above the baseline's.

    PYTHONPATH=. .venv/bin/python -m bench.cold_start [--module functions.main] [--runs 15]
        [--baseline DIR] [--max-slowdown 0.10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

EAGER_CLIENTS = (
    "googleapiclient.discovery",
    "google.cloud.firestore",
    "google.cloud.scheduler_v1",
    "google.cloud.secretmanager",
)

# Must not be in sys.modules after importing the entry-point module. The versioned packages are
# listed too: importing ``google.cloud.firestore_v1`` directly is just as heavy.
FORBIDDEN_AFTER_IMPORT = (
    "googleapiclient",
    "google.cloud.firestore",
    "google.cloud.firestore_v1",
    "google.cloud.scheduler_v1",
    "google.cloud.secretmanager",
    "google.cloud.secretmanager_v1",
    "google.cloud.pubsub",
    "google.cloud.pubsub_v1",
)

# Runs in the child. argv: module, then modules to import eagerly. Prints one JSON object.
_CHILD = """
import importlib, json, sys, time
import functions_framework  # untimed: the runtime has imported it before it loads main.py
before = set(sys.modules)
start, cpu_start = time.perf_counter(), time.process_time()
for name in sys.argv[1:]:
    importlib.import_module(name)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(json.dumps(
    {"elapsed": elapsed, "cpu": cpu, "before": sorted(before), "after": sorted(sys.modules)}
))
"""


@dataclass(frozen=True)
class ChildResult:
    elapsed: float
    cpu: float  # the child's CPU time for the same imports: less sensitive to a busy machine
    loaded_before: frozenset[str]
    loaded_after: frozenset[str]


class BenchError(RuntimeError):
    """The child could not import what it was asked to (the message carries its stderr)."""


def _child_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    inherited = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(part for part in (str(root), inherited) if part)
    return env


def run_child(python: str, modules: list[str], root: Path = REPO_ROOT) -> ChildResult:
    """Import ``modules`` in a fresh interpreter started in the checkout ``root`` and report
    the time and what got loaded."""
    completed = subprocess.run(
        [python, "-c", _CHILD, *modules],
        cwd=root,
        env=_child_env(root),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(
            f"importing {' '.join(modules)} failed (exit {completed.returncode}):\n"
            f"{completed.stderr.strip()}"
        )
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    return ChildResult(
        elapsed=float(data["elapsed"]),
        cpu=float(data["cpu"]),
        loaded_before=frozenset(data["before"]),
        loaded_after=frozenset(data["after"]),
    )


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def heavy_modules_left(result: ChildResult) -> dict[str, str]:
    """Each forbidden package present after the import -> who loaded it."""
    found: dict[str, str] = {}
    for package in FORBIDDEN_AFTER_IMPORT:
        if any(_is_under(module, package) for module in result.loaded_after):
            already = any(_is_under(module, package) for module in result.loaded_before)
            found[package] = "functions_framework (before the module)" if already else "the module"
    return found


def check_lazy(python: str, module: str) -> list[str]:
    """Problems found by importing ``module`` alone; empty when it left no heavy client loaded."""
    leaked = heavy_modules_left(run_child(python, [module]))
    return [f"importing {module} loaded {package} (via {who})" for package, who in leaked.items()]


def measure(python: str, module: str, runs: int) -> tuple[list[float], list[float]]:
    """Interleaved timings of ``import`` and ``eager``, after one warm-up run of each."""
    eager = [module, *EAGER_CLIENTS]
    run_child(python, [module])
    run_child(python, eager)
    import_times: list[float] = []
    eager_times: list[float] = []
    for _ in range(runs):
        import_times.append(run_child(python, [module]).elapsed)
        eager_times.append(run_child(python, eager).elapsed)
    return import_times, eager_times


@dataclass
class Timings:
    """One checkout's import and eager times, run by run."""

    root: Path
    imports: list[float]
    eagers: list[float]
    import_cpus: list[float]

    def result(self, prefix: str = "") -> str:
        import_median = statistics.median(self.imports)
        eager_median = statistics.median(self.eagers)
        return (
            f"RESULT {prefix}import_s={import_median:.3f} eager_s={eager_median:.3f} "
            f"ratio={import_median / eager_median:.3f} "
            f"import_cpu_s={statistics.median(self.import_cpus):.3f}"
        )


def measure_beside(python: str, module: str, runs: int, roots: list[Path]) -> list[Timings]:
    """Like :func:`measure` for several checkouts at once, their children alternating within
    every run, after one warm-up run of each child."""
    eager = [module, *EAGER_CLIENTS]
    timings = [Timings(root, [], [], []) for root in roots]
    for root in roots:
        run_child(python, [module], root)
        run_child(python, eager, root)
    for _ in range(runs):
        for timing in timings:
            child = run_child(python, [module], timing.root)
            timing.imports.append(child.elapsed)
            timing.import_cpus.append(child.cpu)
        for timing in timings:
            timing.eagers.append(run_child(python, eager, timing.root).elapsed)
    return timings


def _describe(label: str, times: list[float]) -> str:
    return (
        f"{label}: median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}) over {len(times)} fresh interpreters"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--module", default="functions.main", help="entry-point module to time")
    parser.add_argument("--runs", type=int, default=15, help="runs per configuration")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children")
    parser.add_argument(
        "--check-only", action="store_true", help="only check that the import stays lazy"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (an older commit) to measure beside this one, runs alternating",
    )
    parser.add_argument(
        "--max-slowdown",
        type=float,
        default=0.10,
        help="with --baseline: the import may be this much slower than the baseline's",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.baseline is not None:
        if not (args.baseline / "functions").is_dir():
            parser.error(f"--baseline {args.baseline} is not a checkout of this project")
        return _beside_baseline(args.python, args.module, args.runs, args.baseline.resolve(), args)

    import_times: list[float] = []
    eager_times: list[float] = []
    try:
        problems = check_lazy(args.python, args.module)
        if not args.check_only:
            import_times, eager_times = measure(args.python, args.module, args.runs)
    except BenchError as exc:
        print(f"cold_start: {exc}", file=sys.stderr)
        return 2

    for problem in problems:
        print(f"cold_start: lazy-import check failed: {problem}", file=sys.stderr)
    if args.check_only:
        if not problems:
            print(f"cold_start: importing {args.module} left no heavy client in sys.modules")
        return 1 if problems else 0

    print(_describe(f"import {args.module}", import_times))
    print(_describe(f"import {args.module} + {', '.join(EAGER_CLIENTS)}", eager_times))
    import_median = statistics.median(import_times)
    eager_median = statistics.median(eager_times)
    print(
        f"RESULT import_s={import_median:.3f} eager_s={eager_median:.3f} "
        f"ratio={import_median / eager_median:.3f}"
    )
    return 1 if problems else 0


def _beside_baseline(
    python: str, module: str, runs: int, baseline: Path, args: argparse.Namespace
) -> int:
    try:
        problems = check_lazy(python, module)
        new, old = measure_beside(python, module, runs, [REPO_ROOT, baseline])
    except BenchError as exc:
        print(f"cold_start: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"cold_start: lazy-import check failed: {problem}", file=sys.stderr)
    for label, timing in (("new", new), (f"baseline {baseline}", old)):
        print(_describe(f"{label}: import {module}", timing.imports))
        print(_describe(f"{label}: import {module} + the clients", timing.eagers))
    slowdown = statistics.median(new.imports) / statistics.median(old.imports)
    cpu_slowdown = statistics.median(new.import_cpus) / statistics.median(old.import_cpus)
    print(new.result("checkout=new "))
    print(old.result("checkout=baseline "))
    print(f"RESULT import_vs_baseline={slowdown:.3f} import_cpu_vs_baseline={cpu_slowdown:.3f}")
    if slowdown > 1 + args.max_slowdown:
        print(
            f"cold_start: the import is {slowdown - 1:.0%} slower than the baseline's "
            f"(allowed {args.max_slowdown:.0%})",
            file=sys.stderr,
        )
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
