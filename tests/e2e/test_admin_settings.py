"""The app's settings over HTTP: admins read and change the backfill horizon (1 to 3,650 days,
audited); bad values are refused and change nothing; a shorter horizon deletes nothing and a
longer one reaches older mail at the mailbox's next full resync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from embedded.stack import Stack
from sandbox.scenario import TEAM, Scenario, message, seed_mail
from shared import wiring
from shared.domain.models import email_id_for
from tests.support.admin_api import call

ADMIN, MEMBER = TEAM


def audit() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (e.actor, e.action, e.target, e.details)
        for e in reversed(wiring.store().list_audit(limit=1000))
        if e.action.startswith("settings.")
    ]


def horizon(stack: Stack) -> int:
    answer = call(stack, "GET", "/settings")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["backfill_horizon_days"])


def test_admins_read_and_change_the_backfill_horizon_audited(
    stack: Stack, scenario: Scenario
) -> None:
    assert call(stack, "GET", "/settings").json() == {"backfill_horizon_days": 365}

    changed = call(stack, "PATCH", "/settings", json={"backfill_horizon_days": 730})

    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["backfill_horizon_days"], body["changed"]) == (730, True)
    assert "full resync" in body["note"] and "deletes nothing" in body["note"]
    assert horizon(stack) == 730
    assert wiring.store().get_setting("backfill_horizon_days") == 730  # what capture reads
    for same in ({"backfill_horizon_days": 730}, {}, {"backfill_horizon_days": None}):
        again = call(stack, "PATCH", "/settings", json=same)
        assert (again.status_code, again.json()["changed"]) == (200, False), same
    for edge in (1, 3650):
        assert call(stack, "PATCH", "/settings", json={"backfill_horizon_days": edge}).ok
    assert audit() == [
        (ADMIN, "settings.update", "backfill_horizon_days", {"before": 365, "after": 730}),
        (ADMIN, "settings.update", "backfill_horizon_days", {"before": 730, "after": 1}),
        (ADMIN, "settings.update", "backfill_horizon_days", {"before": 1, "after": 3650}),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"backfill_horizon_days": 0},
        {"backfill_horizon_days": -5},
        {"backfill_horizon_days": 3651},
        {"backfill_horizon_days": 10**30},
        {"backfill_horizon_days": "a year"},
        {"backfill_horizon_days": 1.5},
        {"backfill_horizon_days": 365, "exclusions": []},
        [],
    ],
)
def test_bad_values_are_refused_and_change_nothing(
    stack: Stack, scenario: Scenario, body: Any
) -> None:
    refused = call(stack, "PATCH", "/settings", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["reason"]
    assert horizon(stack) == 365
    assert wiring.store().get_setting("backfill_horizon_days") is None
    assert audit() == []


def test_members_may_neither_read_nor_change_settings(stack: Stack, scenario: Scenario) -> None:
    assert call(stack, "GET", "/settings", MEMBER).status_code == 403
    patched = call(stack, "PATCH", "/settings", MEMBER, json={"backfill_horizon_days": 30})
    assert patched.status_code == 403
    assert horizon(stack) == 365
    assert audit() == []


def test_a_shorter_horizon_deletes_nothing_and_a_longer_one_applies_at_the_next_full_resync(
    stack: Stack, scenario: Scenario
) -> None:
    now = datetime.now(UTC)
    seed_mail(stack.gmail, scenario, now=now)
    old = now - timedelta(days=500)
    old_mid, raw = message(
        sender="Zoe Zeta <zoe@zeta.vc>", to=[ADMIN], subject="Fund I, year one", body="x", date=old
    )
    stack.gmail.add_message(ADMIN, raw, internal_date=old)
    queue = wiring.local_queue()
    stack.server.ticker.fire_now("sync_poll")
    assert queue.wait_idle(30)
    store = wiring.store()
    intro = email_id_for(scenario.message_ids["intro"])
    assert store.get_email(intro) is not None
    assert store.get_email(email_id_for(old_mid)) is None  # beyond the default 365 days
    ada = scenario.accounts[0]

    # Shorter, and even a full resync under it: nothing already captured goes.
    assert call(stack, "PATCH", "/settings", json={"backfill_horizon_days": 1}).ok
    assert call(stack, "POST", f"/mailboxes/{ada.id}/resync").ok
    assert queue.wait_idle(30)
    kept = store.get_email(intro)
    assert kept is not None and ada.id in kept.live_account_ids

    # Longer: not by itself (a poll's partial sync lists nothing old) ...
    assert call(stack, "PATCH", "/settings", json={"backfill_horizon_days": 730}).ok
    stack.server.ticker.fire_now("sync_poll")
    assert queue.wait_idle(30)
    assert store.get_email(email_id_for(old_mid)) is None
    # ... but at the mailbox's next full resync.
    assert call(stack, "POST", f"/mailboxes/{ada.id}/resync").ok
    assert queue.wait_idle(30)
    reached = store.get_email(email_id_for(old_mid))
    assert reached is not None and reached.matched
