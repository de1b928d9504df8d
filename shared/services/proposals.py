"""Propose -> approve: nothing lands on a contact record until a person approves.

Capture and the re-match job create proposals (one per email and investor); people decide them
here, one at a time or in bulk. A proposal that is no longer open answers 409 with its state
(``{"error": "conflict", "reason": ..., "status": "approved"}``), whichever way it was decided:
approving an approved proposal is a conflict too, so a person never believes they approved what
someone else had already decided. The store's own decision stays idempotent (a retried
transaction or a racing second approval still creates one activity); the 409 is this layer's.

Bulk decisions take a filter (investor, mailbox, creation window; at least one), decide every
still-open proposal matching, newest first, each in its own transaction and audited on its own,
at most ``BULK_LIMIT`` per request (``shared.domain.proposal_requests``, whose ``BulkDecision`` is
the request, validated once by the router); the answer says whether more remain (call again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.domain.email_detail import explain_link
from shared.domain.matching import HEADER_ORDER
from shared.domain.models import (
    AuditEntry,
    Caller,
    EmailAccount,
    Proposal,
    ProposalEvidence,
    ProposalStatus,
)
from shared.domain.proposal_requests import VERDICTS, BulkDecision
from shared.errors import BadRequestError, ConflictError, NotFoundError
from shared.ports import Decision, ProposalDecisionStore, ProposalListStore

DECISIONS = frozenset({ProposalStatus.APPROVED, ProposalStatus.REJECTED})


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
class BulkOutcome:
    """What one bulk request decided (ids, newest first), what it found already decided by
    someone else meanwhile (id -> status), and whether open proposals matching remain."""

    status: ProposalStatus
    decided: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    more: bool = False


def decide_matching(
    store: ProposalDecisionStore, caller: Caller, request: BulkDecision
) -> BulkOutcome:
    """Decide every open proposal matching ``request``'s filter (at most its ``limit``; ``more``
    if others remain), each in its own transaction with its own audit entry. ``request`` was
    validated when it was built (a filter, a limit within ``BULK_LIMIT``): nothing to re-check."""
    status = VERDICTS[request.decision]
    page = store.list_proposals(
        status=ProposalStatus.PROPOSED,
        investor_id=request.investor_id or None,
        account_id=request.account_id or None,
        created_from=request.created_from,
        created_to=request.created_to,
        limit=request.limit,
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


def with_evidence(store: ProposalListStore, items: Sequence[Proposal]) -> list[Proposal]:
    """The proposals, each with its evidence: proposals made before evidence existed get it
    from their email, link and mailbox now, and one made before its body was fetched (the
    re-match job links first, then fetches) gets the snippet it lacked. Nothing is written:
    a listing is a read."""
    accounts: dict[str, EmailAccount] | None = None
    out: list[Proposal] = []
    for proposal in items:
        evidence = proposal.evidence
        if evidence is not None and evidence.snippet:
            out.append(proposal)
            continue
        email = store.get_email(proposal.email_id)
        if evidence is not None:
            if email is not None and email.snippet:
                evidence = evidence.model_copy(update={"snippet": email.snippet})
            out.append(proposal.model_copy(update={"evidence": evidence}))
            continue
        if accounts is None:
            accounts = {a.id: a for a in store.list_email_accounts(include_deleted=True)}
        links = [
            ln
            for ln in store.list_links(proposal.email_id)
            if ln.investor_id == proposal.investor_id
        ]
        link = min(links, key=lambda ln: HEADER_ORDER.index(ln.header)) if links else None
        account = accounts.get(proposal.account_id or "")
        via = (
            explain_link(link, store.get_investor(link.investor_id), None, None).via
            if link
            else None
        )
        filled = ProposalEvidence(
            subject=email.subject if email else "",
            sender=email.sender if email else None,
            date=email.date if email else None,
            snippet=email.snippet if email else "",
            account_id=account.id if account else "",
            mailbox=account.address if account else "",
            matched_address=link.matched_address if link else "",
            header=link.header if link else None,
            via=via,
        )
        out.append(proposal.model_copy(update={"evidence": filled}))
    return out
