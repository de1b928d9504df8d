"""A mailbox added or resumed over HTTP starts capturing at once: its first sync is requested
(no poll tick: the stack's ticker never runs here) and, when a watch topic is configured, its
Gmail watch is started (the sandbox records it); a failed watch start does not fail the add."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from embedded.stack import GMAIL_WATCH_TOPIC, Stack, local_stack
from sandbox.scenario import TEAM, Scenario, message, seed_crm
from shared import wiring
from shared.domain.models import email_id_for
from tests.support.admin_api import call

NEW = "cy@fund.example"


def zoe_writes_to(stack: Stack, address: str) -> str:
    """Mail from the scenario's contact already in the new mailbox; its Message-ID."""
    stack.gmail.add_mailbox(address)
    mid, raw = message(
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[address],
        subject="Welcome aboard",
        body="Cy, glad you joined the fund.",
        date=datetime.now(UTC),
    )
    stack.gmail.add_message(address, raw)
    return mid


@pytest.fixture
def unwatched(tmp_path: Path) -> Iterator[Stack]:
    """The stack with no watch topic configured (nothing is watched; the poll would sync)."""
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3",
        bootstrap_admin=TEAM[0],
        start_ticker=False,
        env={"CRM_GMAIL_WATCH_TOPIC": ""},
    ) as running:
        yield running


def test_an_added_mailbox_is_captured_at_once_without_a_poll_or_a_watch(
    unwatched: Stack,
) -> None:
    seed_crm(wiring.store())
    mid = zoe_writes_to(unwatched, NEW)
    queue = wiring.local_queue()
    queue.published.clear()

    added = call(unwatched, "POST", "/mailboxes", json={"address": NEW})

    assert added.status_code == 201, added.text
    body = added.json()
    assert queue.wait_idle(30)
    email = wiring.store().get_email(email_id_for(mid))
    assert email is not None, "the new mailbox's mail was not captured without a poll"
    assert email.matched
    assert email.live_account_ids == [body["id"]]
    # One request, for this mailbox alone: not a poll (a poll asks for every mailbox).
    assert [m.message for m in queue.published] == [{"account_id": body["id"], "coverage": False}]
    assert (body["address"], body["sync_requested"]) == (NEW, True)
    assert (body["watch_started"], body["watch_error"]) == (False, "")  # no topic: not an error
    assert unwatched.gmail.watch_of(NEW) is None
    assert unwatched.gmail.deliveries == []


def test_an_added_mailbox_is_watched_at_once_when_a_topic_is_configured(
    stack: Stack, scenario: Scenario
) -> None:
    mid = zoe_writes_to(stack, NEW)

    added = call(stack, "POST", "/mailboxes", json={"address": NEW})

    assert added.status_code == 201, added.text
    body = added.json()
    watch = stack.gmail.watch_of(NEW)
    assert watch is not None, "no users.watch call reached Gmail"
    assert (body["sync_requested"], body["watch_started"], body["watch_error"]) == (True, True, "")
    assert watch.topic_name == GMAIL_WATCH_TOPIC
    stored = wiring.store().get_email_account_by_address(NEW)
    assert stored is not None and stored.sync.watch_expiration is not None
    assert int(stored.sync.watch_expiration.timestamp() * 1000) == watch.expiration_ms
    assert body["sync"]["watch_expiration"] is not None
    assert stack.gmail.wait_for_pushes(10)
    assert wiring.local_queue().wait_idle(30)
    assert wiring.store().get_email(email_id_for(mid)) is not None


def test_a_failed_watch_start_does_not_fail_the_add(stack: Stack, scenario: Scenario) -> None:
    mid = zoe_writes_to(stack, NEW)
    stack.gmail.inject_fault("watch", status=400, count=10, mailbox=NEW)

    added = call(stack, "POST", "/mailboxes", json={"address": NEW})

    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["sync_requested"], body["watch_started"]) == (True, False)
    assert body["watch_error"]  # a reason, for the console; the daily renewal retries
    assert stack.gmail.watch_of(NEW) is None
    assert wiring.store().get_email_account_by_address(NEW) is not None
    assert wiring.local_queue().wait_idle(30)
    assert wiring.store().get_email(email_id_for(mid)) is not None  # the sync still ran
    listed = {m["address"] for m in call(stack, "GET", "/mailboxes").json()["items"]}
    assert NEW in listed


def test_a_resumed_mailbox_is_watched_at_once(stack: Stack, scenario: Scenario) -> None:
    ben = scenario.accounts[1]
    stack.gmail.add_mailbox(ben.address)
    assert call(stack, "POST", f"/mailboxes/{ben.id}/pause").status_code == 200
    assert stack.gmail.watch_of(ben.address) is None

    resumed = call(stack, "POST", f"/mailboxes/{ben.id}/resume")

    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    watch = stack.gmail.watch_of(ben.address)
    assert watch is not None and watch.topic_name == GMAIL_WATCH_TOPIC
    assert (body["sync_requested"], body["watch_started"], body["watch_error"]) == (True, True, "")
    assert body["mailbox"]["sync"]["watch_expiration"] is not None


def test_a_mailbox_resumed_by_its_owners_return_is_watched_at_once(
    stack: Stack, scenario: Scenario
) -> None:
    ben = scenario.accounts[1]
    stack.gmail.add_mailbox(ben.address)
    assert ben.user_id
    away = call(stack, "PATCH", f"/users/{ben.user_id}", json={"is_active": False})
    assert away.status_code == 200, away.text
    assert away.json()["paused_mailboxes"] == [ben.id]
    assert stack.gmail.watch_of(ben.address) is None

    back = call(stack, "PATCH", f"/users/{ben.user_id}", json={"is_active": True})

    assert back.status_code == 200, back.text
    assert back.json()["resumed_mailboxes"] == [ben.id]
    watch = stack.gmail.watch_of(ben.address)
    assert watch is not None and watch.topic_name == GMAIL_WATCH_TOPIC
