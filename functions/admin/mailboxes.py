"""Team mailboxes (admins only): list with sync status, add, set the owner, pause and resume,
full resync, offboard.

Pauses carry reasons (``pause_reasons``): an admin's, or the owner's deactivation; a mailbox is
paused while any remains, and resuming it while its owner is inactive is a 409. Offboarding
ends its capture for good (sightings kept or purged, as the admin chooses) and is idempotent;
pausing, resuming or resyncing an offboarded mailbox is a 409 (``shared.services.directory``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import flask

from functions.admin.schemas import AddressText, ApiModel, EmailAddress
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Caller, EmailAccount
from shared.domain.tenancy import TeamDomains
from shared.services import directory, sync
from shared.web import ADMINS


class MailboxState(StrEnum):
    """The one word the console shows: the sync's status unless paused or offboarded."""

    NEVER = "never"
    SYNCING = "syncing"
    OK = "ok"
    BEHIND = "behind"
    ERROR = "error"
    PAUSED = "paused"
    OFFBOARDED = "offboarded"


class BackfillProgress(ApiModel):
    """The full sync's progress: messages listed so far against Gmail's estimate."""

    done: bool
    messages_done: int
    messages_total: int
    percent: float | None


class CoverageResult(ApiModel):
    """The last coverage check: messages Gmail had that capture had not stored (then fetched),
    and when the whole horizon was last compared (weekly; the last 48 hours every poll)."""

    gap: int
    last_full_check_at: datetime | None


class MailboxStatus(EmailAccount):
    """A mailbox as the console lists it: the record (``sync`` holds the raw state) plus its
    state word, lag, backfill progress and coverage."""

    state: MailboxState
    # Its address is outside the fund's domains (a mailbox from before CRM_TEAM_DOMAINS).
    outside_team_domains: bool = False
    lag_seconds: float | None = None
    behind: bool = False
    backfill: BackfillProgress
    coverage: CoverageResult


class TeamStatus(ApiModel):
    """The fund's domains, what decided them (``CRM_TEAM_DOMAINS``, ``CRM_BOOTSTRAP_ADMIN``,
    ``first admin``, or "" while undecided), and who is outside them: kept and flagged, not
    deleted (they cannot sign in, and the digest does not go to them)."""

    domains: list[str]
    source: str
    status: str
    outside_users: list[str]
    outside_mailboxes: list[str]


class MailboxList(ApiModel):
    items: list[MailboxStatus]
    team: TeamStatus


class MailboxQuery(ApiModel):
    include_offboarded: bool = False


class NewMailbox(ApiModel):
    address: EmailAddress
    owner_email: AddressText = ""


class MailboxPatch(ApiModel):
    """The mailbox's owner: a user's address, or empty for the default (the user with the
    mailbox's own address, or none)."""

    owner_email: AddressText


class SightingsChoice(StrEnum):
    KEEP = "keep"
    PURGE = "purge"


class OffboardRequest(ApiModel):
    """``keep``: its captured mail stays in the panel. ``purge``: each of its sightings is
    soft-deleted, so mail no other mailbox holds leaves the panel. Required: an admin chooses."""

    sightings: SightingsChoice


class MailboxAction(ApiModel):
    """The mailbox after a pause, resume or resync, and whether a sync run was requested."""

    mailbox: MailboxStatus
    sync_requested: bool


class AddedMailbox(EmailAccount):
    """The mailbox just added, and how its capture started: a sync requested at once (not at
    the next poll) and its Gmail watch started at once when a watch topic is configured. A
    failed watch start (``watch_error``) does not undo the add: the daily renewal retries it."""

    sync_requested: bool
    watch_started: bool
    watch_error: str


class ResumedMailbox(MailboxAction):
    """A resume also starts the mailbox's Gmail watch at once (when a topic is configured)."""

    watch_started: bool
    watch_error: str


class OffboardResult(ApiModel):
    """The offboarded mailbox; whether it already was; whether Gmail stopped its watch (a
    failure is not fatal: pushes for it are ignored and Gmail ends a watch within 7 days);
    how many sightings this request purged and whether the purge is complete (a large one
    continues in the background)."""

    mailbox: MailboxStatus
    already_offboarded: bool
    watch_stopped: bool
    watch_error: str
    sightings: SightingsChoice
    purged: int
    purge_done: bool


def status_of(
    account: EmailAccount, now: datetime, team: TeamDomains | None = None
) -> MailboxStatus:
    state = account.sync
    if account.deleted:
        word = MailboxState.OFFBOARDED
    elif account.paused:
        word = MailboxState.PAUSED
    else:
        word = MailboxState(state.status.value)
    percent = None
    if state.backfill_done:
        percent = 100.0
    elif state.messages_total > 0:
        percent = round(min(100.0, 100.0 * state.messages_done / state.messages_total), 1)
    return MailboxStatus(
        **dict(account),
        state=word,
        outside_team_domains=not (team or wiring.team_domains()).admits(account.address),
        lag_seconds=sync.lag_seconds(account, now),
        behind=sync.is_behind(account, now) and not account.deleted,
        backfill=BackfillProgress(
            done=state.backfill_done,
            messages_done=state.messages_done,
            messages_total=state.messages_total,
            percent=percent,
        ),
        coverage=CoverageResult(
            gap=state.coverage_gap, last_full_check_at=state.last_reconciled_at
        ),
    )


@api.route(
    "GET",
    "/mailboxes",
    roles=ADMINS,
    query=MailboxQuery,
    response=MailboxList,
    tag="mailboxes",
)
def list_mailboxes(request: flask.Request, caller: Caller, query: MailboxQuery) -> MailboxList:
    """Team mailboxes and their sync status (offboarded ones on request), and the fund's
    domains with the users and mailboxes outside them."""
    now = wiring.clock().now()
    store = wiring.store()
    team = wiring.team_domains()
    accounts = store.list_email_accounts(include_deleted=query.include_offboarded)
    items = [status_of(account, now, team) for account in accounts]
    outside_users = team.outsiders(u.email for u in store.list_users(active_only=True))
    outside_mailboxes = [i.address for i in items if i.outside_team_domains and not i.deleted]
    status = team.describe()
    if outside_users or outside_mailboxes:
        status += (
            f"; outside them: {len(outside_users)} user(s), {len(outside_mailboxes)} mailbox(es)"
        )
    return MailboxList(
        items=items,
        team=TeamStatus(
            domains=sorted(team.domains),
            source=team.source,
            status=status,
            outside_users=outside_users,
            outside_mailboxes=outside_mailboxes,
        ),
    )


@api.route("GET", "/mailboxes/<account_id>", roles=ADMINS, response=MailboxStatus, tag="mailboxes")
def get_mailbox(request: flask.Request, caller: Caller, account_id: str) -> MailboxStatus:
    """One mailbox and its sync status; 404 if unknown."""
    account = directory.get_mailbox(wiring.store(), account_id)
    return status_of(account, wiring.clock().now(), wiring.team_domains())


@api.route(
    "POST",
    "/mailboxes",
    roles=ADMINS,
    body=NewMailbox,
    response=AddedMailbox,
    status=201,
    errors=(409,),
    tag="mailboxes",
)
def add_mailbox(request: flask.Request, caller: Caller, body: NewMailbox) -> AddedMailbox:
    """Register a team mailbox for capture (audited): at one of the fund's domains (400
    otherwise); its owner, if given, must be a user, else it is the user with the mailbox's
    address (if any). Its first sync is requested and its Gmail watch started at once (unless
    it starts paused)."""
    added = directory.add_mailbox(
        wiring.store(),
        caller,
        address=body.address,
        owner_email=body.owner_email,
        team=wiring.team_domains(),
    )
    started = wiring.start_capture(added.id)
    return AddedMailbox(
        **dict(started.account),
        sync_requested=started.sync_requested,
        watch_started=started.watch_started,
        watch_error=started.watch_error,
    )


@api.route(
    "PATCH",
    "/mailboxes/<account_id>",
    roles=ADMINS,
    body=MailboxPatch,
    response=MailboxStatus,
    errors=(409,),
    tag="mailboxes",
)
def patch_mailbox(
    request: flask.Request, caller: Caller, account_id: str, body: MailboxPatch
) -> MailboxStatus:
    """Set the mailbox's owner (audited): by default the user with the mailbox's address owns
    it; an admin may name another user, or give "" to return to the default. 404 for an
    unknown mailbox or user, 409 if offboarded."""
    account = directory.set_mailbox_owner(
        wiring.store(), caller, account_id, owner_email=body.owner_email
    )
    return status_of(account, wiring.clock().now())


def _action(account: EmailAccount, sync_requested: bool) -> MailboxAction:
    return MailboxAction(
        mailbox=status_of(account, wiring.clock().now()), sync_requested=sync_requested
    )


@api.route(
    "POST",
    "/mailboxes/<account_id>/pause",
    roles=ADMINS,
    response=MailboxAction,
    errors=(409,),
    tag="mailboxes",
)
def pause_mailbox(request: flask.Request, caller: Caller, account_id: str) -> MailboxAction:
    """Pause a mailbox's capture (audited); 409 if offboarded."""
    return _action(directory.pause_mailbox(wiring.store(), caller, account_id), False)


@api.route(
    "POST",
    "/mailboxes/<account_id>/resume",
    roles=ADMINS,
    response=ResumedMailbox,
    errors=(409,),
    tag="mailboxes",
)
def resume_mailbox(request: flask.Request, caller: Caller, account_id: str) -> ResumedMailbox:
    """Resume an admin-paused mailbox, ask for a sync and start its Gmail watch at once
    (audited); 409 while its owner is inactive, or if offboarded."""
    resumed = directory.resume_mailbox(wiring.store(), caller, account_id, queue=wiring.queue())
    started = wiring.start_capture(account_id, request_sync=False)  # resume asked for it
    return ResumedMailbox(
        mailbox=status_of(started.account, wiring.clock().now()),
        sync_requested=resumed.sync_requested,
        watch_started=started.watch_started,
        watch_error=started.watch_error,
    )


@api.route(
    "POST",
    "/mailboxes/<account_id>/resync",
    roles=ADMINS,
    response=MailboxAction,
    errors=(409,),
    tag="mailboxes",
)
def resync_mailbox(request: flask.Request, caller: Caller, account_id: str) -> MailboxAction:
    """Ask for a full resync (audited): the next run resets the history cursor and backfill
    and lists the whole mailbox again; a run is requested now unless the mailbox is paused.
    409 if offboarded."""
    asked = directory.request_resync(wiring.store(), caller, account_id, queue=wiring.queue())
    return _action(asked.account, asked.sync_requested)


@api.route(
    "POST",
    "/mailboxes/<account_id>/offboard",
    roles=ADMINS,
    body=OffboardRequest,
    response=OffboardResult,
    tag="mailboxes",
)
def offboard_mailbox(
    request: flask.Request, caller: Caller, account_id: str, body: OffboardRequest
) -> OffboardResult:
    """Offboard a mailbox (audited): stop its Gmail watch, end its sync, keep or purge its
    sightings. Idempotent: offboarding again answers 200 (and may purge what was kept)."""
    done = directory.offboard_mailbox(
        wiring.store(),
        caller,
        account_id,
        purge=body.sightings is SightingsChoice.PURGE,
        gmail_for=wiring.gmail_for,
        queue=wiring.queue(),
    )
    return OffboardResult(
        mailbox=status_of(done.account, wiring.clock().now()),
        already_offboarded=done.already_offboarded,
        watch_stopped=done.watch_stopped,
        watch_error=done.watch_error,
        sightings=body.sightings,
        purged=done.purged,
        purge_done=done.purge_done,
    )
