"""Every query the Firestore adapter can issue is served by an index production will have.

The emulator runs any query; production refuses one without a serving index
(``FAILED_PRECONDITION``). So the adapter reports each query's shape to a recorder, and this test
checks every recorded shape against ``infra/firestore.indexes.json`` by Firestore's rule
(``shared.adapters.firestore.indexes``), not by field names. It also fails on a declared index no
query uses (stale, and billed for every write), unless it is listed in ``RESERVED``.

Robust to test order and selection: the test drives every Store method itself
(``store_exercise``) on a fresh database with the session's recorder, then checks everything the
session recorded so far; the recorder fixture re-checks at session end what tests running later
may add.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.indexes import (
    DEFAULT_INDEX_FILE,
    Index,
    QueryRecorder,
    check_coverage,
    load_exemptions,
    load_indexes,
    needs_composite_index,
)
from tests.support.store_exercise import CallLog, exercise_every_method, store_method_names

# Indexes declared ahead of the code that will query with them. Empty today: every declared
# index is used by some query of the adapter.
RESERVED: tuple[Index, ...] = ()


class TestIndexFile:
    def test_is_firebase_format_without_duplicates(self) -> None:
        document = json.loads(DEFAULT_INDEX_FILE.read_text(encoding="utf-8"))
        assert set(document) == {"indexes", "fieldOverrides"}
        for entry in document["indexes"]:
            assert set(entry) == {"collectionGroup", "queryScope", "fields"}
            assert entry["queryScope"] == "COLLECTION"
            for field in entry["fields"]:
                assert field.keys() in ({"fieldPath", "order"}, {"fieldPath", "arrayConfig"})
        indexes = load_indexes()
        duplicates = [i.describe() for i, n in Counter(indexes).items() if n > 1]
        assert duplicates == []
        # Firebase refuses a one-field "composite" index: single fields are automatic.
        assert [i.describe() for i in indexes if len(i.fields) < 2] == []


@pytest.mark.firestore
class TestIndexCoverage:
    def test_every_query_shape_is_served_and_every_index_used(
        self, firestore_emulator: FirestoreEmulator, firestore_query_recorder: QueryRecorder
    ) -> None:
        client = firestore_emulator.client(new_project_id("indexes"))
        try:
            store = CallLog(FirestoreStore(client, recorder=firestore_query_recorder))
            exercise_every_method(store)
        finally:
            client.close()
        assert store_method_names() - store.called == set(), "exercise misses Store methods"

        shapes = firestore_query_recorder.shapes
        indexes = load_indexes()
        report = check_coverage(shapes, indexes, reserved=RESERVED, exempt_fields=load_exemptions())
        assert report.ok, "\n" + report.describe()

        # The check can fail: without one declared index, its query is reported by name.
        needing = [s for s in shapes if needs_composite_index(s)]
        assert needing, "no recorded query needs a composite index: is the recorder wired?"
        dropped = indexes[-1]
        weaker = check_coverage(shapes, [i for i in indexes if i != dropped], reserved=RESERVED)
        assert weaker.missing
        assert all(s.collection == dropped.collection_group for s in weaker.missing)
