"""Propose -> approve: nothing lands on a contact record until a person approves.

Capture and the re-match job create proposals (one per email and investor); people decide them
here. Deciding is idempotent (the same decision twice changes nothing and is audited once) and a
different decision on a decided proposal is a conflict that names its state.
"""

from __future__ import annotations

from shared.domain.models import AuditEntry, Caller, ProposalStatus
from shared.errors import BadRequestError
from shared.ports import Decision, Store

DECISIONS = frozenset({ProposalStatus.APPROVED, ProposalStatus.REJECTED})


def decide(store: Store, caller: Caller, proposal_id: str, status: ProposalStatus) -> Decision:
    """Approve (creating the activity) or reject one proposal, audited with who and when."""
    if status not in DECISIONS:
        raise BadRequestError("a person approves or rejects", status=status.value)
    decision = store.decide_proposal(proposal_id, status, caller.email)
    if decision.changed:
        store.append_audit(
            AuditEntry(
                actor=caller.email,
                action=f"proposal.{status.value}",
                target=proposal_id,
                details={
                    "email_id": decision.proposal.email_id,
                    "investor_id": decision.proposal.investor_id,
                },
            )
        )
    return decision
