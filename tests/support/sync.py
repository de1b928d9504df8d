"""Running capture the way the poll does, for the tests of capture and of what reads its
results: one sync of a mailbox, or syncs of every team mailbox until each has caught up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.scenario import TEAM
from shared.adapters.queue import LocalQueue
from shared.services import sync
from tests.support.gmail import GmailWorld

# The capture tests' clock: one instant for the whole session, as seeded mail is dated from it.
NOW = datetime.now(UTC)


def sync_once(
    store: Any, world: GmailWorld, address: str, *, now: datetime = NOW, **kwargs: Any
) -> sync.RunOutcome:
    account = store.get_email_account_by_address(address)
    return sync.run_sync(
        store,
        sync.SyncRequest(account.id, coverage=kwargs.pop("coverage", False)),
        gmail_for=world.gmail_for,
        queue=kwargs.pop("queue", LocalQueue()),
        now=now,
        run_id=uuid.uuid4().hex,
        **kwargs,
    )


def sync_all(store: Any, world: GmailWorld, *, now: datetime = NOW) -> None:
    for address in TEAM:
        for _ in range(10):
            outcome = sync_once(store, world, address, now=now)
            assert outcome.ran, outcome.reason
            if outcome.reason == "ran":
                break
        else:
            raise AssertionError(f"{address} never finished")
