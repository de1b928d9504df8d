"""Sync orchestration: fan-out of sync requests, the per-mailbox lease, and one bounded run.

A mailbox is synced by at most one run at a time: a lease record per mailbox, taken by
create-if-absent (or by taking over a released or expired lease inside a transaction), so a push
notification, a poll and a continuation arriving together do the work once. A run stops at about
70% of its function's timeout, keeps its checkpoint, and asks for its own continuation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared import events
from shared.catalog import Topic, function_spec
from shared.domain.models import EmailAccount, Guard, SyncStateChange, SyncStatus
from shared.errors import BadRequestError, ConfigurationError, NotFoundError, RetryableError

if TYPE_CHECKING:
    # Annotations only: entry points import this module at cold start, the ports at first use.
    from shared.ports import CaptureStore, GmailClient, MailboxStore, Queue, SettingsStore
    from shared.services.capture import RunResult

logger = logging.getLogger(__name__)

# A run's share of its function's timeout before it checkpoints and asks for a continuation.
RUN_BUDGET_SHARE = 0.7
# A lease outlives the longest run; a crashed run's lease is taken over once it expires.
LEASE_TTL = timedelta(seconds=function_spec("sync_mailbox").timeout_s * 2)


@dataclass(frozen=True)
class SyncRequest:
    account_id: str
    coverage: bool = False
    # Continue the purge of an offboarded mailbox's sightings (``purge_sightings``).
    purge: bool = False

    @classmethod
    def from_message(cls, message: dict[str, object]) -> SyncRequest:
        account_id = message.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise BadRequestError("sync request without account_id")
        return cls(
            account_id,
            coverage=bool(message.get("coverage", False)),
            purge=bool(message.get("purge", False)),
        )

    def to_message(self) -> dict[str, object]:
        message: dict[str, object] = {"account_id": self.account_id, "coverage": self.coverage}
        if self.purge:
            message["purge"] = True
        return message


@dataclass(frozen=True)
class RunOutcome:
    account_id: str
    ran: bool
    reason: str
    result: RunResult | None = None


# A mailbox whose last successful run is older than this is behind: an ERROR log line under a
# stable event name ("mailbox_behind") that an alert policy can count.
BEHIND_AFTER = timedelta(minutes=30)


def lag_seconds(account: EmailAccount, now: datetime) -> float | None:
    """Seconds since the mailbox's last successful run; None if it never had one."""
    last = account.sync.last_success_at
    return None if last is None else max(0.0, (now - last).total_seconds())


def is_behind(account: EmailAccount, now: datetime) -> bool:
    """Behind: no success for BEHIND_AFTER (counting from when it was added, if never)."""
    since = account.sync.last_success_at or account.created_at
    return not account.paused and now - since > BEHIND_AFTER


def report_lagging_mailboxes(store: MailboxStore, now: datetime) -> list[str]:
    """Log every active mailbox that is behind, so silence is never mistaken for health."""
    behind = [a for a in store.list_email_accounts() if is_behind(a, now)]
    for account in behind:
        logger.error(
            "mailbox is behind",
            extra={
                "fields": {
                    "event": events.MAILBOX_BEHIND,
                    "mailbox": account.address,
                    "lag_seconds": lag_seconds(account, now),
                    "status": account.sync.status.value,
                    "last_error": account.sync.last_error,
                }
            },
        )
    return [a.address for a in behind]


def request_sync_of_active_mailboxes(
    store: MailboxStore, queue: Queue, *, coverage: bool = True
) -> list[str]:
    """Publish one sync request per mailbox that is neither paused nor deleted; the poll's
    requests also run the coverage check."""
    requested = []
    for account in store.list_email_accounts():
        if account.paused:
            continue
        queue.publish(Topic.SYNC_REQUESTS.value, SyncRequest(account.id, coverage).to_message())
        requested.append(account.id)
    logger.info(
        "sync requested", extra={"fields": {"event": "sync_requested", "mailboxes": len(requested)}}
    )
    return requested


def request_sync_of_address(store: MailboxStore, queue: Queue, address: str) -> str | None:
    """A Gmail push names a mailbox by address: ask for its sync. None if unknown or paused."""
    account = store.get_email_account_by_address(address)
    if account is None or account.deleted or account.paused:
        return None
    queue.publish(Topic.SYNC_REQUESTS.value, SyncRequest(account.id).to_message())
    return account.id


def lease_id(account_id: str) -> str:
    return f"sync-lease:{account_id}"


def acquire_lease(store: SettingsStore, account_id: str, run_id: str, now: datetime) -> bool:
    """Take the mailbox's lease: create it, or take over one that is released or expired."""
    expires = (now + LEASE_TTL).isoformat()
    fresh = Guard(id=lease_id(account_id), owner=run_id, state="running", data={"until": expires})
    if store.create_guard(fresh):
        return True

    def take_over(guard: Guard) -> Guard | None:
        until = datetime.fromisoformat(str(guard.data.get("until", now.isoformat())))
        if guard.state == "running" and until > now:
            return None
        return guard.model_copy(
            update={
                "owner": run_id,
                "state": "running",
                "attempts": guard.attempts + 1,
                "data": {"until": expires},
                "updated_at": now,
            }
        )

    taken = store.update_guard(lease_id(account_id), take_over)
    return taken is not None and taken.owner == run_id and taken.state == "running"


def release_lease(store: SettingsStore, account_id: str, run_id: str) -> None:
    def release(guard: Guard) -> Guard | None:
        if guard.owner != run_id:
            return None  # taken over after expiry: not ours to release
        return guard.model_copy(update={"state": "released"})

    store.update_guard(lease_id(account_id), release)


def run_sync(
    store: CaptureStore,
    request: SyncRequest,
    *,
    gmail_for: Callable[[str], GmailClient],
    queue: Queue,
    now: datetime,
    run_id: str,
    clock: Callable[[], float] = time.monotonic,
    budget_s: float | None = None,
) -> RunOutcome:
    """One bounded run for one mailbox, if no other run holds it.

    Unknown, deleted or paused mailboxes, a run already holding the mailbox, and a grant that
    lacks a scope are not worth a redelivery: the outcome says why. Transient failures raise
    RetryableError after recording the error in the mailbox's status.

    An admin's full resync (``resync_pending``) is applied here, under the lease, so a run
    that was going when it was asked cannot write its old cursor over the reset. A mailbox
    offboarded while its run goes on refuses the run's next write (the store's rule): the run
    ends there, and a purge request of an offboarded mailbox continues its purge instead.
    """
    if budget_s is None:
        budget_s = function_spec("sync_mailbox").timeout_s * RUN_BUDGET_SHARE
    account = store.get_email_account(request.account_id)
    if account is not None and account.deleted and request.purge:
        purged, done = purge_sightings(store, account.id, deadline=clock() + budget_s, clock=clock)
        if not done:
            queue.publish(
                Topic.SYNC_REQUESTS.value, SyncRequest(account.id, purge=True).to_message()
            )
        return RunOutcome(account.id, True, "purged" if done else f"purge continues ({purged})")
    if account is None or account.deleted:
        return RunOutcome(request.account_id, False, "unknown mailbox")
    if account.paused:
        return RunOutcome(request.account_id, False, "mailbox paused")
    if not acquire_lease(store, account.id, run_id, now):
        return RunOutcome(account.id, False, "another run holds the mailbox")
    # Imported here: the parser and matcher are only needed by the function that captures, and
    # gmail_push and sync_poll (which import this module) should not pay for them at cold start.
    from shared.services.capture import Capture, run_capture

    try:
        try:
            account = _start_run(store, account.id, now)
        except NotFoundError:
            return RunOutcome(request.account_id, False, "mailbox offboarded")
        try:
            # Building the client reads the Gmail key: a broken one is a configuration error
            # of this mailbox's run like a missing scope, shown in its status.
            capture = Capture(
                store=store, gmail=gmail_for(account.address), account=account, now=lambda: now
            )
            result = run_capture(
                capture, deadline=clock() + budget_s, coverage=request.coverage, clock=clock
            )
        except ConfigurationError as exc:
            # A missing scope or an unknown user: retrying will not fix it; an admin must.
            _record_failure(store, account.id, exc.message)
            return RunOutcome(account.id, True, f"error: {exc.message}")
        except RetryableError as exc:
            _record_failure(store, account.id, exc.message)
            raise
        except NotFoundError as exc:
            if _offboarded(store, account.id):
                return RunOutcome(account.id, True, "mailbox offboarded during the run")
            _record_failure(store, account.id, f"{type(exc).__name__}: {exc}"[:500])
            raise
        except Exception as exc:
            _record_failure(store, account.id, f"{type(exc).__name__}: {exc}"[:500])
            raise
        finished = result.finished
        try:
            store.update_sync_state(
                account.id,
                SyncStateChange(
                    status=SyncStatus.OK if finished else SyncStatus.BEHIND,
                    last_success_at=now if finished else None,
                    last_error="",
                    messages_failed=result.problems,
                ),
            )
        except NotFoundError:
            if _offboarded(store, account.id):
                return RunOutcome(account.id, True, "mailbox offboarded during the run")
            raise
        logger.info(
            "sync run finished" if finished else "sync run stopped at its deadline",
            extra={
                "fields": {
                    "event": "sync_run",
                    "mailbox": account.address,
                    "mode": result.mode,
                    "captured": result.report.captured,
                    "matched": result.report.matched,
                    "failed": result.report.failed,
                    "coverage_gap": result.coverage_gap,
                }
            },
        )
    finally:
        release_lease(store, account.id, run_id)
    if not finished:
        queue.publish(Topic.SYNC_REQUESTS.value, SyncRequest(account.id).to_message())
    return RunOutcome(account.id, True, "ran" if finished else "continues", result)


def _start_run(store: MailboxStore, account_id: str, now: datetime) -> EmailAccount:
    """Mark the run started and apply an admin's pending full resync (under the lease): the
    cursor and the backfill are reset, so this run lists the whole mailbox again (a full
    sync, as after Gmail's 404 on an expired history id). The account as the run sees it;
    NotFoundError if it was offboarded meanwhile."""
    state = store.update_sync_state(
        account_id, SyncStateChange(last_attempt_at=now, status=SyncStatus.SYNCING)
    )
    if state.resync_pending:
        store.update_sync_state(account_id, RESYNC_RESET)
    account = store.get_email_account(account_id)
    if account is None or account.deleted:
        raise NotFoundError("mailbox offboarded", account_id=account_id)
    return account


# What a full resync resets: the history cursor (lowered: only ``reset_history`` may), the
# backfill's page token, its start and its progress. Captured mail stays; the re-listing
# fetches only what the mailbox has and the store lacks.
RESYNC_RESET = SyncStateChange(
    reset_history=True,
    history_id=0,
    backfill_done=False,
    backfill_page_token="",
    backfill_history_id=0,
    messages_done=0,
    resync_pending=False,
)


def _offboarded(store: MailboxStore, account_id: str) -> bool:
    account = store.get_email_account(account_id)
    return account is None or account.deleted


# Sightings soft-deleted per purge transaction (the store's maximum: two writes each).
PURGE_PAGE = 200


def purge_sightings(
    store: MailboxStore,
    account_id: str,
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, bool]:
    """Soft-delete an offboarded mailbox's live sightings, a page per transaction, until none
    remain or ``deadline`` passes: (how many, whether done). The store refuses new sightings
    of an offboarded mailbox, so a short page means the purge is complete."""
    purged = 0
    while True:
        count = store.soft_delete_account_sightings(account_id, limit=PURGE_PAGE)
        purged += count
        if count < PURGE_PAGE:
            return purged, True
        if clock() >= deadline:
            return purged, False


def _record_failure(store: MailboxStore, account_id: str, message: str) -> None:
    try:
        store.update_sync_state(
            account_id, SyncStateChange(status=SyncStatus.ERROR, last_error=message[:500])
        )
    except NotFoundError:
        return  # offboarded: its sync has ended, there is no status to keep
    logger.error(
        "sync run failed",
        extra={"fields": {"event": "sync_failed", "account_id": account_id, "reason": message}},
    )
