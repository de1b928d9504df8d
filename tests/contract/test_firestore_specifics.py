"""What only the Firestore adapter has to get right: document shapes, query guards, create races.

The contract suite proves behaviour through the port; these tests look underneath it, at what is
stored and which queries may be built, because production Firestore depends on both in ways the
emulator does not check (ordered fields must be present with one type; no ``== None``; at most 30
disjunctions; a create can lose a race at commit time).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore

from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.documents import MAX_DISJUNCTIONS, PROPOSALS, USERS, _Query
from shared.adapters.firestore.indexes import Direction
from shared.domain.models import AuditEntry, Guard, Proposal, Role, User, email_id_for
from shared.errors import NotFoundError

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


class TestQueryGuards:
    def test_equality_with_none_is_refused(self) -> None:
        # The emulator answers `== None` with every document; production needs an index entry
        # that a missing field does not have. Either way: store a sentinel value instead.
        with pytest.raises(ValueError, match="None"):
            _Query(USERS, equals=(("deleted_at", None),))

    def test_nested_and_name_fields_are_refused(self) -> None:
        with pytest.raises(ValueError, match="not portable"):
            _Query(USERS, equals=(("sync.status", "ok"),))
        with pytest.raises(ValueError, match="not portable"):
            _Query(USERS, order_by=(("__name__", Direction.ASCENDING),))

    def test_more_than_thirty_disjunctions_are_refused(self) -> None:
        values = tuple(f"a{i}@x.example" for i in range(MAX_DISJUNCTIONS + 1))
        with pytest.raises(ValueError, match="array_contains_any"):
            _Query("contacts", contains_any=("emails", values))
        assert _Query("contacts", contains_any=("emails", values[:MAX_DISJUNCTIONS]))


@pytest.mark.firestore
class TestStoredDocuments:
    def test_enums_are_strings_times_are_timestamps_and_sort_key_is_stored(
        self, firestore_store: FirestoreStore
    ) -> None:
        client: firestore.Client = firestore_store._client
        user = User.new("ann@fund.example", role=Role.ADMIN)
        firestore_store.add_user(user)
        raw_user = client.collection(USERS).document(user.id).get().to_dict()
        assert raw_user is not None
        assert type(raw_user["role"]) is str
        assert raw_user["role"] == "admin"
        assert isinstance(raw_user["created_at"], datetime)

        proposal = Proposal.new(email_id_for("<m@x>"), "inv-1", created_at=T0)
        firestore_store.create_proposal(proposal)
        raw_proposal = client.collection(PROPOSALS).document(proposal.id).get().to_dict()
        assert raw_proposal is not None
        assert raw_proposal["sort_key"] == proposal.sort_key
        assert raw_proposal["status"] == "proposed"
        # Storage-only fields never leak into the model.
        assert firestore_store.get_proposal(proposal.id) == proposal

    def test_free_form_maps_come_back_as_json_like_sqlite(
        self, firestore_store: FirestoreStore
    ) -> None:
        entry = AuditEntry(actor="ann", action="send", details={"at": T0, "n": 1})
        firestore_store.append_audit(entry)
        [stored] = firestore_store.list_audit()
        assert stored.details == {"at": "2024-05-01T09:30:00Z", "n": 1}
        firestore_store.create_guard(Guard(id="g1", data={"when": T0}))
        guard = firestore_store.get_guard("g1")
        assert guard is not None
        assert guard.data == {"when": "2024-05-01T09:30:00Z"}

    def test_invalid_document_ids_find_nothing(self, firestore_store: FirestoreStore) -> None:
        assert firestore_store.get_user("a/b") is None
        assert firestore_store.get_guard("__reserved__") is None
        assert firestore_store.set_sighting_deleted("a/b", "m1", True) is False
        with pytest.raises(NotFoundError):
            firestore_store.change_user("a/b", role=Role.ADMIN)
        with pytest.raises(NotFoundError):
            firestore_store.set_email_account_paused("x/y", True)


@pytest.mark.firestore
class TestCreateRaces:
    def test_add_user_that_loses_the_race_at_commit_reports_not_created(
        self, firestore_store: FirestoreStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another writer creates the user between our reads and our commit: the commit's
        exists=false precondition refuses ours, and add_user says False, overwriting nothing."""
        user = User.new("race@fund.example", "Ours")
        theirs = user.model_copy(update={"name": "Theirs"})
        real_query = firestore_store._query

        def query_then_interfere(spec: _Query, transaction: Any = None) -> Any:
            result = real_query(spec, transaction)
            if spec.collection == USERS and transaction is not None:
                monkeypatch.setattr(firestore_store, "_query", real_query)
                other = FirestoreStore(firestore_store._client)
                assert other.add_user(theirs) is True
            return result

        monkeypatch.setattr(firestore_store, "_query", query_then_interfere)
        assert firestore_store.add_user(user) is False
        stored = firestore_store.get_user(user.id)
        assert stored is not None
        assert stored.name == "Theirs"


@pytest.mark.firestore
class TestDocumentCounts:
    """The benchmarks' read and write counts (``FirestoreStore.reads``/``writes``) follow the
    documents a call touches: a committed transaction's writes, and a batched get's reads."""

    def test_writes_are_counted_per_document_and_batched_reads_per_id(
        self, firestore_store: FirestoreStore
    ) -> None:
        from shared.adapters.firestore.documents import EMAILS, SIGHTINGS
        from shared.domain.models import Email, EmailAccount, Sighting

        account = EmailAccount.new("team@fund.example")
        firestore_store.add_email_account(account)
        email = Email(id=email_id_for("<counted@x>"))
        writes = dict(firestore_store.writes)

        firestore_store.upsert_email(email)
        assert firestore_store.writes[EMAILS] == writes.get(EMAILS, 0) + 1
        firestore_store.record_sighting(Sighting.new(account.id, "g1", email.id))
        # The sighting, and the email whose live mailboxes it changed.
        assert firestore_store.writes[SIGHTINGS] == writes.get(SIGHTINGS, 0) + 1
        assert firestore_store.writes[EMAILS] == writes.get(EMAILS, 0) + 2

        reads = firestore_store.reads.get(EMAILS, 0)
        found = firestore_store.get_emails([email.id, email_id_for("<absent@x>")])
        assert list(found) == [email.id]
        assert firestore_store.reads[EMAILS] == reads + 2
