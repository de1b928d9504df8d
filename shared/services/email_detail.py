"""One captured email in detail (``GET /emails/{id}``), and who may see which part of it.

Admins see all of it. A member sees an email only if one of their own mailboxes holds it (a live
sighting), and then only their own mailboxes' sightings and threads, and no corrections: what
other teammates' mailboxes hold is theirs. An email that does not exist and one the caller may
not see are the same NotFoundError, so a member cannot learn which ids exist elsewhere. The
drafting agent is not admitted on the route at all.

Reads: the email, its sightings and links, the CRM records the links name (to explain each
match), the mailboxes, and for each visible sighting the rest of its Gmail thread in that
mailbox (``MailStore.list_thread_sightings``, at most ``THREAD_LIMIT`` per thread).
"""

from __future__ import annotations

from shared.domain.email_detail import (
    EmailDetail,
    MailboxSighting,
    ThreadMessage,
    explain_link,
    participants_with_matches,
)
from shared.domain.models import Caller, EmailAccount, Organization, Role, Sighting
from shared.errors import NotFoundError
from shared.ports import EmailDetailStore, MailboxStore
from shared.services.capture import email_participants

THREAD_LIMIT = 50


def own_mailboxes(store: MailboxStore, caller: Caller) -> list[EmailAccount]:
    """The mailboxes the caller owns (offboarded ones too: their history is still theirs)."""
    return [
        a for a in store.list_email_accounts(include_deleted=True) if a.belongs_to(caller.user_id)
    ]


def email_detail(store: EmailDetailStore, caller: Caller, email_id: str) -> EmailDetail:
    """The email as ``caller`` may see it; NotFoundError if unknown or not theirs to see."""
    email = store.get_email(email_id)
    if email is None:
        raise NotFoundError("no such email", email_id=email_id)
    accounts = {a.id: a for a in store.list_email_accounts(include_deleted=True)}
    sightings = store.list_sightings(email.id)
    admin = caller.role is Role.ADMIN
    if not admin:
        own = {a.id for a in accounts.values() if a.belongs_to(caller.user_id)}
        sightings = [s for s in sightings if s.account_id in own]
        if not any(not s.deleted for s in sightings):
            raise NotFoundError("no such email", email_id=email_id)

    links = store.list_links(email.id)
    investors = {i.id: i for i in store.get_investors({ln.investor_id for ln in links})}
    contacts = {
        cid: store.get_contact(cid) for cid in {ln.contact_id for ln in links if ln.contact_id}
    }
    organizations: dict[str, Organization | None] = {}
    for record in investors.values():
        org_id = record.organization_id
        if org_id and org_id not in organizations:
            organizations[org_id] = store.get_organization(org_id)
    matches = []
    for link in links:
        investor = investors.get(link.investor_id)
        org_id = investor.organization_id if investor else None
        matches.append(
            explain_link(
                link,
                investor,
                contacts.get(link.contact_id) if link.contact_id else None,
                organizations.get(org_id) if org_id else None,
            )
        )

    return EmailDetail(
        id=email.id,
        message_id=email.message_id,
        in_reply_to=email.in_reply_to,
        references=email.references,
        subject=email.subject,
        sender=email.sender,
        reply_to=email.reply_to,
        to=email.to,
        cc=email.cc,
        bcc=email.bcc,
        date=email.date,
        size=email.size,
        is_bulk=email.is_bulk,
        header_problems=email.header_problems,
        first_seen_at=email.first_seen_at,
        matched=email.matched,
        matched_at=email.matched_at,
        investor_ids=email.investor_ids,
        participants=participants_with_matches(email_participants(email), matches),
        sightings=[_sighting(s, accounts) for s in sightings],
        thread=_thread(store, email.id, sightings),
        snippet=email.snippet if email.matched else "",
        body=email.body if email.matched else "",
        body_truncated=email.body_truncated if email.matched else False,
        corrections=email.corrections if admin else [],
    )


def _sighting(sighting: Sighting, accounts: dict[str, EmailAccount]) -> MailboxSighting:
    account = accounts.get(sighting.account_id)
    return MailboxSighting(
        account_id=sighting.account_id,
        mailbox=account.address if account else "",
        gmail_message_id=sighting.gmail_message_id,
        thread_id=sighting.thread_id,
        label_ids=sighting.label_ids,
        is_sent=sighting.is_sent,
        internal_date=sighting.internal_date,
        deleted=sighting.deleted,
        deleted_at=sighting.deleted_at,
    )


def _thread(
    store: EmailDetailStore, email_id: str, sightings: list[Sighting]
) -> list[ThreadMessage]:
    """The other captured emails of each visible sighting's thread (in that mailbox), oldest
    first. Only the visible sightings' threads: a member's are their own mailboxes'."""
    others: list[Sighting] = []
    for sighting in sightings:
        if sighting.thread_id:
            found = store.list_thread_sightings(
                sighting.account_id, sighting.thread_id, limit=THREAD_LIMIT
            )
            others += [s for s in found if s.email_id != email_id]
    messages = []
    for other in others:
        email = store.get_email(other.email_id)
        if email is None:
            continue
        messages.append(
            ThreadMessage(
                email_id=email.id,
                account_id=other.account_id,
                gmail_message_id=other.gmail_message_id,
                subject=email.subject,
                sender=email.sender,
                date=email.date or other.internal_date,
                matched=email.matched,
                deleted=other.deleted,
            )
        )
    return sorted(messages, key=lambda m: (m.date is None, m.date, m.email_id, m.account_id))
