"""Corrections: an admin says one email is "not investor mail" for one investor, and can undo it.

Why a record on the email (``Email.corrections``) and not only an unlink: capture in another
mailbox, the re-match job and the participant repair all decide links again from the headers,
and would link the pair right back. With the correction stored, they drop the pair before
linking (``matching.without_corrected``), and the store itself refuses the link inside the
link's transaction, so a capture racing the correction cannot win.

Marking it, in this order: the correction is stored (from then on nothing links the pair), the
pair is unlinked through the store's one unlink (which, when no link is left, purges the mail's
snippet, body and search words, as for mail that never matched, and is where the relationship
figures follow an unlink), its open proposal is withdrawn, and an approved activity (a person
decided it) stays but is marked corrected. "And always exclude this address" adds the address
that matched to the exclusion list (which queues the usual re-match of that address).

Undoing it removes the correction (and the exclusion it added), matches the email again, links
and re-proposes what still matches (a withdrawn proposal reopens), unmarks the activity, and
fetches the purged body again through a mailbox that still holds the mail. Both are audited
(``email.not_investor_mail``, ``email.not_investor_mail.undo``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.domain.matching import HEADER_ORDER
from shared.domain.models import (
    AuditEntry,
    Caller,
    Correction,
    ProposalStatus,
    normalize_address,
    proposal_id_for,
)
from shared.errors import ConflictError, NotFoundError
from shared.ports import CaptureStore, GmailClient, Queue
from shared.services.capture import (
    apply_matches,
    email_participants,
    load_exclusions,
    match_many,
    own_canonical_addresses,
)
from shared.services.crm import get_exclusions, set_exclusions
from shared.services.rematch import fetch_body

MARK_ACTION = "email.not_investor_mail"
UNDO_ACTION = "email.not_investor_mail.undo"


@dataclass(frozen=True)
class CorrectionOutcome:
    """What a correction or its undo did. ``changed`` is False when it was already so."""

    email_id: str
    investor_id: str
    corrected: bool
    changed: bool
    unlinked: int = 0
    relinked: bool = False
    proposal_status: str = ""
    activity_corrected: bool = False
    excluded_address: str = ""
    exclusion_job_id: str | None = None
    body_fetched: bool = False


def mark_not_investor_mail(
    store: CaptureStore,
    queue: Queue,
    caller: Caller,
    email_id: str,
    investor_id: str,
    *,
    exclude_address: bool,
    now: datetime,
) -> CorrectionOutcome:
    """Say the email is not mail of the investor (see the module docstring). NotFoundError if
    the email is unknown, or neither linked to the investor nor already corrected for it."""
    email = store.get_email(email_id)
    if email is None:
        raise NotFoundError("no such email", email_id=email_id)
    existing = email.correction_for(investor_id)
    links = [ln for ln in store.list_links(email.id) if ln.investor_id == investor_id]
    if existing is None and not links:
        raise NotFoundError(
            "the email is not linked to this investor", email_id=email_id, investor_id=investor_id
        )
    excluded = existing.excluded_address if existing else ""
    job_id: str | None = None
    if exclude_address and not excluded and links:
        first = min(links, key=lambda ln: (HEADER_ORDER.index(ln.header), ln.matched_address))
        added, job_id = _exclude(store, queue, caller, first.matched_address)
        excluded = first.matched_address if added else ""
    correction = Correction(
        investor_id=investor_id,
        by=existing.by if existing else caller.email,
        at=existing.at if existing else now,
        excluded_address=excluded,
    )
    if correction != existing:
        store.set_email_correction(email.id, investor_id, correction)
    unlinked = store.unlink_email_from_investor(email.id, investor_id)

    proposal_id = proposal_id_for(email.id, investor_id)
    proposal = store.get_proposal(proposal_id)
    status = proposal.status if proposal else None
    if status is ProposalStatus.PROPOSED:
        with contextlib.suppress(ConflictError):  # decided by a person meanwhile
            status = store.decide_proposal(
                proposal_id, ProposalStatus.WITHDRAWN, caller.email
            ).proposal.status
    marked = False
    activity = store.get_activity(proposal_id)
    if activity is not None:
        marked = True
        if not activity.corrected:
            store.set_activity_corrected(activity.id, caller.email, now)
    outcome = CorrectionOutcome(
        email_id=email.id,
        investor_id=investor_id,
        corrected=True,
        changed=existing is None or bool(unlinked) or correction != existing,
        unlinked=unlinked,
        proposal_status=status.value if status else "",
        activity_corrected=marked,
        excluded_address=excluded,
        exclusion_job_id=job_id,
    )
    if outcome.changed:
        _audit(store, caller, MARK_ACTION, outcome)
    return outcome


def undo_not_investor_mail(
    store: CaptureStore,
    queue: Queue,
    caller: Caller,
    email_id: str,
    investor_id: str,
    *,
    gmail_for: Callable[[str], GmailClient],
) -> CorrectionOutcome:
    """Undo a correction (see the module docstring); NotFoundError if the email is unknown or
    carries no correction for the investor."""
    email = store.get_email(email_id)
    correction = email.correction_for(investor_id) if email else None
    if email is None or correction is None:
        raise NotFoundError("no such correction", email_id=email_id, investor_id=investor_id)
    job_id: str | None = None
    if correction.excluded_address:
        job_id = _include(store, queue, caller, correction.excluded_address)
    store.set_email_correction(email.id, investor_id, None)

    found = []
    if not email.is_bulk:
        matches = match_many(
            store,
            {email.id: email_participants(email)},
            own_canonical_addresses(store),
            load_exclusions(store),
        )
        found = [m for m in matches.get(email.id, []) if m.investor_id == investor_id]
    holder = email.live_account_ids[0] if email.live_account_ids else None
    apply_matches(store, email.id, found, account_id=holder, actor=caller.email, unlink=False)

    proposal_id = proposal_id_for(email.id, investor_id)
    activity = store.get_activity(proposal_id)
    if activity is not None and activity.corrected:
        store.set_activity_corrected(activity.id, caller.email, None)
    fetched = False
    after = store.get_email(email.id)
    if found and after is not None and not (after.body or after.snippet):
        fetched = bool(fetch_body(store, after, gmail_for))
    proposal = store.get_proposal(proposal_id)
    outcome = CorrectionOutcome(
        email_id=email.id,
        investor_id=investor_id,
        corrected=False,
        changed=True,
        relinked=bool(found),
        proposal_status=proposal.status.value if proposal else "",
        activity_corrected=False,
        excluded_address=correction.excluded_address,
        exclusion_job_id=job_id,
        body_fetched=fetched,
    )
    _audit(store, caller, UNDO_ACTION, outcome)
    return outcome


def _exclude(
    store: CaptureStore, queue: Queue, caller: Caller, address: str
) -> tuple[bool, str | None]:
    """Add ``address`` to the exclusions (audited, re-match queued); whether it was added."""
    addresses, domains = get_exclusions(store)
    wanted = normalize_address(address)
    if wanted in addresses:
        return False, None
    _, _, job_id = set_exclusions(
        store, queue, caller, addresses=[*addresses, wanted], domains=domains
    )
    return True, job_id


def _include(store: CaptureStore, queue: Queue, caller: Caller, address: str) -> str | None:
    """Take ``address`` off the exclusions again, if it is still there."""
    addresses, domains = get_exclusions(store)
    wanted = normalize_address(address)
    if wanted not in addresses:
        return None
    _, _, job_id = set_exclusions(
        store, queue, caller, addresses=[a for a in addresses if a != wanted], domains=domains
    )
    return job_id


def _audit(store: CaptureStore, caller: Caller, action: str, outcome: CorrectionOutcome) -> None:
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action=action,
            target=outcome.email_id,
            details={
                "investor_id": outcome.investor_id,
                "unlinked": outcome.unlinked,
                "relinked": outcome.relinked,
                "proposal_status": outcome.proposal_status,
                "activity_corrected": outcome.activity_corrected,
                "excluded_address": outcome.excluded_address,
                "exclusion_job_id": outcome.exclusion_job_id,
            },
        )
    )
