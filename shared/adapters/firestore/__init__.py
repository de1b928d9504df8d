"""The Store on Firestore (native mode): the scale-out adapter used by the Cloud Functions.

Documents. One collection per record type (``users``, ``email_accounts``, ``organizations``,
``investors``, ``contacts``, ``emails``, ``email_account_messages`` (sightings),
``email_investor_links``, ``proposals``, ``activities``, ``app_settings``, ``guards``, ``audit``);
the document id is the model's id, which is deterministic wherever a retry must land on the same
key (``user_id_for``, ``account_id_for``, ``sighting_id_for``, ``link_id_for``,
``proposal_id_for``). A document is the model's ``model_dump(mode="python")``: datetimes stay
native timestamps, enums are stored as their string values, nested models (the mailbox's sync
state, an email's address headers) are maps. The only storage-only field is ``sort_key`` on
proposals and audit entries: a fixed-width ``<UTC time>|<id>`` string, unique and totally
ordered, that listings page on. Every field a query filters or orders on is top-level and always
present with one type (``deleted: false``, never a missing field): Firestore leaves documents that
lack an ordered field out of the result, and cannot filter on ``== null`` through this emulator.

Queries. Every query is built by :meth:`FirestoreStore._query` from a small declarative
:class:`_Query` and reported, as a :class:`QueryShape`, to the optional recorder first; the
contract suite checks each recorded shape against ``infra/firestore.indexes.json`` by Firestore's
index rule (``shared.adapters.firestore.indexes``), because the emulator runs any query while
production refuses one without an index. No cursors and no offsets (the emulator ignores both):
listings page with a ``sort_key < last`` filter. No ``== None``, nested-field, ``__name__`` or
collection-group filters (the emulator gets them wrong or cannot run them).
``array_contains_any`` takes at most 30 values, so lookups by many addresses are chunked.

Transactions. Every read-modify-write runs in ``@firestore.transactional`` with all reads before
the first write (writes are buffered until commit). Production Firestore locks what a
transaction reads, documents returned by queries included, until commit, and retries the
function on contention; the emulator never rejects a conflicting transaction, so the interleaving
tests run on SQLite instead. No field transforms (``ArrayUnion``, ``Increment``,
``SERVER_TIMESTAMP``): the emulator mishandles them, and computing the value inside the
transaction is what makes the rules (history id only grows, last admin stays) enforceable anyway.

An email's denormalised fields (``models.DENORMALISED_FIELDS``: ``matched``, ``matched_at``,
``investor_ids``, ``live_account_ids``, and the digest's ``sent_account_ids``, ``links`` and
``digest_ready``) are recomputed from its sightings and links inside every transaction that
changes either. Every such transaction reads the email document first and sightings/links can only
be written for an existing email, so the email document is the lock that serialises them.
"""

from __future__ import annotations

from shared.adapters.firestore.activity_index import ActivityIndexMixin
from shared.adapters.firestore.crm import CrmMixin
from shared.adapters.firestore.listings import ListingsMixin
from shared.adapters.firestore.mail import MailMixin
from shared.adapters.firestore.mailboxes import MailboxesMixin
from shared.adapters.firestore.proposals import ProposalsMixin
from shared.adapters.firestore.relationships import RelationshipsMixin
from shared.adapters.firestore.settings import SettingsMixin
from shared.adapters.firestore.users import UsersMixin


class FirestoreStore(
    UsersMixin,
    MailboxesMixin,
    CrmMixin,
    ActivityIndexMixin,
    MailMixin,
    ProposalsMixin,
    SettingsMixin,
    ListingsMixin,
    RelationshipsMixin,
):
    """Store adapter over a ``google.cloud.firestore.Client`` (production or the emulator).

    ``recorder`` receives the shape of every query before it runs (index coverage tests).
    Composed of one mixin per store area (``shared.ports``), over :class:`FirestoreBase`.
    """


__all__ = ["FirestoreStore"]
