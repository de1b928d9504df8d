"""Reply drafts: a human reviews and sends them (the hard rule: agents draft; humans send).

``create_reply_draft`` writes an in-thread reply (``reply`` or ``reply_all``) to a captured email
as a Gmail draft in one team mailbox, built from what capture stored (a ``gmail.compose`` token
cannot read mail). Who may: an admin, a drafting-agent service identity, or a member into a
mailbox they own. What it refuses:

* an empty body (400), an unknown email or mailbox (404);
* an email the mailbox never saw, or saw only as a deleted sighting (409, with the reason);
  to a member, an email their mailbox never saw is an unknown email (404), so a member cannot
  learn which ids exist in other mailboxes;
* an original with no one to reply to once the mailbox's own addresses are removed (409);
* a draft Gmail filed in another thread than the sighting's (502 with the draft id): Gmail puts
  a draft that does not fit the thread in a new one, and that is not the reply asked for.

Every created draft, misthreaded or not, gets an audit entry ``draft.create``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from shared.domain.models import AuditEntry, Caller, EmailAccount, Mailbox, Role, ServiceRole
from shared.domain.reply import Recipients, ReplyMode, build_reply
from shared.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UpstreamError,
)
from shared.ports import DraftsClient, DraftStore, MailboxStore

DRAFTERS: frozenset[Role | ServiceRole] = frozenset(
    {Role.ADMIN, Role.MEMBER, ServiceRole.DRAFTING_AGENT}
)


class DraftMisthreadedError(UpstreamError):
    """Gmail created the draft in another thread than the one replied to."""

    code = "draft_misthreaded"


@dataclass(frozen=True)
class DraftRequest:
    email_id: str
    text: str
    mode: ReplyMode = ReplyMode.REPLY
    account_id: str = ""
    mailbox: str = ""
    quote: bool = True


@dataclass(frozen=True)
class DraftResult:
    draft_id: str
    message_id: str
    thread_id: str
    account_id: str
    mailbox: str
    mode: ReplyMode
    subject: str
    recipients: Recipients
    quoted: bool


def create_reply_draft(
    store: DraftStore,
    caller: Caller,
    request: DraftRequest,
    *,
    drafts_for: Callable[[str], DraftsClient],
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> DraftResult:
    """Create the reply draft (see the module docstring); the draft's id and thread."""
    if caller.role not in DRAFTERS:
        raise ForbiddenError("caller may not create drafts")
    if not request.text.strip():
        raise BadRequestError("the draft's body is empty")
    account = _target_account(store, request)
    owns = account.user_id is not None and account.user_id == caller.user_id
    if caller.role is Role.MEMBER and not owns:
        raise ForbiddenError("a member drafts only into their own mailbox", mailbox=account.address)
    email = store.get_email(request.email_id)
    if email is None:
        raise NotFoundError("no such email", email_id=request.email_id)
    sightings = [s for s in store.list_sightings(email.id) if s.account_id == account.id]
    if not sightings and caller.role is Role.MEMBER:
        # A member sees only their own mailbox: an email it never saw is, to them, unknown
        # (a 409 here would say that the id exists in someone else's mailbox).
        raise NotFoundError("no such email", email_id=request.email_id)
    if not sightings:
        raise ConflictError(
            "this mailbox never saw the email: a reply draft goes into the mailbox's own thread",
            reason_code="not_in_mailbox",
            mailbox=account.address,
        )
    live = [s for s in sightings if not s.deleted and s.thread_id]
    if not live:
        raise ConflictError(
            "the email was deleted from this mailbox",
            reason_code="deleted_in_mailbox",
            mailbox=account.address,
        )
    sighting = max(live, key=lambda s: (s.internal_date or datetime.min.replace(tzinfo=UTC), s.id))
    owner = store.get_user(account.user_id) if account.user_id else None
    sender = Mailbox(name=owner.name if owner else "", address=account.address)
    draft = build_reply(
        email,
        from_mailbox=sender,
        own_addresses=account.addresses(),
        mode=request.mode,
        text=request.text,
        quote=request.quote,
        now=now or datetime.now(UTC),
        tz=tz,
    )
    if not draft.recipients.to and not draft.recipients.cc:
        raise ConflictError(
            "no one to reply to: every participant is this mailbox",
            reason_code="no_recipients",
            mailbox=account.address,
        )
    created = drafts_for(account.address).create_draft(draft.raw, sighting.thread_id)
    result = DraftResult(
        draft_id=created.draft_id,
        message_id=created.message_id,
        thread_id=created.thread_id,
        account_id=account.id,
        mailbox=account.address,
        mode=request.mode,
        subject=draft.subject,
        recipients=draft.recipients,
        quoted=draft.quoted,
    )
    misthreaded = result.thread_id != sighting.thread_id
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action="draft.create",
            target=email.id,
            details={
                "account_id": account.id,
                "mailbox": account.address,
                "draft_id": result.draft_id,
                "thread_id": result.thread_id,
                "expected_thread_id": sighting.thread_id,
                "mode": request.mode.value,
                "recipients": len(draft.recipients.addresses),
                "misthreaded": misthreaded,
            },
        )
    )
    if misthreaded:
        raise DraftMisthreadedError(
            "Gmail filed the draft in a new thread, not the one replied to: delete it in Gmail",
            draft_id=result.draft_id,
            thread_id=result.thread_id,
            expected_thread_id=sighting.thread_id,
        )
    return result


def _target_account(store: MailboxStore, request: DraftRequest) -> EmailAccount:
    if bool(request.account_id) == bool(request.mailbox):
        raise BadRequestError("name the target mailbox by exactly one of account_id or mailbox")
    if request.account_id:
        account = store.get_email_account(request.account_id)
    else:
        account = store.get_email_account_by_address(request.mailbox)
    if account is None or account.deleted:
        raise NotFoundError("no such mailbox", mailbox=request.mailbox or request.account_id)
    return account
