"""The SQLite Store, CRM records: organizations, investors, contacts, and the side tables that
index their addresses and domains."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from shared.adapters.sqlite.base import M, _dump, _load, _placeholders, _SqliteBase
from shared.domain.addresses import canonical_address
from shared.domain.models import (
    Contact,
    Investor,
    Organization,
    normalize_domain,
    stamped,
    time_key,
    utcnow,
)


class SqliteCrm(_SqliteBase):
    """CRM records: organizations, investors, contacts, and their address/domain keys."""

    @staticmethod
    def _put_keys(
        conn: sqlite3.Connection, kind: str, record_id: str, values: Iterable[str]
    ) -> None:
        conn.execute("DELETE FROM crm_keys WHERE kind = ? AND record_id = ?", (kind, record_id))
        conn.executemany(
            "INSERT OR IGNORE INTO crm_keys (kind, value, record_id) VALUES (?,?,?)",
            [(kind, value, record_id) for value in values],
        )

    def upsert_organization(self, organization: Organization) -> None:
        with self._write() as conn:
            organization = stamped(organization, utcnow())
            conn.execute(
                "INSERT OR REPLACE INTO organizations (id, deleted, updated_key, doc)"
                " VALUES (?,?,?,?)",
                (
                    organization.id,
                    int(organization.deleted),
                    time_key(organization.updated_at),
                    _dump(organization),
                ),
            )
            self._put_keys(conn, "organization_domain", organization.id, organization.domains)
            self._put_listing_keys(conn, organization)

    def upsert_investor(self, investor: Investor) -> None:
        investor = investor.revalidated()
        with self._write() as conn:
            investor = stamped(investor, utcnow())
            # An upsert, not a replace: the row's last-contact listing key survives an edit.
            conn.execute(
                "INSERT INTO investors"
                " (id, name_key, graveyard, deleted, organization_id, updated_key, doc)"
                " VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET name_key = excluded.name_key,"
                " graveyard = excluded.graveyard, deleted = excluded.deleted,"
                " organization_id = excluded.organization_id,"
                " updated_key = excluded.updated_key, doc = excluded.doc",
                (
                    investor.id,
                    investor.name_key,
                    int(investor.graveyard),
                    int(investor.deleted),
                    investor.organization_id or "",
                    time_key(investor.updated_at),
                    _dump(investor),
                ),
            )
            self._put_keys(conn, "investor_address", investor.id, investor.email_keys)
            self._put_keys(conn, "investor_domain", investor.id, investor.domains)
            self._put_listing_keys(conn, investor)

    def upsert_contact(self, contact: Contact) -> None:
        contact = contact.revalidated()
        with self._write() as conn:
            contact = stamped(contact, utcnow())
            conn.execute(
                "INSERT OR REPLACE INTO contacts (id, deleted, updated_key, doc) VALUES (?,?,?,?)",
                (contact.id, int(contact.deleted), time_key(contact.updated_at), _dump(contact)),
            )
            self._put_keys(conn, "contact_address", contact.id, contact.email_keys)
            self._put_listing_keys(conn, contact)

    def list_crm_updated_since(
        self, since: datetime
    ) -> tuple[list[Organization], list[Investor], list[Contact]]:
        key = time_key(since)
        return (
            self._many(
                Organization,
                "SELECT doc FROM organizations WHERE updated_key >= ? ORDER BY id",
                (key,),
            ),
            self._many(
                Investor, "SELECT doc FROM investors WHERE updated_key >= ? ORDER BY id", (key,)
            ),
            self._many(
                Contact, "SELECT doc FROM contacts WHERE updated_key >= ? ORDER BY id", (key,)
            ),
        )

    def _backfill_crm_updated_keys(self, conn: sqlite3.Connection) -> None:
        """Data step of the stamps' schema version: rows stored before it keep the
        ``updated_at`` their writer gave them."""
        tables: tuple[tuple[str, type[Organization] | type[Investor] | type[Contact]], ...] = (
            ("organizations", Organization),
            ("investors", Investor),
            ("contacts", Contact),
        )
        for table, cls in tables:
            rows = conn.execute(f"SELECT id, doc FROM {table}").fetchall()  # noqa: S608
            conn.executemany(
                f"UPDATE {table} SET updated_key = ? WHERE id = ?",  # noqa: S608
                [(time_key(_load(cls, doc).updated_at), record_id) for record_id, doc in rows],
            )

    def get_organization(self, organization_id: str) -> Organization | None:
        return self._one(
            Organization, "SELECT doc FROM organizations WHERE id = ?", (organization_id,)
        )

    def get_investor(self, investor_id: str) -> Investor | None:
        return self._one(Investor, "SELECT doc FROM investors WHERE id = ?", (investor_id,))

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._one(Contact, "SELECT doc FROM contacts WHERE id = ?", (contact_id,))

    def _find_by_keys(self, cls: type[M], table: str, kind: str, values: Iterable[str]) -> list[M]:
        keys = sorted(set(values))
        if not keys:
            return []
        sql = (
            f"SELECT t.doc FROM {table} t WHERE t.deleted = 0 AND t.id IN ("  # noqa: S608
            f" SELECT record_id FROM crm_keys WHERE kind = ? AND value IN ({_placeholders(keys)}))"
            " ORDER BY t.id"
        )
        return self._many(cls, sql, (kind, *keys))

    def find_contacts_by_addresses(self, addresses: Iterable[str]) -> list[Contact]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_by_keys(Contact, "contacts", "contact_address", keys)

    def find_investors_by_addresses(self, addresses: Iterable[str]) -> list[Investor]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_by_keys(Investor, "investors", "investor_address", keys)

    def find_organizations_by_domains(self, domains: Iterable[str]) -> list[Organization]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_by_keys(Organization, "organizations", "organization_domain", keys)

    def find_investors_by_domains(self, domains: Iterable[str]) -> list[Investor]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_by_keys(Investor, "investors", "investor_domain", keys)

    def find_investors_by_organizations(self, organization_ids: Iterable[str]) -> list[Investor]:
        keys = sorted({key for key in organization_ids if key})
        if not keys:
            return []
        return self._many(
            Investor,
            f"SELECT doc FROM investors WHERE deleted = 0"  # noqa: S608
            f" AND organization_id IN ({_placeholders(keys)}) ORDER BY id",
            keys,
        )

    def find_contacts_by_investors(self, investor_ids: Iterable[str]) -> list[Contact]:
        # No column of its own: asked only when an investor is created, deleted or restored,
        # and a fund's contacts are few enough to scan.
        keys = sorted({key for key in investor_ids if key})
        found: list[Contact] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found += self._many(
                Contact,
                "SELECT doc FROM contacts WHERE deleted = 0"  # noqa: S608
                f" AND json_extract(doc, '$.investor_id') IN ({_placeholders(chunk)})",
                chunk,
            )
        return sorted(found, key=lambda contact: contact.id)

    def list_investors(
        self, *, include_graveyard: bool = True, include_deleted: bool = False
    ) -> list[Investor]:
        clauses = []
        if not include_graveyard:
            clauses.append("graveyard = 0")
        if not include_deleted:
            clauses.append("deleted = 0")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._many(
            Investor,
            f"SELECT doc FROM investors {where} ORDER BY name_key, id",  # noqa: S608
        )
