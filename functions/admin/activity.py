"""The email-activity panel (admins only): search captured investor mail, and its investor picker.

The router validates the query once, against ``shared.domain.activity.ActivityParams`` (the
types for the document and the 400s, and the rules the types cannot say: an id no record can
have, a ``q`` with no usable word, a malformed token), and the handler passes it on.
"""

from __future__ import annotations

import flask

from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.activity import ActivityPage, ActivityParams, PickerInvestor
from shared.domain.models import Caller
from shared.web import ADMINS


class PickerList(ApiModel):
    items: list[PickerInvestor]


@api.route(
    "GET", "/activity", roles=ADMINS, query=ActivityParams, response=ActivityPage, tag="activity"
)
def search_activity(request: flask.Request, caller: Caller, query: ActivityParams) -> ActivityPage:
    """Captured mail linked to an investor or contact, newest first (a page may be short:
    follow ``next_page_token`` while ``has_more``)."""
    from shared.services import activity

    return activity.search(wiring.store(), query.query())


@api.route("GET", "/activity/investors", roles=ADMINS, response=PickerList, tag="activity")
def investor_picker(request: flask.Request, caller: Caller) -> PickerList:
    """The investors the panel offers as a filter: not graveyard, not deleted, by name."""
    from shared.services import activity

    return PickerList(items=activity.picker(wiring.store()))
