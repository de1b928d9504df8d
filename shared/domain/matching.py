"""Which investors an email involves: pure rules over parsed participants and CRM records.

No I/O. The caller asks :func:`lookup_keys` what to fetch, fetches it through the Store's
``find_*`` methods (plus the investors those contacts and organisations point at), and hands
everything to :func:`match_participants`.

Addresses are compared by :func:`shared.domain.addresses.canonical_address`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.domain.addresses import (
    GMAIL,
    GMAIL_DOMAINS,
    canonical_address,
    is_public_mail_domain,
    split_address,
)
from shared.domain.models import (
    Contact,
    Email,
    Investor,
    InvestorLink,
    LinkNames,
    Mailbox,
    MatchHeader,
    MatchVia,
    Organization,
    normalize_domain,
)

# Most significant first: who wrote it, who answers it, who it is for, who was told.
HEADER_ORDER: tuple[MatchHeader, ...] = (
    MatchHeader.FROM,
    MatchHeader.REPLY_TO,
    MatchHeader.TO,
    MatchHeader.CC,
    MatchHeader.BCC,
)
_HEADER_RANK = {header: rank for rank, header in enumerate(HEADER_ORDER)}


@dataclass(frozen=True)
class Exclusions:
    """Addresses and domains an admin never wants matched (a lawyer, a family member, a bank).

    A domain entry also covers its subdomains (``@acme.com`` excludes ``x@eu.acme.com``):
    excluding is the privacy-safe direction, so it errs wide.
    """

    addresses: frozenset[str] = field(default_factory=frozenset)
    domains: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Exclusions:
        """``someone@x.com`` excludes that mailbox (canonically); ``@x.com`` (or a bare ``x.com``)
        excludes the domain. Blank entries are skipped; anything else raises ValueError."""
        addresses: set[str] = set()
        domains: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry.startswith("@") or "@" not in entry:
                domain = normalize_domain(entry)
                # googlemail.com and gmail.com are one system: excluding one excludes both.
                domains.update(GMAIL_DOMAINS if domain in GMAIL_DOMAINS else {domain})
            else:
                addresses.add(canonical_address(entry))
        return cls(addresses=frozenset(addresses), domains=frozenset(domains))

    def excludes(self, address: str) -> bool:
        canonical = canonical_address(address)
        if canonical in self.addresses:
            return True
        domain = split_address(canonical)[1]
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


@dataclass(frozen=True)
class Match:
    """One reason an email involves an investor: through which contact (if any), which address
    as it appeared in the mail, in which header (the most significant one it appeared in)."""

    investor_id: str
    contact_id: str | None
    matched_address: str
    header: MatchHeader
    # How: as a contact, by the investor's own address, or by a domain (the proposal's evidence;
    # not part of a match's identity, which is what it links).
    via: MatchVia | None = field(default=None, compare=False)
    # The records' names as the matcher held them (``LinkNames``), carried onto the link for
    # the digest; not part of a match's identity either.
    names: LinkNames | None = field(default=None, compare=False)

    def to_link(self, email_id: str) -> InvestorLink:
        link = InvestorLink.new(
            email_id, self.investor_id, self.contact_id, self.matched_address, self.header
        )
        return link.model_copy(update={"names": self.names}) if self.names else link


@dataclass(frozen=True)
class MatchResult:
    """The matches, and the live contacts that took part but belong to no (live) investor:
    worth showing to an admin ("link this contact to an investor"), never a match."""

    matches: list[Match]
    unlinked_contact_ids: list[str]


# How a participant reached an investor, most specific first: a known person beats the
# investor's shared address, which beats "someone at their domain".
_VIA_CONTACT, _VIA_ADDRESS, _VIA_DOMAIN = 0, 1, 2
_VIA_NAMES = (MatchVia.CONTACT, MatchVia.INVESTOR_ADDRESS, MatchVia.DOMAIN)


def without_corrected(found: Iterable[Match], email: Email | None) -> list[Match]:
    """The matches an admin has not corrected away ("not investor mail" on this email for that
    investor): what capture, re-match and repair may link."""
    corrected = email.corrected_investor_ids if email is not None else frozenset()
    return [m for m in found if m.investor_id not in corrected]


def _candidates(
    participants: Sequence[tuple[MatchHeader, Mailbox]],
    own_addresses: Iterable[str],
    exclusions: Exclusions | None = None,
) -> list[tuple[int, MatchHeader, str, str]]:
    """(position, header, address as written, canonical) for every participant that may match."""
    own = {canonical_address(a) for a in own_addresses}
    out = []
    for position, (header, mailbox) in enumerate(participants):
        canonical = canonical_address(mailbox.address)
        if canonical in own:
            continue
        if exclusions is not None and exclusions.excludes(mailbox.address):
            continue
        out.append((position, header, mailbox.address, canonical))
    return out


def lookup_keys(
    participants: Sequence[tuple[MatchHeader, Mailbox]], own_addresses: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The addresses and domains to pass to the Store's ``find_*`` methods, sorted.

    Stores compare lower-cased addresses exactly, so for each participant this gives the address
    as written and its canonical form, and for Gmail both the gmail.com and googlemail.com
    spellings of each. (A contact stored as ``j.smith@gmail.com`` is still not found from
    ``jsmith@gmail.com``: that needs the store to index canonical addresses.) Domains are the
    participants' non-public domains. The team's own addresses yield neither.
    """
    addresses: set[str] = set()
    domains: set[str] = set()
    for _, _, address, canonical in _candidates(participants, own_addresses):
        local, domain = split_address(address)
        canonical_local, canonical_domain = split_address(canonical)
        if canonical_domain == GMAIL and domain in GMAIL_DOMAINS:
            addresses.update(f"{lp}@{d}" for lp in (local, canonical_local) for d in GMAIL_DOMAINS)
        else:
            addresses.update({address, canonical})
        if not is_public_mail_domain(canonical_domain):
            domains.add(canonical_domain)
    return sorted(addresses), sorted(domains)


def match_email(
    participants: Sequence[tuple[MatchHeader, Mailbox]],
    *,
    contacts: Sequence[Contact],
    investors: Sequence[Investor],
    organizations: Sequence[Organization],
    own_addresses: Iterable[str],
    exclusions: Exclusions,
    is_bulk: bool,
) -> MatchResult:
    """:func:`match_participants`, also reporting participating contacts with no live investor.

    ``investors`` must hold every investor a contact or organisation points at: a contact whose
    investor is absent (or deleted) produces no match, because absence cannot be told from
    deletion here.
    """
    if is_bulk:
        return MatchResult(matches=[], unlinked_contact_ids=[])

    live_investors = {i.id: i for i in investors if not i.deleted}
    contacts_by_address: dict[str, list[Contact]] = {}
    for contact in contacts:
        if contact.deleted:
            continue
        for address in contact.emails:
            contacts_by_address.setdefault(canonical_address(address), []).append(contact)
    investors_by_address: dict[str, list[Investor]] = {}
    investors_by_domain: dict[str, list[Investor]] = {}
    for investor in live_investors.values():
        for address in investor.emails:
            investors_by_address.setdefault(canonical_address(address), []).append(investor)
        for domain in investor.domains:
            if not is_public_mail_domain(domain):
                investors_by_domain.setdefault(domain, []).append(investor)
    for organization in organizations:
        if organization.deleted:
            continue
        members = [i for i in live_investors.values() if i.organization_id == organization.id]
        for domain in organization.domains:
            if not is_public_mail_domain(domain):
                investors_by_domain.setdefault(domain, []).extend(members)

    # (investor, participant) -> the most specific way it matched; then per (investor, contact)
    # the most significant header.
    best: dict[tuple[str, str | None], tuple[tuple[int, int, int], Match]] = {}
    unlinked: set[str] = set()
    for position, header, address, canonical in _candidates(
        participants, own_addresses, exclusions
    ):
        # Investor -> (route, contact) for this participant. Routes are added most specific
        # first and setdefault keeps the first, so an investor this person reaches as a contact
        # is not also matched "by domain" through the same address.
        reached: dict[str, tuple[int, str | None]] = {}
        for contact in sorted(contacts_by_address.get(canonical, []), key=lambda c: c.id):
            if contact.investor_id and contact.investor_id in live_investors:
                reached.setdefault(contact.investor_id, (_VIA_CONTACT, contact.id))
            else:
                unlinked.add(contact.id)
        for investor in investors_by_address.get(canonical, []):
            reached.setdefault(investor.id, (_VIA_ADDRESS, None))
        for investor in investors_by_domain.get(split_address(canonical)[1], []):
            reached.setdefault(investor.id, (_VIA_DOMAIN, None))

        for investor_id, (via, contact_id) in reached.items():
            rank = (_HEADER_RANK[header], via, position)
            key = (investor_id, contact_id)
            if key not in best or rank < best[key][0]:
                best[key] = (
                    rank,
                    Match(investor_id, contact_id, address, header, _VIA_NAMES[via]),
                )

    matches = sorted(
        (match for _, match in best.values()),
        key=lambda m: (
            m.investor_id,
            m.contact_id or "",
            _HEADER_RANK[m.header],
            m.matched_address,
        ),
    )
    return MatchResult(matches=matches, unlinked_contact_ids=sorted(unlinked))


def match_participants(
    participants: Sequence[tuple[MatchHeader, Mailbox]],
    *,
    contacts: Sequence[Contact],
    investors: Sequence[Investor],
    organizations: Sequence[Organization],
    own_addresses: Iterable[str],
    exclusions: Exclusions,
    is_bulk: bool,
) -> list[Match]:
    """Every investor the participants involve, one Match per (investor, contact), sorted by
    investor id, contact id (direct matches first), header significance, address.

    A participant matches a live contact holding its address (and through it the contact's live
    investor), a live investor holding its address, and, by its domain (never a public mail
    domain), live investors holding that domain or belonging to a live organisation holding it.
    Graveyard investors match (their mail is audit history); deleted records never do. The
    team's own addresses, excluded addresses and domains, and bulk mail never match.
    """
    return match_email(
        participants,
        contacts=contacts,
        investors=investors,
        organizations=organizations,
        own_addresses=own_addresses,
        exclusions=exclusions,
        is_bulk=is_bulk,
    ).matches
