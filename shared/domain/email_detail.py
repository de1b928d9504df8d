"""One captured email as the detail view shows it, and why each participant matched.

Pure: the service (``shared.services.email_detail``) reads the records and decides who may see
what; this module says what the answer holds and explains a link. A link records which address
matched in which header and through which contact; whether it was the investor's own address or
a domain (the investor's, or its organisation's) is read back from the records, so the reason
shown is the records' current account of the match, named.

The body is the text capture stored (capture turns HTML parts into text): it is served as a JSON
string, never as HTML, and only for matched mail (unmatched mail keeps none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.domain.addresses import canonical_address, split_address
from shared.domain.models import (
    Contact,
    Correction,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    MatchVia,
    Organization,
)


class _Model(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")


class ParticipantMatch(_Model):
    """One investor a participant matched, and how: as a contact (``contact_id``), by the
    investor's own address, or by a domain (``domain``; ``organization_id`` when the domain is
    the investor's organisation's). A deleted or vanished investor is named by the address."""

    investor_id: str
    investor_name: str
    investor_deleted: bool = False
    contact_id: str | None = None
    contact_name: str = ""
    via: MatchVia | None = None
    matched_address: str
    header: MatchHeader
    domain: str = ""
    organization_id: str | None = None
    organization_name: str = ""


class Participant(_Model):
    """A participant as the headers name it, with every investor its address matched."""

    header: MatchHeader
    name: str = ""
    address: str
    matches: list[ParticipantMatch]


class MailboxSighting(_Model):
    """A team mailbox that saw the email: its Gmail ids and labels, and the soft delete."""

    account_id: str
    mailbox: str
    gmail_message_id: str
    thread_id: str
    label_ids: list[str]
    is_sent: bool
    internal_date: datetime | None
    deleted: bool
    deleted_at: datetime | None


class ThreadMessage(_Model):
    """Another captured email of the same Gmail thread, in one mailbox."""

    email_id: str
    account_id: str
    gmail_message_id: str
    subject: str
    sender: Mailbox | None
    date: datetime | None
    matched: bool
    deleted: bool


class EmailDetail(_Model):
    """``GET /emails/{id}``: headers, participants and why they matched, the mailboxes that saw
    it, the rest of its thread, and (matched mail only) its stored text. A member gets their own
    mailboxes' sightings and threads only, and no corrections."""

    id: str
    message_id: str
    in_reply_to: str
    references: list[str]
    subject: str
    sender: Mailbox | None
    reply_to: list[Mailbox]
    to: list[Mailbox]
    cc: list[Mailbox]
    bcc: list[Mailbox]
    date: datetime | None
    size: int
    is_bulk: bool
    header_problems: list[str]
    first_seen_at: datetime
    matched: bool
    matched_at: datetime | None
    investor_ids: list[str]
    participants: list[Participant]
    sightings: list[MailboxSighting]
    thread: list[ThreadMessage]
    snippet: str
    body: str
    body_truncated: bool
    # The body is the text capture stored, never HTML.
    body_format: Literal["text/plain"] = "text/plain"
    corrections: list[Correction]


def explain_link(
    link: InvestorLink,
    investor: Investor | None,
    contact: Contact | None,
    organization: Organization | None,
) -> ParticipantMatch:
    """How ``link``'s address reached its investor, from the records as they stand."""
    canonical = canonical_address(link.matched_address)
    domain = split_address(canonical)[1]
    via: MatchVia | None
    by_org = organization if organization is not None and domain in organization.domains else None
    if link.contact_id:
        via = MatchVia.CONTACT
    elif investor is None:
        via = None
    elif canonical in investor.email_keys:
        via = MatchVia.INVESTOR_ADDRESS
    else:
        via = MatchVia.DOMAIN
    live = investor is not None and not investor.deleted
    return ParticipantMatch(
        investor_id=link.investor_id,
        investor_name=investor.name if live and investor else link.matched_address,
        investor_deleted=not live,
        contact_id=link.contact_id,
        contact_name=contact.name if contact is not None and not contact.deleted else "",
        via=via,
        matched_address=link.matched_address,
        header=link.header,
        domain=domain if via is MatchVia.DOMAIN else "",
        organization_id=by_org.id if via is MatchVia.DOMAIN and by_org else None,
        organization_name=by_org.name if via is MatchVia.DOMAIN and by_org else "",
    )


def participants_with_matches(
    participants: Sequence[tuple[MatchHeader, Mailbox]], matches: Iterable[ParticipantMatch]
) -> list[Participant]:
    """Each participant with the matches of its address (compared canonically): an address in
    several headers shows its matches at each."""
    by_address: dict[str, list[ParticipantMatch]] = {}
    for match in matches:
        by_address.setdefault(canonical_address(match.matched_address), []).append(match)
    return [
        Participant(
            header=header,
            name=mailbox.name,
            address=mailbox.address,
            matches=by_address.get(canonical_address(mailbox.address), []),
        )
        for header, mailbox in participants
    ]
