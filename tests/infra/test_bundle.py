"""The bundle Cloud Functions receives: its layout, its pins, and that it installs and imports.

The slow test installs ``build/bundle``'s ``requirements.txt`` into a fresh virtualenv exactly as
pinned (``--no-deps``, then ``pip check``: a transitive package missing from the lock fails
here), and imports every entry point from the bundle alone, as functions-framework does, so a
file the bundle forgot fails here rather than in production. pip's wheel cache keeps reruns at
about 20 seconds.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from infra import bundle, lock
from shared.catalog import FUNCTIONS


def python_files(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: content for path, content in files.items() if path.endswith(".py")}


class TestLayout:
    def test_main_py_requirements_the_two_packages_and_the_built_console_only(
        self, source_bundle: bundle.Bundle
    ) -> None:
        top = {path.split("/")[0] for path in source_bundle.files}
        assert top - {"console"} == {"main.py", "requirements.txt", "functions", "shared"}
        # Of the console, only what was built (no sources, no node_modules).
        console = [p for p in source_bundle.files if p.startswith("console/")]
        assert all(p.startswith("console/dist/") for p in console)
        if (bundle.ROOT / "console" / "dist" / "index.html").is_file():
            assert "console/dist/index.html" in console
        assert not any(
            "__pycache__" in path or path.endswith(".pyc") for path in source_bundle.files
        )
        assert "functions/main.py" in source_bundle.files
        assert "shared/__init__.py" in source_bundle.files

    def test_root_main_exports_every_entry_point(self, source_bundle: bundle.Bundle) -> None:
        tree = ast.parse(source_bundle.files["main.py"])
        exported = next(
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
        )
        assert exported == sorted(f.name for f in FUNCTIONS)

    def test_bundled_code_imports_nothing_left_out(self, source_bundle: bundle.Bundle) -> None:
        modules = {
            path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for path in python_files(source_bundle.files)
        }
        problems = []
        for path, content in python_files(source_bundle.files).items():
            for node in ast.walk(ast.parse(content)):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in bundle.NOT_BUNDLED:
                        problems.append(f"{path} imports {name}, which is not bundled")
                    elif top in ("functions", "shared") and name not in modules:
                        problems.append(f"{path} imports {name}, missing from the bundle")
        assert problems == []

    def test_hash_and_zip_are_stable_and_follow_the_content(self, tmp_path: Path) -> None:
        root = tmp_path / "tree"
        for package in bundle.PACKAGES:
            shutil.copytree(
                bundle.ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        (root / "infra").mkdir()
        shutil.copy(lock.LOCK_FILE, root / "infra" / lock.LOCK_FILE.name)
        first, again = bundle.collect(root), bundle.collect(root)
        assert first.source_hash == again.source_hash
        assert first.zip_bytes() == again.zip_bytes()
        assert len(first.source_hash) == 40  # a Cloud label value holds at most 63

        (root / "shared" / "events.py").write_text("# changed\n", encoding="utf-8")
        assert bundle.collect(root).source_hash != first.source_hash

    def test_write_replaces_the_folder(self, tmp_path: Path, source_bundle: bundle.Bundle) -> None:
        out = tmp_path / "bundle"
        (out / "stale").mkdir(parents=True)
        bundle.write(source_bundle, out)
        assert not (out / "stale").exists()
        assert (out / "main.py").read_bytes() == source_bundle.files["main.py"]


class TestPins:
    def test_the_lock_holds_every_requirement_at_its_pinned_version(self) -> None:
        assert lock.drift() == []
        assert lock.unpinned_lines(lock.REQUIREMENTS) == []
        assert lock.unpinned_lines(lock.LOCK_FILE) == []

    def test_drift_is_reported(self, tmp_path: Path) -> None:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text("pydantic==1.0.0\nnot-locked==1.0\n", encoding="utf-8")
        problems = lock.drift(requirements, lock.LOCK_FILE)
        assert any("pydantic" in p and "1.0.0" in p for p in problems)
        assert any("not-locked" in p for p in problems)

    def test_the_bundle_ships_the_lock(self, source_bundle: bundle.Bundle) -> None:
        assert source_bundle.files["requirements.txt"] == lock.LOCK_FILE.read_bytes()


IMPORT_EVERY_ENTRY_POINT = """
import importlib.util, json, sys
import functions_framework
import main
# Nothing from the repository may be importable: only the bundle and its requirements.
left_out = ("embedded", "sandbox", "tests", "bench", "infra")
leaks = [m for m in left_out if importlib.util.find_spec(m)]
apps = {}
for name in main.__all__:
    app = functions_framework.create_app(name, "main.py")
    apps[name] = type(app).__name__
print(json.dumps({"exported": sorted(main.__all__), "apps": apps, "leaks": leaks}))
"""


@pytest.mark.bundle
@pytest.mark.timeout(900)
def test_the_bundle_installs_into_a_clean_virtualenv_and_serves_every_entry_point(
    tmp_path: Path, source_bundle: bundle.Bundle
) -> None:
    source = bundle.write(source_bundle, tmp_path / "bundle")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(environment)
    python = environment / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # --no-compile: byte-compiling every installed package was much of the install's time,
    # and neither pip check nor the imports below depend on .pyc files being there.
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-compile", "-r", str(source / "requirements.txt")],
        check=True,
        env=env,
        capture_output=True,
        timeout=840,
    )
    checked = subprocess.run([*pip, "check"], env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    ran = subprocess.run(
        [str(python), "-c", IMPORT_EVERY_ENTRY_POINT],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["exported"] == sorted(f.name for f in FUNCTIONS)
    assert set(report["apps"]) == {f.name for f in FUNCTIONS}
    assert report["leaks"] == []
