"""Proposed CRM activity (admins only): list, read one, approve or reject one, decide in bulk.

A proposal that is no longer open answers 409 with its state, whichever way it was decided
(``{"error": "conflict", "reason": "proposal already approved", "status": "approved", ...}``).
Bulk decisions take a filter and decide at most 500 open proposals per request, each in its own
transaction and audit entry; ``more`` says whether to call again (``shared.services.proposals``).
"""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import ApiModel, IdText, PageQuery
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Activity, Caller, Proposal, ProposalStatus
from shared.domain.proposal_requests import VERDICTS, BulkDecision, Verdict, Window
from shared.errors import NotFoundError
from shared.services import proposals
from shared.web import ADMINS


class ProposalQuery(PageQuery, Window):
    status: ProposalStatus | None = None
    investor_id: IdText | None = None
    account_id: IdText | None = Field(
        default=None, description="The mailbox whose capture proposed it."
    )


class ProposalPage(ApiModel):
    items: list[Proposal]
    next_page_token: str = ""


class DecisionResult(ApiModel):
    proposal: Proposal
    changed: bool
    activity: Activity | None = None


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
    """Proposals, newest first, filtered by status, investor, mailbox and creation time, each
    with its evidence (subject, sender, date, snippet, mailbox, what matched)."""
    store = wiring.store()
    page = store.list_proposals(
        status=query.status,
        investor_id=query.investor_id or None,
        account_id=query.account_id or None,
        created_from=query.created_from,
        created_to=query.created_to,
        limit=query.limit,
        page_token=query.page_token,
    )
    items = proposals.with_evidence(store, page.items)
    return ProposalPage(items=items, next_page_token=page.next_token)


@api.route("GET", "/proposals/<proposal_id>", roles=ADMINS, response=Proposal, tag="proposals")
def get_proposal(request: flask.Request, caller: Caller, proposal_id: str) -> Proposal:
    """One proposal with its evidence; 404 if unknown."""
    store = wiring.store()
    proposal = store.get_proposal(proposal_id)
    if proposal is None:
        raise NotFoundError("no such proposal", proposal_id=proposal_id)
    return proposals.with_evidence(store, [proposal])[0]


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
    outcome = proposals.decide_matching(wiring.store(), caller, body)
    return BulkResult(
        decision=body.decision,
        decided_count=len(outcome.decided),
        decided=outcome.decided,
        skipped=[SkippedProposal(id=k, status=v) for k, v in outcome.skipped.items()],
        more=outcome.more,
    )
