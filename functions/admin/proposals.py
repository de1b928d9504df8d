"""Proposed CRM activity (admins only): list, approve, reject."""

from __future__ import annotations

from enum import StrEnum

import flask

from functions.admin.schemas import ApiModel, PageQuery
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Activity, Caller, Proposal, ProposalStatus
from shared.services import proposals
from shared.web import ADMINS


class ProposalQuery(PageQuery):
    status: ProposalStatus | None = None
    investor_id: str | None = None


class ProposalPage(ApiModel):
    items: list[Proposal]
    next_page_token: str = ""


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class DecisionResult(ApiModel):
    proposal: Proposal
    changed: bool
    activity: Activity | None = None


@api.route(
    "GET", "/proposals", roles=ADMINS, query=ProposalQuery, response=ProposalPage, tag="proposals"
)
def list_proposals(request: flask.Request, caller: Caller, query: ProposalQuery) -> ProposalPage:
    """Proposals, newest first, filtered by status and investor."""
    page = wiring.store().list_proposals(
        status=query.status,
        investor_id=query.investor_id or None,
        limit=query.limit,
        page_token=query.page_token,
    )
    return ProposalPage(items=page.items, next_page_token=page.next_token)


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
    """Approve or reject one proposal (audited); 409 if it was decided the other way."""
    status = (
        ProposalStatus.APPROVED if Verdict(action) is Verdict.APPROVE else ProposalStatus.REJECTED
    )
    decision = proposals.decide(wiring.store(), caller, proposal_id, status)
    return DecisionResult(
        proposal=decision.proposal, changed=decision.changed, activity=decision.activity
    )
