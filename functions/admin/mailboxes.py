"""Team mailboxes (admins only): list with sync status, and add."""

from __future__ import annotations

import flask

from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Address, Caller, EmailAccount
from shared.services import directory, sync
from shared.web import ADMINS


class MailboxStatus(EmailAccount):
    """A mailbox as the console lists it: the record plus how far its sync is behind."""

    lag_seconds: float | None = None
    behind: bool = False


class MailboxList(ApiModel):
    items: list[MailboxStatus]


class NewMailbox(ApiModel):
    address: Address
    owner_email: str = ""


@api.route("GET", "/mailboxes", roles=ADMINS, response=MailboxList, tag="mailboxes")
def list_mailboxes(request: flask.Request, caller: Caller) -> MailboxList:
    """Team mailboxes and their sync state."""
    now = wiring.clock().now()
    return MailboxList(
        items=[
            MailboxStatus(
                **dict(account),
                lag_seconds=sync.lag_seconds(account, now),
                behind=sync.is_behind(account, now),
            )
            for account in wiring.store().list_email_accounts()
        ]
    )


@api.route(
    "POST",
    "/mailboxes",
    roles=ADMINS,
    body=NewMailbox,
    response=EmailAccount,
    status=201,
    errors=(409,),
    tag="mailboxes",
)
def add_mailbox(request: flask.Request, caller: Caller, body: NewMailbox) -> EmailAccount:
    """Register a team mailbox for capture (audited); its owner, if given, must be a user."""
    return directory.add_mailbox(
        wiring.store(), caller, address=body.address, owner_email=body.owner_email
    )
