"""In-thread reply drafts: created in a team mailbox for a person to review and send."""

from __future__ import annotations

import flask

from functions.admin.schemas import AddressText, ApiModel, DraftText, IdText
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Caller, Mailbox
from shared.domain.reply import ReplyMode
from shared.services import drafts


class NewDraft(ApiModel):
    email_id: IdText
    account_id: IdText = ""
    mailbox: AddressText = ""
    body: DraftText
    mode: ReplyMode = ReplyMode.REPLY
    quote: bool = True


class DraftCreated(ApiModel):
    draft_id: str
    message_id: str
    thread_id: str
    account_id: str
    mailbox: str
    mode: ReplyMode
    subject: str
    to: list[Mailbox]
    cc: list[Mailbox]
    quoted: bool


@api.route(
    "POST",
    "/drafts",
    roles=drafts.DRAFTERS,
    body=NewDraft,
    response=DraftCreated,
    status=201,
    errors=(409, 502, 503),
    tag="drafts",
)
def create_draft(request: flask.Request, caller: Caller, body: NewDraft) -> DraftCreated:
    """A reply draft in the email's thread (admins, the mailbox's owner, the drafting agent;
    audited). Nothing is sent: a person sends it from Gmail."""
    from zoneinfo import ZoneInfo

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
    return DraftCreated(
        draft_id=result.draft_id,
        message_id=result.message_id,
        thread_id=result.thread_id,
        account_id=result.account_id,
        mailbox=result.mailbox,
        mode=result.mode,
        subject=result.subject,
        to=result.recipients.to,
        cc=result.recipients.cc,
        quoted=result.quoted,
    )
