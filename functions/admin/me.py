"""A member's own views (any signed-in person, for themselves): their mailboxes with sync
status, and the activity search over the matched mail their own mailboxes hold.

Nothing here takes another person's id: the caller is the scope, so a member cannot ask for
someone else's mailboxes or mail (``shared.services.activity.search_own``).
"""

from __future__ import annotations

import flask

from functions.admin.mailboxes import MailboxStatus, status_of
from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.activity import ActivityPage, ActivityParams
from shared.domain.models import Caller
from shared.services.email_detail import own_mailboxes
from shared.web import PEOPLE


class MyActivityParams(ActivityParams):
    """The panel's parameters; ``account_id`` must name one of the caller's own mailboxes
    (required when they have several). A model of its own: the OpenAPI document turns each
    route's query model into parameters once."""


class MyMailboxes(ApiModel):
    items: list[MailboxStatus]


@api.route("GET", "/me/mailboxes", roles=PEOPLE, response=MyMailboxes, tag="me")
def my_mailboxes(request: flask.Request, caller: Caller) -> MyMailboxes:
    """The caller's own mailboxes (offboarded ones too) and their sync status."""
    now = wiring.clock().now()
    team = wiring.team_domains()
    accounts = own_mailboxes(wiring.store(), caller)
    return MyMailboxes(items=[status_of(account, now, team) for account in accounts])


@api.route(
    "GET", "/me/activity", roles=PEOPLE, query=MyActivityParams, response=ActivityPage, tag="me"
)
def my_activity(request: flask.Request, caller: Caller, query: MyActivityParams) -> ActivityPage:
    """The activity search over mail the caller's own mailboxes hold (``account_id``: which of
    them, required when they have several; 404 for a mailbox not theirs)."""
    from shared.services import activity

    return activity.search_own(wiring.store(), caller, query.query())
