"""The SQLite Store, relationships: contribution rows (written with their email) and scores."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from shared.adapters.sqlite.base import _dump, _load, _placeholders, _SqliteBase
from shared.domain.models import Email, InvestorLink, Sighting
from shared.domain.paging import check_limit, encode_page_token
from shared.domain.relationships import (
    NEVER_KEY_BOUND,
    Contribution,
    RelationshipScore,
    RelationshipSort,
    contribution_changes,
    contributions_of,
    ranking_page_key,
    sort_field,
)
from shared.ports import Page


class SqliteRelationships(_SqliteBase):
    """Contribution rows and relationship scores."""

    def _sync_contributions(
        self,
        conn: sqlite3.Connection,
        email: Email | None,
        email_id: str,
        sightings: Sequence[Sighting],
        links: Sequence[InvestorLink],
    ) -> int:
        """Make the email's rows follow its stored mail, inside the caller's transaction:
        write the rows that differ, delete the ones that no longer apply (none for a redo)."""
        wanted = contributions_of(email, sightings, links)
        if (
            not wanted
            and not conn.execute(
                "SELECT 1 FROM relationship_contributions WHERE email_id = ? LIMIT 1", (email_id,)
            ).fetchone()
        ):
            return 0
        stored = {
            row[0]: _load(Contribution, row[1])
            for row in conn.execute(
                "SELECT id, doc FROM relationship_contributions WHERE email_id = ?", (email_id,)
            )
        }
        writes, deletes = contribution_changes(stored, wanted)
        for row_id in deletes:
            conn.execute("DELETE FROM relationship_contributions WHERE id = ?", (row_id,))
            conn.execute(
                "DELETE FROM relationship_contribution_contacts WHERE contribution_id = ?",
                (row_id,),
            )
        for row in writes:
            conn.execute(
                "INSERT OR REPLACE INTO relationship_contributions"
                " (id, email_id, investor_id, at_key, doc) VALUES (?,?,?,?,?)",
                (row.id, row.email_id, row.investor_id, row.at_key, _dump(row)),
            )
            conn.execute(
                "DELETE FROM relationship_contribution_contacts WHERE contribution_id = ?",
                (row.id,),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO relationship_contribution_contacts"
                " (contact_id, at_key, contribution_id) VALUES (?,?,?)",
                [(contact, row.at_key, row.id) for contact in row.contact_ids],
            )
        return len(writes) + len(deletes)

    def list_investor_contributions(self, investor_id: str) -> list[Contribution]:
        return self._many(
            Contribution,
            "SELECT doc FROM relationship_contributions WHERE investor_id = ? ORDER BY at_key",
            (investor_id,),
        )

    def list_contact_contributions(self, contact_id: str) -> list[Contribution]:
        return self._many(
            Contribution,
            "SELECT r.doc FROM relationship_contribution_contacts c"
            " JOIN relationship_contributions r ON r.id = c.contribution_id"
            " WHERE c.contact_id = ? ORDER BY c.at_key",
            (contact_id,),
        )

    def list_contributions(self, *, limit: int = 500, after_id: str = "") -> list[Contribution]:
        check_limit(limit)
        return self._many(
            Contribution,
            "SELECT doc FROM relationship_contributions WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )

    def recompute_email_contributions(self, email_id: str) -> int:
        with self._write() as conn:
            email = self._stored_email(conn, email_id)
            sightings = [
                _load(Sighting, row[0])
                for row in conn.execute("SELECT doc FROM sightings WHERE email_id = ?", (email_id,))
            ]
            links = [
                _load(InvestorLink, row[0])
                for row in conn.execute(
                    "SELECT doc FROM investor_links WHERE email_id = ?", (email_id,)
                )
            ]
            self._after_read("recompute_email_contributions")
            return self._sync_contributions(conn, email, email_id, sightings, links)

    def get_relationship_scores(self, investor_ids: Sequence[str]) -> dict[str, RelationshipScore]:
        wanted = sorted(set(investor_ids))
        found: dict[str, RelationshipScore] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for score in self._many(
                RelationshipScore,
                "SELECT doc FROM relationship_scores"  # noqa: S608
                f" WHERE id IN ({_placeholders(chunk)})",
                chunk,
            ):
                found[score.id] = score
        return found

    def put_relationship_scores(self, scores: Iterable[RelationshipScore]) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO relationship_scores (id, listed, strength_sort,"
                " last_contact_sort, last_two_way_sort, drop_30d, doc) VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        s.id,
                        int(s.listed),
                        s.strength_sort,
                        s.last_contact_sort,
                        s.last_two_way_sort,
                        s.drop_30d,
                        _dump(s),
                    )
                    for s in scores
                ],
            )

    def list_relationship_scores(
        self, sort: RelationshipSort, *, limit: int = 50, page_token: str = ""
    ) -> Page[RelationshipScore]:
        check_limit(limit)
        field = sort_field(sort)
        below = ranking_page_key(sort, page_token) if page_token else "\uffff"
        rows = self._many(
            RelationshipScore,
            f"SELECT doc FROM relationship_scores WHERE listed = 1 AND {field} < ?"  # noqa: S608
            f" ORDER BY {field} DESC LIMIT ?",
            (below, limit + 1),
        )
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(getattr(items[-1], field)) if more else "")

    def list_cold_scores(
        self, *, cutoff_key: str, cold_drop: int, limit: int = 200
    ) -> list[RelationshipScore]:
        check_limit(limit)
        quiet = self._many(
            RelationshipScore,
            "SELECT doc FROM relationship_scores WHERE listed = 1 AND last_two_way_sort > ?"
            " AND last_two_way_sort < ? ORDER BY last_two_way_sort LIMIT ?",
            (NEVER_KEY_BOUND, cutoff_key, limit),
        )
        dropped = self._many(
            RelationshipScore,
            "SELECT doc FROM relationship_scores WHERE listed = 1 AND drop_30d > ?"
            " ORDER BY drop_30d DESC LIMIT ?",
            (cold_drop, limit),
        )
        merged = {s.id: s for s in [*quiet, *dropped]}
        return [merged[key] for key in sorted(merged)]
