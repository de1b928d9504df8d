"""A mailbox that has not synced for 30 minutes says so: in its status and as an ERROR line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.sqlite import SqliteStore
from shared.domain.models import EmailAccount
from shared.logging import configure_logging
from shared.ports import SyncStateChange
from shared.services import sync

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_lag_and_behind_are_derived_from_the_last_success(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "crm.sqlite3")
    fresh = EmailAccount.new("fresh@fund.example").model_copy(update={"created_at": NOW})
    stale = EmailAccount.new("stale@fund.example").model_copy(
        update={"created_at": NOW - timedelta(days=2)}
    )
    never = EmailAccount.new("never@fund.example").model_copy(
        update={"created_at": NOW - timedelta(hours=1)}
    )
    for account in (fresh, stale, never):
        store.add_email_account(account)
    store.update_sync_state(fresh.id, SyncStateChange(last_success_at=NOW - timedelta(minutes=5)))
    store.update_sync_state(stale.id, SyncStateChange(last_success_at=NOW - timedelta(hours=2)))

    accounts = {a.address: a for a in store.list_email_accounts()}
    assert sync.lag_seconds(accounts["fresh@fund.example"], NOW) == 300
    assert sync.lag_seconds(accounts["never@fund.example"], NOW) is None
    assert not sync.is_behind(accounts["fresh@fund.example"], NOW)
    assert sync.is_behind(accounts["stale@fund.example"], NOW)
    assert sync.is_behind(accounts["never@fund.example"], NOW)  # an hour and nothing yet
    store.set_email_account_paused(stale.id, True)
    assert sorted(sync.report_lagging_mailboxes(store, NOW)) == ["never@fund.example"]


def test_a_lagging_mailbox_is_logged_as_an_error_with_a_stable_event_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    handler = configure_logging("INFO")
    try:
        store = SqliteStore(tmp_path / "crm.sqlite3")
        account = EmailAccount.new("stale@fund.example").model_copy(
            update={"created_at": NOW - timedelta(days=1)}
        )
        store.add_email_account(account)
        sync.report_lagging_mailboxes(store, NOW)
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    behind = [line for line in lines if line.get("event") == "mailbox_behind"]
    assert len(behind) == 1
    assert behind[0]["severity"] == "ERROR"
    assert behind[0]["mailbox"] == "stale@fund.example"
