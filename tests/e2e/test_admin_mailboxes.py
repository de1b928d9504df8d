"""Mailboxes over HTTP with real signed tokens: sync status, pause and resume, full resync,
offboarding (watch stopped, sync ended, sightings kept or purged, in pages and in the
background), a sync that is running when its mailbox is offboarded, refusals and audit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared import wiring
from shared.domain.activity import ActivityQuery
from shared.domain.models import EmailAccount, email_id_for
from shared.ports import GmailClient
from shared.services import directory, sync
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM


@pytest.fixture
def mail_seeded(stack: Stack) -> Scenario:
    seeded = seed_crm(wiring.store())
    seed_mail(stack.gmail, seeded)
    return seeded


@pytest.fixture
def watched(stack: Stack, mail_seeded: Scenario) -> Scenario:
    """Mail captured by one poll, and every mailbox watched."""
    stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)
    assert stack.server.ticker.fire_now("watch_renew") == 200
    assert stack.gmail.wait_for_pushes(10)
    assert wiring.local_queue().wait_idle(30)
    return mail_seeded


def actions(prefix: str = "mailbox.") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.action, e.target, e.details)
        for e in reversed(wiring.store().list_audit(limit=1000))
        if e.action.startswith(prefix)
    ]


def live_mailboxes(mail_seeded: Scenario, key: str) -> list[str]:
    email = wiring.store().get_email(email_id_for(mail_seeded.message_ids[key]))
    assert email is not None
    return email.live_account_ids


def test_the_list_shows_each_mailboxs_sync_status(stack: Stack, watched: Scenario) -> None:
    listed = call(stack, "GET", "/mailboxes")
    assert listed.status_code == 200
    items = {item["address"]: item for item in listed.json()["items"]}
    assert set(items) == set(TEAM)
    ada = items[ADMIN]
    assert ada["state"] == "ok"
    assert ada["sync"]["last_success_at"] is not None
    assert ada["sync"]["last_error"] == ""
    assert 0 <= ada["lag_seconds"] < 60
    assert ada["behind"] is False
    assert ada["backfill"]["done"] is True
    assert ada["backfill"]["percent"] == 100.0
    assert ada["backfill"]["messages_done"] >= 4
    assert ada["backfill"]["messages_total"] >= ada["backfill"]["messages_done"]
    assert ada["sync"]["messages_failed"] == 0
    assert ada["coverage"]["gap"] == 0
    assert ada["coverage"]["last_full_check_at"] is not None
    assert ada["pause_reasons"] == []

    one = call(stack, "GET", f"/mailboxes/{watched.accounts[0].id}")
    assert (one.status_code, one.json()["address"]) == (200, ADMIN)
    assert call(stack, "GET", "/mailboxes/a_missing").status_code == 404
    bad = call(stack, "GET", "/mailboxes", params={"include_offboarded": "maybe"})
    assert (bad.status_code, "include_offboarded" in bad.json()["reason"]) == (400, True)
    assert call(stack, "GET", "/mailboxes", params={"sort": "x"}).status_code == 400
    assert call(stack, "GET", "/mailboxes", MEMBER).status_code == 403
    assert call(stack, "GET", f"/mailboxes/{watched.accounts[0].id}", MEMBER).status_code == 403


def test_pause_and_resume(stack: Stack, watched: Scenario) -> None:
    ben = watched.accounts[1]
    paused = call(stack, "POST", f"/mailboxes/{ben.id}/pause")
    assert paused.status_code == 200
    assert paused.json()["mailbox"]["state"] == "paused"
    assert paused.json()["mailbox"]["pause_reasons"] == ["admin"]
    assert call(stack, "POST", f"/mailboxes/{ben.id}/pause").status_code == 200  # idempotent

    queue = wiring.local_queue()
    queue.published.clear()
    stack.server.ticker.fire_now("sync_poll")
    assert queue.wait_idle(30)
    assert ben.id not in {m.message["account_id"] for m in queue.published}

    queue.published.clear()
    resumed = call(stack, "POST", f"/mailboxes/{ben.id}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["sync_requested"] is True
    assert resumed.json()["mailbox"]["paused"] is False
    assert resumed.json()["watch_started"] is True
    assert stack.gmail.wait_for_pushes(10)
    assert queue.wait_idle(30)
    # The resume's own request first; the restarted watch's first push may ask again.
    assert queue.published[0].message == {"account_id": ben.id, "coverage": False}
    assert {m.message["account_id"] for m in queue.published} == {ben.id}

    assert call(stack, "POST", "/mailboxes/a_missing/pause").status_code == 404
    assert call(stack, "POST", "/mailboxes/a_missing/resume").status_code == 404
    assert call(stack, "POST", f"/mailboxes/{ben.id}/pause", MEMBER).status_code == 403
    assert call(stack, "POST", f"/mailboxes/{ben.id}/resume", MEMBER).status_code == 403
    assert [(a, t, d["reason"]) for a, t, d in actions()] == [
        ("mailbox.pause", ben.id, "admin"),
        ("mailbox.pause", ben.id, "admin"),
        ("mailbox.resume", ben.id, "admin"),
    ]


def test_a_full_resync_lists_the_whole_mailbox_again(stack: Stack, watched: Scenario) -> None:
    ada = watched.accounts[0]
    before = stack.gmail.calls(ADMIN).get("messages.list", 0)
    stored = wiring.store().get_email_account(ada.id)
    assert stored is not None
    assert stored.sync.backfill_done

    asked = call(stack, "POST", f"/mailboxes/{ada.id}/resync")
    assert asked.status_code == 200
    assert asked.json()["sync_requested"] is True
    assert wiring.local_queue().wait_idle(30)

    after = wiring.store().get_email_account(ada.id)
    assert after is not None
    assert after.sync.resync_pending is False  # applied by the run, under its lease
    assert after.sync.backfill_done is True
    assert after.sync.history_id > 0
    assert after.sync.status.value == "ok"
    # A partial sync reads history.list; only a full sync lists the messages again.
    assert stack.gmail.calls(ADMIN).get("messages.list", 0) > before
    assert live_mailboxes(watched, "reply") == [ada.id]  # nothing lost, nothing duplicated

    assert call(stack, "POST", "/mailboxes/a_missing/resync").status_code == 404
    assert call(stack, "POST", f"/mailboxes/{ada.id}/resync", MEMBER).status_code == 403
    assert [(a, t) for a, t, _ in actions()] == [("mailbox.resync", ada.id)]


def test_offboarding_keeps_or_purges_sightings_and_ends_the_sync(
    stack: Stack, watched: Scenario
) -> None:
    ada, ben = watched.accounts
    assert stack.gmail.watch_of(MEMBER) is not None
    assert live_mailboxes(watched, "partner") == [ben.id]
    assert live_mailboxes(watched, "intro") == sorted([ada.id, ben.id])

    kept = call(stack, "POST", f"/mailboxes/{ben.id}/offboard", json={"sightings": "keep"})
    assert kept.status_code == 200
    body = kept.json()
    assert body["mailbox"]["state"] == "offboarded"
    assert (body["already_offboarded"], body["watch_stopped"], body["watch_error"]) == (
        False,
        True,
        "",
    )
    assert (body["sightings"], body["purged"], body["purge_done"]) == ("keep", 0, True)
    assert stack.gmail.watch_of(MEMBER) is None
    assert live_mailboxes(watched, "partner") == [ben.id]  # kept: still in the panel

    listed = call(stack, "GET", "/mailboxes").json()["items"]
    assert [m["address"] for m in listed] == [ADMIN]
    everything = call(stack, "GET", "/mailboxes", params={"include_offboarded": "true"}).json()
    assert {m["address"]: m["state"] for m in everything["items"]} == {
        ADMIN: "ok",
        MEMBER: "offboarded",
    }
    queue = wiring.local_queue()
    queue.published.clear()
    stack.server.ticker.fire_now("sync_poll")
    stack.server.ticker.fire_now("watch_renew")
    assert queue.wait_idle(30)
    assert ben.id not in {m.message["account_id"] for m in queue.published}
    assert stack.gmail.watch_of(MEMBER) is None
    for action in ("pause", "resume", "resync"):
        refused = call(stack, "POST", f"/mailboxes/{ben.id}/{action}")
        assert (refused.status_code, refused.json()["reason"]) == (409, "mailbox is offboarded")

    # Again, now purging what the first time kept: idempotent, and the mail Ben alone held
    # leaves the panel while mail Ada also holds stays.
    purged = call(stack, "POST", f"/mailboxes/{ben.id}/offboard", json={"sightings": "purge"})
    assert purged.status_code == 200
    assert purged.json()["already_offboarded"] is True
    assert purged.json()["purged"] == 2
    assert purged.json()["purge_done"] is True
    assert live_mailboxes(watched, "partner") == []
    assert live_mailboxes(watched, "intro") == [ada.id]
    again = call(stack, "POST", f"/mailboxes/{ben.id}/offboard", json={"sightings": "purge"})
    assert again.json()["purged"] == 0

    assert [(a, t, d["sightings"], d["purged"]) for a, t, d in actions("mailbox.offboard")] == [
        ("mailbox.offboard", ben.id, "keep", 0),
        ("mailbox.offboard", ben.id, "purge", 2),
        ("mailbox.offboard", ben.id, "purge", 0),
    ]


def test_offboarding_refuses_bad_input_unknown_mailboxes_and_members(
    stack: Stack, watched: Scenario
) -> None:
    ben = watched.accounts[1]
    path = f"/mailboxes/{ben.id}/offboard"
    missing = call(stack, "POST", path, json={})
    assert (missing.status_code, "sightings" in missing.json()["reason"]) == (400, True)
    assert call(stack, "POST", path, json={"sightings": "delete"}).status_code == 400
    assert call(stack, "POST", path).status_code == 400  # no body at all
    unknown = call(stack, "POST", "/mailboxes/a_missing/offboard", json={"sightings": "keep"})
    assert unknown.status_code == 404
    assert call(stack, "POST", path, MEMBER, json={"sightings": "keep"}).status_code == 403
    account = wiring.store().get_email_account(ben.id)
    assert account is not None
    assert account.deleted is False
    assert actions() == []


def test_a_large_purge_continues_in_the_background(
    stack: Stack, watched: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of one sighting, no inline budget: the request purges one page and queues the
    rest, which sync_mailbox purges page by page."""
    ada = watched.accounts[0]
    monkeypatch.setattr(sync, "PURGE_PAGE", 1)
    monkeypatch.setattr(directory, "OFFBOARD_PURGE_BUDGET_S", 0.0)
    live = len(
        [
            s
            for gid in stack.gmail.message_ids(ADMIN)
            if (s := wiring.store().get_sighting(ada.id, gid)) is not None and not s.deleted
        ]
    )
    assert live >= 3

    answer = call(stack, "POST", f"/mailboxes/{ada.id}/offboard", json={"sightings": "purge"})
    assert answer.status_code == 200
    assert (answer.json()["purged"], answer.json()["purge_done"]) == (1, False)
    assert wiring.local_queue().wait_idle(30)
    assert {"account_id": ada.id, "coverage": False, "purge": True} in [
        m.message for m in wiring.local_queue().published
    ]
    remaining = [
        s
        for gid in stack.gmail.message_ids(ADMIN)
        if (s := wiring.store().get_sighting(ada.id, gid)) is not None and not s.deleted
    ]
    assert remaining == []
    assert live_mailboxes(watched, "reply") == []
    assert live_mailboxes(watched, "intro") == [watched.accounts[1].id]


class OffboardingMidRun:
    """A Gmail client that offboards its mailbox right after the first page is listed, as an
    admin would while the run is going."""

    def __init__(self, inner: GmailClient, account: EmailAccount) -> None:
        self._inner = inner
        self._account = account
        self.offboarded = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def list_message_ids(self, **kwargs: Any) -> Any:
        page = self._inner.list_message_ids(**kwargs)
        if not self.offboarded:
            wiring.store().offboard_email_account(self._account.id)
            self.offboarded = True
        return page

    def get_messages(self, ids: Sequence[str], **kwargs: Any) -> Any:
        return self._inner.get_messages(ids, **kwargs)


def test_a_running_sync_stops_when_its_mailbox_is_offboarded(
    stack: Stack, mail_seeded: Scenario
) -> None:
    store = wiring.store()
    ada = mail_seeded.accounts[0]
    client = OffboardingMidRun(wiring.gmail_for(ADMIN), ada)
    queue = wiring.local_queue()
    queue.published.clear()
    outcome = sync.run_sync(
        store,
        sync.SyncRequest(ada.id),
        gmail_for=lambda address: client,
        queue=wiring.queue(),
        now=datetime.now(UTC),
        run_id=uuid.uuid4().hex,
    )
    assert client.offboarded
    assert (outcome.ran, outcome.reason) == (True, "mailbox offboarded during the run")
    # Nothing was captured for the mailbox after it was offboarded, and no continuation.
    assert store.sighted_message_ids(ada.id, stack.gmail.message_ids(ADMIN)) == set()
    assert queue.published == []
    account = store.get_email_account(ada.id)
    assert account is not None
    assert account.deleted
    assert account.sync.backfill_done is False


def test_mail_sent_from_an_offboarded_mailbox_is_no_longer_outbound(
    stack: Stack, watched: Scenario
) -> None:
    """Direction is decided by the team's addresses, and an offboarded mailbox's are no longer
    among them: the panel's stored direction of its kept mail follows."""
    store = wiring.store()
    reply = email_id_for(watched.message_ids["reply"])

    def direction() -> str:
        hits = store.query_activity(ActivityQuery(account_id=watched.accounts[0].id)).hits
        (hit,) = [h for h in hits if h.email.id == reply]
        return hit.direction.value

    assert direction() == "outbound"
    ada = watched.accounts[0].id
    kept = call(stack, "POST", f"/mailboxes/{ada}/offboard", json={"sightings": "keep"})
    assert kept.status_code == 200
    assert direction() == "inbound"


def test_a_mailbox_is_owned_by_the_user_at_its_address_unless_an_admin_says_otherwise(
    stack: Stack, mail_seeded: Scenario
) -> None:
    """Cy's mailbox is added without an owner, then Cy as a user: Cy owns it and drafts in it
    (before, Cy got 403). An admin then names Ben its owner (audited): Cy is refused."""
    cy = "cy@fund.example"
    stack.gmail.add_mailbox(cy)
    mid, raw = message(
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[cy],
        subject="Next steps",
        body="Shall we meet?",
        date=datetime.now(UTC),
    )
    stack.gmail.add_message(cy, raw)
    added = call(stack, "POST", "/mailboxes", json={"address": cy})
    assert added.status_code == 201 and added.json()["user_id"] is None
    account_id = added.json()["id"]
    user = call(stack, "POST", "/users", json={"email": cy, "name": "Cy"}).json()
    mailbox = call(stack, "GET", f"/mailboxes/{account_id}").json()
    assert mailbox["user_id"] == user["id"]
    stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)
    draft = {"email_id": email_id_for(mid), "mailbox": cy, "body": "Yes, Tuesday."}
    created = call(stack, "POST", "/drafts", cy, json=draft)
    assert created.status_code == 201, created.text

    moved = call(stack, "PATCH", f"/mailboxes/{account_id}", json={"owner_email": MEMBER})
    assert moved.status_code == 200, moved.text
    assert moved.json()["user_id"] == mail_seeded.member.id
    (audit,) = [a for a in wiring.store().list_audit() if a.action == "mailbox.owner"]
    assert (audit.actor, audit.target) == (ADMIN, account_id)
    assert audit.details["owner"] == {"from": user["id"], "to": mail_seeded.member.id}
    assert call(stack, "POST", "/drafts", cy, json=draft).status_code == 403
    # Refusals: an unknown user, an unknown mailbox, a member, a bad body; nothing changes.
    assert (
        call(
            stack, "PATCH", f"/mailboxes/{account_id}", json={"owner_email": "no@fund.example"}
        ).status_code
        == 404
    )
    assert (
        call(stack, "PATCH", "/mailboxes/a_missing", json={"owner_email": MEMBER}).status_code
        == 404
    )
    assert (
        call(
            stack, "PATCH", f"/mailboxes/{account_id}", MEMBER, json={"owner_email": MEMBER}
        ).status_code
        == 403
    )
    assert (
        call(
            stack, "PATCH", f"/mailboxes/{account_id}", json={"owner_email": "x" * 400}
        ).status_code
        == 400
    )
    # "" returns to the default: the user at the mailbox's address.
    back = call(stack, "PATCH", f"/mailboxes/{account_id}", json={"owner_email": ""})
    assert back.json()["user_id"] == user["id"]
