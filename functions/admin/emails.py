"""One captured email in detail, and the "not investor mail" correction.

``GET /emails/{id}``: admins see all of it; a member only mail one of their own mailboxes holds,
with only their own mailboxes' sightings and threads; the drafting agent is not admitted. An
unknown id and one the caller may not see are both 404 (``shared.services.email_detail``).
The body is the stored text, in JSON, never HTML.

``POST /emails/{id}/not-investor-mail`` (admins): unlink the email from one investor for good,
withdraw its open proposal, mark an approved activity corrected, optionally exclude the address
that matched; ``DELETE`` with the investor undoes it (``shared.services.corrections``).
"""

from __future__ import annotations

import flask

from functions.admin.schemas import ApiModel, IdText
from functions.admin_api import api
from shared import wiring
from shared.domain.email_detail import EmailDetail
from shared.domain.models import Caller
from shared.services import corrections, email_detail
from shared.web import ADMINS, PEOPLE


class NotInvestorMail(ApiModel):
    investor_id: IdText
    exclude_address: bool = False


class CorrectionQuery(ApiModel):
    investor_id: IdText


class CorrectionResult(ApiModel):
    """What the correction (or its undo) did; ``changed`` is False when it already stood."""

    email_id: str
    investor_id: str
    corrected: bool
    changed: bool
    unlinked: int
    relinked: bool
    proposal_status: str
    activity_corrected: bool
    excluded_address: str
    exclusion_job_id: str | None
    body_fetched: bool


def _result(outcome: corrections.CorrectionOutcome) -> CorrectionResult:
    return CorrectionResult(**outcome.__dict__)


@api.route("GET", "/emails/<email_id>", roles=PEOPLE, response=EmailDetail, tag="emails")
def get_email(request: flask.Request, caller: Caller, email_id: str) -> EmailDetail:
    """One captured email: headers, participants and why they matched, the mailboxes that saw
    it, the rest of its thread, and its stored text (matched mail only); 404 if unknown or
    not the caller's to see."""
    return email_detail.email_detail(wiring.store(), caller, email_id)


@api.route(
    "POST",
    "/emails/<email_id>/not-investor-mail",
    roles=ADMINS,
    body=NotInvestorMail,
    response=CorrectionResult,
    tag="emails",
)
def mark_not_investor_mail(
    request: flask.Request, caller: Caller, email_id: str, body: NotInvestorMail
) -> CorrectionResult:
    """Not mail of this investor (audited): unlinked and kept from re-linking, its open
    proposal withdrawn, an approved activity marked corrected; with ``exclude_address`` the
    address that matched joins the exclusions. 404 if the email is not linked to it."""
    outcome = corrections.mark_not_investor_mail(
        wiring.store(),
        wiring.queue(),
        caller,
        email_id,
        body.investor_id,
        exclude_address=body.exclude_address,
        now=wiring.clock().now(),
    )
    return _result(outcome)


@api.route(
    "DELETE",
    "/emails/<email_id>/not-investor-mail",
    roles=ADMINS,
    query=CorrectionQuery,
    response=CorrectionResult,
    tag="emails",
)
def undo_not_investor_mail(
    request: flask.Request, caller: Caller, email_id: str, query: CorrectionQuery
) -> CorrectionResult:
    """Undo a correction (audited): links again what still matches, reopens its proposal,
    fetches the purged body again; 404 if there is no such correction."""
    outcome = corrections.undo_not_investor_mail(
        wiring.store(),
        wiring.queue(),
        caller,
        email_id,
        query.investor_id,
        gmail_for=wiring.gmail_for,
    )
    return _result(outcome)
