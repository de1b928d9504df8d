"""The Firestore Store's base: client, transactions, query building and read counting."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from shared.adapters.firestore.documents import (
    _OWN_ADDRESSES,
    APP_SETTINGS,
    CONTRIBUTIONS,
    EMAIL_ACCOUNTS,
    M,
    T,
    _caused_by_conflict,
    _document,
    _links_of,
    _model,
    _Query,
    _sightings_of,
    _snapshot_model,
    _to_store,
    _valid_document_id,
    email_document,
)
from shared.adapters.firestore.indexes import QueryRecorder
from shared.domain.activity_keys import (
    is_listed,
)
from shared.domain.models import (
    DENORMALISED_FIELDS,
    Email,
    EmailAccount,
    InvestorLink,
    Sighting,
    utcnow,
)
from shared.domain.relationships import (
    Contribution,
    contribution_changes,
    contributions_of,
)
from shared.errors import RetryableError


class FirestoreBase:
    """The client, the query recorder and the read counts, and the helpers every area uses:
    queries, gets, create-if-absent and transactions, and the email document's own addresses and
    denormalised fields (written by the mailbox, mail and activity areas alike).
    """

    def __init__(self, client: firestore.Client, *, recorder: QueryRecorder | None = None) -> None:
        self._client = client
        self._recorder = recorder
        # Documents read (billed reads) per collection, for benchmarks: queries and gets made
        # through this adapter; get_all look-ups are counted too.
        self.reads: dict[str, int] = {}
        # Documents written (billed writes: set, create, delete) per collection, for benchmarks:
        # what each committed transaction wrote (its last attempt's writes) and direct writes.
        self.writes: dict[str, int] = {}
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
        collection = ref.parent.id
        self.reads[collection] = self.reads.get(collection, 0) + 1
        return bool(ref.get(transaction=transaction).exists)

    def _create(self, ref: firestore.DocumentReference, document: Mapping[str, Any]) -> bool:
        """Create-if-absent: the server refuses the write if the document exists."""
        try:
            ref.create(dict(document))
        except google_exceptions.Conflict:  # AlreadyExists is a Conflict (409)
            return False
        self._count_write(ref.parent.id)
        return True

    def _count_write(self, collection: str, count: int = 1) -> None:
        self.writes[collection] = self.writes.get(collection, 0) + count

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Every write stays its own transaction: Firestore bills per document, not per commit,
        and a transaction must read before it writes."""
        yield

    def _transact(self, body: Callable[[firestore.Transaction], T]) -> T:
        """Run ``body`` in a transaction, retried on contention by the client library.

        ``body`` must do every read before its first write. Its exceptions (ConflictError,
        NotFoundError) roll the transaction back and propagate unchanged.
        """

        written: list[str] = []

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> T:
            result = body(transaction)
            # Each attempt replaces the last: only the attempt that commits is counted.
            written[:] = _written_collections(transaction)
            return result

        try:
            result = cast(T, run(self._client.transaction()))
        except ValueError as exc:
            # The library gives up with ValueError("Failed to commit transaction in 5 attempts.")
            # wrapping Aborted: contention, which a later retry of the request can get through.
            if isinstance(exc.__cause__, google_exceptions.Aborted):
                raise RetryableError("too much contention; try again") from exc
            raise
        for collection in written:
            self._count_write(collection)
        return result

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

    # -- shared by areas: the team's addresses (direction), one document, see _OWN_ADDRESSES --

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

    def _refuse_offboarded(self, account_id: str, transaction: firestore.Transaction) -> None:
        """No sighting is written for, or restored in, an offboarded mailbox: the mailbox is
        read in the caller's transaction, so an offboarding that commits first is seen."""
        account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_id, transaction)
        if account is not None:
            account.refuse_offboarded()

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
        return email.denormalised(sightings, links, at=utcnow())

    def _write_contributions(
        self,
        transaction: firestore.Transaction,
        before: Mapping[str, Contribution],
        after: Mapping[str, Contribution],
    ) -> int:
        """Make an email's relationship rows go from ``before`` to ``after`` (both computed by
        ``contributions_of`` from what the transaction read, or ``before`` read itself): the
        rows are pure functions of the email, its sightings and links, so no extra read is
        needed and an unchanged email writes nothing. Call it after the last read."""
        writes, deletes = contribution_changes(before, after)
        for row in writes:
            transaction.set(self._ref(CONTRIBUTIONS, row.id), _document(row))
        for row_id in deletes:
            transaction.delete(self._ref(CONTRIBUTIONS, row_id))
        # Counted in ``writes`` with the rest of the transaction's writes, once it commits.
        return len(writes) + len(deletes)

    def _follow_contributions(
        self,
        transaction: firestore.Transaction,
        before: tuple[Email | None, Iterable[Sighting], Iterable[InvestorLink]],
        after: tuple[Email | None, Iterable[Sighting], Iterable[InvestorLink]],
    ) -> int:
        """:meth:`_write_contributions` from an email's state before and after the change."""
        return self._write_contributions(
            transaction, contributions_of(*before), contributions_of(*after)
        )

    @staticmethod
    def _denormalised_changed(before: Email, after: Email) -> bool:
        return any(
            getattr(before, name) != getattr(after, name)
            for name in DENORMALISED_FIELDS  # the digest's too: a copy moved to Sent changes them
        )


def _written_collections(transaction: firestore.Transaction) -> list[str]:
    """The collection of each document write a transaction holds before its commit (from the
    library's pending write protos; one per document, field transforms included)."""
    found: list[str] = []
    for write in getattr(transaction, "_write_pbs", ()):
        operation = write._pb.WhichOneof("operation")
        name = (
            write.update.name
            if operation == "update"
            else write.delete
            if operation == "delete"
            else write.transform.document
        )
        found.append(str(name).rsplit("/", 2)[-2])
    return found
