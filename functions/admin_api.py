"""Admin API: the admin console's HTTP function (HTTPS, Google ID token of a person).

Routes (each names the roles it admits; the token is verified before routing):
  GET  /me          who the caller is (any active user)
  GET  /users       list users (admins)
  POST /users       add a user {email, name, role} (admins; audited)
  GET  /mailboxes   team mailboxes and their sync state (admins)
  POST /mailboxes   register a team mailbox {address, owner_email} (admins; audited)
  GET  /proposals   proposals, newest first: ?status=&investor_id=&limit=&page_token= (admins)
  POST /proposals/<id>/approve | /reject   decide one (admins; audited; 409 if decided)
  POST /drafts      an in-thread reply draft in a team mailbox {email_id, account_id | mailbox,
                    body, mode: reply|reply_all, quote} (admins, the mailbox's owner, and the
                    drafting agent, which is admitted on this route only; audited)
Writes only to the store; HTTP functions are never retried by the platform.
"""

from __future__ import annotations

from typing import TypeVar

import flask
import functions_framework
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import wiring
from shared.domain.models import (
    Address,
    AuditEntry,
    Caller,
    DigestPolicy,
    ProposalStatus,
    Role,
)
from shared.domain.reply import ReplyMode
from shared.errors import AppError, BadRequestError
from shared.services import directory, drafts, proposals, sync
from shared.web import ADMINS, PEOPLE, Router, json_response

api = Router("admin_api", verifier=wiring.verifier)
M = TypeVar("M", bound=BaseModel)


class RequestBody(BaseModel):
    """Base of the API's request bodies: validators built on first use (cold start)."""

    model_config = ConfigDict(defer_build=True)


class NewUser(RequestBody):
    email: Address
    name: str = ""
    role: Role = Role.MEMBER


class NewMailbox(RequestBody):
    address: Address
    owner_email: str = ""


class NewDraft(RequestBody):
    email_id: str
    account_id: str = ""
    mailbox: str = ""
    body: str
    mode: ReplyMode = ReplyMode.REPLY
    quote: bool = True


def parse_body(request: flask.Request, model: type[M]) -> M:
    """The JSON body as ``model``, or a 400 naming each bad field."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadRequestError(reason) from None


@api.route("GET", "/me", roles=PEOPLE)
def me(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return json_response(
        {"email": caller.email, "role": caller.role.value, "user_id": caller.user_id}
    )


@api.route("GET", "/users", roles=ADMINS)
def list_users(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    users = wiring.store().list_users()
    return json_response({"items": [u.model_dump(mode="json") for u in users]})


@api.route("POST", "/users", roles=ADMINS)
def add_user(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    body = parse_body(request, NewUser)
    user = directory.add_user(
        wiring.store(), caller, email=body.email, name=body.name, role=body.role
    )
    return json_response(user.model_dump(mode="json"), 201)


@api.route("GET", "/mailboxes", roles=ADMINS)
def list_mailboxes(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    store = wiring.store()
    now = wiring.clock().now()
    items = []
    for account in store.list_email_accounts():
        item = account.model_dump(mode="json")
        item["lag_seconds"] = sync.lag_seconds(account, now)
        item["behind"] = sync.is_behind(account, now)
        items.append(item)
    return json_response({"items": items})


@api.route("POST", "/mailboxes", roles=ADMINS)
def add_mailbox(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    body = parse_body(request, NewMailbox)
    account = directory.add_mailbox(
        wiring.store(), caller, address=body.address, owner_email=body.owner_email
    )
    return json_response(account.model_dump(mode="json"), 201)


@api.route("GET", "/proposals", roles=ADMINS)
def list_proposals(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    args = request.args
    try:
        status = ProposalStatus(args["status"]) if args.get("status") else None
        limit = int(args.get("limit", "50"))
    except ValueError as exc:
        raise BadRequestError(f"bad query parameter: {exc}") from None
    if not 1 <= limit <= 200:
        raise BadRequestError("limit must be between 1 and 200")
    page = wiring.store().list_proposals(
        status=status,
        investor_id=args.get("investor_id") or None,
        limit=limit,
        page_token=args.get("page_token", ""),
    )
    return json_response(
        {
            "items": [p.model_dump(mode="json") for p in page.items],
            "next_page_token": page.next_token,
        }
    )


@api.route("POST", "/proposals/<proposal_id>/<any(approve, reject):action>", roles=ADMINS)
def decide_proposal(
    request: flask.Request, caller: Caller, proposal_id: str, action: str
) -> ResponseReturnValue:
    status = ProposalStatus.APPROVED if action == "approve" else ProposalStatus.REJECTED
    decision = proposals.decide(wiring.store(), caller, proposal_id, status)
    body = {"proposal": decision.proposal.model_dump(mode="json"), "changed": decision.changed}
    if decision.activity is not None:
        body["activity"] = decision.activity.model_dump(mode="json")
    return json_response(body)


@api.route("POST", "/drafts", roles=drafts.DRAFTERS)
def create_draft(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    from zoneinfo import ZoneInfo

    body = parse_body(request, NewDraft)
    result = drafts.create_reply_draft(
        wiring.store(),
        caller,
        drafts.DraftRequest(
            email_id=body.email_id,
            text=body.body,
            mode=body.mode,
            account_id=body.account_id,
            mailbox=body.mailbox,
            quote=body.quote,
        ),
        drafts_for=wiring.gmail_drafts_for,
        now=wiring.clock().now(),
        tz=ZoneInfo(wiring.get_settings().fund_time_zone),
    )
    return json_response(result.to_json(), 201)


class PolicyChange(RequestBody):
    enabled: bool | None = None
    send_hour: int | None = Field(default=None, ge=0, le=23)


class TestEmail(RequestBody):
    recipients: list[str]


def _policy() -> DigestPolicy:
    from shared.services import digest_schedule

    settings = wiring.get_settings()
    return digest_schedule.load_policy(
        wiring.store(), env_enabled=settings.digest_enabled, env_send_hour=settings.digest_send_hour
    )


@api.route("GET", "/digest/policy", roles=ADMINS)
def get_digest_policy(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    return json_response(_policy().model_dump())


@api.route("PATCH", "/digest/policy", roles=ADMINS)
def patch_digest_policy(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    from shared.services import digest_schedule

    change = parse_body(request, PolicyChange)
    current = _policy()
    updated = DigestPolicy(
        enabled=current.enabled if change.enabled is None else change.enabled,
        send_hour=current.send_hour if change.send_hour is None else change.send_hour,
    )
    digest_schedule.save_policy(wiring.store(), caller, updated)
    return json_response(updated.model_dump())


@api.route("POST", "/digest/send-now", roles=ADMINS)
def digest_send_now(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    from shared.services import digest_schedule

    build, deliver = wiring.digest_runtime()
    transport = digest_schedule.send_now(
        wiring.store(), caller, now=wiring.clock().now(), build=build, deliver=deliver
    )
    return json_response({"sent": True, "transport": transport})


@api.route("POST", "/digest/test-email", roles=ADMINS)
def digest_test_email(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    from shared.domain.digest import Digest
    from shared.services import digest_schedule

    body = parse_body(request, TestEmail)
    store = wiring.store()
    recipients = digest_schedule.check_test_recipients(store, body.recipients)
    _, deliver = wiring.digest_runtime()
    text = "This is a test of the CRM's daily digest delivery. No action is needed."
    test = Digest(
        subject="CRM digest: test email",
        text=text,
        html=f"<p>{text}</p>",
        has_activity=False,
        user_count=0,
        email_count=0,
        investor_count=0,
    )
    try:
        transport = deliver(recipients, test)
    except AppError as exc:
        if exc.status == 400:
            raise
        # The transport's own text may carry a credential: it was logged by kind only, and
        # the reply says only that the send failed.
        raise DigestTestFailedError("the test email could not be sent") from None
    store.append_audit(
        AuditEntry(actor=caller.email, action="digest.test_email", details={"to": recipients})
    )
    return json_response({"sent": True, "transport": transport})


class DigestTestFailedError(AppError):
    status = 502
    code = "send_failed"


@functions_framework.http
def admin_api(request: flask.Request) -> flask.Response:
    return api(request)
