"""The email-activity panel (admins only): search captured investor mail, and its investor picker.

The router checks each parameter's type for the document and the 400; the service then reads
the same parameters into a query (``activity.parse_activity_query``), which knows the rules the
types cannot say (an id no record can have, a ``q`` with no usable word, a malformed token).
"""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ApiModel,
    IdText,
    PageToken,
    SearchText,
)
from functions.admin_api import api
from shared import wiring
from shared.domain.activity import ActivityPage, PickerInvestor
from shared.domain.models import Caller, Direction
from shared.web import ADMINS


class ActivityParams(ApiModel):
    investor_id: IdText = Field(default="", description="Only mail linked to this investor.")
    account_id: IdText = Field(
        default="", description="Only mail a live sighting puts in this mailbox."
    )
    direction: Direction | None = Field(
        default=None, description="outbound: sent from one of the team's mailboxes."
    )
    q: SearchText = Field(
        default="",
        description=(
            "Words over subject, snippet and sender name and address; each must match the start"
            " of a word, ignoring case and accents. One-letter words are ignored."
        ),
    )
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    page_token: PageToken = Field(default="", description="next_page_token of the previous page.")


class PickerList(ApiModel):
    items: list[PickerInvestor]


@api.route(
    "GET", "/activity", roles=ADMINS, query=ActivityParams, response=ActivityPage, tag="activity"
)
def search_activity(request: flask.Request, caller: Caller, query: ActivityParams) -> ActivityPage:
    """Captured mail linked to an investor or contact, newest first (a page may be short:
    follow ``next_page_token`` while ``has_more``)."""
    from shared.services import activity

    parsed = activity.parse_activity_query(request.args.to_dict())
    return activity.search(wiring.store(), parsed)


@api.route("GET", "/activity/investors", roles=ADMINS, response=PickerList, tag="activity")
def investor_picker(request: flask.Request, caller: Caller) -> PickerList:
    """The investors the panel offers as a filter: not graveyard, not deleted, by name."""
    from shared.services import activity

    return PickerList(items=activity.picker(wiring.store()))
