"""The whole store: the union of its areas, for wiring and the contract suite only.

Services take the areas they touch (``shared.ports.service_stores`` composes the ones a service
needs from several areas), so a signature says which state a call may read or write. ``Store``
is what an adapter implements and what ``wiring.store()`` returns; ``tests/unit/test_ports.py``
checks that every method belongs to exactly one area and that ``Store`` adds none of its own.
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


class Store(
    UserStore,
    MailboxStore,
    CrmStore,
    MailStore,
    ActivityIndexStore,
    ProposalStore,
    SettingsStore,
    ListingStore,
    RelationshipStore,
    Protocol,
):
    """Every read and write of the service's state.

    Every method that reads a shared document and writes it back does both in one transaction
    (Firestore ``@transactional``; SQLite ``BEGIN IMMEDIATE``), so concurrent writers never lose
    an update. ``create_*`` and ``add_*`` methods are create-if-absent and return whether they
    created. Conventions both adapters follow (the contract suite checks them):

    - a ``limit`` below 1 raises BadRequestError; listings state their order;
    - callbacks given to ``update_setting``/``update_guard`` must be pure: Firestore may run
      them again when it retries a contended transaction;
    - setting values are JSON-compatible (dicts, lists, strings, numbers, booleans, None);
    - a sighting or link of an unknown email raises NotFoundError.
    """


# The areas, in the order the adapters and the contract suite list them.
STORE_AREAS: tuple[type, ...] = (
    UserStore,
    MailboxStore,
    CrmStore,
    MailStore,
    ActivityIndexStore,
    ProposalStore,
    SettingsStore,
    ListingStore,
    RelationshipStore,
)
