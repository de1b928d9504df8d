"""A small fund's world for the demo and the end-to-end tests: team mailboxes, CRM records, and
mail that exercises every capture rule, generated here (the handbook's corpus is read by the
parser tests from ``../shared/corpus``, never copied).

What each message is for:
- an intro from a contact, To one teammate and Cc another: one email, two sightings;
- a reply from the team to a contact's Gmail address written with dots on googlemail.com:
  matched through Gmail's canonical form, direction outbound;
- mail from an unknown partner at the organisation's domain: matched by domain;
- a newsletter from the same domain with List-Id: bulk, stored as metadata, never matched;
- a cold pitch from a stranger: unmatched, metadata only;
- a message already in TRASH: Gmail lists no trash by default, so capture skips it until it is
  moved back; a draft and a chat: never captured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

from shared.domain.models import Contact, EmailAccount, Investor, Organization, Role, User
from shared.ports import Store

TEAM = ("ada@fund.example", "ben@fund.example")
# The fund's own mail domains (CRM_TEAM_DOMAINS of the local stack and the demo).
TEAM_DOMAINS = ("fund.example",)


class MailSink(Protocol):
    def add_mailbox(self, address: str) -> Any: ...
    def add_message(
        self,
        address: str,
        raw: bytes,
        *,
        label_ids: tuple[str, ...] | list[str] = ("INBOX",),
        internal_date: datetime | None = None,
    ) -> str: ...


def message(
    *,
    sender: str,
    to: list[str],
    subject: str,
    body: str,
    cc: list[str] | None = None,
    date: datetime,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> tuple[str, bytes]:
    """An RFC 5322 message as bytes, and its Message-ID."""
    msg = EmailMessage()
    mid = message_id or make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    msg["Message-ID"] = mid
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return mid, msg.as_bytes()


@dataclass
class Scenario:
    """What was seeded, so tests and the demo can name it."""

    organization: Organization
    investor: Investor
    angel: Investor
    contact: Contact
    angel_contact: Contact
    admin: User
    member: User
    accounts: list[EmailAccount]
    message_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CrmRecords:
    organization: Organization
    investor: Investor
    angel: Investor
    contact: Contact
    angel_contact: Contact


def crm_records() -> CrmRecords:
    """The fund's CRM records, unsaved: ``seed_crm`` stores them, the demo sends them through
    the admin API as an admin would."""
    # Fixed ids: two stores seeded alike hold the same records (tests compare them).
    organization = Organization(id="org-zeta", name="Zeta Capital", domains=["zeta.vc"])
    investor = Investor(
        id="inv-zeta-fund-1", name="Zeta Capital Fund I", organization_id=organization.id
    )
    contact = Contact(
        id="con-zoe", name="Zoe Zeta", investor_id=investor.id, emails=["zoe@zeta.vc"]
    )
    angel = Investor(id="inv-jo-smith", name="Jo Smith (angel)")
    angel_contact = Contact(
        id="con-jo", name="Jo Smith", investor_id=angel.id, emails=["j.smith@gmail.com"]
    )
    return CrmRecords(organization, investor, angel, contact, angel_contact)


def seed_crm(store: Store) -> Scenario:
    """The fund's users, mailboxes and CRM records."""
    admin = User.new(TEAM[0], "Ada Admin", Role.ADMIN)
    member = User.new(TEAM[1], "Ben Member", Role.MEMBER)
    for user in (admin, member):
        store.add_user(user)
    accounts = [EmailAccount.new(TEAM[0], admin.id), EmailAccount.new(TEAM[1], member.id)]
    for account in accounts:
        store.add_email_account(account)
    records = crm_records()
    organization, investor, angel = records.organization, records.investor, records.angel
    contact, angel_contact = records.contact, records.angel_contact
    store.upsert_organization(organization)
    for record in (investor, angel):
        store.upsert_investor(record)
    for person in (contact, angel_contact):
        store.upsert_contact(person)
    return Scenario(organization, investor, angel, contact, angel_contact, admin, member, accounts)


def seed_mail(
    sink: MailSink, scenario: Scenario | None = None, *, now: datetime | None = None
) -> None:
    """The team's recent mail, loaded into the Gmail sandbox (its Message-IDs noted in
    ``scenario`` when given)."""
    now = now or datetime.now(UTC)
    message_ids = scenario.message_ids if scenario is not None else {}
    ada, ben = TEAM
    for address in TEAM:
        sink.add_mailbox(address)
    day = timedelta(days=1)

    intro_id, intro = message(
        message_id="<intro.q3@zeta.vc>",
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[ada],
        cc=[ben],
        subject="Intro: Zeta Capital x Fund",
        body="Hi Ada, great to meet. Attaching our LP update for Q3.",
        date=now - 3 * day,
    )
    sink.add_message(ada, intro, label_ids=("INBOX",), internal_date=now - 3 * day)
    sink.add_message(ben, intro, label_ids=("INBOX",), internal_date=now - 3 * day)
    message_ids["intro"] = intro_id

    reply_id, reply = message(
        message_id="<follow-on.1@fund.example>",
        sender=f"Ada Admin <{ada}>",
        to=["Jo Smith <J.Smith+vc@googlemail.com>"],
        subject="Re: follow-on round",
        body="Jo, thanks for the call. Sharing the deck.",
        date=now - 2 * day,
    )
    sink.add_message(ada, reply, label_ids=("SENT",), internal_date=now - 2 * day)
    message_ids["reply"] = reply_id

    partner_id, partner = message(
        message_id="<diligence.7@zeta.vc>",
        sender="Kim Partner <kim@zeta.vc>",
        to=[ben],
        subject="Diligence questions",
        body="Ben, a few questions on the cap table.",
        date=now - day,
    )
    sink.add_message(ben, partner, label_ids=("INBOX",), internal_date=now - day)
    message_ids["partner"] = partner_id

    _, newsletter = message(
        message_id="<monthly.2026-11@news.zeta.vc>",
        sender="Zeta News <news@zeta.vc>",
        to=[ada],
        subject="Zeta Capital monthly",
        body="This month at Zeta...",
        date=now - day,
        headers={"List-Id": "<news.zeta.vc>", "List-Unsubscribe": "<mailto:unsub@zeta.vc>"},
    )
    sink.add_message(ada, newsletter, label_ids=("INBOX", "CATEGORY_UPDATES"))

    _, cold = message(
        message_id="<pitch.42@startup.example>",
        sender="Sam Stranger <sam@startup.example>",
        to=[ada],
        subject="Pitch: the next big thing",
        body="Would love 15 minutes.",
        date=now - day,
    )
    sink.add_message(ada, cold, label_ids=("INBOX",))

    trashed_id, trashed = message(
        message_id="<old-thread.3@zeta.vc>",
        sender="Zoe Zeta <zoe@zeta.vc>",
        to=[ada],
        subject="Old thread",
        body="Please ignore.",
        date=now - 4 * day,
    )
    sink.add_message(ada, trashed, label_ids=("TRASH",))
    message_ids["trashed"] = trashed_id

    _, draft = message(
        sender=ada,
        to=["zoe@zeta.vc"],
        subject="Draft",
        body="unsent",
        date=now - day,
        message_id="<draft.1@fund.example>",
    )
    sink.add_message(ada, draft, label_ids=("DRAFT",))
    _, chat = message(
        sender=ada,
        to=["zoe@zeta.vc"],
        subject="",
        body="chat",
        date=now - day,
        message_id="<chat.1@fund.example>",
    )
    sink.add_message(ada, chat, label_ids=("CHAT",))
