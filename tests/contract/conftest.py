"""Fixtures of the contract suite, which runs every Store method against every Store adapter.

``store`` (in ``tests/conftest.py``, shared with the integration tier) is parametrized ``sqlite``
/ ``firestore``, so each contract test runs twice and reads ``test_x[sqlite]`` /
``test_x[firestore]``; on Firestore every query its test made is checked against the declared
indexes when the test ends. The Firestore runs share the session's one emulator
(``firestore_emulator``, also in ``tests/conftest.py``) and get a fresh project id each, which
the emulator keeps as a separate, empty database.

The Firestore-only stores built here (``firestore_store``, the activity corpus) report every
query to one session-wide :class:`QueryRecorder`. When the session ends, the recorder fixture
fails the run if any recorded shape needs a composite index that ``infra/firestore.indexes.json``
does not declare; ``test_index_coverage.py`` additionally drives every Store method itself, so
the check does not depend on which tests ran.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.indexes import (
    QueryRecorder,
    check_coverage,
    load_exemptions,
    load_indexes,
)


@pytest.fixture(scope="session")
def firestore_query_recorder() -> Iterator[QueryRecorder]:
    """Every query shape the session's Firestore stores issue; checked when the session ends.

    The end-of-session check covers shapes only tests saw (say, a new test added after the
    coverage test ran); unused declared indexes are the coverage test's job, since only a full
    exercise can tell that an index is stale.
    """
    recorder = QueryRecorder()
    yield recorder
    report = check_coverage(
        recorder.shapes, load_indexes(), reserved=load_indexes(), exempt_fields=load_exemptions()
    )
    if report.missing or report.on_exempt_fields:
        pytest.fail(
            "Firestore queries issued by the contract suite that production would refuse:\n"
            + report.describe()
        )


@pytest.fixture
def firestore_store(
    firestore_emulator: FirestoreEmulator, firestore_query_recorder: QueryRecorder
) -> Iterator[FirestoreStore]:
    """A FirestoreStore on an empty database (a fresh project id) of the session's emulator."""
    client = firestore_emulator.client(new_project_id("contract"))
    try:
        yield FirestoreStore(client, recorder=firestore_query_recorder)
    finally:
        client.close()
