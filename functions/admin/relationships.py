"""Relationship intelligence (admins only): one investor's or contact's figures, investors
ranked by strength or last contact, and the investors going cold.

Figures are exact at the request's time; the ranking and going cold are as of the last daily
re-score (``scored_at`` on each item). Terms and the score: ``docs/relationships.md``.
"""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import DEFAULT_LIMIT, MAX_LIMIT, ApiModel, PageToken
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Caller
from shared.domain.relationships import GoingCold, RelationshipSort
from shared.services.relationships import (
    ContactRelationship,
    InvestorRelationship,
    RankedPage,
)
from shared.web import ADMINS


class RankedQuery(ApiModel):
    sort: RelationshipSort = RelationshipSort.STRENGTH
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    page_token: PageToken = ""


class GoingColdList(ApiModel):
    cold_days: int
    cold_drop: int
    items: list[GoingCold]


@api.route(
    "GET",
    "/investors/<investor_id>/relationship",
    roles=ADMINS,
    response=InvestorRelationship,
    tag="relationships",
)
def investor_relationship(
    request: flask.Request, caller: Caller, investor_id: str
) -> InvestorRelationship:
    """Who on the team knows this investor, how well, since when: figures as of now."""
    from shared.services import relationships

    return relationships.investor_relationship(
        wiring.store(), investor_id, now=wiring.clock().now()
    )


@api.route(
    "GET",
    "/contacts/<contact_id>/relationship",
    roles=ADMINS,
    response=ContactRelationship,
    tag="relationships",
)
def contact_relationship(
    request: flask.Request, caller: Caller, contact_id: str
) -> ContactRelationship:
    """The same figures for one contact: the mail that matched this contact."""
    from shared.services import relationships

    return relationships.contact_relationship(wiring.store(), contact_id, now=wiring.clock().now())


@api.route(
    "GET",
    "/investors/relationships",
    roles=ADMINS,
    query=RankedQuery,
    response=RankedPage,
    tag="relationships",
)
def ranked_investors(request: flask.Request, caller: Caller, query: RankedQuery) -> RankedPage:
    """Investors by strength or last contact (as of the last daily re-score), graveyard and
    deleted investors left out; follow ``next_page_token``."""
    from shared.services import relationships

    return relationships.ranked_investors(
        wiring.store(), query.sort, limit=query.limit, page_token=query.page_token
    )


@api.route(
    "GET", "/relationships/going-cold", roles=ADMINS, response=GoingColdList, tag="relationships"
)
def going_cold(request: flask.Request, caller: Caller) -> GoingColdList:
    """Investors with no two-way exchange for CRM_RELATIONSHIP_COLD_DAYS days, or whose
    strength fell by more than CRM_RELATIONSHIP_COLD_DROP points in 30 days."""
    from shared.services import relationships

    settings = wiring.get_settings()
    items = relationships.going_cold(
        wiring.store(),
        now=wiring.clock().now(),
        cold_days=settings.relationship_cold_days,
        cold_drop=settings.relationship_cold_drop,
    )
    return GoingColdList(
        cold_days=settings.relationship_cold_days,
        cold_drop=settings.relationship_cold_drop,
        items=items,
    )
