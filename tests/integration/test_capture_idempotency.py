"""Idempotency of capture through the local stack (the local server, its queue, real signed
tokens, the Gmail sandbox pushing watch notifications to ``gmail_push``): every push delivered
several times, and poll and push at once, still give exactly one email per message, one sighting
per mailbox, one link per match and one proposal per (email, investor). Counted via the store."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from embedded.stack import PUSH_IDENTITY, Stack, local_stack
from sandbox.gmail.push import DEFAULT_SUBSCRIPTION, PushDelivery, envelope
from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared import wiring
from shared.domain.models import email_id_for, proposal_id_for
from shared.ports import Store
from tests.support.store_reads import all_emails, all_proposals, duplicates

NOW = datetime.now(UTC)
ADA, BEN = TEAM
REDELIVERIES = 3


@pytest.fixture
def bare_stack(tmp_path: Path) -> Iterator[Stack]:
    with local_stack(sqlite_path=tmp_path / "crm.sqlite3", start_ticker=False) as running:
        yield running


@dataclass(frozen=True)
class Expected:
    """A message added while the watch is on: who holds it and which investors it matches."""

    message_id: str
    mailboxes: frozenset[str]
    investors: frozenset[str]


def settle(bare_stack: Stack) -> None:
    """Every push delivered and every queued request handled (pushes can queue requests and
    requests never push, so one round of each suffices)."""
    assert bare_stack.gmail.wait_for_pushes(20)
    assert wiring.local_queue().wait_idle(60)


def captured_fund(bare_stack: Stack) -> Scenario:
    """The scenario captured by a first poll, with a watch on every mailbox."""
    scenario = seed_crm(wiring.store())
    seed_mail(bare_stack.gmail, scenario, now=NOW)
    assert bare_stack.server.ticker.fire_now("sync_poll") == 200
    settle(bare_stack)
    assert bare_stack.server.ticker.fire_now("watch_renew") == 200
    settle(bare_stack)  # a new watch notifies at once: that push is handled too
    for address in TEAM:
        assert bare_stack.gmail.watch_of(address) is not None
    return scenario


def new_mail(bare_stack: Stack, scenario: Scenario, tag: str) -> list[Expected]:
    """Three messages: one to both mailboxes matching two investors, one matched by Gmail's
    canonical form, one from a stranger (unmatched)."""
    both_id, both = message(
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[ADA],
        cc=[BEN, "Jo <J.Smith@gmail.com>"],
        subject=f"Closing {tag}",
        body="Signatures attached.",
        date=NOW,
    )
    bare_stack.gmail.add_message(ADA, both)
    bare_stack.gmail.add_message(BEN, both)
    jo_id, jo = message(
        sender="Jo Smith <jsmith+deals@googlemail.com>",
        to=[ADA],
        subject=f"Allocation {tag}",
        body="Count me in.",
        date=NOW,
    )
    bare_stack.gmail.add_message(ADA, jo)
    cold_id, cold = message(
        sender="Pat <pat@elsewhere.example>",
        to=[BEN],
        subject=f"Hello {tag}",
        body="A pitch.",
        date=NOW,
    )
    bare_stack.gmail.add_message(BEN, cold)
    zeta, angel = scenario.investor.id, scenario.angel.id
    return [
        Expected(both_id, frozenset({ADA, BEN}), frozenset({zeta, angel})),
        Expected(jo_id, frozenset({ADA}), frozenset({angel})),
        Expected(cold_id, frozenset({BEN}), frozenset()),
    ]


def redeliver(bare_stack: Stack, deliveries: list[PushDelivery], times: int = REDELIVERIES) -> None:
    """POST each notification's push envelope ``times`` more, as Pub/Sub redelivers."""
    url = f"{bare_stack.base_url}/gmail_push"
    with requests.Session() as http:
        for delivery in deliveries:
            body = envelope(delivery, DEFAULT_SUBSCRIPTION)
            data = json.loads(base64.b64decode(str(body["message"]["data"])))  # type: ignore[index]
            assert data["emailAddress"] in TEAM
            for _ in range(times):
                token = bare_stack.service_token(PUSH_IDENTITY, "gmail_push")
                response = http.post(
                    url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
                )
                assert response.status_code == 204, response.text


def assert_exactly_once(store: Store, expected: list[Expected], *, emails_before: int) -> None:
    assert duplicates(store) == {"emails": {}, "sightings": {}, "links": {}, "proposals": {}}
    accounts = {a.id: a.address for a in store.list_email_accounts()}
    for item in expected:
        email_id = email_id_for(item.message_id)
        email = store.get_email(email_id)
        assert email is not None, item.message_id
        sightings = store.list_sightings(email_id)
        assert sorted(accounts[s.account_id] for s in sightings) == sorted(item.mailboxes)
        assert {accounts[a] for a in email.live_account_ids} == item.mailboxes
        links = store.list_links(email_id)
        assert len(links) == len(item.investors)  # one contact per investor here
        assert {link.investor_id for link in links} == item.investors
        assert set(email.investor_ids) == item.investors
        proposals = [p for p in all_proposals(store) if p.email_id == email_id]
        assert sorted(p.id for p in proposals) == sorted(
            proposal_id_for(email_id, investor) for investor in item.investors
        )
    assert len(all_emails(store)) == emails_before + len(expected)
    assert wiring.local_queue().dead_letters == []


def test_every_push_delivered_three_more_times_captures_each_message_once(
    bare_stack: Stack,
) -> None:
    scenario = captured_fund(bare_stack)
    store = wiring.store()
    emails_before = len(all_emails(store))
    gets_before = {a: bare_stack.gmail.calls(a) for a in TEAM}
    pushed_before = len(bare_stack.gmail.deliveries)

    expected = new_mail(bare_stack, scenario, "a")
    pushes = bare_stack.gmail.deliveries[pushed_before:]
    assert len(pushes) == 4  # one notification per message added to a watched mailbox
    redeliver(bare_stack, pushes)  # while the sandbox's own deliveries may still be in flight
    settle(bare_stack)

    assert all(d.delivered and set(d.statuses) == {204} for d in pushes)
    assert_exactly_once(store, expected, emails_before=emails_before)
    # Redeliveries ask for syncs that find nothing new: no message fetched twice. Ada holds
    # two new matched messages (metadata + body each), Ben one matched whose body Ada's run may
    # already have stored, and one unmatched (metadata only).
    fetched = {
        a: bare_stack.gmail.calls(a).get("messages.get", 0) - gets_before[a].get("messages.get", 0)
        for a in TEAM
    }
    assert fetched[ADA] == 4
    assert fetched[BEN] in (2, 3)
    # And a second round of redeliveries of the same pushes changes nothing.
    before = (len(all_emails(store)), len(all_proposals(store)))
    redeliver(bare_stack, pushes)
    settle(bare_stack)
    assert (len(all_emails(store)), len(all_proposals(store))) == before
    assert_exactly_once(store, expected, emails_before=emails_before)


def test_poll_and_push_at_once_capture_each_message_once(bare_stack: Stack) -> None:
    scenario = captured_fund(bare_stack)
    store = wiring.store()
    emails_before = len(all_emails(store))
    start = threading.Barrier(3)
    errors: list[BaseException] = []
    expected: list[Expected] = []

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait(10)
                work()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        return run

    def poll() -> None:
        for _ in range(5):
            assert bare_stack.server.ticker.fire_now("sync_poll") == 200

    def push() -> None:
        for tag in ("b", "c"):
            pushed_before = len(bare_stack.gmail.deliveries)
            expected.extend(new_mail(bare_stack, scenario, tag))
            redeliver(bare_stack, bare_stack.gmail.deliveries[pushed_before:])

    def sync_directly() -> None:
        # A sync request delivered straight to sync_mailbox while the queue delivers others:
        # runs of one mailbox really overlap here (the local queue delivers one at a time).
        url = f"{bare_stack.base_url}/sync_mailbox"
        accounts = [a.id for a in store.list_email_accounts()]
        with requests.Session() as http:
            for _ in range(3):
                for account_id in accounts:
                    data = base64.b64encode(json.dumps({"account_id": account_id}).encode())
                    token = bare_stack.service_token(PUSH_IDENTITY, "sync_mailbox")
                    response = http.post(
                        url,
                        json={"message": {"data": data.decode(), "messageId": "direct"}},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=60,
                    )
                    assert response.status_code in (200, 204), response.text

    threads = [
        threading.Thread(target=guarded(work), name=work.__name__)
        for work in (poll, push, sync_directly)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    settle(bare_stack)
    # A push that found its mailbox's lease held is acknowledged (its mail is in the running
    # run or the next one): the next poll takes the mailbox to the end.
    assert bare_stack.server.ticker.fire_now("sync_poll") == 200
    settle(bare_stack)

    assert len(expected) == 6
    assert_exactly_once(store, expected, emails_before=emails_before)
    for account in store.list_email_accounts():
        assert account.sync.status.value == "ok"
        assert account.sync.coverage_gap == 0
        assert store.list_capture_problems(account.id) == []
