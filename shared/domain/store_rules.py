"""Rules every Store adapter applies inside its transactions, written once so they cannot drift.

Pure functions of stored values: the adapters read, call these, and write what they return.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.domain.models import (
    Activity,
    CaptureProblem,
    Email,
    Proposal,
    ProposalStatus,
    Role,
    SyncState,
    User,
    time_key,
    utcnow,
)
from shared.errors import BadRequestError, ConflictError
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


def encode_page_token(key: str) -> str:
    """Opaque page token: the last item's sort key. Stores page on a unique sortable key rather
    than cursors or offsets (which the Firestore emulator ignores and production bills for)."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise BadRequestError("page_token is not valid") from exc


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
        lower = max(lower, decode_page_token(page_token))
    return lower, f"{time_key(until)}|\uffff"


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
    ):
        value = getattr(change, name)
        if value is not None:
            update[name] = value
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
