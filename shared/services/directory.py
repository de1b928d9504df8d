"""Users and team mailboxes: what the admin API changes about who works here and which Gmail
mailboxes are read.

Every change is audited with who made it; the store enforces the invariants inside its
transactions (one user per address, one mailbox per address, never zero active admins, nothing
written for an offboarded mailbox).

Decisions worth knowing:

- **Deactivating a user pauses their mailboxes** (``EmailAccount.user_id``) with the reason
  ``owner_inactive``; reactivating lifts that reason only. A mailbox is paused while it has any
  reason, so one an admin paused for their own reason stays paused. An admin cannot resume a
  mailbox whose owner is inactive (409): reactivate the owner, or offboard the mailbox. The
  user change and the mailboxes' pauses are separate transactions; repeating the same change
  re-applies the pauses (each step is idempotent), and the digest already leaves inactive
  users' mailboxes out on its own.
- **Resync** sets ``resync_pending``; the next run applies the reset under its lease
  (``sync.run_sync``), so a run in progress cannot overwrite it.
- **Offboarding** marks the mailbox deleted (sync_poll, watch_renew and gmail_push skip it, the
  store refuses a running sync's next write), stops its Gmail watch (a failure is reported, not
  fatal) and, if asked, purges its sightings page by page; a purge that outlasts the request's
  budget continues in the background through the sync topic. Offboarding again is idempotent,
  and may purge what an earlier offboarding kept (the reverse is impossible).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.catalog import Topic
from shared.domain.models import (
    AuditEntry,
    Caller,
    EmailAccount,
    PauseReason,
    Role,
    User,
)
from shared.domain.tenancy import TeamDomains
from shared.errors import ConflictError, NotFoundError
from shared.ports import (
    DirectoryStore,
    GmailClient,
    MailboxStore,
    Queue,
    SettingsStore,
    SyncStateChange,
    UserStore,
)
from shared.services import sync, watch

# How long the offboarding request itself purges before the rest continues in the background.
OFFBOARD_PURGE_BUDGET_S = 10.0


def _audit(store: SettingsStore, caller: Caller, action: str, target: str, **details: Any) -> None:
    store.append_audit(
        AuditEntry(actor=caller.email, action=action, target=target, details=details)
    )


# -- users ------------------------------------------------------------------------------------


def add_user(
    store: DirectoryStore, caller: Caller, *, email: str, name: str, role: Role, team: TeamDomains
) -> User:
    """Add a user at one of the fund's domains (400 otherwise); an ownerless mailbox at their
    address becomes theirs (the store decides it in the user's transaction, so a mailbox added
    meanwhile is not left ownerless)."""
    team.require(email, what="user")
    user = User.new(email, name, role)
    if not store.add_user(user):
        raise ConflictError("a user with this address exists", email=user.email)
    mailbox = store.get_email_account_by_address(user.email)
    owns = mailbox.id if mailbox is not None and mailbox.user_id == user.id else ""
    _audit(store, caller, "user.add", user.id, email=user.email, role=role.value, owns_mailbox=owns)
    return user


def get_user(store: UserStore, user_id: str) -> User:
    user = store.get_user(user_id)
    if user is None:
        raise NotFoundError("no such user", user_id=user_id)
    return user


@dataclass(frozen=True)
class UserChange:
    """A user after a change, and what it did to their mailboxes (ids)."""

    user: User
    changed: bool
    paused_mailboxes: list[str] = field(default_factory=list)
    resumed_mailboxes: list[str] = field(default_factory=list)


def change_user(
    store: DirectoryStore,
    caller: Caller,
    user_id: str,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    queue: Queue | None = None,
) -> UserChange:
    """Change a user's role or activity (409 if no active admin would remain, decided in the
    store's transaction), then make their mailboxes follow: paused while they are inactive,
    resumed (and asked to sync) when they come back unless paused for another reason. That
    something is given is the request model's to check (``functions.admin.people.UserPatch``)."""
    before = get_user(store, user_id)
    after = store.change_user(user_id, role=role, is_active=is_active)
    paused, resumed = _mailboxes_follow_owner(store, caller, after, queue)
    changes = {
        name: {"from": _plain(getattr(before, name)), "to": _plain(getattr(after, name))}
        for name in ("role", "is_active")
        if getattr(before, name) != getattr(after, name)
    }
    if changes or paused or resumed:
        _audit(
            store,
            caller,
            "user.change",
            user_id,
            email=after.email,
            changes=changes,
            paused_mailboxes=paused,
            resumed_mailboxes=resumed,
        )
    return UserChange(after, bool(changes), paused, resumed)


def _plain(value: object) -> object:
    return value.value if isinstance(value, Role) else value


def _mailboxes_follow_owner(
    store: DirectoryStore, caller: Caller, user: User, queue: Queue | None
) -> tuple[list[str], list[str]]:
    paused: list[str] = []
    resumed: list[str] = []
    for account in store.list_email_accounts():
        if account.user_id != user.id:
            continue
        marked = PauseReason.OWNER_INACTIVE in account.pause_reasons
        if user.is_active == (not marked):
            continue  # already follows
        try:
            now = store.set_email_account_paused(
                account.id, not user.is_active, reason=PauseReason.OWNER_INACTIVE
            )
        except (ConflictError, NotFoundError):
            continue  # offboarded meanwhile: nothing left to pause or resume
        if not user.is_active:
            paused.append(account.id)
            _audit(store, caller, "mailbox.pause", account.id, reason="owner_inactive")
        else:
            _audit(
                store,
                caller,
                "mailbox.resume" if not now.paused else "mailbox.pause_reason_lifted",
                account.id,
                reason="owner_active",
                still_paused_for=[r.value for r in now.pause_reasons],
            )
            if not now.paused:
                resumed.append(account.id)
                _request_sync(queue, account.id)
    return paused, resumed


def _request_sync(queue: Queue | None, account_id: str, *, purge: bool = False) -> bool:
    if queue is None:
        return False
    queue.publish(Topic.SYNC_REQUESTS.value, sync.SyncRequest(account_id, purge=purge).to_message())
    return True


# -- mailboxes --------------------------------------------------------------------------------


def add_mailbox(
    store: DirectoryStore, caller: Caller, *, address: str, team: TeamDomains, owner_email: str = ""
) -> EmailAccount:
    """Register a team mailbox at one of the fund's domains (400 otherwise). Its owner, if
    given, must be a known user, and otherwise it is the user with the mailbox's address, if
    any (decided in the store's transaction). A mailbox of an inactive owner starts paused
    (``owner_inactive``)."""
    team.require(address, what="team mailbox")
    owner: User | None = None
    if owner_email:
        owner = store.get_user_by_email(owner_email)
        if owner is None:
            raise NotFoundError("no user with this address", email=owner_email.strip().lower())
    account = EmailAccount.new(address, owner.id if owner else None)
    if owner is not None and not owner.is_active:
        account = account.model_copy(
            update={"paused": True, "pause_reasons": [PauseReason.OWNER_INACTIVE]}
        )
    if not store.add_email_account(account):
        raise ConflictError("this mailbox is already registered", address=account.address)
    account = store.get_email_account(account.id) or account  # with the owner the store found
    # Mail already stored from this address (seen by teammates' mailboxes) is now outbound.
    store.refresh_activity_direction(account.addresses())
    _audit(
        store,
        caller,
        "mailbox.add",
        account.id,
        address=account.address,
        owner_id=account.user_id or "",
    )
    return account


def set_mailbox_owner(
    store: DirectoryStore, caller: Caller, account_id: str, *, owner_email: str
) -> EmailAccount:
    """An admin names the mailbox's owner (empty: back to the user with its address, or none).
    The ``owner_inactive`` pause follows the new owner. 404 for an unknown mailbox or user,
    409 once offboarded; audited with the owner before and after."""
    before = get_mailbox(store, account_id)
    after = store.set_email_account_owner(account_id, owner_email)
    if before.user_id != after.user_id or before.pause_reasons != after.pause_reasons:
        _audit(
            store,
            caller,
            "mailbox.owner",
            account_id,
            address=after.address,
            owner={"from": before.user_id or "", "to": after.user_id or ""},
            named=owner_email.strip().lower(),
            pause_reasons=[r.value for r in after.pause_reasons],
        )
    return after


def get_mailbox(store: MailboxStore, account_id: str) -> EmailAccount:
    account = store.get_email_account(account_id)
    if account is None:
        raise NotFoundError("no such mailbox", account_id=account_id)
    return account


def _live_mailbox(store: MailboxStore, account_id: str) -> EmailAccount:
    account = get_mailbox(store, account_id)
    if account.deleted:
        raise ConflictError("mailbox is offboarded", account_id=account_id)
    return account


def pause_mailbox(store: DirectoryStore, caller: Caller, account_id: str) -> EmailAccount:
    """An admin's pause: sync, push and watch renewal skip the mailbox until resumed.
    Pausing a paused mailbox adds the admin's reason (idempotent); 409 once offboarded."""
    _live_mailbox(store, account_id)
    account = store.set_email_account_paused(account_id, True, reason=PauseReason.ADMIN)
    _audit(store, caller, "mailbox.pause", account_id, reason="admin")
    return account


@dataclass(frozen=True)
class Resumed:
    account: EmailAccount
    sync_requested: bool


def resume_mailbox(
    store: DirectoryStore, caller: Caller, account_id: str, *, queue: Queue | None
) -> Resumed:
    """Lift the admin's pause and ask for a sync (catching up). 409 while the owner is
    inactive (their reactivation resumes it) and once offboarded."""
    current = _live_mailbox(store, account_id)
    if PauseReason.OWNER_INACTIVE in current.pause_reasons:
        raise ConflictError(
            "the mailbox's owner is inactive: reactivate the owner to resume it",
            account_id=account_id,
            pause_reasons=[r.value for r in current.pause_reasons],
        )
    account = store.set_email_account_paused(account_id, False, reason=PauseReason.ADMIN)
    requested = not account.paused and _request_sync(queue, account_id)
    _audit(store, caller, "mailbox.resume", account_id, reason="admin")
    return Resumed(account, requested)


def request_resync(
    store: DirectoryStore, caller: Caller, account_id: str, *, queue: Queue | None
) -> Resumed:
    """Ask for a full resync: the next run resets the history cursor and the backfill under
    its lease and lists the whole mailbox again (fetching only what the store lacks). A sync
    is requested now unless the mailbox is paused (then it happens on resume). 409 once
    offboarded."""
    _live_mailbox(store, account_id)
    try:
        store.update_sync_state(account_id, SyncStateChange(resync_pending=True))
    except NotFoundError:
        raise ConflictError("mailbox is offboarded", account_id=account_id) from None
    account = get_mailbox(store, account_id)
    requested = not account.paused and _request_sync(queue, account_id)
    _audit(store, caller, "mailbox.resync", account_id, sync_requested=requested)
    return Resumed(account, requested)


@dataclass(frozen=True)
class CaptureStarted:
    """A new or resumed mailbox after ``start_capture``: the record (with its watch's
    expiration when one started), and what was asked of the queue and of Gmail."""

    account: EmailAccount
    sync_requested: bool
    watch_started: bool
    watch_error: str


def start_capture(
    store: MailboxStore,
    account_id: str,
    *,
    queue: Queue | None,
    gmail_for: Callable[[str], GmailClient],
    watch_topic: str,
    request_sync: bool = True,
) -> CaptureStarted:
    """Start a mailbox's capture now, not at the next five-minute poll and daily watch renewal:
    ask for its sync (its first full sync, for a new one) unless ``request_sync`` is False (the
    caller already did), and start its Gmail watch when a topic is configured (without one the
    poll does the work). A paused mailbox (an inactive owner's) starts nothing; its resume
    does. A failed watch start is logged and returned, never raised (the renewal retries)."""
    account = get_mailbox(store, account_id)
    requested = False
    if request_sync and queue is not None:
        requested = sync.request_sync_of_address(store, queue, account.address) is not None
    started = watch.start_watch(store, gmail_for, account, topic=watch_topic)
    return CaptureStarted(
        account=get_mailbox(store, account_id) if started.started else account,
        sync_requested=requested,
        watch_started=started.started,
        watch_error=started.error,
    )


@dataclass(frozen=True)
class Offboarded:
    account: EmailAccount
    already_offboarded: bool
    watch_stopped: bool
    watch_error: str
    purged: int
    purge_done: bool


def offboard_mailbox(
    store: DirectoryStore,
    caller: Caller,
    account_id: str,
    *,
    purge: bool,
    gmail_for: Callable[[str], GmailClient],
    queue: Queue | None,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Offboarded:
    """End a mailbox's capture: mark it offboarded, stop its Gmail watch, and keep or purge its
    sightings (``purge``: each live sighting soft-deleted, so its mail leaves the panel unless
    another mailbox holds it). Idempotent; 404 for an unknown mailbox."""
    before = get_mailbox(store, account_id)
    account = store.offboard_email_account(account_id)
    if not before.deleted:
        # Its addresses are no longer the team's: mail sent from them is now inbound.
        store.refresh_activity_direction(account.addresses())
    watch_error = watch.stop_watch(gmail_for, account.address)
    purged, done = 0, not purge
    if purge:
        budget = OFFBOARD_PURGE_BUDGET_S if budget_s is None else budget_s
        purged, done = sync.purge_sightings(
            store, account_id, deadline=clock() + budget, clock=clock
        )
        if not done and not _request_sync(queue, account_id, purge=True):
            # No queue to continue with: finish here.
            more, done = sync.purge_sightings(store, account_id, deadline=float("inf"))
            purged += more
    _audit(
        store,
        caller,
        "mailbox.offboard",
        account_id,
        address=account.address,
        sightings="purge" if purge else "keep",
        purged=purged,
        purge_done=done,
        watch_stopped=not watch_error,
        watch_error=watch_error,
        already_offboarded=before.deleted,
    )
    return Offboarded(account, before.deleted, not watch_error, watch_error, purged, done)
