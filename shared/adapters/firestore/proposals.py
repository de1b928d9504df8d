"""The Firestore Store's proposals and activities (``shared.ports.proposals``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    ACTIVITIES,
    EMAILS,
    PROPOSALS,
    _document,
    _Query,
    _valid_document_id,
)
from shared.adapters.firestore.indexes import Direction
from shared.domain.models import (
    Activity,
    Email,
    Proposal,
    ProposalStatus,
    utcnow,
)
from shared.domain.paging import (
    check_limit,
    encode_page_token,
    proposal_window_keys,
)
from shared.errors import NotFoundError
from shared.ports import Decision, Page


class ProposalsMixin(FirestoreBase):
    """The proposals and activities, over the client of :class:`FirestoreBase`."""

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
                    transaction.set(
                        activity_ref,
                        _document(outcome.activity, sort_key=outcome.activity.sort_key),
                    )
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

    def set_activity_corrected(
        self, activity_id: str, by: str, at: datetime | None
    ) -> Activity | None:
        if not _valid_document_id(activity_id):
            return None
        ref = self._ref(ACTIVITIES, activity_id)

        def mark_corrected(transaction: firestore.Transaction) -> Activity | None:
            activity = self._get(Activity, ACTIVITIES, activity_id, transaction)
            if activity is None:
                return None
            marked = activity.marked_corrected(by, at)
            transaction.set(ref, _document(marked))
            return marked

        return self._transact(mark_corrected)
