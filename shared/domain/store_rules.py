"""Rules every Store adapter applies inside its transactions, written once so they cannot drift.

Pure functions of stored values: the adapters read, call these, and write what they return.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.domain import search
from shared.domain.models import (
    Activity,
    CaptureProblem,
    Direction,
    Email,
    EmailAccount,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    SyncState,
    User,
    is_record_id,
    time_key,
    utcnow,
)
from shared.errors import BadRequestError, ConflictError, NotFoundError
from shared.ports import Decision, SyncStateChange

R = TypeVar("R", bound=BaseModel)

_DENORMALISED = ("matched", "matched_at", "investor_ids", "live_account_ids")


def with_derived_fields(record: R) -> R:
    """The record re-validated, so derived keys (``name_key``, ``email_keys``) follow its data
    even when the caller built it with ``model_copy(update=...)``, which skips validators."""
    return type(record).model_validate(record.model_dump())


def check_limit(limit: int) -> int:
    """Listing limits below 1 are a caller's mistake on every store, never an empty page."""
    if limit < 1:
        raise BadRequestError("limit must be at least 1", limit=limit)
    return limit


# A token is base64 of a key of at most a few hundred characters; anything longer is not one.
MAX_PAGE_TOKEN = 4096
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def encode_page_token(key: str) -> str:
    """Opaque page token: the last item's sort key. Stores page on a unique sortable key rather
    than cursors or offsets (which the Firestore emulator ignores and production bills for)."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> str:
    """The key a page token carries; BadRequestError unless it is exactly what
    :func:`encode_page_token` writes (a token is the caller's input: garbage, a truncated or
    re-padded token, or one of unbounded length is refused, never read as a position).
    Each listing then checks that the key is one of its own (:func:`time_id_page_key`)."""
    if not token or len(token) > MAX_PAGE_TOKEN or not _TOKEN_CHARS.fullmatch(token):
        raise BadRequestError("page_token is not valid")
    try:
        key = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise BadRequestError("page_token is not valid") from exc
    # Empty: never one of ours. Not canonical: base64 decoding forgives what encoding never writes.
    if not key or encode_page_token(key) != token:
        raise BadRequestError("page_token is not valid")
    return key


def time_id_page_key(page_token: str) -> str:
    """The ``<time_key>|<id>`` key of a page token of a listing ordered by time then id
    (proposals, the panel, the digest's window); BadRequestError for any other key."""
    key = decode_page_token(page_token)
    split_activity_key(key)
    return key


def change_user_role(
    user: User, *, role: Role | None, is_active: bool | None, other_active_admins: int
) -> User:
    """The user after a role/activity change; refused if it would leave no active admin."""
    changed = user.model_copy(
        update={
            "role": role if role is not None else user.role,
            "is_active": is_active if is_active is not None else user.is_active,
            "updated_at": utcnow(),
        }
    )
    was_admin = user.is_active and user.role is Role.ADMIN
    still_admin = changed.is_active and changed.role is Role.ADMIN
    if was_admin and not still_admin and other_active_admins == 0:
        raise ConflictError("the change would leave no active admin", user_id=user.id)
    return changed


def count_capture_attempt(stored: CaptureProblem | None, new: CaptureProblem) -> CaptureProblem:
    """The problem to keep: the latest reason and time, and how many attempts failed so far."""
    if stored is None:
        return new
    return new.model_copy(update={"attempts": stored.attempts + 1})


def matched_window_keys(since: datetime, until: datetime, page_token: str) -> tuple[str, str]:
    """The ``matched_key`` bounds of ``since < matched_at <= until``, resumed after a page.

    "\uffff" sorts after any id, so ``<since>|\uffff`` excludes mail matched exactly at
    ``since`` and ``<until>|\uffff`` includes mail matched exactly at ``until``.
    """
    lower = f"{time_key(since)}|\uffff"
    if page_token:
        lower = max(lower, time_id_page_key(page_token))
    return lower, f"{time_key(until)}|\uffff"


# -- mailboxes: pause reasons, offboarding, purge ---------------------------------------------

# Sightings soft-deleted per purge transaction: each may rewrite its email too, so a page is at
# most 2 x 200 writes, under Firestore's 500 per commit.
MAX_PURGE_PAGE = 200


def refuse_offboarded(account: EmailAccount) -> EmailAccount:
    """The account, unless it is offboarded: then its sync has ended and nothing more may be
    written for it (a run still going stops at its next write; a purge is not undone)."""
    if account.deleted:
        raise NotFoundError("mailbox is offboarded", account_id=account.id)
    return account


def apply_pause(account: EmailAccount, paused: bool, reason: PauseReason) -> EmailAccount:
    """Add or lift one pause reason; paused while any reason remains. A mailbox paused before
    reasons were kept counts as paused by an admin."""
    if account.deleted:
        raise ConflictError("mailbox is offboarded", account_id=account.id)
    reasons = set(account.pause_reasons)
    if account.paused and not reasons:
        reasons.add(PauseReason.ADMIN)
    if paused:
        reasons.add(reason)
    else:
        reasons.discard(reason)
    ordered = sorted(reasons, key=lambda r: r.value)
    return account.model_copy(update={"paused": bool(ordered), "pause_reasons": ordered})


def owned_by(account: EmailAccount, owner: User | None) -> EmailAccount:
    """The mailbox with ``owner`` (None: ownerless). Its ``owner_inactive`` pause follows the
    owner: added while the owner is inactive, lifted otherwise (an admin's pause stays)."""
    inactive = owner is not None and not owner.is_active
    changed = apply_pause(account, inactive, PauseReason.OWNER_INACTIVE)
    return changed.model_copy(update={"user_id": owner.id if owner else None})


def claims_mailbox(account: EmailAccount) -> bool:
    """A new user becomes the owner of the mailbox at their address when it has none: a
    mailbox's owner is the user with its address, unless an admin chose another."""
    return not account.deleted and account.user_id is None


def offboard(account: EmailAccount) -> EmailAccount:
    """The account offboarded; offboarding again changes nothing (the first time is kept)."""
    if account.deleted:
        return account
    return account.model_copy(update={"deleted": True, "deleted_at": utcnow()})


def check_purge_limit(limit: int) -> int:
    check_limit(limit)
    if limit > MAX_PURGE_PAGE:
        raise BadRequestError(f"limit must be at most {MAX_PURGE_PAGE}", limit=limit)
    return limit


def apply_account_sync_change(account: EmailAccount, change: SyncStateChange) -> EmailAccount:
    """The account with its sync state changed; refused once it is offboarded."""
    refuse_offboarded(account)
    return account.model_copy(update={"sync": apply_sync_change(account.sync, change)})


# -- proposals: the listing window -----------------------------------------------------------


def proposal_window_keys(
    created_from: datetime | None, created_to: datetime | None, page_token: str
) -> tuple[str | None, str | None]:
    """``sort_key`` bounds (``lower <= key < upper``; None = open) of ``created_from <=
    created_at < created_to``, resumed below a page's last key. One field carries the window
    and the paging, so any filter combination needs no index beyond (equalities, sort_key)."""
    lower = _window_key("created_from", created_from)
    upper = _window_key("created_to", created_to)
    if page_token:
        resume = time_id_page_key(page_token)
        upper = resume if upper is None else min(upper, resume)
    return lower, upper


def _window_key(name: str, value: datetime | None) -> str | None:
    # time_key is fixed-width (so sortable) for four-digit years only.
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadRequestError(f"{name} must carry a time zone")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise BadRequestError(f"{name} is out of range") from None
    if utc.year < 1000:
        raise BadRequestError(f"{name} is out of range")
    return f"{time_key(utc)}|"


def apply_sync_change(state: SyncState, change: SyncStateChange) -> SyncState:
    """The new sync state; the history id never moves backwards except on an explicit reset."""
    update: dict[str, Any] = {}
    for name in (
        "status",
        "last_success_at",
        "last_attempt_at",
        "last_error",
        "watch_expiration",
        "backfill_page_token",
        "backfill_history_id",
        "backfill_done",
        "last_reconciled_at",
        "messages_total",
        "messages_done",
        "messages_failed",
        "coverage_gap",
        "resync_pending",
    ):
        value = getattr(change, name)
        if value is not None:
            update[name] = value
    if change.header_problems_added:
        update["header_problems"] = state.header_problems + change.header_problems_added
    if change.reset_history:
        update["history_id"] = change.history_id or 0
    elif change.history_id is not None:
        update["history_id"] = max(state.history_id, change.history_id)
    return state.model_validate({**state.model_dump(), **update})


def denormalised_email_fields(
    email: Email, live_account_ids: Sequence[str], investor_ids: Sequence[str]
) -> dict[str, Any]:
    """``matched``/``investor_ids`` from links, ``live_account_ids`` from live sightings.

    ``matched_at`` is when the mail became known as investor mail: set on the first link, kept
    while any link remains (the digest's window is on it), cleared when the last link goes.
    """
    investors = sorted(set(investor_ids))
    matched = bool(investors)
    matched_at = (email.matched_at or utcnow()) if matched else None
    return {
        "live_account_ids": sorted(set(live_account_ids)),
        "investor_ids": investors,
        "matched": matched,
        "matched_at": matched_at,
    }


def merge_captured_email(stored: Email | None, captured: Email) -> Email:
    """The email to write when capture hands us ``captured``.

    Captured fields replace the stored ones, except that the first sighting time is kept and
    the denormalised fields are the stored ones (the adapter recomputes them right after): a
    caller can never mark mail as matched or live by passing those fields.
    """
    if stored is None:
        return captured.model_copy(
            update={
                "matched": False,
                "matched_at": None,
                "investor_ids": [],
                "live_account_ids": [],
            }
        )
    keep = {name: getattr(stored, name) for name in _DENORMALISED}
    keep["first_seen_at"] = min(stored.first_seen_at, captured.first_seen_at)
    return captured.model_copy(update=keep)


def decide(
    proposal: Proposal,
    status: ProposalStatus,
    actor: str,
    *,
    email: Email | None,
    existing_activity: Activity | None,
) -> Decision:
    """Apply a human's (or the re-match job's withdrawal) decision to a proposal.

    Deciding the same way twice is a no-op that reports ``changed=False``; deciding differently
    once decided is a conflict naming the current state. Approval creates the activity, keyed by
    the proposal id so there can only ever be one.
    """
    if status is ProposalStatus.PROPOSED:
        # Only the re-match job reopens, and only what it withdrew: a match that went away and
        # came back is proposed again. A person's approval or rejection is never undone.
        if proposal.status is ProposalStatus.WITHDRAWN:
            reopened = proposal.model_copy(
                update={"status": status, "decided_by": "", "decided_at": None}
            )
            return Decision(proposal=reopened, changed=True, activity=None)
        if proposal.status is ProposalStatus.PROPOSED:
            return Decision(proposal=proposal, changed=False, activity=None)
        raise ConflictError(
            f"proposal already {proposal.status.value}",
            proposal_id=proposal.id,
            state=proposal.status.value,
        )
    if proposal.status is status:
        return Decision(proposal=proposal, changed=False, activity=existing_activity)
    if proposal.status is not ProposalStatus.PROPOSED:
        raise ConflictError(
            f"proposal already {proposal.status.value}",
            proposal_id=proposal.id,
            state=proposal.status.value,
        )
    decided = proposal.model_copy(
        update={"status": status, "decided_by": actor, "decided_at": utcnow()}
    )
    activity = None
    if status is ProposalStatus.APPROVED:
        activity = existing_activity or Activity(
            id=proposal.id,
            proposal_id=proposal.id,
            email_id=proposal.email_id,
            investor_id=proposal.investor_id,
            contact_id=proposal.contact_id,
            occurred_at=email.date if email else None,
            summary=email.subject if email else "",
            created_by=actor,
        )
    return Decision(proposal=decided, changed=True, activity=activity)


# -- the email-activity panel -------------------------------------------------------------------
# What both stores derive from an email to list and search it (``Store.query_activity``). Pure
# functions of the email and the team's addresses, so the stores cannot disagree on them; each
# store recomputes them inside the transaction that recomputes the email's denormalised fields.

ANY = "*"


def activity_time(email: Email) -> datetime:
    """What the panel orders by: the Date header, or first sight for mail without one."""
    return email.date or email.first_seen_at


def activity_key(email: Email) -> str:
    """``<time_key>|<id>``: unique, fixed-width time first, so string order is the panel's
    order (by date, ties by id); paging resumes below the last key seen."""
    return f"{time_key(activity_time(email))}|{email.id}"


def is_listed(email: Email) -> bool:
    """Linked to an investor or contact (every link names an investor) and held by at least
    one live sighting: soft delete lives on the sighting, so mail no mailbox holds is hidden."""
    return email.matched and bool(email.investor_ids) and bool(email.live_account_ids)


def email_direction(email: Email, own_addresses: Container[str]) -> Direction:
    """Outbound iff the sender is one of the team's mailbox addresses or aliases."""
    sender = email.sender.address if email.sender else ""
    return Direction.OUTBOUND if sender and sender in own_addresses else Direction.INBOUND


def facet_token(investor_id: str | None, account_id: str | None, direction: str | None) -> str:
    """The token of one combination of the panel's filters (``*`` = not filtered). Ids cannot
    hold ``|`` or ``*`` (``models.RecordId``), so tokens of different combinations never clash."""
    return f"{investor_id or ANY}|{account_id or ANY}|{direction or ANY}"


def email_search_words(email: Email) -> list[str]:
    """The words ``q`` searches: subject, snippet, the sender's display name and address
    (the sender's, not every recipient's: "mail from Zoe" is what the panel is asked)."""
    sender = email.sender
    parts = (email.subject, email.snippet, *((sender.name, sender.address) if sender else ()))
    return search.text_words(parts)


@dataclass(frozen=True)
class ActivityFields:
    """An email's derived listing fields. For mail that is not listed: no facets and no words,
    so no query can find it (``direction`` is then meaningless and left inbound)."""

    listed: bool
    key: str
    direction: Direction
    facets: tuple[str, ...]
    words: tuple[str, ...]

    @property
    def prefixes(self) -> list[str]:
        """Firestore's ``search_words``: every 2..15-character prefix of the words."""
        return search.prefixes(self.words)


def activity_fields(email: Email, own_addresses: Container[str]) -> ActivityFields:
    """Everything the panel filters, orders and searches on, for one email.

    ``facets``: one token per combination of the filters the email satisfies, the unfiltered
    one included: every investor it is linked to or none, every mailbox holding a live sighting
    or none, its direction or none. Any combination of filters is then one exact token.
    """
    key = activity_key(email)
    if not is_listed(email):
        return ActivityFields(False, key, Direction.INBOUND, (), ())
    direction = email_direction(email, own_addresses)
    facets = sorted(
        facet_token(investor, account, way)
        for investor in (None, *email.investor_ids)
        for account in (None, *email.live_account_ids)
        for way in (None, direction.value)
    )
    return ActivityFields(True, key, direction, tuple(facets), tuple(email_search_words(email)))


def split_activity_key(key: str) -> tuple[datetime, str]:
    """The time and id of an activity key; BadRequestError if it is not one (a page token is
    a caller's input)."""
    stamp, _, email_id = key.partition("|")
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadRequestError("page_token is not valid") from exc
    if len(stamp) != 27 or not is_record_id(email_id):
        raise BadRequestError("page_token is not valid")
    return when, email_id


def activity_page_key(page_token: str) -> str:
    """The activity key a page token resumes below ("" for the first page)."""
    if not page_token:
        return ""
    return time_id_page_key(page_token)
