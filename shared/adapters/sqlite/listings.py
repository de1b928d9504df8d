"""The SQLite Store, listings: the admin lists' pages and the listing keys they sort on
(columns beside each row's ``doc``, written with the row; ``shared.domain.listing_keys``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from shared.adapters.sqlite.base import M, _dump, _load, _placeholders, _SqliteBase
from shared.domain.listing_keys import (
    INVESTOR_SORT_FIELDS,
    InvestorSort,
    address_filter,
    check_investor_search,
    check_list_limit,
    contact_domains,
    domain_filter,
    investor_page_key,
    last_contact_key,
    name_listing_key,
    name_page_key,
    name_prefix_bounds,
    one_filter,
)
from shared.domain.models import (
    Activity,
    AuditEntry,
    Contact,
    Investor,
    Organization,
)
from shared.domain.paging import encode_page_token, proposal_window_keys, split_time_id_key
from shared.ports import Page

_TABLES: dict[type, str] = {
    Organization: "organizations",
    Investor: "investors",
    Contact: "contacts",
}


class SqliteListings(_SqliteBase):
    """The admin lists and their keys."""

    # -- keys, written by the CRM and proposals areas with their rows -----------------------

    def _put_listing_keys(
        self, conn: sqlite3.Connection, record: Organization | Investor | Contact
    ) -> None:
        table = _TABLES[type(record)]
        name = name_listing_key(record.name, record.id)
        conn.execute(
            f"UPDATE {table} SET listing_name = ? WHERE id = ?",  # noqa: S608
            (name, record.id),
        )
        if isinstance(record, Investor):
            conn.execute(
                "UPDATE investors SET last_contact_key = ? WHERE id = ? AND last_contact_key = ''",
                (last_contact_key(None, record.id), record.id),
            )
        if isinstance(record, Contact):
            conn.execute(
                "DELETE FROM crm_keys WHERE kind = 'contact_domain' AND record_id = ?",
                (record.id,),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO crm_keys (kind, value, record_id)"
                " VALUES ('contact_domain', ?, ?)",
                [(domain, record.id) for domain in contact_domains(record.emails)],
            )

    @staticmethod
    def _put_activity_row(conn: sqlite3.Connection, activity: Activity) -> None:
        conn.execute(
            "INSERT INTO activities (id, investor_id, contact_id, account_id, sort_key, doc)"
            " VALUES (?,?,?,?,?,?)",
            (
                activity.id,
                activity.investor_id,
                activity.contact_id or "",
                activity.account_id or "",
                activity.sort_key,
                _dump(activity),
            ),
        )

    def _backfill_listing_keys(self, conn: sqlite3.Connection) -> None:
        """Data step of the listings' schema version: keys of the rows stored before it.
        Activities approved before ``Activity.account_id`` take their proposal's mailbox."""
        records: tuple[type[Organization] | type[Investor] | type[Contact], ...] = (
            Organization,
            Investor,
            Contact,
        )
        for cls in records:
            table = _TABLES[cls]
            rows = conn.execute(f"SELECT doc FROM {table}").fetchall()  # noqa: S608
            for (doc,) in rows:
                self._put_listing_keys(conn, _load(cls, doc))
        for (doc,) in conn.execute("SELECT doc FROM activities").fetchall():
            activity = _load(Activity, doc)
            if activity.account_id is None:
                row = conn.execute(
                    "SELECT account_id FROM proposals WHERE id = ?", (activity.proposal_id,)
                ).fetchone()
                if row and row[0]:
                    activity = activity.model_copy(update={"account_id": row[0]})
            conn.execute("DELETE FROM activities WHERE id = ?", (activity.id,))
            self._put_activity_row(conn, activity)
        self._refresh_last_contact(conn, None)

    def _refresh_last_contact(
        self, conn: sqlite3.Connection, investor_ids: list[str] | None
    ) -> int:
        """Each investor's newest listed mail (the panel's rows: linked, held by a live
        sighting), by the panel's own key, into its last-contact key."""
        where = ""
        params: list[object] = []
        if investor_ids is not None:
            if not investor_ids:
                return 0
            where = f"WHERE i.id IN ({_placeholders(investor_ids)})"
            params = list(investor_ids)
        rows = conn.execute(
            "SELECT i.id, i.last_contact_key, (SELECT max(a.activity_key)"  # noqa: S608
            " FROM investor_links l JOIN activity a ON a.email_id = l.email_id"
            f" WHERE l.investor_id = i.id) FROM investors i {where}",
            params,
        ).fetchall()
        changed = 0
        for investor_id, stored, newest in rows:
            at = split_time_id_key(newest)[0] if newest else None
            key = last_contact_key(at, investor_id)
            if key != stored:
                conn.execute(
                    "UPDATE investors SET last_contact_key = ? WHERE id = ?", (key, investor_id)
                )
                changed += 1
        return changed

    def set_last_contact(self, investor_id: str, at: datetime | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE investors SET last_contact_key = ? WHERE id = ?",
                (last_contact_key(at, investor_id), investor_id),
            )

    def refresh_listing_keys(self, investor_ids: Iterable[str] | None = None) -> int:
        # Rows always get their keys as they are written (and the migration's data step
        # filled the older ones): only the last contact can be behind on SQLite.
        wanted = sorted(set(investor_ids)) if investor_ids is not None else None
        with self._write() as conn:
            return self._refresh_last_contact(conn, wanted)

    # -- pages -----------------------------------------------------------------------------

    def _name_page(
        self,
        cls: type[M],
        *,
        key_filter: tuple[str, str] | None,
        name_prefix: str,
        include_deleted: bool,
        limit: int,
        page_token: str,
        include_graveyard: bool = True,
    ) -> Page[M]:
        """One page by ``listing_name``: optionally only records holding a crm_keys value."""
        check_list_limit(limit)
        table = _TABLES[cls]
        clauses: list[str] = []
        params: list[object] = []
        if not include_deleted:
            clauses.append("t.deleted = 0")
        if not include_graveyard:
            clauses.append("t.graveyard = 0")
        if key_filter is not None:
            clauses.append("t.id IN (SELECT record_id FROM crm_keys WHERE kind = ? AND value = ?)")
            params += key_filter
        if name_prefix:
            lower, upper = name_prefix_bounds(name_prefix)
            clauses += ["t.listing_name >= ?", "t.listing_name < ?"]
            params += [lower, upper]
        if page_token:
            clauses.append("t.listing_name > ?")
            params.append(name_page_key(page_token))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._connection()
            .execute(
                f"SELECT t.listing_name, t.doc FROM {table} t {where}"  # noqa: S608
                " ORDER BY t.listing_name LIMIT ?",
                (*params, limit + 1),
            )
            .fetchall()
        )
        return _page(cls, rows, limit)

    def list_organization_page(
        self,
        *,
        name_prefix: str = "",
        domain: str = "",
        include_deleted: bool = False,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Organization]:
        key_filter = ("organization_domain", domain_filter(domain)) if domain else None
        return self._name_page(
            Organization,
            key_filter=key_filter,
            name_prefix=name_prefix,
            include_deleted=include_deleted,
            limit=limit,
            page_token=page_token,
        )

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
        one_filter(address=address, domain=domain)
        key_filter = None
        if address:
            key_filter = ("contact_address", address_filter(address))
        elif domain:
            key_filter = ("contact_domain", domain_filter(domain))
        return self._name_page(
            Contact,
            key_filter=key_filter,
            name_prefix=name_prefix,
            include_deleted=include_deleted,
            limit=limit,
            page_token=page_token,
        )

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
        check_investor_search(sort, name_prefix)
        if sort is InvestorSort.NAME:
            return self._name_page(
                Investor,
                key_filter=None,
                name_prefix=name_prefix,
                include_deleted=include_deleted,
                include_graveyard=include_graveyard,
                limit=limit,
                page_token=page_token,
            )
        check_list_limit(limit)
        column, descending = INVESTOR_SORT_FIELDS[sort]
        clauses: list[str] = [] if include_deleted else ["deleted = 0"]
        if not include_graveyard:
            clauses.append("graveyard = 0")
        params: list[object] = []
        if page_token:
            clauses.append(f"{column} {'<' if descending else '>'} ?")
            params.append(investor_page_key(sort, page_token))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._connection()
            .execute(
                f"SELECT {column}, doc FROM investors {where}"  # noqa: S608
                f" ORDER BY {column} {'DESC' if descending else 'ASC'} LIMIT ?",
                (*params, limit + 1),
            )
            .fetchall()
        )
        return _page(Investor, rows, limit)

    def _time_page(
        self,
        cls: type[M],
        table: str,
        equals: Sequence[tuple[str, str]],
        window: tuple[datetime | None, datetime | None],
        limit: int,
        page_token: str,
    ) -> Page[M]:
        check_list_limit(limit)
        clauses = [f"{column} = ?" for column, _ in equals]
        params: list[object] = [value for _, value in equals]
        lower, upper = proposal_window_keys(window[0], window[1], page_token)
        if lower is not None:
            clauses.append("sort_key >= ?")
            params.append(lower)
        if upper is not None:
            clauses.append("sort_key < ?")
            params.append(upper)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._connection()
            .execute(
                f"SELECT sort_key, doc FROM {table} {where}"  # noqa: S608
                " ORDER BY sort_key DESC LIMIT ?",
                (*params, limit + 1),
            )
            .fetchall()
        )
        return _page(cls, rows, limit)

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
        given = {"investor_id": investor_id, "contact_id": contact_id, "account_id": account_id}
        name = one_filter(**given)
        equals = [(name, str(given[name]))] if name else []
        return self._time_page(
            Activity, "activities", equals, (occurred_from, occurred_to), limit, page_token
        )

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
        given = {"actor": actor, "action": action, "target": target}
        name = one_filter(**given)
        equals = [(name, str(given[name]))] if name else []
        return self._time_page(AuditEntry, "audit", equals, (at_from, at_to), limit, page_token)


def _page(cls: type[M], rows: list[tuple[str, str]], limit: int) -> Page[M]:
    """The first ``limit`` rows as models; the token is the last one's key if more follow."""
    items = [_load(cls, doc) for _, doc in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_page_token(rows[limit - 1][0]) if more else "")
