"""The admin lists (admins only): organisations, contacts and investors, approved activities,
one investor's timeline, and the audit trail.

Each list is one indexed query on either store (``shared.ports.listings``; which filter and
sort combinations exist is in ``docs/admin-api-read.md``). Filters that are each their own query
are exclusive: two of them answer 400 naming both. Pages are newest first for activities and
the audit trail, by name (or last contact) for records; ``next_page_token`` resumes.
"""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import AddressText, ApiModel, IdText, NameText, PageQuery
from functions.admin_api import api
from shared import wiring
from shared.domain.listing_keys import InvestorSort
from shared.domain.models import Activity, AuditEntry, Caller, Contact, Investor, Organization
from shared.domain.proposal_requests import Instant
from shared.domain.timeline import TimelinePage
from shared.services import timeline
from shared.web import ADMINS

_DELETED = "Include soft-deleted records."
_PREFIX = "Names starting with this (case-insensitive)."


class OrganizationQuery(PageQuery):
    name_prefix: NameText = Field(default="", description=_PREFIX)
    domain: NameText = Field(default="", description="Organisations owning this domain.")
    include_deleted: bool = Field(default=False, description=_DELETED)


class ContactQuery(PageQuery):
    name_prefix: NameText = Field(default="", description=_PREFIX)
    address: AddressText = Field(
        default="", description="Contacts holding this address (Gmail dots and +tags folded)."
    )
    domain: NameText = Field(
        default="", description="Contacts with an address at this domain (not with address)."
    )
    include_deleted: bool = Field(default=False, description=_DELETED)


class InvestorQuery(PageQuery):
    sort: InvestorSort = Field(
        default=InvestorSort.NAME,
        description="name (A-Z), or last_contact (newest first, never contacted last).",
    )
    name_prefix: NameText = Field(default="", description=_PREFIX + " Only with sort=name.")
    include_graveyard: bool = Field(default=True, description="Include graveyard investors.")
    include_deleted: bool = Field(default=False, description=_DELETED)


class ActivityListQuery(PageQuery):
    investor_id: IdText | None = None
    contact_id: IdText | None = None
    account_id: IdText | None = Field(
        default=None, description="The mailbox whose capture proposed it."
    )
    occurred_from: Instant | None = Field(
        default=None, description="Occurred at or after this time (RFC 3339, with a zone)."
    )
    occurred_to: Instant | None = Field(
        default=None, description="Occurred before this time (RFC 3339, with a zone)."
    )


class AuditQuery(PageQuery):
    actor: NameText | None = Field(default=None, description="Who: the caller's address.")
    action: NameText | None = Field(
        default=None, description="The kind of entry (proposal.approved, export, ...)."
    )
    target: NameText | None = Field(default=None, description="What it acted on (an id).")
    at_from: Instant | None = Field(default=None, description="At or after (RFC 3339).")
    at_to: Instant | None = Field(default=None, description="Before (RFC 3339).")


class OrganizationPage(ApiModel):
    items: list[Organization]
    next_page_token: str = ""


class ContactPage(ApiModel):
    items: list[Contact]
    next_page_token: str = ""


class InvestorPage(ApiModel):
    items: list[Investor]
    next_page_token: str = ""


class ApprovedActivityPage(ApiModel):
    items: list[Activity]
    next_page_token: str = ""


class AuditPage(ApiModel):
    items: list[AuditEntry]
    next_page_token: str = ""


@api.route(
    "GET",
    "/organizations",
    roles=ADMINS,
    query=OrganizationQuery,
    response=OrganizationPage,
    tag="lists",
)
def list_organizations(
    request: flask.Request, caller: Caller, query: OrganizationQuery
) -> OrganizationPage:
    """Organisations by name, searched by name prefix and domain."""
    page = wiring.store().list_organization_page(
        name_prefix=query.name_prefix,
        domain=query.domain,
        include_deleted=query.include_deleted,
        limit=query.limit,
        page_token=query.page_token,
    )
    return OrganizationPage(items=page.items, next_page_token=page.next_token)


@api.route("GET", "/contacts", roles=ADMINS, query=ContactQuery, response=ContactPage, tag="lists")
def list_contacts(request: flask.Request, caller: Caller, query: ContactQuery) -> ContactPage:
    """Contacts by name, searched by name prefix, address or domain."""
    page = wiring.store().list_contact_page(
        name_prefix=query.name_prefix,
        address=query.address,
        domain=query.domain,
        include_deleted=query.include_deleted,
        limit=query.limit,
        page_token=query.page_token,
    )
    return ContactPage(items=page.items, next_page_token=page.next_token)


@api.route(
    "GET", "/investors", roles=ADMINS, query=InvestorQuery, response=InvestorPage, tag="lists"
)
def list_investors(request: flask.Request, caller: Caller, query: InvestorQuery) -> InvestorPage:
    """Investors by name or by last contact, searched by name prefix (graveyard included
    unless asked not)."""
    page = wiring.store().list_investor_page(
        sort=query.sort,
        name_prefix=query.name_prefix,
        include_graveyard=query.include_graveyard,
        include_deleted=query.include_deleted,
        limit=query.limit,
        page_token=query.page_token,
    )
    return InvestorPage(items=page.items, next_page_token=page.next_token)


@api.route(
    "GET",
    "/activities",
    roles=ADMINS,
    query=ActivityListQuery,
    response=ApprovedActivityPage,
    tag="lists",
)
def list_activities(
    request: flask.Request, caller: Caller, query: ActivityListQuery
) -> ApprovedActivityPage:
    """Approved activities, newest first, by investor, contact or mailbox and date range."""
    page = wiring.store().list_activity_page(
        investor_id=query.investor_id or None,
        contact_id=query.contact_id or None,
        account_id=query.account_id or None,
        occurred_from=query.occurred_from,
        occurred_to=query.occurred_to,
        limit=query.limit,
        page_token=query.page_token,
    )
    return ApprovedActivityPage(items=page.items, next_page_token=page.next_token)


@api.route(
    "GET",
    "/investors/<investor_id>/timeline",
    roles=ADMINS,
    query=PageQuery,
    response=TimelinePage,
    tag="lists",
)
def investor_timeline(
    request: flask.Request, caller: Caller, query: PageQuery, investor_id: str
) -> TimelinePage:
    """One investor's approved activities and matched mail, newest first; 404 if unknown."""
    return timeline.timeline(
        wiring.store(), investor_id, limit=query.limit, page_token=query.page_token
    )


@api.route("GET", "/audit", roles=ADMINS, query=AuditQuery, response=AuditPage, tag="lists")
def list_audit(request: flask.Request, caller: Caller, query: AuditQuery) -> AuditPage:
    """The audit trail, newest first, by actor, kind or target and date range."""
    page = wiring.store().list_audit_page(
        actor=query.actor or None,
        action=query.action or None,
        target=query.target or None,
        at_from=query.at_from,
        at_to=query.at_to,
        limit=query.limit,
        page_token=query.page_token,
    )
    return AuditPage(items=page.items, next_page_token=page.next_token)
