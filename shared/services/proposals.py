"""Propose -> approve: nothing lands on a contact record until a person approves.

Capture and the re-match job create proposals (one per email and investor); people decide them
here, one at a time or in bulk. A proposal that is no longer open answers 409 with its state
(``{"error": "conflict", "reason": ..., "status": "approved"}``), whichever way it was decided:
approving an approved proposal is a conflict too, so a person never believes they approved what
someone else had already decided. The store's own decision stays idempotent (a retried
transaction or a racing second approval still creates one activity); the 409 is this layer's.

Bulk decisions take a filter (investor, mailbox, creation window; at least one), decide every
still-open proposal matching, newest first, each in its own transaction and audited on its own,
at most ``BULK_LIMIT`` per request; the answer says whether more remain (call again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.domain.models import AuditEntry, Caller, ProposalStatus
from shared.errors import BadRequestError, ConflictError, NotFoundError
from shared.ports import Decision, ProposalDecisionStore

DECISIONS = frozenset({ProposalStatus.APPROVED, ProposalStatus.REJECTED})
# Proposals one bulk request decides at most (each its own transaction and audit entry).
BULK_LIMIT = 500


def decide(
    store: ProposalDecisionStore, caller: Caller, proposal_id: str, status: ProposalStatus
) -> Decision:
    """Approve (creating the activity) or reject one open proposal, audited with who and when.
    ConflictError naming its ``status`` if it is no longer open; NotFoundError if unknown."""
    decision = _decide(store, caller, proposal_id, status, bulk=False)
    if not decision.changed:
        raise _already(proposal_id, decision.proposal.status)
    return decision


def _already(proposal_id: str, status: ProposalStatus) -> ConflictError:
    return ConflictError(
        f"proposal already {status.value}", proposal_id=proposal_id, status=status.value
    )


def _decide(
    store: ProposalDecisionStore,
    caller: Caller,
    proposal_id: str,
    status: ProposalStatus,
    *,
    bulk: bool,
) -> Decision:
    if status not in DECISIONS:
        raise BadRequestError("a person approves or rejects", status=status.value)
    try:
        decision = store.decide_proposal(proposal_id, status, caller.email)
    except ConflictError as exc:
        state = exc.details.get("state")
        if state not in {s.value for s in ProposalStatus}:
            raise
        raise _already(proposal_id, ProposalStatus(state)) from None
    if decision.changed:
        details: dict[str, object] = {
            "email_id": decision.proposal.email_id,
            "investor_id": decision.proposal.investor_id,
        }
        if bulk:
            details["bulk"] = True
        store.append_audit(
            AuditEntry(
                actor=caller.email,
                action=f"proposal.{status.value}",
                target=proposal_id,
                details=details,
            )
        )
    return decision


@dataclass(frozen=True)
class ProposalFilter:
    investor_id: str | None = None
    account_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def is_empty(self) -> bool:
        return all(
            value is None
            for value in (self.investor_id, self.account_id, self.created_from, self.created_to)
        )


@dataclass(frozen=True)
class BulkOutcome:
    """What one bulk request decided (ids, newest first), what it found already decided by
    someone else meanwhile (id -> status), and whether open proposals matching remain."""

    status: ProposalStatus
    decided: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    more: bool = False


def decide_matching(
    store: ProposalDecisionStore,
    caller: Caller,
    status: ProposalStatus,
    where: ProposalFilter,
    *,
    limit: int = BULK_LIMIT,
) -> BulkOutcome:
    """Decide every open proposal matching ``where`` (at most ``limit``; ``more`` if others
    remain), each in its own transaction with its own audit entry."""
    if status not in DECISIONS:
        raise BadRequestError("a person approves or rejects", status=status.value)
    if where.is_empty():
        raise BadRequestError(
            "give at least one of investor_id, account_id, created_from, created_to"
        )
    if not 1 <= limit <= BULK_LIMIT:
        raise BadRequestError(f"limit must be between 1 and {BULK_LIMIT}", limit=limit)
    page = store.list_proposals(
        status=ProposalStatus.PROPOSED,
        investor_id=where.investor_id,
        account_id=where.account_id,
        created_from=where.created_from,
        created_to=where.created_to,
        limit=limit,
    )
    decided: list[str] = []
    skipped: dict[str, str] = {}
    for proposal in page.items:
        try:
            decision = _decide(store, caller, proposal.id, status, bulk=True)
        except ConflictError as exc:  # decided the other way meanwhile
            skipped[proposal.id] = str(exc.details.get("status", ""))
            continue
        except NotFoundError:
            continue
        if decision.changed:
            decided.append(proposal.id)
        else:  # decided the same way by someone else meanwhile
            skipped[proposal.id] = decision.proposal.status.value
    return BulkOutcome(status, decided, skipped, more=bool(page.next_token))
