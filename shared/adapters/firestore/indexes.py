"""Which Firestore index serves a query: Firestore's rule, written down so a test can check it.

Production Firestore refuses a query that no index serves (``FAILED_PRECONDITION``, "The query
requires an index"); the emulator runs any query (FACTS.md, Firestore), so a missing index would
only show up after deployment. The Firestore adapter therefore describes every query it issues as
a :class:`QueryShape` and reports it to a :class:`QueryRecorder`; the contract suite replays the
recorded shapes against ``infra/firestore.indexes.json`` with :func:`find_serving_index`.

The rule (Firestore's index documentation, as the service uses it):

* Single-field indexes, which Firestore keeps for every field automatically, suffice for: no
  filter and at most one order-by; equality filters only and no order-by (Firestore merges the
  single-field indexes, "index merging"); one array-contains filter alone; filters and order-by on
  one and the same field.
* Anything else needs a composite index: equality plus a range or order on another field, several
  order-bys, array-contains with any other filter, a range on one field and an order on another.
* A composite index serves a query when its fields are, in this order: the equality fields (in
  any order, any direction) together with the array-contains field (as ``CONTAINS``), then the
  range field, then the order-by fields in the query's order and direction. A range field that is
  not explicitly ordered is implicitly the first order-by, ascending. An order-by on a field that
  also has an equality filter is a no-op and is dropped.

This module is pure (no google imports): the unit tests and the deploy tool load it cheaply.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_INDEX_FILE = Path(__file__).resolve().parents[3] / "infra" / "firestore.indexes.json"


class Direction(StrEnum):
    """Sort direction, spelled as in ``firestore.indexes.json`` and the Firestore API."""

    ASCENDING = "ASCENDING"
    DESCENDING = "DESCENDING"


@dataclass(frozen=True)
class QueryShape:
    """What a query looks like to the index planner: which fields it filters and orders on.

    Values do not matter for indexing, only fields and operators: ``status == "approved"`` and
    ``status == "rejected"`` have the same shape, and so have ``array-contains`` and
    ``array-contains-any`` (both are served by a ``CONTAINS`` index entry).
    """

    collection: str
    equality: frozenset[str] = frozenset()
    array_contains: str | None = None
    inequality: tuple[str, ...] = ()
    order_by: tuple[tuple[str, Direction], ...] = ()

    @classmethod
    def of(
        cls,
        collection: str,
        *,
        equality: Iterable[str] = (),
        array_contains: str | None = None,
        inequality: Iterable[str] = (),
        order_by: Iterable[tuple[str, Direction | str]] = (),
    ) -> QueryShape:
        """Build a shape from plain iterables (directions may be given as strings)."""
        return cls(
            collection=collection,
            equality=frozenset(equality),
            array_contains=array_contains,
            inequality=tuple(dict.fromkeys(inequality)),
            order_by=tuple((name, Direction(direction)) for name, direction in order_by),
        )

    def effective_order(self) -> tuple[tuple[str, Direction], ...]:
        """The order the index must provide after the equality/array-contains prefix.

        Range fields that are not explicitly ordered come first, ascending (Firestore orders by
        them implicitly); order-bys on equality fields are dropped (they cannot change the
        order of results that all share one value).
        """
        explicit = [(name, d) for name, d in self.order_by if name not in self.equality]
        ordered = {name for name, _ in explicit}
        implicit = [(name, Direction.ASCENDING) for name in self.inequality if name not in ordered]
        return (*implicit, *explicit)

    def fields(self) -> set[str]:
        """Every field the query filters or orders on."""
        names = set(self.equality) | set(self.inequality) | {name for name, _ in self.order_by}
        if self.array_contains:
            names.add(self.array_contains)
        return names

    def describe(self) -> str:
        """Human-readable form for failure messages."""
        parts = [f"{name} ==" for name in sorted(self.equality)]
        if self.array_contains:
            parts.append(f"{self.array_contains} array-contains")
        parts += [f"{name} range" for name in self.inequality]
        if self.order_by:
            parts.append("order by " + ", ".join(f"{name} {d.value}" for name, d in self.order_by))
        return f"{self.collection}: " + ("; ".join(parts) if parts else "(all documents)")


@dataclass(frozen=True)
class IndexField:
    """One field of a composite index: ordered (``order``) or array-contains (``array_config``)."""

    field_path: str
    order: Direction | None = None
    array_config: str | None = None

    def __post_init__(self) -> None:
        if (self.order is None) == (self.array_config is None):
            raise ValueError(f"index field {self.field_path!r}: exactly one of order/arrayConfig")
        if self.array_config not in (None, "CONTAINS"):
            raise ValueError(f"index field {self.field_path!r}: arrayConfig must be CONTAINS")

    def describe(self) -> str:
        return f"{self.field_path} {self.order.value if self.order else 'CONTAINS'}"


@dataclass(frozen=True)
class Index:
    """A composite index as declared in ``firestore.indexes.json``."""

    collection_group: str
    fields: tuple[IndexField, ...]
    query_scope: str = "COLLECTION"

    def describe(self) -> str:
        return f"{self.collection_group}({', '.join(f.describe() for f in self.fields)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "collectionGroup": self.collection_group,
            "queryScope": self.query_scope,
            "fields": [
                {"fieldPath": f.field_path, "order": f.order.value}
                if f.order
                else {"fieldPath": f.field_path, "arrayConfig": f.array_config}
                for f in self.fields
            ],
        }


def parse_indexes(document: Mapping[str, Any]) -> list[Index]:
    """The composite indexes of a parsed ``firestore.indexes.json`` document."""
    indexes = []
    for entry in document.get("indexes", []):
        fields = tuple(
            IndexField(
                field_path=f["fieldPath"],
                order=Direction(f["order"]) if "order" in f else None,
                array_config=f.get("arrayConfig"),
            )
            for f in entry["fields"]
        )
        indexes.append(
            Index(
                collection_group=entry["collectionGroup"],
                fields=fields,
                query_scope=entry.get("queryScope", "COLLECTION"),
            )
        )
    return indexes


def parse_exemptions(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(collection, field)`` pairs whose single-field indexes are switched off.

    A ``fieldOverrides`` entry with ``"indexes": []`` exempts a field (large text such as an
    email body, which no query touches) from indexing: no query may then filter or order on it.
    """
    return {
        (entry["collectionGroup"], entry["fieldPath"])
        for entry in document.get("fieldOverrides", [])
        if entry.get("indexes") == []
    }


def load_indexes(path: Path = DEFAULT_INDEX_FILE) -> list[Index]:
    """Read and parse an index file (default: ``infra/firestore.indexes.json``)."""
    return parse_indexes(json.loads(path.read_text(encoding="utf-8")))


def load_exemptions(path: Path = DEFAULT_INDEX_FILE) -> set[tuple[str, str]]:
    """The single-field exemptions of an index file."""
    return parse_exemptions(json.loads(path.read_text(encoding="utf-8")))


def needs_composite_index(shape: QueryShape) -> bool:
    """Whether Firestore's automatic single-field indexes cannot serve this query."""
    order = shape.effective_order()
    has_filters = bool(shape.equality or shape.array_contains or shape.inequality)
    if not has_filters:
        return len(order) > 1
    if shape.array_contains:
        # array-contains alone is served by the field's array index; with anything else, not.
        return bool(shape.equality or shape.inequality or order)
    if shape.equality:
        # Equality on any number of fields: merged single-field indexes, but only while there
        # is nothing else to order by or range over.
        return bool(shape.inequality or order)
    # Range filters only: fine on one field, ordered (if at all) by that same field.
    fields = {name for name, _ in order} | set(shape.inequality)
    return len(fields) > 1 or len(order) > 1


def index_serves(index: Index, shape: QueryShape) -> bool:
    """Whether this composite index serves the query, by the rule in the module docstring."""
    if index.collection_group != shape.collection or index.query_scope != "COLLECTION":
        return False
    prefix_size = len(shape.equality) + (1 if shape.array_contains else 0)
    if len(index.fields) < prefix_size:
        return False
    prefix, suffix = index.fields[:prefix_size], index.fields[prefix_size:]

    wanted_prefix: dict[str, str] = {name: "ORDERED" for name in shape.equality}
    if shape.array_contains:
        wanted_prefix[shape.array_contains] = "CONTAINS"
    got_prefix = {f.field_path: ("CONTAINS" if f.array_config else "ORDERED") for f in prefix}
    if got_prefix != wanted_prefix or len(prefix) != len(got_prefix):
        return False

    wanted_suffix = shape.effective_order()
    got_suffix = tuple((f.field_path, f.order) for f in suffix)
    return got_suffix == wanted_suffix


def find_serving_index(shape: QueryShape, indexes: Sequence[Index]) -> Index | None:
    """The first declared composite index that serves ``shape``, if any."""
    for index in indexes:
        if index_serves(index, shape):
            return index
    return None


@dataclass
class QueryRecorder:
    """Collects the shapes a store issues (thread-safe); tests compare them with the index file."""

    counts: Counter[QueryShape] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, shape: QueryShape) -> None:
        with self._lock:
            self.counts[shape] += 1

    @property
    def shapes(self) -> set[QueryShape]:
        with self._lock:
            return set(self.counts)


@dataclass(frozen=True)
class CoverageReport:
    """Result of checking recorded shapes against declared indexes."""

    missing: list[QueryShape]
    unused: list[Index]
    on_exempt_fields: list[QueryShape] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unused and not self.on_exempt_fields

    def describe(self) -> str:
        """Every problem, one per line, for an assertion message."""
        lines = [f"no declared index serves: {shape.describe()}" for shape in self.missing]
        lines += [f"declared index never used (stale): {index.describe()}" for index in self.unused]
        lines += [
            f"query touches a field exempted from indexing: {shape.describe()}"
            for shape in self.on_exempt_fields
        ]
        return "\n".join(lines)


def check_coverage(
    shapes: Iterable[QueryShape],
    indexes: Sequence[Index],
    *,
    reserved: Iterable[Index] = (),
    exempt_fields: Iterable[tuple[str, str]] = (),
) -> CoverageReport:
    """Shapes that need an index none declares, declared indexes no shape uses, and shapes that
    filter or order on a field exempted from indexing.

    ``reserved`` indexes are declared on purpose ahead of the code that will use them and are not
    reported as unused.
    """
    missing: list[QueryShape] = []
    on_exempt: list[QueryShape] = []
    used: set[Index] = set()
    exempt = set(exempt_fields)
    for shape in sorted(set(shapes), key=QueryShape.describe):
        if any((shape.collection, name) in exempt for name in shape.fields()):
            on_exempt.append(shape)
        if not needs_composite_index(shape):
            continue
        serving = find_serving_index(shape, indexes)
        if serving is None:
            missing.append(shape)
        else:
            used.add(serving)
    reserved_set = set(reserved)
    unused = [index for index in indexes if index not in used and index not in reserved_set]
    return CoverageReport(missing=missing, unused=unused, on_exempt_fields=on_exempt)
