"""Session-wide test setup: every test starts from the same environment and no built adapters.

Tests configure the service the way an operator does, through ``CRM_*`` environment variables,
and these fixtures make sure nothing leaks from one test into the next.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sandbox.firestore_emulator import FirestoreEmulator
    from shared.ports import Store

ROOT = Path(__file__).resolve().parent.parent

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Fails the session if a Gmail sandbox recorded a send to a non-admin or a drafts.send call.
pytest_plugins = ["tests.support.send_guard"]


# Folders whose tests share a package-scoped fixture (the browser tier's one stack and one
# Chromium): under pytest-xdist each is one work unit, so one worker runs it back to back.
ONE_WORKER_FOLDERS = ("tests/browser/",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` runs the suite on several workers (pytest-xdist): a worker takes a whole
    test module, since a module's tests share its module-scoped servers and stores, and a whole
    folder of ``ONE_WORKER_FOLDERS``, since its package-scoped stack would otherwise start on
    every worker (and again each time the worker came back to the folder).

    Modules are handed out in collection order (tiers alphabetically, the unit tier last), not
    xdist's default of most tests first: that put the unit tier's big parametrized modules
    first and left one-test modules of a minute (the stop mid-backfill) for the end, where one
    worker ran them alone; the unit tier's many quick modules even out the end instead."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((f for f in ONE_WORKER_FOLDERS if path.startswith(f)), path)

    return ModuleScheduling(config, log)


@pytest.fixture(autouse=True)
def isolate_environment() -> Iterator[None]:
    """Restore os.environ and forget settings and adapters after every test."""
    from shared import wiring

    saved = os.environ.copy()
    for key in list(os.environ):
        if key.startswith("CRM_"):
            del os.environ[key]
    wiring.reset()
    try:
        yield
    finally:
        wiring.reset()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """One Firestore emulator for the session, on a port the OS picks, shared by every tier.

    Starting it takes a fraction of a second, but a Node process per test (or per module) would
    dominate the run; each store built on it takes a fresh project id, which the emulator keeps
    as a separate, empty database. Clients come from :meth:`FirestoreEmulator.client`, which sets
    ``FIRESTORE_EMULATOR_HOST`` for the construction only, so no environment variable leaks.
    """
    from sandbox.firestore_emulator import FirestoreEmulator

    with FirestoreEmulator() as running:
        yield running


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("firestore", id="firestore", marks=pytest.mark.firestore),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of each kind, empty: a fresh SQLite file, or a fresh Firestore database (a new
    project id on the session's emulator). The contract suite runs every method on it; the
    integration tests run capture and its readers on it. On Firestore every query the test made
    is checked against the declared indexes afterwards (production refuses a query without its
    composite index; the emulator runs it anyway)."""
    from sandbox.firestore_emulator import new_project_id
    from shared.adapters.firestore import FirestoreStore
    from shared.adapters.firestore.indexes import QueryRecorder
    from shared.adapters.sqlite import SqliteStore
    from tests.support.store_reads import assert_queries_are_indexed

    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "crm.sqlite3")
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    recorder = QueryRecorder()
    client = emulator.client(new_project_id("store"))
    try:
        yield FirestoreStore(client, recorder=recorder)
    finally:
        client.close()
    assert_queries_are_indexed(recorder)
