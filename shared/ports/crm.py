"""The CRM records area of the store: organisations, investors and contacts, and their look-ups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from shared.domain.models import Contact, Investor, Organization


class CrmStore(Protocol):
    """CRM records by id, and the look-ups matching makes (live records only)."""

    def upsert_organization(self, organization: Organization) -> None: ...
    def upsert_investor(self, investor: Investor) -> None: ...
    def upsert_contact(self, contact: Contact) -> None: ...
    def list_crm_updated_since(
        self, since: datetime
    ) -> tuple[list[Organization], list[Investor], list[Contact]]:
        """The records (deleted ones too) whose ``updated_at`` is at or after ``since``, each
        list by id. The store stamps ``updated_at`` on every write (``stamped``): what the
        digest asks to know which names it carries have changed."""
        ...

    def get_organization(self, organization_id: str) -> Organization | None: ...
    def get_investor(self, investor_id: str) -> Investor | None: ...
    def get_contact(self, contact_id: str) -> Contact | None: ...
    def find_contacts_by_addresses(self, addresses: Iterable[str]) -> list[Contact]:
        """Live contacts holding any of the addresses, compared canonically (Gmail's dots and
        +tags folded, ``email_keys``), by id."""
        ...

    def find_investors_by_addresses(self, addresses: Iterable[str]) -> list[Investor]:
        """Live investors whose own address list holds any of the addresses."""
        ...

    def find_organizations_by_domains(self, domains: Iterable[str]) -> list[Organization]:
        """Live organisations owning any of the domains."""
        ...

    def find_investors_by_domains(self, domains: Iterable[str]) -> list[Investor]: ...
    def find_investors_by_organizations(self, organization_ids: Iterable[str]) -> list[Investor]:
        """Live investors belonging to any of the organisations, by id."""
        ...

    def find_contacts_by_investors(self, investor_ids: Iterable[str]) -> list[Contact]:
        """Live contacts of any of the investors, by id (what an investor's deletion or
        restoration changes for matching)."""
        ...

    def list_investors(
        self, *, include_graveyard: bool = True, include_deleted: bool = False
    ) -> list[Investor]:
        """Sorted by name (case-insensitive), then id."""
        ...
