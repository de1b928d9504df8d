"""The Firestore Store's the email-activity panel's index (``shared.ports.activity_index``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.cloud import firestore

from shared.adapters.firestore.documents import (
    _ACTIVITY_FIELDS,
    EMAILS,
    INVESTORS,
    _activity_hit,
    _chunks,
    _model,
    _Query,
    _snapshot_model,
    _valid_document_id,
)
from shared.adapters.firestore.indexes import Direction
from shared.adapters.firestore.mail import MailMixin
from shared.domain import search
from shared.domain.activity import READ_BUDGET_FACTOR, ActivityHit, ActivityHits, ActivityQuery
from shared.domain.activity_keys import (
    activity_page_key,
    facet_token,
)
from shared.domain.models import (
    Email,
    Investor,
    normalize_address,
)
from shared.domain.paging import (
    check_limit,
    encode_page_token,
)


class ActivityIndexMixin(MailMixin):
    """The email-activity panel's index; it pages through mail, so it builds on MailMixin."""

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
