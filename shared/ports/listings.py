"""The listings area of the store: the admin API's paged reads of CRM records, approved
activities and the audit trail, and the listing keys they sort on (``domain.listing_keys``).

Every listing is one query on either store (on Firestore, one declared index per filter and
sort combination), pages on a unique key of its own order, and says its order. Filters that
would need a query of their own in combination are exclusive: giving two raises
BadRequestError (``listing_keys.one_filter``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from shared.domain.listing_keys import InvestorSort
from shared.domain.models import Activity, AuditEntry, Contact, Investor, Organization
from shared.ports.paging import Page


class ListingStore(Protocol):
    """Paged lists for the admin API and exports (limits 1..``MAX_LIST_LIMIT``)."""

    def list_organization_page(
        self,
        *,
        name_prefix: str = "",
        domain: str = "",
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Organization]:
        """By name then id; ``name_prefix`` case-insensitive; ``domain`` one the organisation
        owns. Soft-deleted records only with ``include_deleted``."""
        ...

    def list_contact_page(
        self,
        *,
        name_prefix: str = "",
        address: str = "",
        domain: str = "",
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Contact]:
        """By name then id; ``address`` compared canonically (Gmail's dots and +tags folded),
        ``domain`` the domain of any of the contact's addresses; at most one of the two."""
        ...

    def list_investor_page(
        self,
        *,
        sort: InvestorSort = InvestorSort.NAME,
        name_prefix: str = "",
        include_graveyard: bool = True,
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Investor]:
        """By name then id, or by last contact newest first (never contacted last, by id
        descending). ``name_prefix`` only with the name sort; graveyard investors are listed
        unless ``include_graveyard`` is false."""
        ...

    def list_activity_page(
        self,
        *,
        investor_id: str | None = None,
        contact_id: str | None = None,
        account_id: str | None = None,
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Activity]:
        """Approved activities newest first by ``Activity.sort_key``; at most one of investor,
        contact and mailbox; ``occurred_from <= occurred < occurred_to``."""
        ...

    def list_audit_page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        at_from: datetime | None = None,
        at_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[AuditEntry]:
        """Audit entries newest first by ``AuditEntry.sort_key``; at most one of actor,
        action (the kind) and target; ``at_from <= at < at_to``."""
        ...

    def set_last_contact(self, investor_id: str, at: datetime | None) -> None:
        """Store an investor's last-contact listing key (a no-op for an unknown investor).
        Called by ``refresh_listing_keys`` and by whatever computes relationship figures."""
        ...

    def refresh_listing_keys(self, investor_ids: Iterable[str] | None = None) -> int:
        """Rewrite the listing keys of records written before they existed (Firestore) and
        re-derive investors' last contact from stored mail (``investor_ids``, or all);
        how many records changed."""
        ...
