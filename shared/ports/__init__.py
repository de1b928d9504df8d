"""Ports: what services need from the outside world, as ``typing.Protocol``s.

Adapters implement them structurally (no shared base class), and the contract suite in
``tests/contract/`` runs every Store method against every adapter, so the two stores cannot drift.

The store is seven areas (``users``, ``mailboxes``, ``crm``, ``mail``, ``activity_index``,
``proposals``, ``settings``), one Protocol each; ``Store`` is their union, for wiring and the
contract suite. Services take the areas they touch (``service_stores`` composes several). Beside
them: Gmail (``gmail``), the digest's transports (``transport``), the narrator, the drafts
client, the queue, secrets, the clock and the token verifier.

Everything is re-exported here, so ``from shared.ports import X`` names any of them.
"""

from shared.ports.activity_index import ActivityIndexStore
from shared.ports.clock import Clock
from shared.ports.crm import CrmStore
from shared.ports.drafts import DraftsClient
from shared.ports.gmail import (
    CreatedDraft,
    FetchResult,
    GmailClient,
    GmailMessage,
    HistoryChange,
    HistoryChangeKind,
    HistoryExpiredError,
    HistoryPage,
    HistoryRecord,
    MailboxProfile,
    MessageIdPage,
    WatchAnswer,
)
from shared.ports.listings import ListingStore
from shared.ports.mail import MailStore
from shared.ports.mailboxes import MailboxStore, SyncStateChange
from shared.ports.narrator import Narrator
from shared.ports.paging import Page
from shared.ports.proposals import Decision, ProposalStore
from shared.ports.queue import Queue
from shared.ports.relationships import RelationshipStore
from shared.ports.secrets import Secrets
from shared.ports.service_stores import (
    ActivityPanelStore,
    CaptureStore,
    CrmEditStore,
    DigestRuntimeStore,
    DigestScheduleStore,
    DigestStore,
    DirectoryStore,
    DraftStore,
    EmailDetailStore,
    ExportStore,
    ProposalDecisionStore,
    ProposalListStore,
    RelationshipsStore,
    TimelineStore,
)
from shared.ports.settings import SettingsStore
from shared.ports.store import STORE_AREAS, Store
from shared.ports.transport import GmailTransport, SmtpTransport
from shared.ports.users import UserStore
from shared.ports.verifier import AllowedRoles, TokenVerifier

__all__ = [
    "STORE_AREAS",
    "ActivityIndexStore",
    "ActivityPanelStore",
    "AllowedRoles",
    "CaptureStore",
    "Clock",
    "CreatedDraft",
    "CrmEditStore",
    "CrmStore",
    "Decision",
    "DigestRuntimeStore",
    "DigestScheduleStore",
    "DigestStore",
    "DirectoryStore",
    "DraftStore",
    "DraftsClient",
    "EmailDetailStore",
    "ExportStore",
    "FetchResult",
    "GmailClient",
    "GmailMessage",
    "GmailTransport",
    "HistoryChange",
    "HistoryChangeKind",
    "HistoryExpiredError",
    "HistoryPage",
    "HistoryRecord",
    "ListingStore",
    "MailStore",
    "MailboxProfile",
    "MailboxStore",
    "MessageIdPage",
    "Narrator",
    "Page",
    "ProposalDecisionStore",
    "ProposalListStore",
    "ProposalStore",
    "Queue",
    "RelationshipStore",
    "RelationshipsStore",
    "Secrets",
    "SettingsStore",
    "SmtpTransport",
    "Store",
    "SyncStateChange",
    "TimelineStore",
    "TokenVerifier",
    "UserStore",
    "WatchAnswer",
]
