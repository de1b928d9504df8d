"""What each service touches when it touches more than one area of the store.

Python has no intersection types, so a service that reads or writes several areas takes one of
these: a Protocol inheriting exactly those areas, named for the service. A function that touches
one area takes that area's port itself (``MailboxStore``, ``SettingsStore``...). Either way the
signature says which state a call may touch, and mypy holds the body to it. Any full store (an
adapter, ``Store``) satisfies every one of them structurally, so callers pass the store as before.
"""

from __future__ import annotations

from typing import Protocol

from shared.ports.activity_index import ActivityIndexStore
from shared.ports.crm import CrmStore
from shared.ports.listings import ListingStore
from shared.ports.mail import MailStore
from shared.ports.mailboxes import MailboxStore
from shared.ports.proposals import ProposalStore
from shared.ports.relationships import RelationshipStore
from shared.ports.settings import SettingsStore
from shared.ports.users import UserStore


class ActivityPanelStore(ActivityIndexStore, MailboxStore, MailStore, Protocol):
    """The panel's search: the index, the mailboxes a hit was seen in, and each hit's links."""


class CaptureStore(MailStore, MailboxStore, CrmStore, ProposalStore, SettingsStore, Protocol):
    """Capture, and the jobs that redo its matching (sync runs, re-match, repair): mail and its
    links, the mailbox's sync state and own addresses, the CRM records matched against, the
    proposals a match opens or withdraws, and the exclusions, backfill horizon and job guards."""


class CrmEditStore(CrmStore, SettingsStore, Protocol):
    """CRM edits: the records, the audit of each write, the exclusions and the re-match job."""


class DigestStore(UserStore, MailboxStore, MailStore, CrmStore, Protocol):
    """Building the digest: the active users and their mailboxes, the window's mail with its
    sightings and links, the names of the CRM records linked; sending it reads the admins."""


class DigestScheduleStore(UserStore, SettingsStore, Protocol):
    """When the digest goes out: its policy, cursor, day guard and audit, and the admins."""


class DigestRuntimeStore(
    UserStore,
    MailboxStore,
    MailStore,
    CrmStore,
    SettingsStore,
    RelationshipStore,
    ListingStore,
    ActivityIndexStore,
    Protocol,
):
    """The digest's runtime (``services.digest_schedule.DigestRuntime``): building it (with
    its going-cold section), and the schedule's policy, cursor and guards."""


class DirectoryStore(UserStore, MailboxStore, ActivityIndexStore, SettingsStore, Protocol):
    """Users and mailboxes: the records, the panel's direction when the team's addresses change,
    and the audit of every change."""


class DraftStore(UserStore, MailboxStore, MailStore, SettingsStore, Protocol):
    """Reply drafts: the caller, the mailbox, the email and its sightings, and the audit."""


class ProposalDecisionStore(ProposalStore, SettingsStore, Protocol):
    """Deciding proposals: the proposals, and the audit of each decision."""


class ExportStore(ListingStore, SettingsStore, Protocol):
    """Exports: the lists they page through, and the audit entry each export writes."""


class TimelineStore(ListingStore, ActivityIndexStore, MailboxStore, MailStore, Protocol):
    """An investor's timeline: approved activities, and the investor's listed mail as the
    panel shows it (its mailboxes and links)."""


class EmailDetailStore(MailStore, MailboxStore, CrmStore, ActivityIndexStore, Protocol):
    """One email in detail: the mail, its sightings, links and threads, the mailboxes, and the
    CRM records that explain each match (investors by id through the index's batched read)."""


class ProposalListStore(ProposalStore, MailStore, MailboxStore, CrmStore, Protocol):
    """Listing proposals with their evidence: old proposals lacking it get it from their email,
    link, mailbox and investor."""


class RelationshipsStore(
    RelationshipStore,
    ListingStore,
    CrmStore,
    ActivityIndexStore,
    UserStore,
    MailboxStore,
    MailStore,
    SettingsStore,
    Protocol,
):
    """Relationship intelligence: the rows and scores, the investors and contacts they are of
    (a page's names in one batched read), the mailboxes and users who are the teammates, the
    stored mail the recompute rebuilds from, and the guard of the daily re-score."""
