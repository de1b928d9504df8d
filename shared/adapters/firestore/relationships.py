"""The Firestore Store's relationships: contribution rows (written with their email by the mail
and mailbox areas, through :meth:`FirestoreBase._write_contributions`) and the daily scores."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    CONTRIBUTIONS,
    EMAILS,
    RELATIONSHIP_SCORES,
    _document,
    _Query,
    _snapshot_model,
    _valid_document_id,
)
from shared.adapters.firestore.indexes import Direction
from shared.domain.models import Email
from shared.domain.paging import check_limit, encode_page_token
from shared.domain.relationships import (
    NEVER_KEY_BOUND,
    Contribution,
    RelationshipScore,
    RelationshipSort,
    contributions_of,
    ranking_page_key,
    sort_field,
)
from shared.ports import Page

# Firestore allows 500 writes per commit.
_SCORES_PER_COMMIT = 400


class RelationshipsMixin(FirestoreBase):
    """Contribution rows and relationship scores."""

    def list_investor_contributions(self, investor_id: str) -> list[Contribution]:
        """Equality only (the single-field index), ordered here: one investor's rows."""
        spec = _Query(CONTRIBUTIONS, equals=(("investor_id", investor_id),))
        return sorted(self._query_models(Contribution, spec), key=lambda r: r.at_key)

    def list_contact_contributions(self, contact_id: str) -> list[Contribution]:
        spec = _Query(CONTRIBUTIONS, contains_any=("contact_ids", (contact_id,)))
        return sorted(self._query_models(Contribution, spec), key=lambda r: r.at_key)

    def list_contributions(self, *, limit: int = 500, after_id: str = "") -> list[Contribution]:
        check_limit(limit)
        spec = _Query(
            CONTRIBUTIONS,
            range=("id", ">", after_id) if after_id else None,
            order_by=(("id", Direction.ASCENDING),),
            limit=limit,
        )
        return self._query_models(Contribution, spec)

    def recompute_email_contributions(self, email_id: str) -> int:
        if not _valid_document_id(email_id):
            return 0

        def rebuild_rows(transaction: firestore.Transaction) -> int:
            email = self._get(Email, EMAILS, email_id, transaction)
            sightings, links = self._email_sources(email_id, transaction)
            stored = {
                row.id: row
                for row in self._query_models(
                    Contribution,
                    _Query(CONTRIBUTIONS, equals=(("email_id", email_id),)),
                    transaction,
                )
            }
            return self._write_contributions(
                transaction, stored, contributions_of(email, sightings, links)
            )

        return self._transact(rebuild_rows)

    def get_relationship_scores(self, investor_ids: Sequence[str]) -> dict[str, RelationshipScore]:
        refs = [
            self._ref(RELATIONSHIP_SCORES, key)
            for key in sorted(set(investor_ids))
            if _valid_document_id(key)
        ]
        found: dict[str, RelationshipScore] = {}
        for start in range(0, len(refs), 300):
            chunk = refs[start : start + 300]
            self.reads[RELATIONSHIP_SCORES] = self.reads.get(RELATIONSHIP_SCORES, 0) + len(chunk)
            for snapshot in self._client.get_all(chunk):
                score = _snapshot_model(RelationshipScore, snapshot)
                if score is not None:
                    found[score.id] = score
        return found

    def put_relationship_scores(self, scores: Iterable[RelationshipScore]) -> None:
        """Plain batched writes: only the re-score writes scores, once a day."""
        pending = list(scores)
        for start in range(0, len(pending), _SCORES_PER_COMMIT):
            batch = self._client.batch()
            for score in pending[start : start + _SCORES_PER_COMMIT]:
                batch.set(self._ref(RELATIONSHIP_SCORES, score.id), _document(score))
            batch.commit()
            self.writes[RELATIONSHIP_SCORES] = self.writes.get(RELATIONSHIP_SCORES, 0) + len(
                pending[start : start + _SCORES_PER_COMMIT]
            )

    def list_relationship_scores(
        self, sort: RelationshipSort, *, limit: int = 50, page_token: str = ""
    ) -> Page[RelationshipScore]:
        """One indexed query per page: ``listed == true``, ``<sort key> < last``, descending,
        ``limit + 1`` documents (the extra one says whether a next page exists)."""
        check_limit(limit)
        field = sort_field(sort)
        below = ranking_page_key(sort, page_token) if page_token else "\uffff"
        spec = _Query(
            RELATIONSHIP_SCORES,
            equals=(("listed", True),),
            range=(field, "<", below),
            order_by=((field, Direction.DESCENDING),),
            limit=limit + 1,
        )
        rows = self._query_models(RelationshipScore, spec)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(getattr(items[-1], field)) if more else "")

    def list_cold_scores(
        self, *, cutoff_key: str, cold_drop: int, limit: int = 200
    ) -> list[RelationshipScore]:
        check_limit(limit)
        quiet = _Query(
            RELATIONSHIP_SCORES,
            equals=(("listed", True),),
            range=("last_two_way_sort", ">", NEVER_KEY_BOUND),
            upper=("last_two_way_sort", "<", cutoff_key),
            order_by=(("last_two_way_sort", Direction.ASCENDING),),
            limit=limit,
        )
        dropped = _Query(
            RELATIONSHIP_SCORES,
            equals=(("listed", True),),
            range=("drop_30d", ">", cold_drop),
            order_by=(("drop_30d", Direction.DESCENDING),),
            limit=limit,
        )
        merged = {
            s.id: s
            for spec in (quiet, dropped)
            for s in self._query_models(RelationshipScore, spec)
        }
        return [merged[key] for key in sorted(merged)]
