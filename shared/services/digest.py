"""Builds the daily digest from the Store: who did what with which investor, and sync health.

The window ``(since, until]`` is on ``Email.matched_at`` (when the mail became known as
investor mail), so mail captured late, or linked by a later re-match, is reported on the day it
became investor mail. Mail that was already more than seven days old then (a new mailbox's
backfill, a new contact's history) is counted per investor, not listed.

What counts as team mail: a live (not soft-deleted) sighting in a non-deleted mailbox owned by
an active user. Inactive users' mailboxes, unowned mailboxes and soft-deleted sightings are left
out of both sections.

- *By team member*: per active user, from their own mailboxes' sightings, outbound if one of
  their sightings is in Sent (``is_sent``), else inbound; one narrator call per user with
  activity, carrying only that user's mail; any narrator failure (or exception) gives that user
  the deterministic count-only paragraph and the digest is still built.
- *By investor*: each email once however many teammates saw it, outbound if its sender is one of
  the team's addresses (``Store.own_addresses``), else inbound.

Listing the window: the store's ``list_emails_matched_between`` (on ``matched_at``, so mail
captured late or linked by a re-match is not missed); tests may pass ``emails_in_window``. Each
email is read once, with what the digest needs of its sightings and links denormalised onto it
(``sent_account_ids``, ``links``; see ``docs/digest-reads.md``); only an email stored before those
fields existed has its sightings and links read (``_team_sources``). The links carry the CRM
names capture took (``LinkNames``); only the records changed since are read (``_Names``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from shared.domain.activity_keys import email_direction
from shared.domain.addresses import normalize_address
from shared.domain.digest import (
    NARRATOR_SYSTEM_PROMPT,
    Digest,
    InvestorActivity,
    MailboxHealth,
    MessageLine,
    UserActivity,
    clean_paragraph,
    compose,
    is_earlier,
    narrator_prompt,
)
from shared.domain.headers import one_line
from shared.domain.models import (
    NAMES_CLOCK_SLACK,
    Contact,
    Direction,
    Email,
    EmailAccount,
    Investor,
    LinkedInvestor,
    LinkNames,
    Organization,
    SyncStatus,
)
from shared.domain.relationships import GoingCold
from shared.ports import CrmStore, DigestStore, MailStore, Narrator
from shared.services.sync import is_behind, lag_seconds

logger = logging.getLogger(__name__)

# A CRM record the digest names: read from the store, or rebuilt from the names a link carries.
_Named = TypeVar("_Named", Investor, Contact, Organization)

EmailsInWindow = Callable[[datetime, datetime], Iterable[Email]]
WINDOW_PAGE_SIZE = 500


def build_digest(
    store: DigestStore,
    since: datetime,
    until: datetime,
    narrator: Narrator | None,
    *,
    emails_in_window: EmailsInWindow | None = None,
    going_cold: Sequence[GoingCold] = (),
) -> Digest:
    """The digest of mail that became investor mail in ``(since, until]``."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("the digest window must be timezone-aware")
    listing = emails_in_window or _store_window(store)

    users = {u.id: u for u in store.list_users(active_only=True)}
    accounts = store.list_email_accounts()
    owner_of = {a.id: a.user_id for a in accounts if a.user_id in users}
    # The team's addresses (``own_addresses``) from the mailboxes just listed, not listed again.
    own = {normalize_address(x) for a in accounts if not a.deleted for x in a.addresses()}

    activity = {
        uid: UserActivity(user_id=uid, name=u.name, email=u.email) for uid, u in users.items()
    }
    by_investor: dict[str, InvestorActivity] = {}
    earlier_ids: set[str] = set()
    seen: set[str] = set()

    team_mail: list[tuple[Email, dict[str, bool], list[LinkedInvestor]]] = []
    for email in listing(since, until):
        if email.id in seen or not _in_window(email, since, until):
            continue
        seen.add(email.id)
        # Cheap pre-check on the denormalised live set before anything else is read.
        if not set(email.live_account_ids) & owner_of.keys():
            continue
        holders, links = _team_sources(store, email, owner_of.keys())
        if holders and links:
            team_mail.append((email, holders, links))
    names = _Names.carried(store, [ln for _, _, links in team_mail for ln in links])

    for email, holders, links in team_mail:
        assert email.matched_at is not None  # _in_window checked it
        earlier = is_earlier(email.date, email.matched_at)
        if earlier:
            earlier_ids.add(email.id)
        direction = email_direction(email, own)  # the panel's rule: one place decides it

        lines: list[MessageLine] = []
        for investor_id in dict.fromkeys(ln.investor_id for ln in links):
            its_links = [ln for ln in links if ln.investor_id == investor_id]
            name, organization = names.investor(investor_id, its_links)
            entry = by_investor.setdefault(
                investor_id,
                InvestorActivity(investor_id=investor_id, name=name, organization=organization),
            )
            line = MessageLine(
                email_id=email.id,
                direction=direction,
                subject=email.subject,
                date=email.date,
                counterpart=names.counterpart(investor_id, its_links),
                investor=name,
                snippet=email.snippet,
            )
            if earlier:
                entry.earlier += 1
            else:
                entry.messages.append(line)
                lines.append(line)

        for user_id in dict.fromkeys(owner_of[account_id] for account_id in holders):
            assert user_id is not None
            user = activity[user_id]
            if earlier:
                user.earlier += 1
                continue
            sent = any(is_sent for a, is_sent in holders.items() if owner_of[a] == user_id)
            user.messages.append(
                MessageLine(
                    email_id=email.id,
                    direction=Direction.OUTBOUND if sent else Direction.INBOUND,
                    subject=email.subject,
                    date=email.date,
                    counterpart=", ".join(dict.fromkeys(ln.counterpart for ln in lines)),
                    investor=", ".join(dict.fromkeys(ln.investor for ln in lines)),
                    snippet=email.snippet,
                )
            )

    paragraphs: dict[str, str] = {}
    for user in activity.values():
        if user.messages:
            paragraph = _narrate(narrator, user)
            if paragraph:
                paragraphs[user.user_id] = paragraph

    return compose(
        since=since,
        until=until,
        users=list(activity.values()),
        investors=list(by_investor.values()),
        health=[_health(a, until) for a in accounts],
        paragraphs=paragraphs,
        mailbox_count=len(accounts),
        earlier_count=len(earlier_ids),
        going_cold=going_cold,
    )


def _team_sources(
    store: MailStore, email: Email, team_accounts: Collection[str]
) -> tuple[dict[str, bool], list[LinkedInvestor]]:
    """The team mailboxes holding the email live (each with whether its copy is in Sent) and
    the email's links to its investors.

    From the email's own denormalised fields (no read) once the store has written them
    (``digest_ready``); an email written before they existed, and not yet repaired
    (``repair-digest-fields``), has its sightings and links read, to the same result.
    """
    if email.digest_ready:
        sent = set(email.sent_account_ids)
        holders = {a: a in sent for a in email.live_account_ids if a in team_accounts}
        return holders, [ln for ln in email.links if ln.investor_id in email.investor_ids]
    holders = {}
    for sighting in store.list_sightings(email.id):
        if not sighting.deleted and sighting.account_id in team_accounts:
            holders[sighting.account_id] = holders.get(sighting.account_id, False) or (
                sighting.is_sent
            )
    links = [
        LinkedInvestor.of(ln)
        for ln in store.list_links(email.id)
        if ln.investor_id in email.investor_ids
    ]
    return holders, links


def _in_window(email: Email, since: datetime, until: datetime) -> bool:
    return (
        email.matched
        and email.matched_at is not None
        and since < email.matched_at <= until
        and bool(email.investor_ids)
    )


def _narrate(narrator: Narrator | None, user: UserActivity) -> str | None:
    """That user's paragraph from the narrator, or None: its failures never stop the digest."""
    if narrator is None:
        return None
    try:
        return clean_paragraph(narrator.narrate(NARRATOR_SYSTEM_PROMPT, narrator_prompt(user)))
    except Exception:  # a narrator is an external system: whatever it does, fall back
        logger.warning(
            "digest narrator raised; using the count-only text",
            extra={"fields": {"event": "narrator_failed", "kind": "exception"}},
        )
        return None


def _health(account: EmailAccount, now: datetime) -> MailboxHealth:
    return MailboxHealth(
        address=account.address,
        behind=is_behind(account, now),
        lag_seconds=lag_seconds(account, now),
        error=account.sync.status is SyncStatus.ERROR,
        coverage_gap=account.sync.coverage_gap,
    )


def _store_window(store: MailStore) -> EmailsInWindow:
    """Every email the store says became investor mail in the window, page by page."""

    def listing(since: datetime, until: datetime) -> Iterator[Email]:
        token = ""
        while True:
            page = store.list_emails_matched_between(
                since, until, limit=WINDOW_PAGE_SIZE, page_token=token
            )
            yield from page.items
            token = page.next_token
            if not token:
                return

    return listing


@dataclass
class _Names:
    """Display names, each record read at most once; soft-deleted names fall back to the
    address.

    A record's current version where this build read it (None for a deleted or missing one),
    else the copy a link carries (``LinkNames``), else read by id (a link written before names
    were carried). A carried copy is current unless the record changed after its ``at``:
    :meth:`carried` reads, in one query per collection, every record stamped since the oldest
    carried ``at`` (less ``NAMES_CLOCK_SLACK``), and those versions come first.
    """

    store: CrmStore

    def __post_init__(self) -> None:
        self._investors: dict[str, Investor | None] = {}
        self._contacts: dict[str, Contact | None] = {}
        self._organizations: dict[str, Organization | None] = {}
        # By record id, the carried copy that names it (any one: all are current).
        self._carried_investors: dict[str, LinkNames] = {}
        self._carried_contacts: dict[str, LinkNames] = {}
        self._carried_organizations: dict[str, LinkNames] = {}

    @classmethod
    def carried(cls, store: CrmStore, links: Sequence[LinkedInvestor]) -> _Names:
        names = cls(store)
        stamps = [ln.names.at for ln in links if ln.names is not None]
        if not stamps:
            return names
        organizations, investors, contacts = store.list_crm_updated_since(
            min(stamps) - NAMES_CLOCK_SLACK
        )
        # Deleted ones too: a soft delete moves the stamp, and its name then falls back.
        names._organizations.update({o.id: None if o.deleted else o for o in organizations})
        names._investors.update({i.id: None if i.deleted else i for i in investors})
        names._contacts.update({c.id: None if c.deleted else c for c in contacts})
        for link in links:
            if link.names is not None:
                names._carried_investors[link.investor_id] = link.names
                if link.names.organization_id:
                    names._carried_organizations[link.names.organization_id] = link.names
                if link.contact_id:
                    names._carried_contacts[link.contact_id] = link.names
        return names

    # Each record as its current version, else as a carried copy names it (only the fields
    # the digest shows), else read by id; then kept.

    def _settle(
        self,
        cache: dict[str, _Named | None],
        record_id: str,
        carried: LinkNames | None,
        from_names: Callable[[LinkNames], _Named | None],
        read: Callable[[str], _Named | None],
    ) -> _Named | None:
        if record_id not in cache:
            if carried is not None:
                cache[record_id] = from_names(carried)
            else:
                found = read(record_id)
                cache[record_id] = found if found and not found.deleted else None
        return cache[record_id]

    def _investor(self, investor_id: str) -> Investor | None:
        return self._settle(
            self._investors,
            investor_id,
            self._carried_investors.get(investor_id),
            lambda names: (
                Investor(id=investor_id, name=names.investor, organization_id=names.organization_id)
                if names.investor is not None
                else None
            ),
            self.store.get_investor,
        )

    def _contact(self, contact_id: str) -> Contact | None:
        return self._settle(
            self._contacts,
            contact_id,
            self._carried_contacts.get(contact_id),
            lambda names: (
                Contact(id=contact_id, name=names.contact) if names.contact is not None else None
            ),
            self.store.get_contact,
        )

    def _organization(self, organization_id: str | None) -> Organization | None:
        if not organization_id:
            return None
        return self._settle(
            self._organizations,
            organization_id,
            self._carried_organizations.get(organization_id),
            lambda names: (
                Organization(
                    id=organization_id, name=names.organization, domains=names.organization_domains
                )
                if names.organization is not None
                else None
            ),
            self.store.get_organization,
        )

    def investor(self, investor_id: str, links: list[LinkedInvestor]) -> tuple[str, str]:
        """(investor name, organisation name or "") — the matched address if it is deleted."""
        investor = self._investor(investor_id)
        if investor is None:
            return links[0].matched_address, ""
        organization = self._organization(investor.organization_id)
        # CRM names are typed or imported text: one line, no control characters, in the digest.
        return one_line(investor.name), one_line(organization.name) if organization else ""

    def counterpart(self, investor_id: str, links: list[LinkedInvestor]) -> str:
        """Who the mail was with: a live contact's name, else the live organisation's name (for
        a match by its domain), else the matched address."""
        for link in links:
            contact = self._contact(link.contact_id) if link.contact_id else None
            if contact is not None and contact.name:
                return one_line(contact.name)
        link = links[0]
        if link.contact_id is None:
            investor = self._investor(investor_id)
            organization = self._organization(investor.organization_id if investor else None)
            domain = link.matched_address.rsplit("@", 1)[-1]
            if organization is not None and domain in organization.domains:
                return one_line(organization.name)
        return link.matched_address
