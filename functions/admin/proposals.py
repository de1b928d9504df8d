"""Proposed CRM activity (admins only): list, read one, approve or reject one, decide in bulk.

A proposal that is no longer open answers 409 with its state, whichever way it was decided
(``{"error": "conflict", "reason": "proposal already approved", "status": "approved", ...}``).
Bulk decisions take a filter and decide at most 500 open proposals per request, each in its own
transaction and audit entry; ``more`` says whether to call again (``shared.services.proposals``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import flask
from pydantic import AfterValidator, Field, model_validator

from functions.admin.schemas import ApiModel, IdText, PageQuery
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Activity, Caller, Proposal, ProposalStatus
from shared.errors import NotFoundError
from shared.services import proposals
from shared.web import ADMINS


def _instant(value: datetime) -> datetime:
    """A time with its zone, as UTC, within the years the listing key can hold."""
    if value.tzinfo is None:
        raise ValueError("give a time zone (e.g. Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None
    if not 1000 <= utc.year <= 9998:
        raise ValueError("out of range")
    return utc


Instant = Annotated[datetime, AfterValidator(_instant)]


class _Window(ApiModel):
    created_from: Instant | None = Field(
        default=None, description="Created at or after this time (RFC 3339, with a zone)."
    )
    created_to: Instant | None = Field(
        default=None, description="Created before this time (RFC 3339, with a zone)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Any:  # Any: subclasses return themselves
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from is after created_to")
        return self


class ProposalQuery(PageQuery, _Window):
    status: ProposalStatus | None = None
    investor_id: IdText | None = None
    account_id: IdText | None = Field(
        default=None, description="The mailbox whose capture proposed it."
    )


class ProposalPage(ApiModel):
    items: list[Proposal]
    next_page_token: str = ""


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


VERDICTS = {Verdict.APPROVE: ProposalStatus.APPROVED, Verdict.REJECT: ProposalStatus.REJECTED}


class DecisionResult(ApiModel):
    proposal: Proposal
    changed: bool
    activity: Activity | None = None


class BulkDecision(_Window):
    """Decide every open proposal matching the filter (at least one field of it), newest
    first, at most ``limit`` (up to 500) per request."""

    decision: Verdict
    investor_id: IdText | None = None
    account_id: IdText | None = Field(
        default=None, description="The mailbox whose capture proposed it."
    )
    limit: int = Field(default=proposals.BULK_LIMIT, ge=1, le=proposals.BULK_LIMIT)

    @model_validator(mode="after")
    def _filtered(self) -> BulkDecision:
        if not (self.investor_id or self.account_id or self.created_from or self.created_to):
            raise ValueError(
                "give at least one of investor_id, account_id, created_from, created_to"
            )
        return self


class SkippedProposal(ApiModel):
    id: str
    status: str


class BulkResult(ApiModel):
    """What the request decided (ids, newest first), the proposals someone else decided while it
    ran, and whether open proposals matching remain (call again)."""

    decision: Verdict
    decided_count: int
    decided: list[str]
    skipped: list[SkippedProposal]
    more: bool


@api.route(
    "GET", "/proposals", roles=ADMINS, query=ProposalQuery, response=ProposalPage, tag="proposals"
)
def list_proposals(request: flask.Request, caller: Caller, query: ProposalQuery) -> ProposalPage:
    """Proposals, newest first, filtered by status, investor, mailbox and creation time."""
    page = wiring.store().list_proposals(
        status=query.status,
        investor_id=query.investor_id or None,
        account_id=query.account_id or None,
        created_from=query.created_from,
        created_to=query.created_to,
        limit=query.limit,
        page_token=query.page_token,
    )
    return ProposalPage(items=page.items, next_page_token=page.next_token)


@api.route("GET", "/proposals/<proposal_id>", roles=ADMINS, response=Proposal, tag="proposals")
def get_proposal(request: flask.Request, caller: Caller, proposal_id: str) -> Proposal:
    """One proposal; 404 if unknown."""
    proposal = wiring.store().get_proposal(proposal_id)
    if proposal is None:
        raise NotFoundError("no such proposal", proposal_id=proposal_id)
    return proposal


@api.route(
    "POST",
    "/proposals/<proposal_id>/<any(approve, reject):action>",
    roles=ADMINS,
    response=DecisionResult,
    errors=(409,),
    tag="proposals",
)
def decide_proposal(
    request: flask.Request, caller: Caller, proposal_id: str, action: str
) -> DecisionResult:
    """Approve or reject one open proposal (audited); 409 with its ``status`` if it was
    already decided (either way)."""
    decision = proposals.decide(wiring.store(), caller, proposal_id, VERDICTS[Verdict(action)])
    return DecisionResult(
        proposal=decision.proposal, changed=decision.changed, activity=decision.activity
    )


@api.route(
    "POST",
    "/proposals/bulk-decisions",
    roles=ADMINS,
    body=BulkDecision,
    response=BulkResult,
    tag="proposals",
)
def decide_in_bulk(request: flask.Request, caller: Caller, body: BulkDecision) -> BulkResult:
    """Approve or reject every open proposal matching a filter (investor, mailbox, creation
    window), each in its own transaction and audited; at most ``limit`` per request."""
    outcome = proposals.decide_matching(
        wiring.store(),
        caller,
        VERDICTS[body.decision],
        proposals.ProposalFilter(
            investor_id=body.investor_id or None,
            account_id=body.account_id or None,
            created_from=body.created_from,
            created_to=body.created_to,
        ),
        limit=body.limit,
    )
    return BulkResult(
        decision=body.decision,
        decided_count=len(outcome.decided),
        decided=outcome.decided,
        skipped=[SkippedProposal(id=k, status=v) for k, v in outcome.skipped.items()],
        more=outcome.more,
    )
