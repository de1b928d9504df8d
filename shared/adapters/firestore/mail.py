"""The Firestore Store's mail: emails, sightings, links, problems (``shared.ports.mail``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    CAPTURE_PROBLEMS,
    EMAILS,
    LINKS,
    MAX_DISJUNCTIONS,
    SIGHTINGS,
    _chunks,
    _document,
    _links_of,
    _Query,
    _sightings_of,
    _snapshot_model,
    _valid_document_id,
)
from shared.adapters.firestore.indexes import Direction
from shared.domain.models import (
    CaptureProblem,
    Correction,
    Email,
    InvestorLink,
    Sighting,
    check_capture,
    normalize_address,
    normalize_domain,
    sighting_id_for,
    utcnow,
)
from shared.domain.paging import (
    check_limit,
    encode_page_token,
    matched_window_keys,
)
from shared.errors import NotFoundError
from shared.ports import Page


class MailMixin(FirestoreBase):
    """The mail: emails, sightings, links, capture problems."""

    def upsert_email(self, email: Email) -> bool:
        ref = self._ref(EMAILS, email.id)

        def body(transaction: firestore.Transaction) -> bool:
            stored = self._get(Email, EMAILS, email.id, transaction)
            # A new email has no sightings or links to read: both refuse an unknown email (in
            # transactions that read it) and emails are never deleted.
            sightings, links = (
                self._email_sources(email.id, transaction) if stored is not None else ([], [])
            )
            merged = email.merged_into(stored)
            refreshed = self._denormalised(merged, sightings, links)
            transaction.set(ref, self._email_document(refreshed, transaction))
            self._follow_contributions(
                transaction, (stored, sightings, links), (refreshed, sightings, links)
            )
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
            self._follow_contributions(
                transaction, (stored, sightings, links), (refreshed, sightings, links)
            )
            return refreshed

        return self._transact(change_stored_email)

    def get_email(self, email_id: str) -> Email | None:
        return self._get(Email, EMAILS, email_id)

    def get_emails(self, email_ids: Iterable[str]) -> dict[str, Email]:
        """By document id (``get_all``): one batched read, each document a billed read."""
        wanted = sorted({e for e in email_ids if _valid_document_id(e)})
        found: dict[str, Email] = {}
        for start in range(0, len(wanted), 300):
            chunk = [self._ref(EMAILS, email_id) for email_id in wanted[start : start + 300]]
            self.reads[EMAILS] = self.reads.get(EMAILS, 0) + len(chunk)
            for snapshot in self._client.get_all(chunk):
                email = _snapshot_model(Email, snapshot)
                if email is not None:
                    found[email.id] = email
        return found

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
            before, links = self._email_sources(email.id, transaction)
            sightings = [s for s in before if s.id != sighting.id] + [sighting]
            refreshed = self._denormalised(email, sightings, links)
            changed = self._denormalised_changed(email, refreshed)
            document = self._email_document(refreshed, transaction) if changed else None
            transaction.set(sighting_ref, _document(sighting))
            if document is not None:
                transaction.set(email_ref, document)
            self._follow_contributions(
                transaction, (email, before, links), (refreshed, sightings, links)
            )
            return not existed

        return self._transact(body)

    def record_capture(
        self, email: Email, sighting: Sighting, links: Sequence[InvestorLink] = ()
    ) -> bool:
        check_capture(email, sighting, links)
        email_ref = self._ref(EMAILS, email.id)

        def body(transaction: firestore.Transaction) -> bool:
            stored = self._get(Email, EMAILS, email.id, transaction)
            self._refuse_offboarded(sighting.account_id, transaction)
            # A new email has no sightings or links (see upsert_email).
            before, linked = (
                self._email_sources(email.id, transaction) if stored is not None else ([], [])
            )
            corrected = stored.corrected_investor_ids if stored is not None else frozenset()
            known = {link.id: link for link in linked}
            wanted = {link.id: link for link in links if link.investor_id not in corrected}
            added = [link for link_id, link in wanted.items() if link_id not in known]
            # As link_email_to_investor: a link written before names gets them once.
            named = {
                link_id: renamed
                for link_id, link in wanted.items()
                if link_id in known and (renamed := known[link_id].with_names_from(link))
            }
            after = [named.get(link.id, link) for link in linked] + added
            sightings = [s for s in before if s.id != sighting.id] + [sighting]
            merged = email.merged_into(stored)
            refreshed = self._denormalised(merged, sightings, after)
            document = self._email_document(refreshed, transaction)
            transaction.set(self._ref(SIGHTINGS, sighting.id), _document(sighting))
            for link in [*added, *named.values()]:
                transaction.set(self._ref(LINKS, link.id), _document(link))
            transaction.set(email_ref, document)
            self._follow_contributions(
                transaction,
                (stored, before, linked),
                (refreshed, sightings, after),
            )
            return stored is None

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
                before = sightings
                sightings = [s for s in sightings if s.id != sighting.id] + [sighting]
                refreshed = self._denormalised(email, sightings, links)
                if self._denormalised_changed(email, refreshed):
                    document = self._email_document(refreshed, transaction)
            if flipped:
                transaction.set(sighting_ref, _document(sighting))
            if email is not None and document is not None:
                transaction.set(self._ref(EMAILS, email.id), document)
            if email is not None and flipped:
                self._follow_contributions(
                    transaction, (email, before, links), (refreshed, sightings, links)
                )
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
            sightings, before = self._email_sources(email.id, transaction)
            # A link's id names its email, so the email's links read just now show whether it
            # exists: no second read of the link document.
            stored = next((existing for existing in before if existing.id == link.id), None)
            existed = stored is not None
            if link.investor_id in email.corrected_investor_ids:
                return False
            named = stored.with_names_from(link) if stored is not None else None
            if stored is None:
                links = [*before, link]
            elif named is not None:
                links = [named if existing.id == link.id else existing for existing in before]
            else:
                links = before
            refreshed = self._denormalised(email, sightings, links)
            changed = self._denormalised_changed(email, refreshed)
            document = self._email_document(refreshed, transaction) if changed else None
            if named is not None:
                transaction.set(link_ref, _document(named))
            if not existed:
                transaction.set(link_ref, _document(link))
                self._follow_contributions(
                    transaction, (email, sightings, before), (refreshed, sightings, links)
                )
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
            kept = [link for link in links if link.investor_id != investor_id]
            if email is not None and doomed:
                refreshed = self._denormalised(email, sightings, kept)
                purged = refreshed.without_text_if_unmatched()
                if purged is not refreshed or self._denormalised_changed(email, refreshed):
                    refreshed = purged
                    document = self._email_document(refreshed, transaction)
            for link in doomed:
                transaction.delete(self._ref(LINKS, link.id))
            if document is not None:
                transaction.set(email_ref, document)
            if doomed:
                self._follow_contributions(
                    transaction, (email, sightings, links), (email, sightings, kept)
                )
            return len(doomed)

        return self._transact(body)

    def set_email_correction(
        self, email_id: str, investor_id: str, correction: Correction | None
    ) -> Email | None:
        if not _valid_document_id(email_id):
            return None
        ref = self._ref(EMAILS, email_id)

        def set_correction(transaction: firestore.Transaction) -> Email | None:
            stored = self._get(Email, EMAILS, email_id, transaction)
            if stored is None:
                return None
            sightings, links = self._email_sources(email_id, transaction)
            changed = stored.with_correction(investor_id, correction)
            refreshed = self._denormalised(changed, sightings, links)
            transaction.set(ref, self._email_document(refreshed, transaction))
            return refreshed

        return self._transact(set_correction)

    def list_thread_sightings(
        self, account_id: str, thread_id: str, *, limit: int = 100
    ) -> list[Sighting]:
        """Equality filters only (served by merging single-field indexes), sorted here."""
        check_limit(limit)
        spec = _Query(
            SIGHTINGS, equals=(("account_id", account_id), ("thread_id", thread_id)), limit=limit
        )
        return sorted(self._query_models(Sighting, spec), key=lambda s: s.id)

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
