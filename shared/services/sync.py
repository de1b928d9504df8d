"""Sync orchestration: fan-out of sync requests, and the per-mailbox lease around one run.

What is here is the part that does not need Gmail: which mailboxes to sync, one message per
mailbox on the sync topic, and the create-if-absent lease that keeps two runs of one mailbox
from overlapping. The Gmail capture itself (history, full sync, fetch plan) is issue 3's and
will run inside ``run_sync`` where the lease is held.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.catalog import Topic
from shared.domain.models import Guard, SyncStatus
from shared.errors import BadRequestError
from shared.ports import Queue, Store, SyncStateChange

logger = logging.getLogger(__name__)

# A run holds its mailbox for one slot; a crashed run's lease expires with its slot.
LEASE_SLOT_SECONDS = 600


@dataclass(frozen=True)
class SyncRequest:
    account_id: str

    @classmethod
    def from_message(cls, message: dict[str, object]) -> SyncRequest:
        account_id = message.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise BadRequestError("sync request without account_id")
        return cls(account_id)

    def to_message(self) -> dict[str, str]:
        return {"account_id": self.account_id}


@dataclass(frozen=True)
class RunOutcome:
    account_id: str
    ran: bool
    reason: str


def request_sync_of_active_mailboxes(store: Store, queue: Queue) -> list[str]:
    """Publish one sync request per mailbox that is neither paused nor deleted."""
    requested = []
    for account in store.list_email_accounts():
        if account.paused:
            continue
        queue.publish(Topic.SYNC_REQUESTS.value, SyncRequest(account.id).to_message())
        requested.append(account.id)
    logger.info(
        "sync requested", extra={"fields": {"event": "sync_requested", "mailboxes": len(requested)}}
    )
    return requested


def lease_id(account_id: str, now: datetime) -> str:
    return f"sync-lease:{account_id}:{int(now.timestamp()) // LEASE_SLOT_SECONDS}"


def run_sync(store: Store, request: SyncRequest, *, now: datetime, run_id: str) -> RunOutcome:
    """One bounded run for one mailbox, if no other run holds it.

    Unknown, deleted or paused mailboxes are not an error to retry: the outcome says why.
    """
    account = store.get_email_account(request.account_id)
    if account is None or account.deleted:
        return RunOutcome(request.account_id, False, "unknown mailbox")
    if account.paused:
        return RunOutcome(request.account_id, False, "mailbox paused")
    if not store.create_guard(Guard(id=lease_id(account.id, now), owner=run_id, state="running")):
        return RunOutcome(account.id, False, "another run holds the mailbox")
    store.update_sync_state(
        account.id,
        SyncStateChange(last_attempt_at=now, status=SyncStatus.SYNCING),
    )
    # Gmail capture runs here (issue 3). Until then a run only proves the lease and fan-out.
    store.update_sync_state(account.id, SyncStateChange(status=account.sync.status))
    return RunOutcome(account.id, True, "ran")
