"""The proposals area of the store: proposed investor activities, their decisions, and the
activities an approval creates."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.domain.models import Activity, Decision, Proposal, ProposalStatus
from shared.ports.paging import Page


class ProposalStore(Protocol):
    """Proposals and the activities approving them creates."""

    def create_proposal(self, proposal: Proposal) -> bool: ...
    def get_proposal(self, proposal_id: str) -> Proposal | None: ...
    def decide_proposal(self, proposal_id: str, status: ProposalStatus, actor: str) -> Decision:
        """Approve (creating the activity), reject or withdraw; ``PROPOSED`` reopens only a
        withdrawn proposal (a match that came back). Idempotent for the same decision; raises
        ConflictError naming the state if it was already decided otherwise."""
        ...

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
        """Newest first; stable across pages. ``account_id``: the mailbox whose capture made
        it; ``created_from <= created_at < created_to``."""
        ...

    def get_activity(self, activity_id: str) -> Activity | None: ...
    def set_activity_corrected(
        self, activity_id: str, by: str, at: datetime | None
    ) -> Activity | None:
        """Mark an approved activity corrected by ``by`` at ``at`` (None clears the mark), in one
        transaction; the stored activity, None if there is none."""
        ...
