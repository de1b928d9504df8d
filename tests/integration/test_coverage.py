"""The coverage check against the Gmail sandbox, on SQLite: a message whose sighting vanished
behind capture's back (no history record will ever bring it back) is found by comparing Gmail's
ids with stored sightings, counted in the mailbox's ``coverage_gap`` and captured; the 48-hour
check sees only recent mail, and the weekly reconciliation over the whole horizon runs once
``last_reconciled_at`` is older than 7 days."""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared.adapters.queue import LocalQueue
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import EmailAccount, email_id_for, sighting_id_for
from shared.services import sync
from shared.services.capture import (
    COVERAGE_QUERY,
    RECONCILE_EVERY,
    Capture,
    run_capture,
)
from tests.support.gmail import GmailWorld
from tests.support.sync import sync_all, sync_once

NOW = datetime.now(UTC)
ADA = TEAM[0]


@pytest.fixture
def captured_on_sqlite(sqlite_store: SqliteStore, world: GmailWorld) -> Scenario:
    seeded = seed_crm(sqlite_store)
    seed_mail(world.sandbox, seeded, now=NOW)
    sync_all(sqlite_store, world)
    return seeded


def account(sqlite_store: SqliteStore) -> EmailAccount:
    found = sqlite_store.get_email_account_by_address(ADA)
    assert found is not None
    return found


def gmail_id_of(sqlite_store: SqliteStore, scenario_message_id: str) -> str:
    """Ada's Gmail id of a captured message (through its sighting)."""
    sightings = sqlite_store.list_sightings(email_id_for(scenario_message_id))
    (sighting,) = [s for s in sightings if s.account_id == account(sqlite_store).id]
    return sighting.gmail_message_id


def lose_sighting(sqlite_store: SqliteStore, gmail_id: str) -> None:
    """Remove a sighting behind capture's back, as a lost write would leave it: no history
    record will ever mention the message again."""
    with sqlite3.connect(sqlite_store.path) as conn:
        deleted = conn.execute(
            "DELETE FROM sightings WHERE id = ?",
            (sighting_id_for(account(sqlite_store).id, gmail_id),),
        ).rowcount
    assert deleted == 1
    assert sqlite_store.get_sighting(account(sqlite_store).id, gmail_id) is None


def coverage_run(
    sqlite_store: SqliteStore, world: GmailWorld, now: datetime = NOW
) -> sync.RunOutcome:
    outcome = sync_once(sqlite_store, world, ADA, now=now, coverage=True)
    assert outcome.reason == "ran"
    return outcome


def test_a_lost_sighting_is_found_counted_and_captured(
    sqlite_store: SqliteStore, world: GmailWorld, captured_on_sqlite: Scenario
) -> None:
    first = coverage_run(sqlite_store, world)  # the first check ever is the full reconciliation
    assert first.result is not None
    assert first.result.coverage_gap == 0
    assert account(sqlite_store).sync.last_reconciled_at is not None

    pitch = gmail_id_of(sqlite_store, "<pitch.42@startup.example>")  # a day old: inside 48 hours
    lose_sighting(sqlite_store, pitch)
    # A partial sync alone never notices: Gmail's history has nothing new to say.
    assert sync_once(sqlite_store, world, ADA).result.report.captured == 0  # type: ignore[union-attr]
    assert sqlite_store.get_sighting(account(sqlite_store).id, pitch) is None

    found = coverage_run(sqlite_store, world)
    assert found.result is not None
    assert found.result.coverage_gap == 1
    assert found.result.report.captured == 1
    assert account(sqlite_store).sync.coverage_gap == 1  # the mailbox is flagged with the number
    sighting = sqlite_store.get_sighting(account(sqlite_store).id, pitch)
    assert sighting is not None
    assert sighting.email_id == email_id_for("<pitch.42@startup.example>")
    assert not sighting.deleted

    clean = coverage_run(sqlite_store, world)
    assert clean.result is not None
    assert clean.result.coverage_gap == 0
    assert account(sqlite_store).sync.coverage_gap == 0


def test_ids_not_counts_several_lost_sightings_are_all_found(
    sqlite_store: SqliteStore, world: GmailWorld, captured_on_sqlite: Scenario
) -> None:
    term_sheet, raw = message(
        sender="Zoe Zeta <zoe@zeta.vc>", to=[ADA], subject="Term sheet", body="Here.", date=NOW
    )
    world.sandbox.add_message(ADA, raw)
    coverage_run(sqlite_store, world)  # the partial sync captures the new mail, then the check runs
    lost = [
        gmail_id_of(sqlite_store, "<pitch.42@startup.example>"),
        gmail_id_of(sqlite_store, "<monthly.2026-11@news.zeta.vc>"),
        gmail_id_of(sqlite_store, term_sheet),
    ]
    for gmail_id in lost:
        lose_sighting(sqlite_store, gmail_id)
    found = coverage_run(sqlite_store, world)
    assert found.result is not None
    assert found.result.coverage_gap == 3
    assert account(sqlite_store).sync.coverage_gap == 3
    for gmail_id in lost:
        assert sqlite_store.get_sighting(account(sqlite_store).id, gmail_id) is not None
    recaptured = sqlite_store.get_email(email_id_for(term_sheet))
    assert recaptured is not None
    assert recaptured.matched  # captured as capture would: matched, linked, with its body
    assert recaptured.investor_ids == [captured_on_sqlite.investor.id]
    assert "Here." in recaptured.body
    assert recaptured.live_account_ids == [account(sqlite_store).id]


def test_the_48_hour_check_misses_older_mail_and_the_weekly_reconciliation_finds_it(
    sqlite_store: SqliteStore,
    world: GmailWorld,
    captured_on_sqlite: Scenario,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reconciled = coverage_run(sqlite_store, world)
    assert reconciled.result is not None
    first_reconciled_at = account(sqlite_store).sync.last_reconciled_at
    assert first_reconciled_at is not None
    intro = gmail_id_of(sqlite_store, captured_on_sqlite.message_ids["intro"])  # three days old
    lose_sighting(sqlite_store, intro)

    # Within the week: the 48-hour check only, which cannot see a three-day-old message.
    queries: list[str] = []
    gmail = world.gmail_for(ADA)
    original = gmail.list_message_ids

    def recording(**kwargs: Any) -> Any:
        queries.append(kwargs.get("query", ""))
        return original(**kwargs)

    monkeypatch.setattr(gmail, "list_message_ids", recording)
    daily = run_capture(
        Capture(store=sqlite_store, gmail=gmail, account=account(sqlite_store), now=lambda: NOW),
        deadline=time.monotonic() + 60,
        coverage=True,
    )
    assert daily.coverage_gap == 0
    assert queries == [COVERAGE_QUERY]
    assert sqlite_store.get_sighting(account(sqlite_store).id, intro) is None
    assert account(sqlite_store).sync.last_reconciled_at == first_reconciled_at  # not weekly

    # Seven days after the last reconciliation, the whole horizon is compared again.
    week_later = first_reconciled_at + RECONCILE_EVERY + timedelta(minutes=1)
    queries.clear()
    weekly = run_capture(
        Capture(
            store=sqlite_store, gmail=gmail, account=account(sqlite_store), now=lambda: week_later
        ),
        deadline=time.monotonic() + 60,
        coverage=True,
    )
    assert weekly.coverage_gap == 1
    assert queries and queries[-1].startswith("after:")  # the backfill horizon, not 48 hours
    assert sqlite_store.get_sighting(account(sqlite_store).id, intro) is not None
    assert account(sqlite_store).sync.last_reconciled_at == week_later
    assert account(sqlite_store).sync.coverage_gap == 1


def test_the_weekly_reconciliation_follows_the_runs_now(
    sqlite_store: SqliteStore, world: GmailWorld, captured_on_sqlite: Scenario
) -> None:
    coverage_run(sqlite_store, world)
    intro = gmail_id_of(sqlite_store, captured_on_sqlite.message_ids["intro"])
    lose_sighting(sqlite_store, intro)
    next_week = NOW + RECONCILE_EVERY + timedelta(days=1)
    weekly = sync.run_sync(
        sqlite_store,
        sync.SyncRequest(account(sqlite_store).id, coverage=True),
        gmail_for=world.gmail_for,
        queue=LocalQueue(),
        now=next_week,
        run_id=uuid.uuid4().hex,
    )
    assert weekly.result is not None
    assert weekly.result.coverage_gap == 1
    assert sqlite_store.get_sighting(account(sqlite_store).id, intro) is not None
    assert account(sqlite_store).sync.last_reconciled_at == next_week
