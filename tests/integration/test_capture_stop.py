"""A full sync asked to stop in the middle of a list page (its deadline passed, or the
one-machine server's SIGTERM) ends after the step it is on, keeps the page's checkpoint, and
the next run captures the rest of the page without capturing anything twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from embedded.sandbox_fund import extra_message_id, seed_gmail
from sandbox.scenario import TEAM, seed_crm
from shared.domain.models import EmailAccount, email_id_for
from shared.ports import Store
from shared.services.capture import STOP_STEP, Capture, run_capture
from tests.support.gmail import GmailWorld

ADA = TEAM[0]
EXTRA = 3 * STOP_STEP  # one list page (500 ids) with several steps in it
NOW = datetime.now(UTC)


def ada(store: Store) -> EmailAccount:
    found = store.get_email_account_by_address(ADA)
    assert found is not None
    return found


def sighted(store: Store, world: GmailWorld) -> set[str]:
    ids = world.sandbox.message_ids(ADA)
    return store.sighted_message_ids(ada(store).id, ids)


def test_a_stop_inside_a_page_resumes_without_loss_or_duplicates(
    store: Store, world: GmailWorld
) -> None:
    seed_crm(store)
    seed_gmail(world.sandbox, EXTRA, now=NOW)
    gmail = world.gmail_for(ADA)
    looks = 0

    def stop_after_two_steps() -> float:
        """The deadline passes between the second and the third step (as SIGTERM would)."""
        nonlocal looks
        looks += 1
        return time.monotonic() + (3600 if looks == 1 else -3600)

    stopped = run_capture(
        Capture(store=store, gmail=gmail, account=ada(store), now=lambda: NOW),
        deadline=time.monotonic() + 1,
        clock=stop_after_two_steps,
    )
    assert stopped.finished is False
    first = sighted(store, world)
    assert STOP_STEP <= len(first) < EXTRA
    state = ada(store).sync
    assert state.backfill_done is False
    assert state.backfill_page_token == ""  # still the first page: it is listed again

    resumed = run_capture(
        Capture(store=store, gmail=gmail, account=ada(store), now=lambda: NOW + timedelta(1)),
        deadline=time.monotonic() + 600,
    )
    assert resumed.finished is True
    assert resumed.report.captured == len(sighted(store, world)) - len(first)
    assert ada(store).sync.backfill_done is True
    for index in range(EXTRA):
        (sighting,) = store.list_sightings(email_id_for(extra_message_id(index)))
        assert sighting.account_id == ada(store).id
