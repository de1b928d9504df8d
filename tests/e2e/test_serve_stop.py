"""SIGTERM in the middle of a backfill: the server exits within 20 s, the sync under way keeps
its checkpoint and releases its lease, and a restart finishes the backfill with every message
of the mailbox captured exactly once.

The sandbox mailbox holds 600 extra investor messages (two list pages: 500 and the rest) and each
list page is slowed down; the stop comes once the first page is stored, so it lands in the second
(within one chunk of 100) or at its start."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from embedded.sandbox_fund import extra_message_id
from sandbox.scenario import TEAM
from shared.domain.models import email_id_for
from tests.support.serve_process import ServeProcess

ADA = TEAM[0]
EXTRA = 600
ENV = {
    "CRM_MODE": "sandbox",
    "CRM_SANDBOX_EXTRA_MESSAGES": str(EXTRA),
    "CRM_SANDBOX_LIST_DELAY_MS": "500",
}


def progress(line: dict) -> bool:
    return (
        line.get("event") == "sync_progress"
        and line.get("mailbox") == ADA
        and line.get("message") == "full sync progress"
    )


def query(database: Path, sql: str, *args: object) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return connection.execute(sql, args).fetchall()


@pytest.mark.timeout(300)  # two starts and a slowed backfill on a shared machine
def test_stop_mid_backfill_then_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    database = tmp_path / "var" / "sandbox" / "crm.sqlite3"
    first = ServeProcess(tmp_path, ENV)
    try:
        first.wait_healthy()
        first.wait_for_line(progress, timeout=120)
        code, seconds = first.terminate()
    finally:
        first.kill()
    assert code == 0, first.stderr
    assert seconds < 20
    assert any(line.get("event") == "drained" and line["drained"] for line in first.lines)

    # Stopped mid-backfill: a checkpoint (page token), part of the mail, the lease released.
    (account_id, doc), *_ = query(
        database, "SELECT id, doc FROM email_accounts WHERE doc LIKE ?", f'%"{ADA}"%'
    )
    sync_state = json.loads(doc)["sync"]
    assert sync_state["backfill_done"] is False
    assert sync_state["backfill_page_token"]  # the first page's checkpoint
    stored_then = query(
        database, "SELECT COUNT(*) FROM sightings WHERE account_id = ?", account_id
    )[0][0]
    assert stored_then > 0
    (lease,) = query(database, "SELECT doc FROM guards WHERE id = ?", f"sync-lease:{account_id}")
    assert '"released"' in lease[0]

    second = ServeProcess(tmp_path, ENV)
    try:
        second.wait_healthy()
        second.wait_for_line(
            lambda line: (
                line.get("event") == "sync_progress"
                and line.get("mailbox") == ADA
                and line.get("message") == "full sync done"
            ),
            timeout=180,
        )
        assert second.terminate()[0] == 0
    finally:
        second.kill()

    # Every extra message of the mailbox exactly once, and no Gmail id twice.
    sighted = query(
        database,
        "SELECT gmail_message_id, email_id FROM sightings WHERE account_id = ?",
        account_id,
    )
    assert len({gid for gid, _ in sighted}) == len(sighted) > stored_then
    extra_ids = {email_id_for(extra_message_id(i)) for i in range(EXTRA)}
    assert sorted(e for _, e in sighted if e in extra_ids) == sorted(extra_ids)
    stored = {row[0] for row in query(database, "SELECT id FROM emails")}
    assert extra_ids <= stored
    links = query(database, "SELECT email_id, investor_id FROM investor_links")
    assert len(links) == len(set(links))
    assert extra_ids <= {email_id for email_id, _ in links}
