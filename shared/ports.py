"""Ports: what services need from the outside world, as ``typing.Protocol``s.

Adapters implement them structurally (no shared base class), and the contract suite in
``tests/contract/`` runs every Store method against every adapter, so the two stores cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from shared.domain.activity import ActivityHits, ActivityQuery
from shared.domain.models import (
    Activity,
    AuditEntry,
    Caller,
    CaptureProblem,
    Contact,
    Email,
    EmailAccount,
    Guard,
    Investor,
    InvestorLink,
    Organization,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    ServiceRole,
    Sighting,
    SyncState,
    User,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: the items and an opaque token for the next page (empty = done)."""

    items: list[T]
    next_token: str = ""


@dataclass(frozen=True)
class SyncStateChange:
    """Fields of a mailbox's sync state to change; ``None`` means "leave as it is".

    ``history_id`` is applied as ``max(stored, given)``: a late, slower run can never move the
    cursor backwards. Only ``reset_history`` (a full resync after Gmail's 404) may lower it.
    """

    status: Any = None
    history_id: int | None = None
    reset_history: bool = False
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    watch_expiration: datetime | None = None
    backfill_page_token: str | None = None
    backfill_history_id: int | None = None
    backfill_done: bool | None = None
    last_reconciled_at: datetime | None = None
    messages_total: int | None = None
    messages_done: int | None = None
    messages_failed: int | None = None
    # Added to the stored count (not set): one more message stored with a header problem.
    header_problems_added: int | None = None
    coverage_gap: int | None = None
    resync_pending: bool | None = None


@dataclass(frozen=True)
class Decision:
    """Outcome of deciding a proposal: the proposal now, and whether this call changed it."""

    proposal: Proposal
    changed: bool
    activity: Activity | None = None


class Store(Protocol):
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

    # -- users -------------------------------------------------------------------------------
    def add_user(self, user: User) -> bool:
        """Create-if-absent (False: the address is taken). In the same transaction, an
        ownerless live mailbox at the user's address gets the new user as its owner."""
        ...

    def get_user(self, user_id: str) -> User | None: ...
    def get_user_by_email(self, email: str) -> User | None: ...
    def list_users(self, *, active_only: bool = False) -> list[User]: ...
    def list_active_admins(self) -> list[User]: ...
    def change_user(
        self, user_id: str, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        """Change role or activity; raises ConflictError if no active admin would remain."""
        ...

    def bootstrap_admin(self, email: str, name: str = "") -> bool:
        """Create (or promote and reactivate) an admin only while no active admin exists."""
        ...

    # -- mailboxes ---------------------------------------------------------------------------
    def add_email_account(self, account: EmailAccount) -> bool:
        """Create-if-absent (False: the address is taken). A mailbox given without an owner
        gets, in the same transaction, the user with its address (paused ``owner_inactive``
        if that user is inactive); read it back for the stored owner."""
        ...

    def get_email_account(self, account_id: str) -> EmailAccount | None: ...
    def get_email_account_by_address(self, address: str) -> EmailAccount | None: ...
    def list_email_accounts(self, *, include_deleted: bool = False) -> list[EmailAccount]: ...
    def set_email_account_paused(
        self, account_id: str, paused: bool, *, reason: PauseReason = PauseReason.ADMIN
    ) -> EmailAccount:
        """Add (``paused``) or lift one pause reason; the mailbox stays paused while any reason
        remains. ConflictError for an offboarded mailbox, NotFoundError for an unknown one."""
        ...

    def set_email_account_owner(self, account_id: str, owner_email: str = "") -> EmailAccount:
        """Make the user at ``owner_email`` the mailbox's owner (empty: the user with the
        mailbox's own address, or none), reading user and mailbox in one transaction; the
        ``owner_inactive`` pause follows the new owner. NotFoundError for an unknown mailbox or
        a named user that does not exist, ConflictError for an offboarded mailbox."""
        ...

    def offboard_email_account(self, account_id: str) -> EmailAccount:
        """Mark the mailbox offboarded (``deleted``): its sync ends, and from then on its sync
        state, new sightings and restored sightings are refused (NotFoundError), so a run that
        is still going stops at its next write. Idempotent (``deleted_at`` kept)."""
        ...

    def soft_delete_account_sightings(self, account_id: str, *, limit: int = 100) -> int:
        """Soft-delete up to ``limit`` (at most 200) live sightings of the mailbox in one
        transaction, recomputing each email's denormalised fields in it; how many. Call again
        until it returns 0 (a purge of a large mailbox is many small commits)."""
        ...

    def update_sync_state(self, account_id: str, change: SyncStateChange) -> SyncState: ...
    def own_addresses(self) -> set[str]:
        """Every address (and alias) of every non-deleted team mailbox: decides direction."""
        ...

    # -- CRM records -------------------------------------------------------------------------
    def upsert_organization(self, organization: Organization) -> None: ...
    def upsert_investor(self, investor: Investor) -> None: ...
    def upsert_contact(self, contact: Contact) -> None: ...
    def get_organization(self, organization_id: str) -> Organization | None: ...
    def get_investor(self, investor_id: str) -> Investor | None: ...
    def get_contact(self, contact_id: str) -> Contact | None: ...
    def find_contacts_by_addresses(self, addresses: Iterable[str]) -> list[Contact]:
        """Live contacts holding any of the addresses, compared canonically (Gmail's dots and
        +tags folded, ``email_keys``), by id."""
        ...

    def find_investors_by_addresses(self, addresses: Iterable[str]) -> list[Investor]:
        """Live investors whose own address list holds any of the addresses."""
        ...

    def find_organizations_by_domains(self, domains: Iterable[str]) -> list[Organization]:
        """Live organisations owning any of the domains."""
        ...

    def find_investors_by_domains(self, domains: Iterable[str]) -> list[Investor]: ...
    def find_investors_by_organizations(self, organization_ids: Iterable[str]) -> list[Investor]:
        """Live investors belonging to any of the organisations, by id."""
        ...

    def find_contacts_by_investors(self, investor_ids: Iterable[str]) -> list[Contact]:
        """Live contacts of any of the investors, by id (what an investor's deletion or
        restoration changes for matching)."""
        ...

    def list_investors(
        self, *, include_graveyard: bool = True, include_deleted: bool = False
    ) -> list[Investor]:
        """Sorted by name (case-insensitive), then id."""
        ...

    # -- emails, sightings, links ------------------------------------------------------------
    def upsert_email(self, email: Email) -> bool:
        """Insert or refresh an email's captured fields; True if it was new.

        The denormalised fields (``matched``, ``investor_ids``, ``live_account_ids``) are never
        taken from the argument: they are recomputed from sightings and links.
        """
        ...

    def get_email(self, email_id: str) -> Email | None: ...
    def list_emails_matched_between(
        self, since: datetime, until: datetime, *, limit: int = 500, page_token: str = ""
    ) -> Page[Email]:
        """Matched emails with ``since < matched_at <= until``, by (matched_at, id): the mail
        that became known as investor mail in a window (the digest's)."""
        ...

    def record_sighting(self, sighting: Sighting) -> bool:
        """Insert or refresh one mailbox's sighting; True if new. Updates the email's live set."""
        ...

    def set_sighting_deleted(self, account_id: str, gmail_message_id: str, deleted: bool) -> bool:
        """Soft-delete or restore a sighting; False if there is no such sighting."""
        ...

    def get_sighting(self, account_id: str, gmail_message_id: str) -> Sighting | None: ...
    def list_sightings(self, email_id: str) -> list[Sighting]: ...
    def sighted_message_ids(self, account_id: str, gmail_message_ids: Iterable[str]) -> set[str]:
        """Which of these Gmail ids already have a sighting in the mailbox (deleted or not)."""
        ...

    def record_capture_problem(self, problem: CaptureProblem) -> CaptureProblem:
        """Keep (or count one more attempt of) a message capture could not read."""
        ...

    def list_capture_problems(self, account_id: str, *, limit: int = 100) -> list[CaptureProblem]:
        """Oldest first by Gmail id."""
        ...

    def clear_capture_problem(self, account_id: str, gmail_message_id: str) -> bool: ...
    def link_email_to_investor(self, link: InvestorLink) -> bool:
        """Record why an email matched; True if new. Marks the email matched."""
        ...

    def unlink_email_from_investor(self, email_id: str, investor_id: str) -> int:
        """Remove every link of the pair; returns how many. Unmatches the email if none remain."""
        ...

    def list_links(self, email_id: str) -> list[InvestorLink]: ...
    def find_emails_by_participants(
        self,
        *,
        addresses: Sequence[str] = (),
        domains: Sequence[str] = (),
        limit: int = 500,
        after_id: str = "",
    ) -> list[Email]:
        """Emails with any of the addresses or domains among their participants (re-match),
        by id; ``after_id`` continues from the last id of the previous page."""
        ...

    def list_emails(self, *, limit: int = 500, after_id: str = "") -> list[Email]:
        """Every stored email by id, ``limit`` at a time; ``after_id`` continues from the last
        id of the previous page (the repair commands' scan: no filter, so no extra index)."""
        ...

    def update_email(self, email_id: str, change: Callable[[Email], Email | None]) -> Email | None:
        """Read the email, apply ``change`` and write the result, in one transaction (``change``
        may run more than once; None from it writes nothing). The denormalised fields stay the
        store's and the search words are rebuilt. Returns the stored email, None if unknown."""
        ...

    # -- the email-activity panel ------------------------------------------------------------
    def query_activity(self, query: ActivityQuery) -> ActivityHits:
        """Listed mail (linked to an investor, with a live sighting) passing every filter and
        matching every word of ``query``, newest first by (date, id); ``page_token`` resumes
        below the previous page. A page may be short with ``has_more`` (a store that filters
        in memory stops at its read budget). The hits' emails may lack their body (a page never
        shows it). BadRequestError for a malformed page token."""
        ...

    def refresh_activity_direction(self, addresses: Sequence[str]) -> int:
        """Re-derive the direction of stored mail sent from any of these addresses, after the
        team's addresses changed (a mailbox added or removed); how many emails changed."""
        ...

    def get_investors(self, investor_ids: Iterable[str]) -> list[Investor]:
        """The investors with these ids, soft-deleted ones included, by id; one batched read
        (the panel names the investors of a page)."""
        ...

    # -- proposals and activities ------------------------------------------------------------
    def create_proposal(self, proposal: Proposal) -> bool: ...
    def get_proposal(self, proposal_id: str) -> Proposal | None: ...
    def decide_proposal(self, proposal_id: str, status: ProposalStatus, actor: str) -> Decision:
        """Approve (creating the activity), reject or withdraw; ``PROPOSED`` reopens only a
        withdrawn proposal (a match that came back). Idempotent for the same decision; raises
        ConflictError naming the state if it was already decided otherwise."""
        ...

    def list_proposals(
        self,
        *,
        status: ProposalStatus | None = None,
        investor_id: str | None = None,
        account_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Proposal]:
        """Newest first; stable across pages. ``account_id``: the mailbox whose capture made
        it; ``created_from <= created_at < created_to``."""
        ...

    def get_activity(self, activity_id: str) -> Activity | None: ...

    # -- settings, guards, audit -------------------------------------------------------------
    def get_setting(self, key: str) -> Any | None: ...
    def set_setting(self, key: str, value: Any) -> None: ...
    def update_setting(self, key: str, change: Callable[[Any | None], Any]) -> Any:
        """Read-modify-write of one setting in a transaction; returns the new value."""
        ...

    def create_guard(self, guard: Guard) -> bool:
        """Create-if-absent; True if this caller created it (and so owns the work)."""
        ...

    def get_guard(self, guard_id: str) -> Guard | None: ...
    def update_guard(self, guard_id: str, change: Callable[[Guard], Guard | None]) -> Guard | None:
        """Read-modify-write of a guard in a transaction; ``change`` returning None keeps it."""
        ...

    def append_audit(self, entry: AuditEntry) -> None:
        """Record one entry; the same entry id twice raises ConflictError."""
        ...

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        ...


class Secrets(Protocol):
    """Secret values by name (``smtp-password``). Implementations cache values, and absences,
    once per instance; ``get_optional`` returns None only for a secret that does not exist
    (a permission or credential problem still raises ConfigurationError)."""

    def get(self, name: str) -> str: ...
    def get_optional(self, name: str) -> str | None: ...


class TokenVerifier(Protocol):
    """Turns a bearer token into a verified caller, or raises Unauthenticated/Forbidden."""

    def verify(self, token: str | None, *, audience_for: str) -> Caller: ...


class Queue(Protocol):
    """Fan-out: Pub/Sub topics in the cloud, an in-process queue on one machine."""

    def publish(self, topic: str, message: Mapping[str, Any]) -> str: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# -- Gmail -------------------------------------------------------------------------------------
# Messages and history records are Gmail API v1 resources as JSON dicts (users.messages,
# users.history): the shape is Google's published one, so the adapter passes them through and
# the capture code reads them without an intermediate model.
GmailMessage = dict[str, Any]


@dataclass(frozen=True)
class MessageIdPage:
    """One page of ``users.messages.list``: ids (newest first), next token, Gmail's estimate."""

    ids: list[str]
    next_page_token: str = ""
    result_size_estimate: int = 0


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``users.history.list`` and the mailbox's current ``historyId``."""

    records: list[dict[str, Any]]
    history_id: int
    next_page_token: str = ""


@dataclass(frozen=True)
class FetchResult:
    """Outcome of a batched get: messages by id, and per-id errors that survived retries.

    ``missing`` holds ids Gmail answered 404 for (deleted between list and get): not an error.
    """

    messages: dict[str, GmailMessage]
    failed: dict[str, str]
    missing: list[str]


class HistoryExpiredError(Exception):
    """``history.list`` answered 404: the start id is older than Gmail keeps; run a full sync."""


class GmailClient(Protocol):
    """One mailbox's Gmail, as capture needs it (read-only scope). Named methods only.

    Rate limits (429, 403 rateLimitExceeded) and 5xx are retried inside with backoff and jitter,
    honouring Retry-After; what still fails raises RetryableError, except per-message failures in
    ``get_messages``, which are reported in ``FetchResult.failed`` so one bad message never stops
    the rest. A grant that lacks the scope raises ConfigurationError naming it.
    """

    def get_profile(self) -> dict[str, Any]:
        """``{emailAddress, messagesTotal, threadsTotal, historyId}``."""
        ...

    def list_message_ids(
        self, *, query: str = "", page_token: str = "", max_results: int = 500
    ) -> MessageIdPage: ...

    def get_messages(
        self,
        ids: Sequence[str],
        *,
        format: str,
        metadata_headers: Sequence[str] = (),
    ) -> FetchResult:
        """Batched ``messages.get`` (at most 25 parts a batch): minimal, metadata, full or raw."""
        ...

    def list_history(self, *, start_history_id: int, page_token: str = "") -> HistoryPage:
        """History records of types messageAdded, messageDeleted, labelAdded, labelRemoved;
        raises HistoryExpiredError on Gmail's 404."""
        ...

    def watch(self, *, topic: str, label_ids: Sequence[str] = ()) -> dict[str, Any]:
        """``users.watch``: ``{historyId, expiration}`` (epoch ms)."""
        ...

    def stop(self) -> None: ...


AllowedRoles = frozenset[Role | ServiceRole]


# -- Digest transports (issue 12: services import no adapter) ------------------------------------
# The digest's two send paths as the mail-transport service sees them; the adapters are
# ``shared.adapters.gmail_send.GmailSender`` and ``shared.adapters.smtp.SmtpSender``, which
# wiring builds. Each refuses by itself, right before sending, any recipient not in ``admins``
# or outside ``team`` (``shared.domain.digest_recipients``).

if TYPE_CHECKING:  # in this block only, so that the block stays separate from the rest
    from collections.abc import Collection

    from shared.domain.tenancy import TeamDomains


class GmailTransport(Protocol):
    """``messages.send`` as one mailbox (wiring builds one per sender address)."""

    def deliver(self, raw: bytes, *, admins: Collection[str], team: TeamDomains) -> str:
        """Send ``raw`` (RFC 5322 bytes); Gmail's message id."""
        ...


class SmtpTransport(Protocol):
    """One SMTP server, the fallback: ``raw`` from ``sender`` to the envelope ``recipients``."""

    def deliver(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        admins: Collection[str],
        team: TeamDomains,
    ) -> str:
        """Send ``raw``; the message's Message-ID."""
        ...
