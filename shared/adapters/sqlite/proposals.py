"""The SQLite Store, proposals and the activities their approval creates."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from shared.adapters.sqlite.base import _dump, _load, _SqliteBase
from shared.domain.models import (
    Activity,
    Proposal,
    ProposalStatus,
    utcnow,
)
from shared.domain.paging import (
    check_limit,
    encode_page_token,
    proposal_window_keys,
)
from shared.errors import NotFoundError
from shared.ports import Decision, Page


class SqliteProposals(_SqliteBase):
    """Proposals and the activities their approval creates."""

    @staticmethod
    def _put_proposal(conn: sqlite3.Connection, proposal: Proposal) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO proposals"
            " (id, status, investor_id, account_id, sort_key, doc) VALUES (?,?,?,?,?,?)",
            (
                proposal.id,
                proposal.status.value,
                proposal.investor_id,
                proposal.account_id or "",
                proposal.sort_key,
                _dump(proposal),
            ),
        )

    def create_proposal(self, proposal: Proposal) -> bool:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM proposals WHERE id = ?", (proposal.id,)).fetchone():
                return False
            self._put_proposal(conn, proposal)
            return True

    def get_proposal(self, proposal_id: str) -> Proposal | None:
        return self._one(Proposal, "SELECT doc FROM proposals WHERE id = ?", (proposal_id,))

    def decide_proposal(self, proposal_id: str, status: ProposalStatus, actor: str) -> Decision:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
            if row is None:
                raise NotFoundError("no such proposal", proposal_id=proposal_id)
            proposal = _load(Proposal, row[0])
            activity_row = conn.execute(
                "SELECT doc FROM activities WHERE id = ?", (proposal_id,)
            ).fetchone()
            email = self._stored_email(conn, proposal.email_id)
            self._after_read("decide_proposal")
            existing = _load(Activity, activity_row[0]) if activity_row else None
            outcome = proposal.decide(
                status, actor, email=email, existing_activity=existing, at=utcnow()
            )
            if outcome.changed:
                self._put_proposal(conn, outcome.proposal)
                if outcome.activity is not None and existing is None:
                    self._put_activity_row(conn, outcome.activity)
            return outcome

    def list_proposals(
        self,
        *,
        status: ProposalStatus | None = None,
        investor_id: str | None = None,
        account_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Proposal]:
        check_limit(limit)
        clauses: list[str] = []
        params: list[object] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if investor_id is not None:
            clauses.append("investor_id = ?")
            params.append(investor_id)
        if account_id is not None:
            clauses.append("account_id = ?")
            params.append(account_id)
        lower, upper = proposal_window_keys(created_from, created_to, page_token)
        if lower is not None:
            clauses.append("sort_key >= ?")
            params.append(lower)
        if upper is not None:
            clauses.append("sort_key < ?")
            params.append(upper)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._many(
            Proposal,
            f"SELECT doc FROM proposals {where} ORDER BY sort_key DESC LIMIT ?",  # noqa: S608
            (*params, limit + 1),
        )
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(items[-1].sort_key) if more else "")

    def get_activity(self, activity_id: str) -> Activity | None:
        return self._one(Activity, "SELECT doc FROM activities WHERE id = ?", (activity_id,))

    def set_activity_corrected(
        self, activity_id: str, by: str, at: datetime | None
    ) -> Activity | None:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM activities WHERE id = ?", (activity_id,)).fetchone()
            self._after_read("set_activity_corrected")
            if row is None:
                return None
            activity = _load(Activity, row[0]).marked_corrected(by, at)
            conn.execute(
                "UPDATE activities SET doc = ? WHERE id = ?", (_dump(activity), activity_id)
            )
            return activity
