"""Mail a teammate writes in Gmail: auto-saved drafts (a new message id per save) store nothing,
and the send is captured by the partial sync that follows it, in both shapes Gmail reports it
(a new message id, or labels changing on the draft's own id). On SQLite and on Firestore."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared.adapters.queue import LocalQueue
from shared.domain.models import email_id_for
from shared.ports import Store
from shared.services import sync
from tests.support.gmail import GmailWorld

NOW = datetime.now(UTC)
ADA = TEAM[0]


def run_once(store: Store, world: GmailWorld, *, coverage: bool = False) -> sync.RunOutcome:
    account = store.get_email_account_by_address(ADA)
    assert account is not None
    outcome = sync.run_sync(
        store,
        sync.SyncRequest(account.id, coverage=coverage),
        gmail_for=world.gmail_for,
        queue=LocalQueue(),
        now=NOW,
        run_id=uuid.uuid4().hex,
    )
    assert outcome.ran and outcome.reason == "ran", outcome.reason
    return outcome


@pytest.fixture
def captured_once(store: Store, world: GmailWorld) -> Scenario:
    """The scenario's mail captured by a full sync, so what follows is a partial sync."""
    scenario = seed_crm(store)
    seed_mail(world.sandbox, scenario, now=NOW)
    run_once(store, world)
    account = store.get_email_account_by_address(ADA)
    assert account is not None and account.sync.backfill_done
    return scenario


def to_zoe(subject: str) -> tuple[str, bytes]:
    """Mail Ada writes to a contact: matched (and so stored with its body) once sent."""
    return message(
        sender=f"Ada Admin <{ADA}>",
        to=["Zoe Zeta <zoe@zeta.vc>"],
        subject=subject,
        body="Zoe, the numbers you asked for.",
        date=NOW - timedelta(minutes=5),
    )


def sighted(store: Store, gmail_ids: list[str]) -> set[str]:
    account = store.get_email_account_by_address(ADA)
    assert account is not None
    return store.sighted_message_ids(account.id, gmail_ids)


def churn(world: GmailWorld, raw: bytes, saves: int) -> list[str]:
    """The user typing: ``saves`` auto-saves, each a new message id replacing the last."""
    ids = [world.sandbox.save_draft(ADA, raw)]
    for _ in range(saves - 1):
        ids.append(world.sandbox.save_draft(ADA, raw, replaces=ids[-1]))
    return ids


def assert_captured_as_sent(store: Store, scenario: Scenario, mid: str, gmail_id: str) -> None:
    email = store.get_email(email_id_for(mid))
    assert email is not None, "the sent draft was not captured by the partial sync"
    assert email.matched
    assert email.investor_ids == [scenario.investor.id]
    assert "the numbers you asked for" in email.body
    account = store.get_email_account_by_address(ADA)
    assert account is not None
    sighting = store.get_sighting(account.id, gmail_id)
    assert sighting is not None and sighting.is_sent and not sighting.deleted
    assert store.list_capture_problems(account.id) == []


def test_a_draft_sent_as_a_new_message_is_captured_by_the_next_partial_sync(
    store: Store, world: GmailWorld, captured_once: Scenario
) -> None:
    mid, raw = to_zoe("Numbers, as a new message")
    drafts = churn(world, raw, saves=3)
    run_once(store, world)  # a push mid-typing: the drafts so far store nothing
    assert store.get_email(email_id_for(mid)) is None
    sent = world.sandbox.send_draft(ADA, drafts[-1], as_new_message=True)

    run_once(store, world)  # no coverage check: the history alone must find it

    assert_captured_as_sent(store, captured_once, mid, sent)
    assert sighted(store, drafts) == set()


def test_a_draft_sent_by_relabelling_its_own_message_is_captured_by_the_next_partial_sync(
    store: Store, world: GmailWorld, captured_once: Scenario
) -> None:
    mid, raw = to_zoe("Numbers, same message id")
    drafts = churn(world, raw, saves=2)
    run_once(store, world)
    assert store.get_email(email_id_for(mid)) is None
    sent = world.sandbox.send_draft(ADA, drafts[-1], as_new_message=False)
    assert sent == drafts[-1]

    run_once(store, world)

    assert_captured_as_sent(store, captured_once, mid, sent)
    assert sighted(store, drafts[:-1]) == set()


def test_auto_saved_drafts_store_nothing_even_when_their_labels_change(
    store: Store, world: GmailWorld, captured_once: Scenario
) -> None:
    account = store.get_email_account_by_address(ADA)
    assert account is not None
    mid, raw = to_zoe("Never sent")
    drafts = churn(world, raw, saves=4)
    run_once(store, world)
    # A label change that leaves DRAFT on (starred, or even INBOX) names the id in
    # labelsAdded: fetched, still a draft at fetch time, so not stored.
    world.sandbox.modify_labels(ADA, drafts[-1], add=["STARRED", "INBOX"])
    drafts += churn(world, raw, saves=1)
    run_once(store, world, coverage=True)

    assert store.get_email(email_id_for(mid)) is None
    assert sighted(store, drafts) == set()
    assert store.list_capture_problems(account.id) == []
