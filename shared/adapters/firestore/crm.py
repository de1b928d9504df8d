"""The Firestore Store's CRM records: organizations, investors, contacts (``shared.ports.crm``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    CONTACTS,
    INVESTORS,
    MAX_DISJUNCTIONS,
    ORGANIZATIONS,
    M,
    _chunks,
    _document,
    _model,
    _Query,
)
from shared.adapters.firestore.listings import listing_fields
from shared.domain.addresses import canonical_address
from shared.domain.listing_keys import last_contact_key
from shared.domain.models import (
    Contact,
    Investor,
    Organization,
    normalize_domain,
    stamped,
    utcnow,
)


class CrmMixin(FirestoreBase):
    """The CRM records: organizations, investors, contacts."""

    def upsert_organization(self, organization: Organization) -> None:
        organization = stamped(organization, utcnow())
        self._ref(ORGANIZATIONS, organization.id).set(
            _document(organization, **listing_fields(organization))
        )
        self._count_write(ORGANIZATIONS)

    def upsert_investor(self, investor: Investor) -> None:
        self._write_investor(investor.revalidated())

    def upsert_contact(self, contact: Contact) -> None:
        contact = stamped(contact.revalidated(), utcnow())
        self._ref(CONTACTS, contact.id).set(_document(contact, **listing_fields(contact)))
        self._count_write(CONTACTS)

    def _write_investor(self, investor: Investor) -> None:
        """The investor's document with its listing keys; the last contact is read from the
        stored document in the same transaction, so an edit never loses it."""
        ref = self._ref(INVESTORS, investor.id)

        def write_investor(transaction: firestore.Transaction) -> None:
            snapshot = ref.get(transaction=transaction)
            stored = (snapshot.to_dict() or {}) if snapshot.exists else {}
            last = stored.get("last_contact_key") or last_contact_key(None, investor.id)
            # Stamped in the attempt that commits: a retried transaction stamps again.
            written = stamped(investor, utcnow())
            transaction.set(
                ref, _document(written, **listing_fields(written), last_contact_key=last)
            )

        self._transact(write_investor)

    def list_crm_updated_since(
        self, since: datetime
    ) -> tuple[list[Organization], list[Investor], list[Contact]]:
        """One range query per collection on ``updated_at`` (its automatic single-field
        index), deleted records included."""
        return (
            self._updated_since(Organization, ORGANIZATIONS, since),
            self._updated_since(Investor, INVESTORS, since),
            self._updated_since(Contact, CONTACTS, since),
        )

    def _updated_since(self, cls: type[M], collection: str, since: datetime) -> list[M]:
        found = self._query_models(cls, _Query(collection, range=("updated_at", ">=", since)))
        return sorted(found, key=lambda record: str(getattr(record, "id", "")))

    def get_organization(self, organization_id: str) -> Organization | None:
        return self._get(Organization, ORGANIZATIONS, organization_id)

    def get_investor(self, investor_id: str) -> Investor | None:
        return self._get(Investor, INVESTORS, investor_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._get(Contact, CONTACTS, contact_id)

    def _find_live(
        self, cls: type[M], collection: str, array_field: str, keys: Iterable[str]
    ) -> list[M]:
        """Live (``deleted == false``) records whose ``array_field`` holds any key, by id.

        One query per 30 keys (Firestore's disjunction limit), merged: a record matching keys
        of two chunks comes back twice and is kept once.
        """
        wanted = sorted(set(keys))
        found: dict[str, M] = {}
        for chunk in _chunks(wanted, MAX_DISJUNCTIONS):
            spec = _Query(
                collection,
                equals=(("deleted", False),),
                contains_any=(array_field, tuple(chunk)),
            )
            for snapshot in self._query(spec):
                # The document id is the record's id, so it deduplicates across chunks.
                found[snapshot.id] = _model(cls, snapshot.to_dict() or {})
        return [found[key] for key in sorted(found)]

    def find_contacts_by_addresses(self, addresses: Iterable[str]) -> list[Contact]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_live(Contact, CONTACTS, "email_keys", keys)

    def find_investors_by_addresses(self, addresses: Iterable[str]) -> list[Investor]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_live(Investor, INVESTORS, "email_keys", keys)

    def find_organizations_by_domains(self, domains: Iterable[str]) -> list[Organization]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_live(Organization, ORGANIZATIONS, "domains", keys)

    def find_investors_by_domains(self, domains: Iterable[str]) -> list[Investor]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_live(Investor, INVESTORS, "domains", keys)

    def find_investors_by_organizations(self, organization_ids: Iterable[str]) -> list[Investor]:
        wanted = sorted({key for key in organization_ids if key})
        found: dict[str, Investor] = {}
        for chunk in _chunks(wanted, MAX_DISJUNCTIONS):
            spec = _Query(
                INVESTORS, equals=(("deleted", False),), one_of=("organization_id", tuple(chunk))
            )
            for investor in self._query_models(Investor, spec):
                found[investor.id] = investor
        return [found[key] for key in sorted(found)]

    def find_contacts_by_investors(self, investor_ids: Iterable[str]) -> list[Contact]:
        """Equality filters only (``deleted ==``, ``investor_id in``): merged single-field
        indexes serve it, as for investors by organisation."""
        wanted = sorted({key for key in investor_ids if key})
        found: dict[str, Contact] = {}
        for chunk in _chunks(wanted, MAX_DISJUNCTIONS):
            spec = _Query(
                CONTACTS, equals=(("deleted", False),), one_of=("investor_id", tuple(chunk))
            )
            for contact in self._query_models(Contact, spec):
                found[contact.id] = contact
        return [found[key] for key in sorted(found)]

    def list_investors(
        self, *, include_graveyard: bool = True, include_deleted: bool = False
    ) -> list[Investor]:
        """Sorted by ``name_key`` then id. Equality filters only (served by merged single-field
        indexes) and the sort done here: a fund's investor list is hundreds to a few thousand
        records, and the picker wants all of them."""
        equals: list[tuple[str, Any]] = []
        if not include_graveyard:
            equals.append(("graveyard", False))
        if not include_deleted:
            equals.append(("deleted", False))
        investors = self._query_models(Investor, _Query(INVESTORS, equals=tuple(equals)))
        return sorted(investors, key=lambda i: (i.name_key, i.id))
