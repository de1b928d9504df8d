"""Fixtures several integration files share: the Gmail sandbox world, and a store of each kind.

``store`` runs its test on SQLite and on the Firestore emulator; on Firestore every query the
test made is checked against the declared indexes afterwards. A file that needs another store
or world defines its own fixture of the same name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
from shared.adapters.firestore_indexes import QueryRecorder
from shared.adapters.firestore_store import FirestoreStore
from shared.adapters.sqlite_store import SqliteStore
from shared.ports import Store
from tests.support.gmail import GmailWorld, gmail_world
from tests.support.store_reads import assert_queries_are_indexed


@pytest.fixture
def world() -> Iterator[GmailWorld]:
    with gmail_world() as running:
        yield running


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("firestore", id="firestore", marks=pytest.mark.firestore),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "crm.sqlite3")
        yield sqlite
        sqlite.close()
        return
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    recorder = QueryRecorder()
    client = emulator.client(new_project_id("it"))
    try:
        yield FirestoreStore(client, recorder=recorder)
    finally:
        client.close()
    assert_queries_are_indexed(recorder)
