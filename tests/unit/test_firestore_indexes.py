"""Firestore's index rule as ``shared.adapters.firestore.indexes`` implements it (pure).

Many cases are chosen so that a check by field names alone would pass while Firestore would
refuse the query: fields in the wrong order, a wrong direction, a missing equality field, an
extra field, an array field indexed as ordered.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.firestore.indexes import (
    Direction,
    Index,
    IndexField,
    QueryRecorder,
    QueryShape,
    check_coverage,
    find_serving_index,
    load_indexes,
    needs_composite_index,
    parse_exemptions,
    parse_indexes,
)

ASC = Direction.ASCENDING
DESC = Direction.DESCENDING


def index(collection: str, *fields: tuple[str, str]) -> Index:
    """``index("c", ("a", "ASC"), ("tags", "CONTAINS"), ("t", "DESC"))``."""
    built = []
    for name, kind in fields:
        if kind == "CONTAINS":
            built.append(IndexField(name, array_config="CONTAINS"))
        else:
            built.append(IndexField(name, order=ASC if kind == "ASC" else DESC))
    return Index(collection, tuple(built))


def names_only_check(shape: QueryShape, candidate: Index) -> bool:
    """The naive check this module exists to replace: same field names, nothing else."""
    return {f.field_path for f in candidate.fields} == shape.fields()


BY_STATUS = QueryShape.of("proposals", equality=["status"], order_by=[("sort_key", DESC)])
BY_BOTH = QueryShape.of(
    "proposals", equality=["status", "investor_id"], order_by=[("sort_key", DESC)]
)
LIVE_BY_DOMAIN = QueryShape.of("investors", equality=["deleted"], array_contains="domains")


class TestNeedsCompositeIndex:
    @pytest.mark.parametrize(
        "shape",
        [
            QueryShape.of("audit"),
            QueryShape.of("audit", order_by=[("sort_key", DESC)]),
            QueryShape.of("users", equality=["role", "is_active"]),
            QueryShape.of("emails", array_contains="participant_domains"),
            QueryShape.of("proposals", inequality=["sort_key"]),
            QueryShape.of("proposals", inequality=["sort_key"], order_by=[("sort_key", DESC)]),
            # An order-by on an equality field orders nothing: still equality only.
            QueryShape.of("users", equality=["email"], order_by=[("email", ASC)]),
        ],
        ids=lambda s: s.describe(),
    )
    def test_single_field_indexes_suffice(self, shape: QueryShape) -> None:
        assert needs_composite_index(shape) is False

    @pytest.mark.parametrize(
        "shape",
        [
            BY_STATUS,
            QueryShape.of("audit", order_by=[("at", DESC), ("id", DESC)]),
            LIVE_BY_DOMAIN,
            QueryShape.of("emails", array_contains="participant_domains", order_by=[("id", ASC)]),
            QueryShape.of("proposals", inequality=["sort_key"], order_by=[("created_at", DESC)]),
            QueryShape.of("proposals", equality=["status"], inequality=["sort_key"]),
            QueryShape.of("proposals", inequality=["sort_key", "created_at"]),
        ],
        ids=lambda s: s.describe(),
    )
    def test_composite_index_needed(self, shape: QueryShape) -> None:
        assert needs_composite_index(shape) is True


class TestFindServingIndex:
    def test_equality_then_order_by_serves(self) -> None:
        good = index("proposals", ("status", "ASC"), ("sort_key", "DESC"))
        assert find_serving_index(BY_STATUS, [good]) == good

    def test_equality_fields_may_come_in_any_order_and_direction(self) -> None:
        one = index("proposals", ("investor_id", "ASC"), ("status", "ASC"), ("sort_key", "DESC"))
        other = index("proposals", ("status", "DESC"), ("investor_id", "ASC"), ("sort_key", "DESC"))
        assert find_serving_index(BY_BOTH, [one]) == one
        assert find_serving_index(BY_BOTH, [other]) == other

    def test_array_contains_joins_the_equality_prefix_in_any_position(self) -> None:
        first = index("investors", ("domains", "CONTAINS"), ("deleted", "ASC"))
        last = index("investors", ("deleted", "ASC"), ("domains", "CONTAINS"))
        assert find_serving_index(LIVE_BY_DOMAIN, [first]) == first
        assert find_serving_index(LIVE_BY_DOMAIN, [last]) == last

    def test_a_range_field_is_implicitly_ordered_first_ascending(self) -> None:
        shape = QueryShape.of(
            "proposals", equality=["status"], inequality=["created_at"], order_by=[("id", DESC)]
        )
        good = index("proposals", ("status", "ASC"), ("created_at", "ASC"), ("id", "DESC"))
        descending = index("proposals", ("status", "ASC"), ("created_at", "DESC"), ("id", "DESC"))
        assert find_serving_index(shape, [good]) == good
        assert find_serving_index(shape, [descending]) is None

    def test_an_explicitly_ordered_range_field_keeps_its_direction(self) -> None:
        shape = QueryShape.of(
            "proposals",
            equality=["status"],
            inequality=["sort_key"],
            order_by=[("sort_key", DESC)],
        )
        good = index("proposals", ("status", "ASC"), ("sort_key", "DESC"))
        assert find_serving_index(shape, [good]) == good
        assert (
            find_serving_index(shape, [index("proposals", ("status", "ASC"), ("sort_key", "ASC"))])
            is None
        )

    @pytest.mark.parametrize(
        ("shape", "candidate"),
        [
            pytest.param(
                BY_STATUS,
                index("proposals", ("sort_key", "DESC"), ("status", "ASC")),
                id="order field before equality field",
            ),
            pytest.param(
                BY_STATUS,
                index("proposals", ("status", "ASC"), ("sort_key", "ASC")),
                id="wrong direction",
            ),
            pytest.param(
                QueryShape.of("audit", order_by=[("at", DESC), ("id", ASC)]),
                index("audit", ("id", "ASC"), ("at", "DESC")),
                id="order-bys swapped",
            ),
            pytest.param(
                QueryShape.of("audit", order_by=[("at", DESC), ("id", ASC)]),
                index("audit", ("at", "DESC"), ("id", "DESC")),
                id="second order-by wrong direction",
            ),
            pytest.param(
                LIVE_BY_DOMAIN,
                index("investors", ("deleted", "ASC"), ("domains", "ASC")),
                id="array field indexed as ordered",
            ),
            pytest.param(
                QueryShape.of(
                    "emails", array_contains="participant_domains", order_by=[("id", ASC)]
                ),
                index("emails", ("id", "ASC"), ("participant_domains", "CONTAINS")),
                id="array-contains after the order-by",
            ),
        ],
    )
    def test_same_fields_in_the_wrong_arrangement_do_not_serve(
        self, shape: QueryShape, candidate: Index
    ) -> None:
        assert names_only_check(shape, candidate)  # a names-only check would accept it
        assert find_serving_index(shape, [candidate]) is None

    def test_missing_equality_field_does_not_serve(self) -> None:
        partial = index("proposals", ("status", "ASC"), ("sort_key", "DESC"))
        # Every field of the index is in the query...
        assert {f.field_path for f in partial.fields} <= BY_BOTH.fields()
        assert find_serving_index(BY_BOTH, [partial]) is None

    def test_extra_field_does_not_serve(self) -> None:
        wider = index("proposals", ("investor_id", "ASC"), ("status", "ASC"), ("sort_key", "DESC"))
        # ...or every field of the query is in the index: neither is enough.
        assert BY_STATUS.fields() <= {f.field_path for f in wider.fields}
        assert find_serving_index(BY_STATUS, [wider]) is None
        trailing = index("proposals", ("status", "ASC"), ("sort_key", "DESC"), ("id", "DESC"))
        assert find_serving_index(BY_STATUS, [trailing]) is None

    def test_other_collection_or_scope_does_not_serve(self) -> None:
        fields = (IndexField("status", order=ASC), IndexField("sort_key", order=DESC))
        assert find_serving_index(BY_STATUS, [Index("audit", fields)]) is None
        group = Index("proposals", fields, query_scope="COLLECTION_GROUP")
        assert find_serving_index(BY_STATUS, [group]) is None

    def test_first_serving_index_is_returned(self) -> None:
        wrong = index("proposals", ("status", "ASC"), ("sort_key", "ASC"))
        right = index("proposals", ("status", "ASC"), ("sort_key", "DESC"))
        assert find_serving_index(BY_STATUS, [wrong, right]) == right


class TestIndexFileParsing:
    def test_parses_orders_array_configs_and_exemptions(self) -> None:
        document: dict[str, Any] = {
            "indexes": [
                {
                    "collectionGroup": "investors",
                    "queryScope": "COLLECTION",
                    "fields": [
                        {"fieldPath": "deleted", "order": "ASCENDING"},
                        {"fieldPath": "domains", "arrayConfig": "CONTAINS"},
                    ],
                }
            ],
            "fieldOverrides": [
                {"collectionGroup": "emails", "fieldPath": "body", "indexes": []},
                {
                    "collectionGroup": "emails",
                    "fieldPath": "kept",
                    "indexes": [{"order": "ASCENDING", "queryScope": "COLLECTION"}],
                },
            ],
        }
        [parsed] = parse_indexes(document)
        assert parsed == index("investors", ("deleted", "ASC"), ("domains", "CONTAINS"))
        assert parsed.to_json() == document["indexes"][0]
        assert parse_exemptions(document) == {("emails", "body")}

    def test_a_field_is_either_ordered_or_array_contains(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            IndexField("x", order=ASC, array_config="CONTAINS")
        with pytest.raises(ValueError, match="exactly one"):
            IndexField("x")

    def test_the_project_file_loads(self) -> None:
        assert load_indexes()  # the committed file parses; coverage is the contract suite's job


class TestCoverageReport:
    def test_reports_missing_unused_reserved_and_exempt(self) -> None:
        served = index("proposals", ("status", "ASC"), ("sort_key", "DESC"))
        stale = index("audit", ("target", "ASC"), ("sort_key", "DESC"))
        reserved = index("audit", ("actor", "ASC"), ("sort_key", "DESC"))
        on_body = QueryShape.of("emails", equality=["body"])
        shapes = [BY_STATUS, BY_BOTH, QueryShape.of("users", equality=["email"]), on_body]

        report = check_coverage(
            shapes,
            [served, stale, reserved],
            reserved=[reserved],
            exempt_fields=[("emails", "body")],
        )
        assert report.missing == [BY_BOTH]
        assert report.unused == [stale]
        assert report.on_exempt_fields == [on_body]
        assert not report.ok
        text = report.describe()
        assert "investor_id ==; status ==; order by sort_key DESCENDING" in text
        assert "audit(target ASCENDING, sort_key DESCENDING)" in text

    def test_all_good(self) -> None:
        served = index("proposals", ("status", "ASC"), ("sort_key", "DESC"))
        assert check_coverage([BY_STATUS], [served]).ok


def test_recorder_counts_shapes() -> None:
    recorder = QueryRecorder()
    recorder.record(BY_STATUS)
    recorder.record(
        QueryShape.of("proposals", equality=["status"], order_by=[("sort_key", "DESCENDING")])
    )
    recorder.record(BY_BOTH)
    assert recorder.shapes == {BY_STATUS, BY_BOTH}
    assert recorder.counts[BY_STATUS] == 2
