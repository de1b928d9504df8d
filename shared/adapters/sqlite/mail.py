"""The SQLite Store, mail: emails, sightings, capture problems, investor links."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from shared.adapters.sqlite.base import _dump, _load, _placeholders, _SqliteBase
from shared.domain.models import (
    CaptureProblem,
    Correction,
    Email,
    InvestorLink,
    Sighting,
    check_capture,
    normalize_address,
    normalize_domain,
    sighting_id_for,
    utcnow,
)
from shared.domain.paging import (
    check_limit,
    encode_page_token,
    matched_window_keys,
)
from shared.errors import NotFoundError
from shared.ports import Page


class SqliteMail(_SqliteBase):
    """Mail: emails, sightings, capture problems, investor links."""

    def _refresh_email(self, conn: sqlite3.Connection, email: Email) -> Email:
        """Recompute the denormalised fields from sightings and links, inside the caller's
        transaction, and write the email, its panel rows and its relationship rows (mail with
        no link has none, and had none unless it was linked when last written)."""
        had_links = bool(email.investor_ids)
        sightings = [
            _load(Sighting, row[0])
            for row in conn.execute("SELECT doc FROM sightings WHERE email_id = ?", (email.id,))
        ]
        links = [
            _load(InvestorLink, row[0])
            for row in conn.execute(
                "SELECT doc FROM investor_links WHERE email_id = ?", (email.id,)
            )
        ]
        email = email.denormalised(sightings, links, at=utcnow())
        conn.execute(
            "INSERT OR REPLACE INTO emails (id, matched, matched_key, doc) VALUES (?,?,?,?)",
            (email.id, int(email.matched), email.matched_key, _dump(email)),
        )
        self._sync_activity(conn, email)
        if links or had_links:
            self._sync_contributions(conn, email, email.id, sightings, links)
        return email

    def _stored_email(self, conn: sqlite3.Connection, email_id: str) -> Email | None:
        row = conn.execute("SELECT doc FROM emails WHERE id = ?", (email_id,)).fetchone()
        return _load(Email, row[0]) if row else None

    def upsert_email(self, email: Email) -> bool:
        with self._write() as conn:
            stored = self._stored_email(conn, email.id)
            self._after_read("upsert_email")
            merged = email.merged_into(stored)
            self._put_participants(conn, merged)
            self._refresh_email(conn, merged)
            return stored is None

    def update_email(self, email_id: str, change: Callable[[Email], Email | None]) -> Email | None:
        with self._write() as conn:
            stored = self._stored_email(conn, email_id)
            self._after_read("update_email")
            if stored is None:
                return None
            changed = change(stored)
            if changed is None:
                return stored
            if changed.id != stored.id:
                raise ValueError("update_email cannot change an email's id")
            merged = changed.merged_into(stored)
            self._put_participants(conn, merged)
            return self._refresh_email(conn, merged)

    @staticmethod
    def _put_participants(conn: sqlite3.Connection, email: Email) -> None:
        conn.execute("DELETE FROM email_participants WHERE email_id = ?", (email.id,))
        conn.executemany(
            "INSERT OR IGNORE INTO email_participants (kind, value, email_id) VALUES (?,?,?)",
            [("address", a, email.id) for a in email.participant_addresses]
            + [("domain", d, email.id) for d in email.participant_domains],
        )

    def get_email(self, email_id: str) -> Email | None:
        return self._one(Email, "SELECT doc FROM emails WHERE id = ?", (email_id,))

    def get_emails(self, email_ids: Iterable[str]) -> dict[str, Email]:
        wanted = sorted(set(email_ids))
        found: dict[str, Email] = {}
        # SQLite allows 32,766 parameters; stay far below it.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for email in self._many(
                Email,
                f"SELECT doc FROM emails WHERE id IN ({_placeholders(chunk)})",  # noqa: S608
                chunk,
            ):
                found[email.id] = email
        return found

    def list_emails(self, *, limit: int = 500, after_id: str = "") -> list[Email]:
        check_limit(limit)
        return self._many(
            Email, "SELECT doc FROM emails WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )

    def list_emails_matched_between(
        self, since: datetime, until: datetime, *, limit: int = 500, page_token: str = ""
    ) -> Page[Email]:
        check_limit(limit)
        lower, upper = matched_window_keys(since, until, page_token)
        rows = self._many(
            Email,
            "SELECT doc FROM emails WHERE matched_key > ? AND matched_key <= ?"
            " ORDER BY matched_key LIMIT ?",
            (lower, upper, limit + 1),
        )
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(items[-1].matched_key) if more else "")

    def record_sighting(self, sighting: Sighting) -> bool:
        with self._write() as conn:
            email = self._stored_email(conn, sighting.email_id)
            if email is None:
                raise NotFoundError("sighting of an unknown email", email_id=sighting.email_id)
            self._refuse_offboarded(conn, sighting.account_id)
            existed = conn.execute(
                "SELECT 1 FROM sightings WHERE id = ?", (sighting.id,)
            ).fetchone()
            self._after_read("record_sighting")
            self._put_sighting(conn, sighting)
            self._refresh_email(conn, email)
            return existed is None

    def record_capture(
        self, email: Email, sighting: Sighting, links: Sequence[InvestorLink] = ()
    ) -> bool:
        check_capture(email, sighting, links)
        with self._write() as conn:
            stored = self._stored_email(conn, email.id)
            self._refuse_offboarded(conn, sighting.account_id)
            self._after_read("record_capture")
            merged = email.merged_into(stored)
            self._put_participants(conn, merged)
            corrected = stored.corrected_investor_ids if stored is not None else frozenset()
            wanted = [link for link in links if link.investor_id not in corrected]
            ids = [link.id for link in wanted]
            known = (
                {
                    link.id: link
                    for link in self._many(
                        InvestorLink,
                        f"SELECT doc FROM investor_links WHERE id IN ({_placeholders(ids)})",  # noqa: S608
                        ids,
                    )
                }
                if stored is not None and ids
                else {}
            )
            for link in wanted:
                before = known.get(link.id)
                if before is None:
                    conn.execute(
                        "INSERT OR IGNORE INTO investor_links (id, email_id, investor_id, doc)"
                        " VALUES (?,?,?,?)",
                        (link.id, link.email_id, link.investor_id, _dump(link)),
                    )
                elif (named := before.with_names_from(link)) is not None:
                    # As link_email_to_investor: a link written before names gets them once.
                    conn.execute(
                        "UPDATE investor_links SET doc = ? WHERE id = ?", (_dump(named), link.id)
                    )
            self._put_sighting(conn, sighting)
            self._refresh_email(conn, merged)
            return stored is None

    @staticmethod
    def _put_sighting(conn: sqlite3.Connection, sighting: Sighting) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO sightings"
            " (id, account_id, gmail_message_id, email_id, deleted, thread_id, doc)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                sighting.id,
                sighting.account_id,
                sighting.gmail_message_id,
                sighting.email_id,
                int(sighting.deleted),
                sighting.thread_id,
                _dump(sighting),
            ),
        )

    def set_sighting_deleted(self, account_id: str, gmail_message_id: str, deleted: bool) -> bool:
        sighting_id = sighting_id_for(account_id, gmail_message_id)
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM sightings WHERE id = ?", (sighting_id,)).fetchone()
            if row is None:
                return False
            sighting = _load(Sighting, row[0])
            if not deleted:
                self._refuse_offboarded(conn, account_id)
            email = self._stored_email(conn, sighting.email_id)
            self._after_read("set_sighting_deleted")
            if sighting.deleted != deleted:
                sighting = sighting.model_copy(
                    update={"deleted": deleted, "deleted_at": utcnow() if deleted else None}
                )
                conn.execute(
                    "UPDATE sightings SET deleted = ?, doc = ? WHERE id = ?",
                    (int(deleted), _dump(sighting), sighting_id),
                )
            if email is not None:
                self._refresh_email(conn, email)
            return True

    def get_sighting(self, account_id: str, gmail_message_id: str) -> Sighting | None:
        return self._one(
            Sighting,
            "SELECT doc FROM sightings WHERE id = ?",
            (sighting_id_for(account_id, gmail_message_id),),
        )

    def list_sightings(self, email_id: str) -> list[Sighting]:
        return self._many(
            Sighting, "SELECT doc FROM sightings WHERE email_id = ? ORDER BY id", (email_id,)
        )

    def sighted_message_ids(self, account_id: str, gmail_message_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(gmail_message_ids))
        found: set[str] = set()
        # SQLite allows 32,766 parameters; stay far below it.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._connection().execute(
                "SELECT gmail_message_id FROM sightings WHERE account_id = ?"  # noqa: S608
                f" AND gmail_message_id IN ({_placeholders(chunk)})",
                (account_id, *chunk),
            )
            found.update(row[0] for row in rows)
        return found

    def record_capture_problem(self, problem: CaptureProblem) -> CaptureProblem:
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM capture_problems WHERE account_id = ? AND gmail_message_id = ?",
                (problem.account_id, problem.gmail_message_id),
            ).fetchone()
            self._after_read("record_capture_problem")
            stored = problem.counted_after(_load(CaptureProblem, row[0]) if row else None)
            conn.execute(
                "INSERT OR REPLACE INTO capture_problems (account_id, gmail_message_id, doc)"
                " VALUES (?,?,?)",
                (stored.account_id, stored.gmail_message_id, _dump(stored)),
            )
            return stored

    def list_capture_problems(self, account_id: str, *, limit: int = 100) -> list[CaptureProblem]:
        check_limit(limit)
        return self._many(
            CaptureProblem,
            "SELECT doc FROM capture_problems WHERE account_id = ?"
            " ORDER BY gmail_message_id LIMIT ?",
            (account_id, limit),
        )

    def clear_capture_problem(self, account_id: str, gmail_message_id: str) -> bool:
        with self._write() as conn:
            removed = conn.execute(
                "DELETE FROM capture_problems WHERE account_id = ? AND gmail_message_id = ?",
                (account_id, gmail_message_id),
            ).rowcount
        return bool(removed)

    def link_email_to_investor(self, link: InvestorLink) -> bool:
        with self._write() as conn:
            email = self._stored_email(conn, link.email_id)
            if email is None:
                raise NotFoundError("link of an unknown email", email_id=link.email_id)
            existed = conn.execute(
                "SELECT doc FROM investor_links WHERE id = ?", (link.id,)
            ).fetchone()
            self._after_read("link_email_to_investor")
            if link.investor_id in email.corrected_investor_ids:
                return False
            if existed is None:
                conn.execute(
                    "INSERT INTO investor_links (id, email_id, investor_id, doc) VALUES (?,?,?,?)",
                    (link.id, link.email_id, link.investor_id, _dump(link)),
                )
            else:
                named = _load(InvestorLink, existed[0]).with_names_from(link)
                if named is not None:
                    conn.execute(
                        "UPDATE investor_links SET doc = ? WHERE id = ?", (_dump(named), link.id)
                    )
            self._refresh_email(conn, email)
            return existed is None

    def unlink_email_from_investor(self, email_id: str, investor_id: str) -> int:
        with self._write() as conn:
            email = self._stored_email(conn, email_id)
            self._after_read("unlink_email_from_investor")
            removed = conn.execute(
                "DELETE FROM investor_links WHERE email_id = ? AND investor_id = ?",
                (email_id, investor_id),
            ).rowcount
            if email is not None and removed:
                refreshed = self._refresh_email(conn, email)
                purged = refreshed.without_text_if_unmatched()
                if purged is not refreshed:
                    self._refresh_email(conn, purged)
            return int(removed)

    def set_email_correction(
        self, email_id: str, investor_id: str, correction: Correction | None
    ) -> Email | None:
        with self._write() as conn:
            stored = self._stored_email(conn, email_id)
            self._after_read("set_email_correction")
            if stored is None:
                return None
            return self._refresh_email(conn, stored.with_correction(investor_id, correction))

    def list_thread_sightings(
        self, account_id: str, thread_id: str, *, limit: int = 100
    ) -> list[Sighting]:
        check_limit(limit)
        return self._many(
            Sighting,
            "SELECT doc FROM sightings WHERE account_id = ? AND thread_id = ? ORDER BY id LIMIT ?",
            (account_id, thread_id, limit),
        )

    def list_links(self, email_id: str) -> list[InvestorLink]:
        return self._many(
            InvestorLink,
            "SELECT doc FROM investor_links WHERE email_id = ? ORDER BY id",
            (email_id,),
        )

    def find_emails_by_participants(
        self,
        *,
        addresses: Sequence[str] = (),
        domains: Sequence[str] = (),
        limit: int = 500,
        after_id: str = "",
    ) -> list[Email]:
        check_limit(limit)
        keys = [("address", normalize_address(a)) for a in addresses] + [
            ("domain", normalize_domain(d)) for d in domains
        ]
        if not keys:
            return []
        condition = " OR ".join("(kind = ? AND value = ?)" for _ in keys)
        params: list[object] = [part for key in keys for part in key]
        sql = (
            "SELECT doc FROM emails WHERE id IN ("  # noqa: S608
            f" SELECT email_id FROM email_participants WHERE {condition})"
            " AND id > ? ORDER BY id LIMIT ?"
        )
        return self._many(Email, sql, (*params, after_id, limit))
