"""The Store on Firestore (native mode): the scale-out adapter used by the Cloud Functions.

Documents. One collection per record type (``users``, ``email_accounts``, ``organizations``,
``investors``, ``contacts``, ``emails``, ``email_account_messages`` (sightings),
``email_investor_links``, ``proposals``, ``activities``, ``app_settings``, ``guards``, ``audit``);
the document id is the model's id, which is deterministic wherever a retry must land on the same
key (``user_id_for``, ``account_id_for``, ``sighting_id_for``, ``link_id_for``,
``proposal_id_for``). A document is the model's ``model_dump(mode="python")``: datetimes stay
native timestamps, enums are stored as their string values, nested models (the mailbox's sync
state, an email's address headers) are maps. The only storage-only field is ``sort_key`` on
proposals and audit entries: a fixed-width ``<UTC time>|<id>`` string, unique and totally
ordered, that listings page on. Every field a query filters or orders on is top-level and always
present with one type (``deleted: false``, never a missing field): Firestore leaves documents that
lack an ordered field out of the result, and cannot filter on ``== null`` through this emulator.

Queries. Every query is built by :meth:`FirestoreStore._query` from a small declarative
:class:`_Query` and reported, as a :class:`QueryShape`, to the optional recorder first; the
contract suite checks each recorded shape against ``infra/firestore.indexes.json`` by Firestore's
index rule (``shared.adapters.firestore_indexes``), because the emulator runs any query while
production refuses one without an index. No cursors and no offsets (the emulator ignores both):
listings page with a ``sort_key < last`` filter. No ``== None``, nested-field, ``__name__`` or
collection-group filters (the emulator gets them wrong or cannot run them).
``array_contains_any`` takes at most 30 values, so lookups by many addresses are chunked.

Transactions. Every read-modify-write runs in ``@firestore.transactional`` with all reads before
the first write (writes are buffered until commit). Production Firestore locks what a
transaction reads, documents returned by queries included, until commit, and retries the
function on contention; the emulator never rejects a conflicting transaction, so the interleaving
tests run on SQLite instead. No field transforms (``ArrayUnion``, ``Increment``,
``SERVER_TIMESTAMP``): the emulator mishandles them, and computing the value inside the
transaction is what makes the rules (history id only grows, last admin stays) enforceable anyway.

An email's denormalised fields (``matched``, ``matched_at``, ``investor_ids``,
``live_account_ids``) are recomputed from its sightings and links inside every transaction that
changes either. Every such transaction reads the email document first and sightings/links can only
be written for an existing email, so the email document is the lock that serialises them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar, cast

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from pydantic import BaseModel

from shared.adapters.firestore_indexes import Direction, QueryRecorder, QueryShape
from shared.domain import search
from shared.domain.activity import READ_BUDGET_FACTOR, ActivityHit, ActivityHits, ActivityQuery
from shared.domain.activity_keys import (
    activity_fields,
    activity_page_key,
    email_search_words,
    facet_token,
    is_listed,
)
from shared.domain.addresses import canonical_address
from shared.domain.models import (
    Activity,
    AuditEntry,
    CaptureProblem,
    Contact,
    Email,
    EmailAccount,
    Guard,
    Investor,
    InvestorLink,
    Organization,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    Sighting,
    SyncState,
    User,
    account_id_for,
    normalize_address,
    normalize_domain,
    sighting_id_for,
    user_id_for,
    utcnow,
)
from shared.domain.models import Direction as ActivityDirection
from shared.domain.paging import (
    check_limit,
    check_purge_limit,
    encode_page_token,
    matched_window_keys,
    proposal_window_keys,
)
from shared.errors import ConflictError, NotFoundError, RetryableError
from shared.ports import Decision, Page, SyncStateChange

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


class FirestoreStore:
    """Store adapter over a ``google.cloud.firestore.Client`` (production or the emulator).

    ``recorder`` receives the shape of every query before it runs (index coverage tests).
    """

    def __init__(self, client: firestore.Client, *, recorder: QueryRecorder | None = None) -> None:
        self._client = client
        self._recorder = recorder
        # Documents read (billed reads) per collection, for benchmarks: queries and gets made
        # through this adapter; get_all look-ups are counted too.
        self.reads: dict[str, int] = {}
        # Email documents read by query_activity alone (also in ``reads``): what its read
        # budget bounds; the panel's name look-ups show in ``reads`` under their collections.
        self.activity_email_reads = 0

    # -- plumbing -----------------------------------------------------------------------------

    def _ref(self, collection: str, document_id: str) -> firestore.DocumentReference:
        return self._client.collection(collection).document(document_id)

    def _query(
        self, spec: _Query, transaction: firestore.Transaction | None = None
    ) -> list[firestore.DocumentSnapshot]:
        """Run one query (inside ``transaction`` if given); the only place queries are built."""
        if self._recorder is not None:
            self._recorder.record(spec.shape())
        query: Any = self._client.collection(spec.collection)
        for name, value in spec.equals:
            query = query.where(filter=firestore.FieldFilter(name, "==", _to_store(value)))
        if spec.contains_any is not None:
            name, values = spec.contains_any
            query = query.where(
                filter=firestore.FieldFilter(name, "array_contains_any", list(values))
            )
        if spec.one_of is not None:
            name, values = spec.one_of
            query = query.where(filter=firestore.FieldFilter(name, "in", list(values)))
        for bound in (spec.range, spec.upper):
            if bound is not None:
                name, op, value = bound
                query = query.where(filter=firestore.FieldFilter(name, op, _to_store(value)))
        for name, direction in spec.order_by:
            query = query.order_by(name, direction=direction.value)
        if spec.limit is not None:
            query = query.limit(spec.limit)
        snapshots = list(query.stream(transaction=transaction))
        # Firestore bills a query at least one read, else one per document returned.
        self.reads[spec.collection] = self.reads.get(spec.collection, 0) + max(1, len(snapshots))
        return snapshots

    def _query_models(
        self, cls: type[M], spec: _Query, transaction: firestore.Transaction | None = None
    ) -> list[M]:
        return [_model(cls, snap.to_dict() or {}) for snap in self._query(spec, transaction)]

    def _get(
        self,
        cls: type[M],
        collection: str,
        document_id: str,
        transaction: firestore.Transaction | None = None,
    ) -> M | None:
        if not _valid_document_id(document_id):
            return None
        snapshot = self._ref(collection, document_id).get(transaction=transaction)
        self.reads[collection] = self.reads.get(collection, 0) + 1
        return _snapshot_model(cls, snapshot)

    def _exists(self, ref: firestore.DocumentReference, transaction: firestore.Transaction) -> bool:
        return bool(ref.get(transaction=transaction).exists)

    def _create(self, ref: firestore.DocumentReference, document: Mapping[str, Any]) -> bool:
        """Create-if-absent: the server refuses the write if the document exists."""
        try:
            ref.create(dict(document))
        except google_exceptions.Conflict:  # AlreadyExists is a Conflict (409)
            return False
        return True

    def _transact(self, body: Callable[[firestore.Transaction], T]) -> T:
        """Run ``body`` in a transaction, retried on contention by the client library.

        ``body`` must do every read before its first write. Its exceptions (ConflictError,
        NotFoundError) roll the transaction back and propagate unchanged.
        """

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> T:
            return body(transaction)

        try:
            return cast(T, run(self._client.transaction()))
        except ValueError as exc:
            # The library gives up with ValueError("Failed to commit transaction in 5 attempts.")
            # wrapping Aborted: contention, which a later retry of the request can get through.
            if isinstance(exc.__cause__, google_exceptions.Aborted):
                raise RetryableError("too much contention; try again") from exc
            raise

    def _transact_create(self, body: Callable[[firestore.Transaction], bool]) -> bool:
        """A transaction whose ``transaction.create`` may lose a race: then it did not create.

        The library rolls back after a failed commit, and if that rollback fails too, its error
        is the one raised, with the ALREADY_EXISTS only in ``__context__``: look along the chain.
        """
        try:
            return self._transact(body)
        except google_exceptions.GoogleAPICallError as exc:
            if _caused_by_conflict(exc):
                return False
            raise

    # -- users --------------------------------------------------------------------------------

    def add_user(self, user: User) -> bool:
        """Create-if-absent by id *and* by address (ids derive from the address via
        ``User.new``; the query covers a user created under some other id)."""
        ref = self._ref(USERS, user.id)

        def body(transaction: firestore.Transaction) -> bool:
            exists = self._exists(ref, transaction)
            same_address = self._query(_by_email(user.email), transaction)
            if exists or same_address:
                return False
            transaction.create(ref, _document(user))
            return True

        created = self._transact_create(body)
        if created:
            self._claim_mailbox(user.id, user.email)
        return created

    def _claim_mailbox(self, user_id: str, address: str) -> None:
        """The new user becomes the owner of the ownerless mailbox at their address.

        Its own transaction, after the user's create commits (a create goes alone, as in
        ``add_email_account``). No mailbox is left ownerless by a race: ``add_email_account``
        point-reads the user's document, so it is ordered either before the user's create (and
        this transaction then finds its mailbox) or after it (and it sets the owner itself)."""
        account_ref = self._ref(EMAIL_ACCOUNTS, account_id_for(address))

        def claim_mailbox(transaction: firestore.Transaction) -> None:
            account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_ref.id, transaction)
            user = self._get(User, USERS, user_id, transaction)
            if user is not None and account is not None and account.is_claimable():
                transaction.set(account_ref, _document(account.owned_by(user)))

        self._transact(claim_mailbox)

    def get_user(self, user_id: str) -> User | None:
        return self._get(User, USERS, user_id)

    def get_user_by_email(self, email: str) -> User | None:
        found = self._query_models(User, _by_email(email.strip().lower()))
        return found[0] if found else None

    def list_users(self, *, active_only: bool = False) -> list[User]:
        spec = _Query(USERS, equals=(("is_active", True),) if active_only else ())
        # A team's users: few enough to sort here rather than pay for an index.
        return sorted(self._query_models(User, spec), key=lambda u: (u.email, u.id))

    def list_active_admins(self) -> list[User]:
        return sorted(self._query_models(User, _ACTIVE_ADMINS), key=lambda u: (u.email, u.id))

    def change_user(
        self, user_id: str, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        """Reads the user and every active admin in the transaction: production locks all of
        them, so two admins demoting each other at once cannot both succeed."""
        if not _valid_document_id(user_id):
            raise NotFoundError("no such user", user_id=user_id)
        ref = self._ref(USERS, user_id)

        def body(transaction: firestore.Transaction) -> User:
            user = self._get(User, USERS, user_id, transaction)
            if user is None:
                raise NotFoundError("no such user", user_id=user_id)
            admins = self._query_models(User, _ACTIVE_ADMINS, transaction)
            others = sum(1 for admin in admins if admin.id != user_id)
            changed = user.with_role(
                role=role, is_active=is_active, other_active_admins=others, at=utcnow()
            )
            transaction.set(ref, _document(changed))
            return changed

        return self._transact(body)

    def bootstrap_admin(self, email: str, name: str = "") -> bool:
        """Create or promote an admin while none is active.

        "No active admin" is the absence of documents, and locking what a query did *not*
        return is not something to rely on; so every bootstrap also reads and writes one
        sentinel document, on which two concurrent bootstraps conflict in production.
        """
        address = normalize_address(email)
        sentinel = self._ref(APP_SETTINGS, _BOOTSTRAP_SENTINEL)

        def body(transaction: firestore.Transaction) -> bool:
            sentinel.get(transaction=transaction)
            admins = self._query(_ACTIVE_ADMINS, transaction)
            existing = self._query_models(User, _by_email(address), transaction)
            if admins:
                return False
            if existing:
                user = existing[0].model_copy(
                    update={"role": Role.ADMIN, "is_active": True, "updated_at": utcnow()}
                )
            else:
                user = User.new(address, name, Role.ADMIN)
            transaction.set(self._ref(USERS, user.id), _document(user))
            transaction.set(
                sentinel, {"user_id": user.id, "email": address, "bootstrapped_at": utcnow()}
            )
            return True

        return self._transact(body)

    # -- mailboxes ----------------------------------------------------------------------------

    def add_email_account(self, account: EmailAccount) -> bool:
        ref = self._ref(EMAIL_ACCOUNTS, account.id)
        by_address = _Query(EMAIL_ACCOUNTS, equals=(("address", account.address),), limit=1)

        def body(transaction: firestore.Transaction) -> bool:
            exists = self._exists(ref, transaction)
            same_address = self._query(by_address, transaction)
            owner = None
            if account.user_id is None and not account.deleted:
                # A point read of the user at its address: see _claim_mailbox for the race.
                owner = self._get(User, USERS, user_id_for(account.address), transaction)
            if exists or same_address:
                return False
            transaction.create(ref, _document(account.owned_by(owner) if owner else account))
            return True

        created = self._transact_create(body)
        if created:
            # Its own commit: a create goes alone (a failed create's commit is not atomic on
            # the emulator). Mail written meanwhile is re-derived by refresh_activity_direction.
            self._rebuild_own_addresses()
        return created

    def get_email_account(self, account_id: str) -> EmailAccount | None:
        return self._get(EmailAccount, EMAIL_ACCOUNTS, account_id)

    def get_email_account_by_address(self, address: str) -> EmailAccount | None:
        spec = _Query(EMAIL_ACCOUNTS, equals=(("address", address.strip().lower()),), limit=1)
        found = self._query_models(EmailAccount, spec)
        return found[0] if found else None

    def list_email_accounts(self, *, include_deleted: bool = False) -> list[EmailAccount]:
        spec = _Query(EMAIL_ACCOUNTS, equals=() if include_deleted else (("deleted", False),))
        return sorted(self._query_models(EmailAccount, spec), key=lambda a: (a.address, a.id))

    def _modify_account(
        self, account_id: str, change: Callable[[EmailAccount], EmailAccount]
    ) -> EmailAccount:
        if not _valid_document_id(account_id):
            raise NotFoundError("no such mailbox", account_id=account_id)
        ref = self._ref(EMAIL_ACCOUNTS, account_id)

        def body(transaction: firestore.Transaction) -> EmailAccount:
            account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_id, transaction)
            if account is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            changed = change(account)
            own = None
            if (changed.addresses(), changed.deleted) != (account.addresses(), account.deleted):
                own = self._team_addresses(transaction, changed)
            transaction.set(ref, _document(changed))
            if own is not None:
                transaction.set(self._ref(APP_SETTINGS, _OWN_ADDRESSES), {"addresses": own})
            return changed

        return self._transact(body)

    # The team's addresses (direction): one document, see _OWN_ADDRESSES.

    def _team_addresses(
        self, transaction: firestore.Transaction, changed: EmailAccount | None = None
    ) -> list[str]:
        """The addresses of the non-deleted mailboxes as the transaction reads them, with
        ``changed`` standing for its stored version."""
        accounts = {
            a.id: a
            for a in self._query_models(
                EmailAccount, _Query(EMAIL_ACCOUNTS, equals=(("deleted", False),)), transaction
            )
        }
        if changed is not None:
            accounts[changed.id] = changed
        return sorted({x for a in accounts.values() if not a.deleted for x in a.addresses()})

    def _own_addresses(self, transaction: firestore.Transaction) -> frozenset[str]:
        """The team's addresses, read in the transaction (from the mailboxes themselves while
        the document does not exist yet: a database from before it)."""
        snapshot = self._ref(APP_SETTINGS, _OWN_ADDRESSES).get(transaction=transaction)
        self.reads[APP_SETTINGS] = self.reads.get(APP_SETTINGS, 0) + 1
        data = snapshot.to_dict() if snapshot.exists else None
        if data is None:
            return frozenset(self._team_addresses(transaction))
        return frozenset(data.get("addresses", []))

    def _rebuild_own_addresses(self) -> None:
        ref = self._ref(APP_SETTINGS, _OWN_ADDRESSES)

        def body(transaction: firestore.Transaction) -> None:
            snapshot = ref.get(transaction=transaction)
            addresses = self._team_addresses(transaction)
            stored = snapshot.to_dict() if snapshot.exists else None
            if stored != {"addresses": addresses}:
                transaction.set(ref, {"addresses": addresses})

        self._transact(body)

    def _email_document(self, email: Email, transaction: firestore.Transaction) -> dict[str, Any]:
        """The email's document (``email_document``); reads the team's addresses in the
        transaction, for listed mail only, so call it before the transaction's first write."""
        own = self._own_addresses(transaction) if is_listed(email) else frozenset()
        return email_document(email, own)

    def set_email_account_paused(
        self, account_id: str, paused: bool, *, reason: PauseReason = PauseReason.ADMIN
    ) -> EmailAccount:
        return self._modify_account(account_id, lambda a: a.with_pause(paused, reason))

    def set_email_account_owner(self, account_id: str, owner_email: str = "") -> EmailAccount:
        if not _valid_document_id(account_id):
            raise NotFoundError("no such mailbox", account_id=account_id)
        ref = self._ref(EMAIL_ACCOUNTS, account_id)
        named = normalize_address(owner_email) if owner_email.strip() else ""

        def set_owner(transaction: firestore.Transaction) -> EmailAccount:
            account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_id, transaction)
            if account is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            owner = self._get(User, USERS, user_id_for(named or account.address), transaction)
            if owner is None and named:
                raise NotFoundError("no user with this address", email=named)
            changed = account.owned_by(owner)
            transaction.set(ref, _document(changed))
            return changed

        return self._transact(set_owner)

    def offboard_email_account(self, account_id: str) -> EmailAccount:
        return self._modify_account(account_id, lambda a: a.offboarded(utcnow()))

    def soft_delete_account_sightings(self, account_id: str, *, limit: int = 100) -> int:
        """One transaction per page: the page's live sightings, then each affected email and
        its sightings and links (every read before the first write), then at most ``limit``
        sighting writes and as many email writes: under Firestore's 500 writes per commit."""
        check_purge_limit(limit)
        spec = _Query(
            SIGHTINGS, equals=(("account_id", account_id), ("deleted", False)), limit=limit
        )

        def body(transaction: firestore.Transaction) -> int:
            sightings = self._query_models(Sighting, spec, transaction)
            emails: dict[str, tuple[Email, list[Sighting], list[InvestorLink]]] = {}
            for email_id in sorted({s.email_id for s in sightings}):
                email = self._get(Email, EMAILS, email_id, transaction)
                if email is not None:
                    emails[email_id] = (email, *self._email_sources(email_id, transaction))
            now = utcnow()
            gone = {
                s.id: s.model_copy(update={"deleted": True, "deleted_at": now}) for s in sightings
            }
            refreshed_emails = []
            for email, its_sightings, links in emails.values():
                current = [gone.get(s.id, s) for s in its_sightings]
                refreshed = self._denormalised(email, current, links)
                if self._denormalised_changed(email, refreshed):
                    refreshed_emails.append(refreshed)
            # The panel's fields need the team's addresses for mail still listed: one read,
            # before the first write.
            listed = any(is_listed(e) for e in refreshed_emails)
            own = self._own_addresses(transaction) if listed else frozenset()
            for sighting in gone.values():
                transaction.set(self._ref(SIGHTINGS, sighting.id), _document(sighting))
            for refreshed in refreshed_emails:
                transaction.set(self._ref(EMAILS, refreshed.id), email_document(refreshed, own))
            return len(gone)

        return self._transact(body)

    def update_sync_state(self, account_id: str, change: SyncStateChange) -> SyncState:
        """The history id is ``max(stored, given)`` computed from the value read in the same
        transaction, so a slow run finishing late can never move the cursor back."""
        account = self._modify_account(account_id, lambda a: a.with_sync_change(change))
        return account.sync

    def _refuse_offboarded(self, account_id: str, transaction: firestore.Transaction) -> None:
        """No sighting is written for, or restored in, an offboarded mailbox: the mailbox is
        read in the caller's transaction, so an offboarding that commits first is seen."""
        account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_id, transaction)
        if account is not None:
            account.refuse_offboarded()

    def own_addresses(self) -> set[str]:
        return {
            address for account in self.list_email_accounts() for address in account.addresses()
        }

    # -- CRM records --------------------------------------------------------------------------

    def upsert_organization(self, organization: Organization) -> None:
        self._ref(ORGANIZATIONS, organization.id).set(_document(organization))

    def upsert_investor(self, investor: Investor) -> None:
        investor = investor.revalidated()
        self._ref(INVESTORS, investor.id).set(_document(investor))

    def upsert_contact(self, contact: Contact) -> None:
        contact = contact.revalidated()
        self._ref(CONTACTS, contact.id).set(_document(contact))

    def get_organization(self, organization_id: str) -> Organization | None:
        return self._get(Organization, ORGANIZATIONS, organization_id)

    def get_investor(self, investor_id: str) -> Investor | None:
        return self._get(Investor, INVESTORS, investor_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._get(Contact, CONTACTS, contact_id)

    def _find_live(
        self, cls: type[M], collection: str, array_field: str, keys: Iterable[str]
    ) -> list[M]:
        """Live (``deleted == false``) records whose ``array_field`` holds any key, by id.

        One query per 30 keys (Firestore's disjunction limit), merged: a record matching keys
        of two chunks comes back twice and is kept once.
        """
        wanted = sorted(set(keys))
        found: dict[str, M] = {}
        for chunk in _chunks(wanted, MAX_DISJUNCTIONS):
            spec = _Query(
                collection,
                equals=(("deleted", False),),
                contains_any=(array_field, tuple(chunk)),
            )
            for snapshot in self._query(spec):
                # The document id is the record's id, so it deduplicates across chunks.
                found[snapshot.id] = _model(cls, snapshot.to_dict() or {})
        return [found[key] for key in sorted(found)]

    def find_contacts_by_addresses(self, addresses: Iterable[str]) -> list[Contact]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_live(Contact, CONTACTS, "email_keys", keys)

    def find_investors_by_addresses(self, addresses: Iterable[str]) -> list[Investor]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_live(Investor, INVESTORS, "email_keys", keys)

    def find_organizations_by_domains(self, domains: Iterable[str]) -> list[Organization]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_live(Organization, ORGANIZATIONS, "domains", keys)

    def find_investors_by_domains(self, domains: Iterable[str]) -> list[Investor]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_live(Investor, INVESTORS, "domains", keys)

    def find_investors_by_organizations(self, organization_ids: Iterable[str]) -> list[Investor]:
        wanted = sorted({key for key in organization_ids if key})
        found: dict[str, Investor] = {}
        for chunk in _chunks(wanted, MAX_DISJUNCTIONS):
            spec = _Query(
                INVESTORS, equals=(("deleted", False),), one_of=("organization_id", tuple(chunk))
            )
            for investor in self._query_models(Investor, spec):
                found[investor.id] = investor
        return [found[key] for key in sorted(found)]

    def find_contacts_by_investors(self, investor_ids: Iterable[str]) -> list[Contact]:
        """Equality filters only (``deleted ==``, ``investor_id in``): merged single-field
        indexes serve it, as for investors by organisation."""
        wanted = sorted({key for key in investor_ids if key})
        found: dict[str, Contact] = {}
        for chunk in _chunks(wanted, MAX_DISJUNCTIONS):
            spec = _Query(
                CONTACTS, equals=(("deleted", False),), one_of=("investor_id", tuple(chunk))
            )
            for contact in self._query_models(Contact, spec):
                found[contact.id] = contact
        return [found[key] for key in sorted(found)]

    def list_investors(
        self, *, include_graveyard: bool = True, include_deleted: bool = False
    ) -> list[Investor]:
        """Sorted by ``name_key`` then id. Equality filters only (served by merged single-field
        indexes) and the sort done here: a fund's investor list is hundreds to a few thousand
        records, and the picker wants all of them."""
        equals: list[tuple[str, Any]] = []
        if not include_graveyard:
            equals.append(("graveyard", False))
        if not include_deleted:
            equals.append(("deleted", False))
        investors = self._query_models(Investor, _Query(INVESTORS, equals=tuple(equals)))
        return sorted(investors, key=lambda i: (i.name_key, i.id))

    # -- emails, sightings, links -------------------------------------------------------------

    def _email_sources(
        self, email_id: str, transaction: firestore.Transaction
    ) -> tuple[list[Sighting], list[InvestorLink]]:
        """An email's sightings and links, read (and so locked) in the transaction."""
        sightings = self._query_models(Sighting, _sightings_of(email_id), transaction)
        links = self._query_models(InvestorLink, _links_of(email_id), transaction)
        return sightings, links

    @staticmethod
    def _denormalised(
        email: Email, sightings: Iterable[Sighting], links: Iterable[InvestorLink]
    ) -> Email:
        live = [s.account_id for s in sightings if not s.deleted]
        investors = [link.investor_id for link in links]
        return email.denormalised(live, investors, at=utcnow())

    @staticmethod
    def _denormalised_changed(before: Email, after: Email) -> bool:
        return any(
            getattr(before, name) != getattr(after, name)
            for name in ("matched", "matched_at", "investor_ids", "live_account_ids")
        )

    def upsert_email(self, email: Email) -> bool:
        ref = self._ref(EMAILS, email.id)

        def body(transaction: firestore.Transaction) -> bool:
            stored = self._get(Email, EMAILS, email.id, transaction)
            sightings, links = self._email_sources(email.id, transaction)
            merged = email.merged_into(stored)
            refreshed = self._denormalised(merged, sightings, links)
            transaction.set(ref, self._email_document(refreshed, transaction))
            return stored is None

        return self._transact(body)

    def update_email(self, email_id: str, change: Callable[[Email], Email | None]) -> Email | None:
        if not _valid_document_id(email_id):
            return None
        ref = self._ref(EMAILS, email_id)

        def change_stored_email(transaction: firestore.Transaction) -> Email | None:
            stored = self._get(Email, EMAILS, email_id, transaction)
            if stored is None:
                return None
            changed = change(stored)
            if changed is None:
                return stored
            if changed.id != stored.id:
                raise ValueError("update_email cannot change an email's id")
            sightings, links = self._email_sources(email_id, transaction)
            merged = changed.merged_into(stored)
            refreshed = self._denormalised(merged, sightings, links)
            transaction.set(ref, self._email_document(refreshed, transaction))
            return refreshed

        return self._transact(change_stored_email)

    def get_email(self, email_id: str) -> Email | None:
        return self._get(Email, EMAILS, email_id)

    def list_emails(self, *, limit: int = 500, after_id: str = "") -> list[Email]:
        """By the ``id`` field (single-field index; the emulator cannot order by ``__name__``)."""
        check_limit(limit)
        spec = _Query(
            EMAILS,
            range=("id", ">", after_id) if after_id else None,
            order_by=(("id", Direction.ASCENDING),),
            limit=limit,
        )
        return self._query_models(Email, spec)

    def list_emails_matched_between(
        self, since: datetime, until: datetime, *, limit: int = 500, page_token: str = ""
    ) -> Page[Email]:
        """One range on ``matched_key`` (unmatched mail holds "", below every bound): served by
        the single-field index, no composite needed."""
        check_limit(limit)
        lower, upper = matched_window_keys(since, until, page_token)
        spec = _Query(
            EMAILS,
            range=("matched_key", ">", lower),
            upper=("matched_key", "<=", upper),
            order_by=(("matched_key", Direction.ASCENDING),),
            limit=limit + 1,
        )
        rows = self._query_models(Email, spec)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(items[-1].matched_key) if more else "")

    def record_sighting(self, sighting: Sighting) -> bool:
        sighting_ref = self._ref(SIGHTINGS, sighting.id)
        email_ref = self._ref(EMAILS, sighting.email_id)

        def body(transaction: firestore.Transaction) -> bool:
            email = self._get(Email, EMAILS, sighting.email_id, transaction)
            if email is None:
                raise NotFoundError("sighting of an unknown email", email_id=sighting.email_id)
            self._refuse_offboarded(sighting.account_id, transaction)
            existed = self._exists(sighting_ref, transaction)
            sightings, links = self._email_sources(email.id, transaction)
            sightings = [s for s in sightings if s.id != sighting.id] + [sighting]
            refreshed = self._denormalised(email, sightings, links)
            changed = self._denormalised_changed(email, refreshed)
            document = self._email_document(refreshed, transaction) if changed else None
            transaction.set(sighting_ref, _document(sighting))
            if document is not None:
                transaction.set(email_ref, document)
            return not existed

        return self._transact(body)

    def set_sighting_deleted(self, account_id: str, gmail_message_id: str, deleted: bool) -> bool:
        sighting_id = sighting_id_for(account_id, gmail_message_id)
        if not _valid_document_id(sighting_id):
            return False
        sighting_ref = self._ref(SIGHTINGS, sighting_id)

        def body(transaction: firestore.Transaction) -> bool:
            sighting = self._get(Sighting, SIGHTINGS, sighting_id, transaction)
            if sighting is None:
                return False
            if not deleted:
                self._refuse_offboarded(account_id, transaction)
            email = self._get(Email, EMAILS, sighting.email_id, transaction)
            sightings, links = self._email_sources(email.id, transaction) if email else ([], [])
            flipped = sighting.deleted != deleted
            if flipped:
                sighting = sighting.model_copy(
                    update={"deleted": deleted, "deleted_at": utcnow() if deleted else None}
                )
            document = None
            if email is not None:
                sightings = [s for s in sightings if s.id != sighting.id] + [sighting]
                refreshed = self._denormalised(email, sightings, links)
                if self._denormalised_changed(email, refreshed):
                    document = self._email_document(refreshed, transaction)
            if flipped:
                transaction.set(sighting_ref, _document(sighting))
            if email is not None and document is not None:
                transaction.set(self._ref(EMAILS, email.id), document)
            return True

        return self._transact(body)

    def get_sighting(self, account_id: str, gmail_message_id: str) -> Sighting | None:
        return self._get(Sighting, SIGHTINGS, sighting_id_for(account_id, gmail_message_id))

    def list_sightings(self, email_id: str) -> list[Sighting]:
        return sorted(self._query_models(Sighting, _sightings_of(email_id)), key=lambda s: s.id)

    def sighted_message_ids(self, account_id: str, gmail_message_ids: Iterable[str]) -> set[str]:
        """By document id (``get_all``), not a query: sighting ids are deterministic."""
        wanted = sorted(set(gmail_message_ids))
        refs = [self._ref(SIGHTINGS, sighting_id_for(account_id, gid)) for gid in wanted]
        found: set[str] = set()
        for start in range(0, len(refs), 300):
            chunk = refs[start : start + 300]
            self.reads[SIGHTINGS] = self.reads.get(SIGHTINGS, 0) + len(chunk)
            for snapshot in self._client.get_all(chunk):
                if snapshot.exists:
                    found.add(str((snapshot.to_dict() or {})["gmail_message_id"]))
        return found

    def record_capture_problem(self, problem: CaptureProblem) -> CaptureProblem:
        ref = self._ref(CAPTURE_PROBLEMS, problem.id)

        def body(transaction: firestore.Transaction) -> CaptureProblem:
            stored = self._get(CaptureProblem, CAPTURE_PROBLEMS, problem.id, transaction)
            kept = problem.counted_after(stored)
            transaction.set(ref, _document(kept))
            return kept

        return self._transact(body)

    def list_capture_problems(self, account_id: str, *, limit: int = 100) -> list[CaptureProblem]:
        check_limit(limit)
        spec = _Query(
            CAPTURE_PROBLEMS,
            equals=(("account_id", account_id),),
            order_by=(("gmail_message_id", Direction.ASCENDING),),
            limit=limit,
        )
        return self._query_models(CaptureProblem, spec)

    def clear_capture_problem(self, account_id: str, gmail_message_id: str) -> bool:
        ref = self._ref(CAPTURE_PROBLEMS, sighting_id_for(account_id, gmail_message_id))

        def body(transaction: firestore.Transaction) -> bool:
            existed = self._exists(ref, transaction)
            if existed:
                transaction.delete(ref)
            return existed

        return self._transact(body)

    def link_email_to_investor(self, link: InvestorLink) -> bool:
        link_ref = self._ref(LINKS, link.id)
        email_ref = self._ref(EMAILS, link.email_id)

        def body(transaction: firestore.Transaction) -> bool:
            email = self._get(Email, EMAILS, link.email_id, transaction)
            if email is None:
                raise NotFoundError("link of an unknown email", email_id=link.email_id)
            existed = self._exists(link_ref, transaction)
            sightings, links = self._email_sources(email.id, transaction)
            if not existed:
                links = [*links, link]
            refreshed = self._denormalised(email, sightings, links)
            changed = self._denormalised_changed(email, refreshed)
            document = self._email_document(refreshed, transaction) if changed else None
            if not existed:
                transaction.set(link_ref, _document(link))
            if document is not None:
                transaction.set(email_ref, document)
            return not existed

        return self._transact(body)

    def unlink_email_from_investor(self, email_id: str, investor_id: str) -> int:
        if not _valid_document_id(email_id):
            return 0
        email_ref = self._ref(EMAILS, email_id)

        def body(transaction: firestore.Transaction) -> int:
            email = self._get(Email, EMAILS, email_id, transaction)
            sightings, links = self._email_sources(email_id, transaction)
            doomed = [link for link in links if link.investor_id == investor_id]
            document = None
            if email is not None and doomed:
                kept = [link for link in links if link.investor_id != investor_id]
                refreshed = self._denormalised(email, sightings, kept)
                if self._denormalised_changed(email, refreshed):
                    document = self._email_document(refreshed, transaction)
            for link in doomed:
                transaction.delete(self._ref(LINKS, link.id))
            if document is not None:
                transaction.set(email_ref, document)
            return len(doomed)

        return self._transact(body)

    def list_links(self, email_id: str) -> list[InvestorLink]:
        return sorted(self._query_models(InvestorLink, _links_of(email_id)), key=lambda x: x.id)

    def find_emails_by_participants(
        self,
        *,
        addresses: Sequence[str] = (),
        domains: Sequence[str] = (),
        limit: int = 500,
        after_id: str = "",
    ) -> list[Email]:
        """The first ``limit`` matching emails by id, like the SQLite store.

        Each chunk's query is ordered by the ``id`` field (a composite index with the array
        field) and limited, so the union of the chunks' first ``limit`` ids holds the overall
        first ``limit``. ``id`` rather than the document name: the emulator cannot order by
        ``__name__``, and without an order-by it returns documents in insertion order.
        """
        check_limit(limit)
        lookups = [
            ("participant_addresses", sorted({normalize_address(a) for a in addresses})),
            ("participant_domains", sorted({normalize_domain(d) for d in domains})),
        ]
        found: dict[str, Email] = {}
        for array_field, keys in lookups:
            for chunk in _chunks(keys, MAX_DISJUNCTIONS):
                spec = _Query(
                    EMAILS,
                    contains_any=(array_field, tuple(chunk)),
                    range=("id", ">", after_id) if after_id else None,
                    order_by=(("id", Direction.ASCENDING),),
                    limit=limit,
                )
                for email in self._query_models(Email, spec):
                    found[email.id] = email
        return [found[key] for key in sorted(found)[:limit]]

    # -- the email-activity panel -------------------------------------------------------------

    def query_activity(self, query: ActivityQuery) -> ActivityHits:
        """One ``array_contains`` on a token and ``activity_key`` descending (paging is a range
        below the last key: no cursors); composite indexes (token array, key) serve it.

        The token: the filters' facet when there are no words, or when an investor is among
        the filters (an investor's mail is a small share of all mail, usually rarer than a
        word); else the longest query word's ``search_words`` prefix (longer words are rarer:
        a heuristic, as Firestore keeps no statistics we could ask). What the token does not
        decide (other words, words over 15 characters, the filters) is checked here, on the
        documents read. Reading stops once the page is full, at the end of the matches, or at
        the budget of 5 x (limit + 1) documents: a page short of matches then says
        ``has_more`` with a token that resumes the scan below the last document read.
        """
        check_limit(query.limit)
        below = activity_page_key(query.page_token)
        facet = facet_token(
            query.investor_id, query.account_id, query.direction.value if query.direction else None
        )
        words = list(query.words)
        if not words or query.investor_id:
            field, term = "activity_facets", facet
        else:
            field, term = "search_words", search.index_term(max(words, key=lambda w: (len(w), w)))
        budget = READ_BUDGET_FACTOR * (query.limit + 1)
        wanted = query.limit + 1
        found: list[ActivityHit] = []
        keys: list[str] = []
        read, batch = 0, wanted
        while True:
            size = min(batch, budget - read)
            spec = _Query(
                EMAILS,
                contains_any=(field, (term,)),
                range=("activity_key", "<", below) if below else None,
                order_by=(("activity_key", Direction.DESCENDING),),
                limit=size,
            )
            snapshots = self._query(spec)
            read += max(1, len(snapshots))
            self.activity_email_reads += max(1, len(snapshots))
            for snapshot in snapshots:
                data = snapshot.to_dict() or {}
                below = str(data["activity_key"])
                hit = _activity_hit(data, facet, words)
                if hit is not None:
                    found.append(hit)
                    keys.append(below)
                    if len(found) == wanted:
                        break
            if len(found) == wanted:
                return ActivityHits(found[: query.limit], True, encode_page_token(keys[-2]))
            if len(snapshots) < size:
                return ActivityHits(found, False, "")
            if read >= budget:
                return ActivityHits(found, True, encode_page_token(below))
            batch *= 2

    def refresh_activity_direction(self, addresses: Sequence[str]) -> int:
        """Rebuilds the team-address document first (so a mailbox written by any path is
        counted), then rewrites, one transaction each, the mail sent from these addresses
        whose panel fields changed."""
        self._rebuild_own_addresses()
        senders = {normalize_address(a) for a in addresses}
        changed, after = 0, ""
        while senders:
            page = self.find_emails_by_participants(
                addresses=sorted(senders), limit=500, after_id=after
            )
            if not page:
                break
            for found in page:
                if found.sender is not None and found.sender.address in senders:
                    changed += int(self._refresh_activity(found.id))
            after = page[-1].id
        return changed

    def _refresh_activity(self, email_id: str) -> bool:
        ref = self._ref(EMAILS, email_id)

        def body(transaction: firestore.Transaction) -> bool:
            snapshot = ref.get(transaction=transaction)
            self.reads[EMAILS] = self.reads.get(EMAILS, 0) + 1
            stored = snapshot.to_dict() if snapshot.exists else None
            if stored is None:
                return False
            document = self._email_document(_model(Email, stored), transaction)
            if all(stored.get(name) == document[name] for name in _ACTIVITY_FIELDS):
                return False
            transaction.set(ref, document)
            return True

        return self._transact(body)

    def get_investors(self, investor_ids: Iterable[str]) -> list[Investor]:
        """``get_all`` by document id, 300 a call: one round trip for a page's investors."""
        wanted = sorted({key for key in investor_ids if _valid_document_id(key)})
        found: list[Investor] = []
        for chunk in _chunks(wanted, 300):
            self.reads[INVESTORS] = self.reads.get(INVESTORS, 0) + len(chunk)
            for snapshot in self._client.get_all([self._ref(INVESTORS, key) for key in chunk]):
                investor = _snapshot_model(Investor, snapshot)
                if investor is not None:
                    found.append(investor)
        return sorted(found, key=lambda i: i.id)

    # -- proposals and activities -------------------------------------------------------------

    def create_proposal(self, proposal: Proposal) -> bool:
        return self._create(
            self._ref(PROPOSALS, proposal.id), _document(proposal, sort_key=proposal.sort_key)
        )

    def get_proposal(self, proposal_id: str) -> Proposal | None:
        return self._get(Proposal, PROPOSALS, proposal_id)

    def decide_proposal(self, proposal_id: str, status: ProposalStatus, actor: str) -> Decision:
        """Reads the proposal, its activity (keyed by the proposal id) and its email, then
        writes both. Two concurrent approvals: production makes one wait or retry, and the
        retry sees the decision and returns ``changed=False``: one activity, ever."""
        if not _valid_document_id(proposal_id):
            raise NotFoundError("no such proposal", proposal_id=proposal_id)
        proposal_ref = self._ref(PROPOSALS, proposal_id)
        activity_ref = self._ref(ACTIVITIES, proposal_id)

        def body(transaction: firestore.Transaction) -> Decision:
            proposal = self._get(Proposal, PROPOSALS, proposal_id, transaction)
            if proposal is None:
                raise NotFoundError("no such proposal", proposal_id=proposal_id)
            existing = self._get(Activity, ACTIVITIES, proposal_id, transaction)
            email = self._get(Email, EMAILS, proposal.email_id, transaction)
            outcome = proposal.decide(
                status, actor, email=email, existing_activity=existing, at=utcnow()
            )
            if outcome.changed:
                if outcome.activity is not None and existing is None:
                    transaction.set(activity_ref, _document(outcome.activity))
                transaction.set(
                    proposal_ref,
                    _document(outcome.proposal, sort_key=outcome.proposal.sort_key),
                )
            return outcome

        return self._transact(body)

    def list_proposals(
        self,
        *,
        status: ProposalStatus | None = None,
        investor_id: str | None = None,
        account_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Proposal]:
        """Newest first by ``sort_key`` (``created_at|id``: unique, so equal timestamps page
        correctly); the next page is ``sort_key < last``, never a cursor or an offset. The
        creation window is a range on the same key, so it needs no index of its own."""
        check_limit(limit)
        equals: list[tuple[str, Any]] = []
        if status is not None:
            equals.append(("status", status.value))
        if investor_id is not None:
            equals.append(("investor_id", investor_id))
        if account_id is not None:
            equals.append(("account_id", account_id))
        lower, upper = proposal_window_keys(created_from, created_to, page_token)
        bounds: list[tuple[str, str, Any]] = []
        if lower is not None:
            bounds.append(("sort_key", ">=", lower))
        if upper is not None:
            bounds.append(("sort_key", "<", upper))
        spec = _Query(
            PROPOSALS,
            equals=tuple(equals),
            range=bounds[0] if bounds else None,
            upper=bounds[1] if len(bounds) > 1 else None,
            order_by=(("sort_key", Direction.DESCENDING),),
            limit=limit + 1,
        )
        rows = self._query_models(Proposal, spec)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(items[-1].sort_key) if more else "")

    def get_activity(self, activity_id: str) -> Activity | None:
        return self._get(Activity, ACTIVITIES, activity_id)

    # -- settings, guards, audit --------------------------------------------------------------

    def _setting_ref(self, key: str) -> firestore.DocumentReference:
        return self._ref(APP_SETTINGS, _setting_document_id(key))

    def get_setting(self, key: str) -> Any | None:
        snapshot = self._setting_ref(key).get()
        data = snapshot.to_dict() if snapshot.exists else None
        return _from_store(data.get("value")) if data else None

    def set_setting(self, key: str, value: Any) -> None:
        self._setting_ref(key).set({"key": key, "value": _json_value(value)})

    def update_setting(self, key: str, change: Callable[[Any | None], Any]) -> Any:
        """``change`` may run more than once (the library retries on contention): keep it pure."""
        ref = self._setting_ref(key)

        def body(transaction: firestore.Transaction) -> Any:
            snapshot = ref.get(transaction=transaction)
            data = snapshot.to_dict() if snapshot.exists else None
            current = _from_store(data.get("value")) if data else None
            value = change(current)
            transaction.set(ref, {"key": key, "value": _json_value(value)})
            return value

        return self._transact(body)

    def create_guard(self, guard: Guard) -> bool:
        return self._create(self._ref(GUARDS, guard.id), _document(guard))

    def get_guard(self, guard_id: str) -> Guard | None:
        return self._get(Guard, GUARDS, guard_id)

    def update_guard(self, guard_id: str, change: Callable[[Guard], Guard | None]) -> Guard | None:
        """``change`` gets a copy and may run more than once (retries): keep it pure."""
        if not _valid_document_id(guard_id):
            return None
        ref = self._ref(GUARDS, guard_id)

        def body(transaction: firestore.Transaction) -> Guard | None:
            current = self._get(Guard, GUARDS, guard_id, transaction)
            if current is None:
                return None
            updated = change(current.model_copy(deep=True))
            if updated is None:
                return current
            if updated.id != guard_id:
                raise ValueError(f"update_guard cannot rename {guard_id!r} to {updated.id!r}")
            transaction.set(ref, _document(updated))
            return updated

        return self._transact(body)

    def append_audit(self, entry: AuditEntry) -> None:
        created = self._create(
            self._ref(AUDIT, entry.id), _document(entry, sort_key=entry.sort_key)
        )
        if not created:
            raise ConflictError("audit entry already recorded", audit_id=entry.id)

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; ``sort_key`` (``at|id``) breaks ties of equal times by id, descending,
        exactly as the SQLite store's ``ORDER BY at DESC, id DESC``."""
        check_limit(limit)
        spec = _Query(
            AUDIT,
            equals=(("target", target),) if target is not None else (),
            order_by=(("sort_key", Direction.DESCENDING),),
            limit=limit,
        )
        return self._query_models(AuditEntry, spec)
