"""The SQLite Store, the email-activity panel: its rows, order, facets and full-text search."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.adapters.sqlite.base import _load, _placeholders, _SqliteBase
from shared.domain.activity import ActivityHit, ActivityHits, ActivityQuery
from shared.domain.activity_keys import (
    ActivityFields,
    activity_fields,
    activity_page_key,
    facet_token,
    is_listed,
)
from shared.domain.models import (
    Direction,
    Email,
    Investor,
    normalize_address,
)
from shared.domain.paging import (
    check_limit,
    encode_page_token,
    split_time_id_key,
)
from shared.errors import ConflictError

# -- the panel's order and facets (SqliteStore._sync_activity) ----------------------------------

_SLOT_BITS = 20  # slots per second: room for every microsecond, and then some
_SEQ_MAX = (1 << 63) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALL = facet_token(None, None, None)


def _seq_bucket(key: str) -> tuple[int, int, int]:
    """The seqs of the key's second (lowest, highest) and its natural slot (the microsecond)."""
    when, _ = split_time_id_key(key)
    delta = when - _EPOCH
    second = delta.days * 86_400 + delta.seconds
    low = second << _SLOT_BITS
    return low, low + (1 << _SLOT_BITS) - 1, low + delta.microseconds


def _fts_facet(token: str) -> str:
    """A facet token as one FTS5 word (ASCII letters and digits) of 64 bits."""
    return "f" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def _facet_id(fts_facet: str) -> int:
    """The same 64 bits as a signed integer: the facet index's key."""
    return int(fts_facet[1:], 16) - (1 << 63)


def _fts_facets(fields: ActivityFields) -> str:
    return " ".join(_fts_facet(token) for token in fields.facets)


class SqliteActivityIndex(_SqliteBase):
    """The email-activity panel: its rows, order, facets and full-text search."""

    #
    # Each listed email has one ``activity`` row whose integer ``seq`` sorts as the panel does
    # (by date, ties by id): ``seq = second << 20 | slot``, the slot being the microsecond when
    # free, else the nearest free one that keeps the key order inside that second (rows of the
    # second move up by one when none is free: a handful, ever). So the facet index
    # (facet, seq) is a range scan in the panel's order for any combination of filters, and
    # FTS5, whose rowids are the seqs, answers ``q`` newest first with ``ORDER BY rowid DESC``
    # and stops after one page, instead of sorting every match. Facets are 64-bit hashes of
    # the shared tokens (``activity_keys.activity_fields``); the FTS ``facets`` column holds the
    # same hashes as words, so ``q`` with filters is one FTS5 query.

    def _sync_activity(self, conn: sqlite3.Connection, email: Email) -> bool:
        """Make the email's activity rows follow it (inside the caller's transaction); True if
        anything changed."""
        row = conn.execute(
            "SELECT seq, activity_key, direction, words, facets FROM activity WHERE email_id = ?",
            (email.id,),
        ).fetchone()
        if not is_listed(email):
            if row is not None:
                self._drop_activity(conn, row)
            return row is not None
        sender = email.sender.address if email.sender else ""
        own = (
            {sender}
            if sender
            and conn.execute(
                "SELECT 1 FROM account_addresses WHERE address = ? LIMIT 1", (sender,)
            ).fetchone()
            else set()
        )
        fields = activity_fields(email, own)
        words, facets = " ".join(fields.words), _fts_facets(fields)
        wanted = (fields.key, fields.direction.value, words, facets)
        if row is not None and tuple(row[1:]) == wanted:
            return False
        seq: int | None = None
        if row is not None:
            self._drop_activity(conn, row)
            seq = row[0] if row[1] == fields.key else None
        if seq is None:
            seq = self._free_seq(conn, fields.key)
        self._put_activity(conn, seq, email.id, *wanted)
        return True

    @staticmethod
    def _put_activity(
        conn: sqlite3.Connection,
        seq: int,
        email_id: str,
        key: str,
        direction: str,
        words: str,
        facets: str,
    ) -> None:
        conn.execute(
            "INSERT INTO activity (seq, email_id, activity_key, direction, words, facets)"
            " VALUES (?,?,?,?,?,?)",
            (seq, email_id, key, direction, words, facets),
        )
        conn.executemany(
            "INSERT INTO activity_facets (facet, seq) VALUES (?,?)",
            [(_facet_id(term), seq) for term in facets.split()],
        )
        conn.execute(
            "INSERT INTO activity_fts (rowid, words, facets) VALUES (?,?,?)", (seq, words, facets)
        )

    @staticmethod
    def _drop_activity(conn: sqlite3.Connection, row: Sequence[Any]) -> None:
        """Remove one activity row (``seq, key, direction, words, facets``) and its index rows
        (FTS5 external content: the delete names the values that were indexed)."""
        seq, words, facets = row[0], row[3], row[4]
        conn.execute(
            "INSERT INTO activity_fts (activity_fts, rowid, words, facets)"
            " VALUES ('delete', ?, ?, ?)",
            (seq, words, facets),
        )
        conn.executemany(
            "DELETE FROM activity_facets WHERE facet = ? AND seq = ?",
            [(_facet_id(term), seq) for term in facets.split()],
        )
        conn.execute("DELETE FROM activity WHERE seq = ?", (seq,))

    def _free_seq(self, conn: sqlite3.Connection, key: str) -> int:
        """A seq for ``key`` that keeps seq order equal to key order."""
        low, high, natural = _seq_bucket(key)
        before = conn.execute(
            "SELECT MAX(seq) FROM activity WHERE seq BETWEEN ? AND ? AND activity_key < ?",
            (low, high, key),
        ).fetchone()[0]
        after = conn.execute(
            "SELECT MIN(seq) FROM activity WHERE seq BETWEEN ? AND ? AND activity_key > ?",
            (low, high, key),
        ).fetchone()[0]
        first = low if before is None else before + 1
        last = high if after is None else after - 1
        if first <= last:
            return min(max(natural, first), last)
        # No gap between the neighbours: move the run of rows starting at ``after`` up by one.
        run = [after]
        for (seq,) in conn.execute(
            "SELECT seq FROM activity WHERE seq > ? AND seq <= ? ORDER BY seq", (after, high)
        ):
            if seq != run[-1] + 1:
                break
            run.append(seq)
        if run[-1] >= high:
            raise ConflictError("too many emails in one second for the activity index")
        for seq in reversed(run):
            moved = conn.execute(
                "SELECT seq, activity_key, direction, words, facets, email_id FROM activity"
                " WHERE seq = ?",
                (seq,),
            ).fetchone()
            self._drop_activity(conn, moved)
            self._put_activity(conn, seq + 1, moved[5], *moved[1:5])
        return int(after)

    def _backfill_activity(self, conn: sqlite3.Connection) -> None:
        """Data step of schema version 4: activity rows for the mail stored before it."""
        for (doc,) in conn.execute("SELECT doc FROM emails WHERE matched = 1").fetchall():
            self._sync_activity(conn, _load(Email, doc))

    def query_activity(self, query: ActivityQuery) -> ActivityHits:
        check_limit(query.limit)
        resume = activity_page_key(query.page_token)
        conn = self._connection()
        # A read transaction: the bound and the page see one snapshot.
        conn.execute("BEGIN")
        try:
            upper = self._seq_bound(conn, resume) if resume else _SEQ_MAX
            facet = facet_token(
                query.investor_id,
                query.account_id,
                query.direction.value if query.direction else None,
            )
            # The body is dropped in SQL: a page never shows it, and it is most of a document.
            columns = "a.activity_key, a.direction, json_remove(e.doc, '$.body')"
            if query.words:
                terms = [f'words : "{word}"*' for word in query.words]
                if facet != _ALL:
                    terms.append(f'facets : "{_fts_facet(facet)}"')
                sql = (
                    f"SELECT {columns} FROM (SELECT rowid AS seq FROM activity_fts"  # noqa: S608
                    " WHERE activity_fts MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?) m"
                    " JOIN activity a ON a.seq = m.seq JOIN emails e ON e.id = a.email_id"
                    " ORDER BY m.seq DESC"
                )
                params: tuple[object, ...] = (" AND ".join(terms), upper, query.limit + 1)
            else:
                sql = (
                    f"SELECT {columns} FROM activity_facets f"  # noqa: S608
                    " JOIN activity a ON a.seq = f.seq JOIN emails e ON e.id = a.email_id"
                    " WHERE f.facet = ? AND f.seq < ? ORDER BY f.seq DESC LIMIT ?"
                )
                params = (_facet_id(_fts_facet(facet)), upper, query.limit + 1)
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.execute("COMMIT")
        page = rows[: query.limit]
        hits = [ActivityHit(_load(Email, doc), Direction(way)) for _, way, doc in page]
        more = len(rows) > query.limit
        return ActivityHits(hits, more, encode_page_token(page[-1][0]) if more else "")

    @staticmethod
    def _seq_bound(conn: sqlite3.Connection, key: str) -> int:
        """The seq below which every row's key is below ``key`` (the row itself may be gone)."""
        low, high, _ = _seq_bucket(key)
        found = conn.execute(
            "SELECT MIN(seq) FROM activity WHERE seq BETWEEN ? AND ? AND activity_key >= ?",
            (low, high, key),
        ).fetchone()[0]
        return int(found) if found is not None else high + 1

    def refresh_activity_direction(self, addresses: Sequence[str]) -> int:
        senders = {normalize_address(a) for a in addresses}
        changed, after = 0, ""
        while senders:
            page = self.find_emails_by_participants(
                addresses=sorted(senders), limit=500, after_id=after
            )
            if not page:
                break
            for found in page:
                if found.sender is None or found.sender.address not in senders:
                    continue
                with self._write() as conn:
                    email = self._stored_email(conn, found.id)
                    if email is not None and self._sync_activity(conn, email):
                        changed += 1
            after = page[-1].id
        return changed

    def get_investors(self, investor_ids: Iterable[str]) -> list[Investor]:
        wanted = sorted(set(investor_ids))
        found: list[Investor] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found += self._many(
                Investor,
                f"SELECT doc FROM investors WHERE id IN ({_placeholders(chunk)})"  # noqa: S608
                " ORDER BY id",
                chunk,
            )
        return found
