"""The Firestore Store's documents: collections, conversions and declarative queries."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from pydantic import BaseModel

from shared.adapters.firestore.indexes import Direction, QueryShape
from shared.domain import search
from shared.domain.activity import ActivityHit
from shared.domain.activity_keys import (
    activity_fields,
    email_search_words,
    facet_token,
)
from shared.domain.models import (
    AuditEntry,
    Email,
    Guard,
    Role,
)
from shared.domain.models import Direction as ActivityDirection

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

USERS = "users"
EMAIL_ACCOUNTS = "email_accounts"
ORGANIZATIONS = "organizations"
INVESTORS = "investors"
CONTACTS = "contacts"
EMAILS = "emails"
SIGHTINGS = "email_account_messages"
LINKS = "email_investor_links"
PROPOSALS = "proposals"
ACTIVITIES = "activities"
APP_SETTINGS = "app_settings"
GUARDS = "guards"
AUDIT = "audit"
CAPTURE_PROBLEMS = "capture_problems"
CONTRIBUTIONS = "relationship_contributions"
RELATIONSHIP_SCORES = "relationship_scores"

# Firestore's documented limit on disjunctions (array-contains-any / in values) per query.
MAX_DISJUNCTIONS = 30
# Fields written next to the model that the model itself does not have.
_STORAGE_ONLY = frozenset(
    {
        "sort_key",
        "matched_key",
        "activity_key",
        "activity_direction",
        "activity_facets",
        "search_words",
        # the admin lists' keys (shared.domain.listing_keys)
        "listing_name",
        "last_contact_key",
        "email_domains",
    }
)
# The team's addresses (mailboxes and aliases of non-deleted mailboxes), kept in one document
# that every transaction writing a listed email reads: production then serialises a mailbox
# being added with mail being written, and reading one document is cheaper than the mailboxes.
_OWN_ADDRESSES = "~own_addresses"
_ALL_FACETS = facet_token(None, None, None)
# Free-form ``dict[str, Any]`` fields are stored in their JSON form, as SQLite stores them, so
# both stores hand back the same values (a datetime inside ``details`` comes back as text).
_JSON_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    AuditEntry: ("details",),
    Guard: ("data",),
}
# Setting keys that are safe document ids are used as they are; anything else is hashed behind a
# "~", a character the safe form cannot contain, so the two forms never collide.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.:@+=-]{1,200}$")
# The bootstrap sentinel lives among the settings under an id no setting key can map to.
_BOOTSTRAP_SENTINEL = "~bootstrap_admin"


# -- conversions ------------------------------------------------------------------------------


def _to_store(value: Any) -> Any:
    """Python values Firestore encodes without surprises: enums as their values, lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _to_store(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_to_store(v) for v in value]
    return value


def _from_store(value: Any) -> Any:
    """Plain Python values from a snapshot: ``DatetimeWithNanoseconds`` becomes ``datetime``."""
    if isinstance(value, datetime):
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo or UTC,
        )
    if isinstance(value, Mapping):
        return {k: _from_store(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_store(v) for v in value]
    return value


def _document(model: BaseModel, **storage_only: Any) -> dict[str, Any]:
    """The document written for a model (plus storage-only fields)."""
    data: dict[str, Any] = _to_store(model.model_dump(mode="python"))
    json_fields = _JSON_FIELDS.get(type(model), ())
    if json_fields:
        as_json = model.model_dump(mode="json", include=set(json_fields))
        data.update(as_json)
    if isinstance(model, Email):
        if "activity_key" not in storage_only:
            # Every email document carries the panel's fields: see email_document.
            raise TypeError("write an email's document with email_document()")
        data["matched_key"] = model.matched_key
    data.update(storage_only)
    return data


def email_document(email: Email, own_addresses: Container[str]) -> dict[str, Any]:
    """An email's document: the model, ``matched_key``, and the panel's fields
    (``activity_keys.activity_fields``), on every email so every queried field is present:
    ``activity_key`` (the order and the paging key), ``activity_direction`` ("" when not
    listed), ``activity_facets`` (a token per filter combination; empty when not listed) and
    ``search_words`` (2..15-character word prefixes; empty when not listed). Every email write
    goes through here; public so the benchmark writes exactly what the store writes."""
    fields = activity_fields(email, own_addresses)
    return _document(
        email,
        activity_key=fields.key,
        activity_direction=fields.direction.value if fields.listed else "",
        activity_facets=list(fields.facets),
        search_words=fields.prefixes,
    )


def _model(cls: type[M], data: Mapping[str, Any]) -> M:
    """The model read back from a document, storage-only fields dropped."""
    fields = {k: _from_store(v) for k, v in data.items() if k not in _STORAGE_ONLY}
    return cls.model_validate(fields)


def _snapshot_model(cls: type[M], snapshot: firestore.DocumentSnapshot) -> M | None:
    data = snapshot.to_dict() if snapshot.exists else None
    return _model(cls, data) if data is not None else None


def _valid_document_id(value: str) -> bool:
    """Whether ``value`` can name a document (FACTS.md): lookups of anything else find nothing."""
    return (
        bool(value)
        and "/" not in value
        and value not in {".", ".."}
        and not (value.startswith("__") and value.endswith("__"))
        and len(value.encode("utf-8")) <= 1500
    )


def _setting_document_id(key: str) -> str:
    if _SAFE_KEY.match(key):
        return key
    return "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _json_value(value: Any) -> Any:
    """A setting value as the SQLite store keeps it (through JSON): same types back from both.

    Raises TypeError for values JSON cannot hold, like the SQLite store.
    """
    return json.loads(json.dumps(value))


def _caused_by_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` or anything it was raised from/during is a Conflict (AlreadyExists)."""
    current: BaseException | None = exc
    visited: set[int] = set()
    while current is not None and id(current) not in visited:
        if isinstance(current, google_exceptions.Conflict):
            return True
        visited.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _chunks(values: Sequence[T], size: int) -> list[Sequence[T]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


# -- queries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """One query, declaratively: equality filters, at most one array-contains-any, at most one
    range filter, order-bys, a limit. Its :meth:`shape` is what the index check sees."""

    collection: str
    equals: tuple[tuple[str, Any], ...] = ()
    contains_any: tuple[str, tuple[Any, ...]] | None = None
    # ``field in (values)``: an equality filter for the index rule, at most 30 values.
    one_of: tuple[str, tuple[Any, ...]] | None = None
    range: tuple[str, str, Any] | None = None
    # A second bound on the range's own field (``a < f <= b``): still one inequality field.
    upper: tuple[str, str, Any] | None = None
    order_by: tuple[tuple[str, Direction], ...] = ()
    limit: int | None = None

    def __post_init__(self) -> None:
        # The emulator answers "== None" with every document and cannot filter nested fields;
        # production has neither problem, but one code path for both is the point.
        for name, value in self.equals:
            if value is None:
                raise ValueError(f"{self.collection}.{name} == None: store a sentinel instead")
        for name in self._fields():
            if "." in name or name.startswith("__"):
                raise ValueError(f"{self.collection}: filter/order on {name!r} is not portable")
        if self.contains_any is not None and not (
            0 < len(self.contains_any[1]) <= MAX_DISJUNCTIONS
        ):
            raise ValueError(f"array_contains_any takes 1..{MAX_DISJUNCTIONS} values")
        if self.one_of is not None and not (0 < len(self.one_of[1]) <= MAX_DISJUNCTIONS):
            raise ValueError(f"in takes 1..{MAX_DISJUNCTIONS} values")
        if self.upper is not None and (self.range is None or self.upper[0] != self.range[0]):
            raise ValueError("an upper bound must be on the range's own field")
        if self.upper is not None and self.upper[1] not in {"<", "<="}:
            raise ValueError(f"unsupported upper bound operator {self.upper[1]!r}")
        if self.range is not None and self.range[1] not in {"<", "<=", ">", ">="}:
            raise ValueError(f"unsupported range operator {self.range[1]!r}")

    def _fields(self) -> list[str]:
        names = [name for name, _ in self.equals] + [name for name, _ in self.order_by]
        if self.contains_any:
            names.append(self.contains_any[0])
        if self.one_of:
            names.append(self.one_of[0])
        if self.range:
            names.append(self.range[0])
        return names

    def shape(self) -> QueryShape:
        return QueryShape.of(
            self.collection,
            equality=[name for name, _ in self.equals] + ([self.one_of[0]] if self.one_of else []),
            array_contains=self.contains_any[0] if self.contains_any else None,
            inequality=(self.range[0],) if self.range else (),
            order_by=self.order_by,
        )


_ACTIVITY_FIELDS = ("activity_key", "activity_direction", "activity_facets", "search_words")


def _activity_hit(data: Mapping[str, Any], facet: str, words: Sequence[str]) -> ActivityHit | None:
    """The hit an email document makes for the panel's query, or None: the checks the
    query's single ``array_contains`` did not make (the facet, every word; words over 15
    characters against the text itself, the index holding 15-character prefixes)."""
    if facet not in data.get("activity_facets", ()):
        return None
    prefixes = set(data.get("search_words", ()))
    if any(search.index_term(word) not in prefixes for word in words):
        return None
    email = _model(Email, data)
    long_words = [word for word in words if len(word) > search.MAX_PREFIX]
    if long_words and not search.matches(long_words, email_search_words(email)):
        return None
    return ActivityHit(email, ActivityDirection(data["activity_direction"]))


_ACTIVE_ADMINS = _Query(USERS, equals=(("role", Role.ADMIN.value), ("is_active", True)))


def _by_email(address: str, *, limit: int | None = 1) -> _Query:
    return _Query(USERS, equals=(("email", address),), limit=limit)


def _sightings_of(email_id: str) -> _Query:
    return _Query(SIGHTINGS, equals=(("email_id", email_id),))


def _links_of(email_id: str) -> _Query:
    return _Query(LINKS, equals=(("email_id", email_id),))
