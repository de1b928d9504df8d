"""Ports: what services need from the outside world, as ``typing.Protocol``s.

Adapters implement them structurally (no shared base class), and the contract suite in
``tests/contract/`` runs every Store method against every adapter, so the two stores cannot drift.

The store is seven areas (``users``, ``mailboxes``, ``crm``, ``mail``, ``activity_index``,
``proposals``, ``settings``), one Protocol each; ``Store`` is their union, for wiring and the
contract suite. Services take the areas they touch (``service_stores`` composes several). Beside
them: Gmail (``gmail``), the digest's transports (``transport``), the narrator, the drafts
client, the queue, secrets, the clock and the token verifier.

Everything is re-exported here, so ``from shared.ports import X`` names any of them. Lazily
(PEP 562): a name's module is imported when the name is first asked for, so an entry point pays
only for the ports its modules name at import time (cold start), not for all twenty.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.ports.activity_index import ActivityIndexStore
    from shared.ports.clock import Clock
    from shared.ports.crm import CrmStore
    from shared.ports.drafts import DraftsClient
    from shared.ports.gmail import (
        FetchResult,
        GmailClient,
        GmailMessage,
        HistoryExpiredError,
        HistoryPage,
        MessageIdPage,
    )
    from shared.ports.mail import MailStore
    from shared.ports.mailboxes import MailboxStore, SyncStateChange
    from shared.ports.narrator import Narrator
    from shared.ports.paging import Page
    from shared.ports.proposals import Decision, ProposalStore
    from shared.ports.queue import Queue
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
        ProposalDecisionStore,
    )
    from shared.ports.settings import SettingsStore
    from shared.ports.store import STORE_AREAS, Store
    from shared.ports.transport import GmailTransport, SmtpTransport
    from shared.ports.users import UserStore
    from shared.ports.verifier import AllowedRoles, TokenVerifier

# Each re-exported name -> the module defining it (what TYPE_CHECKING imports above, for mypy).
_MODULE_OF = {
    "ActivityIndexStore": "shared.ports.activity_index",
    "ActivityPanelStore": "shared.ports.service_stores",
    "AllowedRoles": "shared.ports.verifier",
    "CaptureStore": "shared.ports.service_stores",
    "Clock": "shared.ports.clock",
    "CrmEditStore": "shared.ports.service_stores",
    "CrmStore": "shared.ports.crm",
    "Decision": "shared.ports.proposals",
    "DigestRuntimeStore": "shared.ports.service_stores",
    "DigestScheduleStore": "shared.ports.service_stores",
    "DigestStore": "shared.ports.service_stores",
    "DirectoryStore": "shared.ports.service_stores",
    "DraftStore": "shared.ports.service_stores",
    "DraftsClient": "shared.ports.drafts",
    "FetchResult": "shared.ports.gmail",
    "GmailClient": "shared.ports.gmail",
    "GmailMessage": "shared.ports.gmail",
    "GmailTransport": "shared.ports.transport",
    "HistoryExpiredError": "shared.ports.gmail",
    "HistoryPage": "shared.ports.gmail",
    "MailStore": "shared.ports.mail",
    "MailboxStore": "shared.ports.mailboxes",
    "MessageIdPage": "shared.ports.gmail",
    "Narrator": "shared.ports.narrator",
    "Page": "shared.ports.paging",
    "ProposalDecisionStore": "shared.ports.service_stores",
    "ProposalStore": "shared.ports.proposals",
    "Queue": "shared.ports.queue",
    "STORE_AREAS": "shared.ports.store",
    "Secrets": "shared.ports.secrets",
    "SettingsStore": "shared.ports.settings",
    "SmtpTransport": "shared.ports.transport",
    "Store": "shared.ports.store",
    "SyncStateChange": "shared.ports.mailboxes",
    "TokenVerifier": "shared.ports.verifier",
    "UserStore": "shared.ports.users",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked once: later look-ups find it without this hook
    return value


__all__ = [
    "STORE_AREAS",
    "ActivityIndexStore",
    "ActivityPanelStore",
    "AllowedRoles",
    "CaptureStore",
    "Clock",
    "CrmEditStore",
    "CrmStore",
    "Decision",
    "DigestRuntimeStore",
    "DigestScheduleStore",
    "DigestStore",
    "DirectoryStore",
    "DraftStore",
    "DraftsClient",
    "FetchResult",
    "GmailClient",
    "GmailMessage",
    "GmailTransport",
    "HistoryExpiredError",
    "HistoryPage",
    "MailStore",
    "MailboxStore",
    "MessageIdPage",
    "Narrator",
    "Page",
    "ProposalDecisionStore",
    "ProposalStore",
    "Queue",
    "Secrets",
    "SettingsStore",
    "SmtpTransport",
    "Store",
    "SyncStateChange",
    "TokenVerifier",
    "UserStore",
]
