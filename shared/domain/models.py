"""The records this service keeps, as pydantic models shared by both stores.

Rules that hold on every record, because Firestore queries depend on them (ARCHITECTURE.md, Data):
every field a query filters or orders on is top-level and always present (``deleted: False``, not a
missing field), each field always has one type, and addresses are stored lower-case. Deterministic
ids make inserts idempotent: the same message, sighting, link or proposal always lands on the same
key, so a retry overwrites or is refused instead of duplicating.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared.domain.addresses import canonical_address, normalize_address, normalize_domain

_ID_RE = re.compile(r"^[A-Za-z0-9_.:@+=-]{1,200}$")


def utcnow() -> datetime:
    """The current time, timezone-aware (naive datetimes are refused everywhere)."""
    return datetime.now(UTC)


def time_key(value: datetime) -> str:
    """Fixed-width UTC text whose string order is time order: what stores sort and page on."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def email_keys_for(addresses: list[str]) -> list[str]:
    """The canonical lookup keys of a record's addresses (sorted, unique)."""
    return sorted({canonical_address(a) for a in addresses})


def new_id() -> str:
    """A random id for records with no natural key."""
    return uuid.uuid4().hex


def _check_id(value: str) -> str:
    # Ids become Firestore document names: no "/", not "." or "..", not "__x__" (FACTS.md).
    if (
        not _ID_RE.match(value)
        or value in {".", ".."}
        or (value.startswith("__") and value.endswith("__"))
    ):
        raise ValueError(f"invalid id: {value!r}")
    return value


def is_record_id(value: str) -> bool:
    """Whether ``value`` is an id a record can have (what a page token's key must end with)."""
    try:
        _check_id(value)
    except ValueError:
        return False
    return True


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


def _unique_addresses(values: list[str]) -> list[str]:
    return list(dict.fromkeys(normalize_address(v) for v in values))


def _unique_domains(values: list[str]) -> list[str]:
    return list(dict.fromkeys(normalize_domain(v) for v in values))


Address = Annotated[str, AfterValidator(normalize_address)]
Domain = Annotated[str, AfterValidator(normalize_domain)]
RecordId = Annotated[str, AfterValidator(_check_id)]
# An id as a request gives it: the length is checked before the pattern, so a huge one is
# refused without being read (or quoted back).
InputRecordId = Annotated[str, StringConstraints(max_length=200), AfterValidator(_check_id)]
Timestamp = Annotated[datetime, AfterValidator(_aware)]
AddressList = Annotated[list[str], AfterValidator(_unique_addresses)]
DomainList = Annotated[list[str], AfterValidator(_unique_domains)]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def user_id_for(email: str) -> str:
    """Users are keyed by their address so that "one user per address" is a create-if-absent."""
    return "u_" + sha256_hex(normalize_address(email))[:24]


def account_id_for(address: str) -> str:
    """Team mailboxes are keyed by address for the same reason as users."""
    return "a_" + sha256_hex(normalize_address(address))[:24]


def normalize_message_id(message_id: str) -> str:
    """``<ABC@host>`` and ``abc@HOST `` name the same message: strip brackets and space.

    The local part of a Message-ID is case-sensitive in principle, but clients and relays are
    known to change its case; the domain never matters. Case-folding the whole id trades a
    theoretical collision for never splitting one message into two emails.
    """
    return message_id.strip().strip("<>").strip().lower()


def email_id_for(
    message_id: str | None,
    *,
    from_address: str = "",
    date: str = "",
    subject: str = "",
    body_sha256: str = "",
) -> str:
    """The email's key: sha256 of the normalised Message-ID, else of From, Date, Subject, body hash.

    The same message seen in several team mailboxes has one Message-ID, hence one email.
    """
    if message_id and normalize_message_id(message_id):
        return sha256_hex("mid:" + normalize_message_id(message_id))
    return sha256_hex("\x1f".join(["fallback", from_address.lower(), date, subject, body_sha256]))


def sighting_id_for(account_id: str, gmail_message_id: str) -> str:
    return f"{account_id}:{gmail_message_id}"


def link_id_for(email_id: str, investor_id: str, contact_id: str | None) -> str:
    return f"{email_id}:{investor_id}:{contact_id or '-'}"


def proposal_id_for(email_id: str, investor_id: str) -> str:
    """One proposal per (email, investor): a second match of the same pair lands on the same key."""
    return f"p_{sha256_hex(email_id + ':' + investor_id)[:32]}"


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class ServiceRole(StrEnum):
    """Non-human callers, recognised by the verified e-mail of their OIDC token."""

    SCHEDULER = "scheduler"
    PUBSUB_PUSH = "pubsub_push"
    DRAFTING_AGENT = "drafting_agent"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SyncStatus(StrEnum):
    NEVER = "never"
    SYNCING = "syncing"
    OK = "ok"
    BEHIND = "behind"
    ERROR = "error"
    PAUSED = "paused"


class PauseReason(StrEnum):
    """Why a mailbox is paused. A mailbox is paused while it has any reason, so lifting one (an
    owner reactivated) never resumes a mailbox an admin paused for a reason of their own."""

    ADMIN = "admin"
    OWNER_INACTIVE = "owner_inactive"


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    # An open proposal whose match went away (address removed, excluded) is withdrawn, not deleted.
    WITHDRAWN = "withdrawn"


class MatchHeader(StrEnum):
    FROM = "from"
    REPLY_TO = "reply_to"
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class Record(BaseModel):
    """Base of every stored record: strict about unknown fields, tolerant of stored extras."""

    # defer_build: each model's validator is built on its first use, not at import; a cold
    # start then pays only for the models the called function touches.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_enum_values=False, defer_build=True
    )


class User(Record):
    id: RecordId
    email: Address
    name: str = ""
    role: Role = Role.MEMBER
    is_active: bool = True
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)

    @classmethod
    def new(cls, email: str, name: str = "", role: Role = Role.MEMBER) -> User:
        return cls(id=user_id_for(email), email=email, name=name, role=role)

    @model_validator(mode="after")
    def _id_follows_email(self) -> User:
        # One user per address is then a create-if-absent on the id: race-free on Firestore,
        # where a query cannot lock a document that does not exist yet.
        if self.id != user_id_for(self.email):
            raise ValueError("a user's id must be user_id_for(email)")
        return self


class SyncState(Record):
    """Where a mailbox's capture stands. ``history_id`` only ever increases (store-enforced)."""

    status: SyncStatus = SyncStatus.NEVER
    history_id: int = 0
    last_success_at: Timestamp | None = None
    last_attempt_at: Timestamp | None = None
    last_error: str = ""
    watch_expiration: Timestamp | None = None
    backfill_page_token: str = ""
    # The mailbox's history id when its full sync began: partial sync resumes from it.
    backfill_history_id: int = 0
    backfill_done: bool = False
    last_reconciled_at: Timestamp | None = None
    messages_total: int = 0
    messages_done: int = 0
    messages_failed: int = 0
    # Messages this mailbox stored with a header problem (``Email.header_problems``): captured
    # all the same, shown so an admin knows mail arrived with forged-looking headers.
    header_problems: int = 0
    coverage_gap: int = 0
    # An admin asked for a full resync: the next run resets the cursor under its lease.
    resync_pending: bool = False


class EmailAccount(Record):
    """A team mailbox read through domain-wide delegation."""

    id: RecordId
    address: Address
    user_id: RecordId | None = None
    aliases: AddressList = Field(default_factory=list)
    paused: bool = False
    # Why it is paused (``store_rules.apply_pause`` keeps ``paused == bool(pause_reasons)``).
    pause_reasons: list[PauseReason] = Field(default_factory=list)
    # Offboarded: sync ended, watch stopped; kept for its history (sightings kept or purged).
    deleted: bool = False
    deleted_at: Timestamp | None = None
    sync: SyncState = Field(default_factory=SyncState)
    created_at: Timestamp = Field(default_factory=utcnow)

    @classmethod
    def new(cls, address: str, user_id: str | None = None) -> EmailAccount:
        return cls(id=account_id_for(address), address=address, user_id=user_id)

    @model_validator(mode="after")
    def _id_follows_address(self) -> EmailAccount:
        # Same reason as User: one mailbox per address is a create-if-absent on the id.
        if self.id != account_id_for(self.address):
            raise ValueError("a mailbox's id must be account_id_for(address)")
        return self

    def addresses(self) -> list[str]:
        return [self.address, *self.aliases]


class Organization(Record):
    id: RecordId = Field(default_factory=new_id)
    name: str
    domains: DomainList = Field(default_factory=list)
    deleted: bool = False
    deleted_at: Timestamp | None = None
    updated_at: Timestamp = Field(default_factory=utcnow)


class Investor(Record):
    id: RecordId = Field(default_factory=new_id)
    name: str
    organization_id: RecordId | None = None
    emails: AddressList = Field(default_factory=list)
    domains: DomainList = Field(default_factory=list)
    graveyard: bool = False
    deleted: bool = False
    deleted_at: Timestamp | None = None
    # Lower-cased name: the picker sorts on it, and Firestore orders by stored bytes.
    name_key: str = ""
    # Canonical forms of ``emails`` (Gmail dots/+tags folded): what lookups by address compare.
    email_keys: list[str] = Field(default_factory=list)
    updated_at: Timestamp = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _derive_keys(self) -> Investor:
        # Assigned through __dict__: a validated assignment here would re-enter this validator.
        self.__dict__["name_key"] = self.name.casefold()
        self.__dict__["email_keys"] = email_keys_for(self.emails)
        return self


class Contact(Record):
    id: RecordId = Field(default_factory=new_id)
    name: str = ""
    investor_id: RecordId | None = None
    organization_id: RecordId | None = None
    emails: AddressList = Field(default_factory=list)
    # Canonical forms of ``emails``, derived: see Investor.email_keys.
    email_keys: list[str] = Field(default_factory=list)
    deleted: bool = False
    deleted_at: Timestamp | None = None
    updated_at: Timestamp = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _derive_keys(self) -> Contact:
        self.__dict__["email_keys"] = email_keys_for(self.emails)
        return self


class Mailbox(Record):
    """A parsed address header entry: display name kept for drafts and the panel."""

    name: str = ""
    address: Address


class Email(Record):
    """One message however many team mailboxes saw it.

    The header fields are always kept; snippet, body and search tokens only once it matched
    (match-only storage). ``live_account_ids``, ``investor_ids`` and ``matched`` are denormalised
    from sightings and links and recomputed by the store inside the transaction that changes them.
    """

    id: RecordId
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = Field(default_factory=list)
    subject: str = ""
    sender: Mailbox | None = None
    reply_to: list[Mailbox] = Field(default_factory=list)
    to: list[Mailbox] = Field(default_factory=list)
    cc: list[Mailbox] = Field(default_factory=list)
    bcc: list[Mailbox] = Field(default_factory=list)
    date: Timestamp | None = None
    size: int = 0
    participant_addresses: AddressList = Field(default_factory=list)
    participant_domains: DomainList = Field(default_factory=list)
    # List or bulk mail (List-Id, Precedence, no-reply sender...): stored, never matched.
    is_bulk: bool = False
    # What capture could not trust in the headers it was handed (a decoded value holding
    # control characters keeps only its ``<addr-spec>`` addresses): shown with the mail, and
    # what ``repair-participants`` looks for.
    header_problems: list[str] = Field(default_factory=list)
    snippet: str = ""
    # The snippet is plain text: Gmail's HTML escaping (``&#39;``) undone, once. Rows stored
    # before capture did that are False until ``repair-snippets`` unescapes them (never twice).
    snippet_plain: bool = False
    body: str = ""
    body_truncated: bool = False
    first_seen_at: Timestamp = Field(default_factory=utcnow)
    # Denormalised by the store (never trusted from the caller).
    matched: bool = False
    matched_at: Timestamp | None = None
    investor_ids: list[str] = Field(default_factory=list)
    live_account_ids: list[str] = Field(default_factory=list)

    @property
    def matched_key(self) -> str:
        """``<matched_at>|<id>`` for matched mail, "" otherwise: the digest's window and paging
        key (one sortable field, so one range filter needs no composite index)."""
        if not self.matched or self.matched_at is None:
            return ""
        return f"{time_key(self.matched_at)}|{self.id}"


class Sighting(Record):
    """An email as seen in one team mailbox: the Gmail ids and labels, and the soft delete."""

    id: RecordId
    account_id: RecordId
    gmail_message_id: str
    email_id: RecordId
    thread_id: str = ""
    label_ids: list[str] = Field(default_factory=list)
    is_sent: bool = False
    internal_date: Timestamp | None = None
    deleted: bool = False
    deleted_at: Timestamp | None = None

    @classmethod
    def new(cls, account_id: str, gmail_message_id: str, email_id: str, **fields: Any) -> Sighting:
        return cls(
            id=sighting_id_for(account_id, gmail_message_id),
            account_id=account_id,
            gmail_message_id=gmail_message_id,
            email_id=email_id,
            **fields,
        )


class InvestorLink(Record):
    """Why an email matched an investor: which address, in which header."""

    id: RecordId
    email_id: RecordId
    investor_id: RecordId
    contact_id: RecordId | None = None
    matched_address: Address
    header: MatchHeader
    created_at: Timestamp = Field(default_factory=utcnow)

    @classmethod
    def new(
        cls,
        email_id: str,
        investor_id: str,
        contact_id: str | None,
        matched_address: str,
        header: MatchHeader,
    ) -> InvestorLink:
        return cls(
            id=link_id_for(email_id, investor_id, contact_id),
            email_id=email_id,
            investor_id=investor_id,
            contact_id=contact_id,
            matched_address=matched_address,
            header=header,
        )


class Proposal(Record):
    """Proposed CRM activity for one (email, investor); nothing lands until a human approves."""

    id: RecordId
    email_id: RecordId
    investor_id: RecordId
    contact_id: RecordId | None = None
    account_id: RecordId | None = None
    status: ProposalStatus = ProposalStatus.PROPOSED
    created_at: Timestamp = Field(default_factory=utcnow)
    decided_by: str = ""
    decided_at: Timestamp | None = None

    @property
    def sort_key(self) -> str:
        """Newest-first listing key, unique and totally ordered (stores page on it, not cursors)."""
        return f"{time_key(self.created_at)}|{self.id}"

    @classmethod
    def new(cls, email_id: str, investor_id: str, **fields: Any) -> Proposal:
        return cls(
            id=proposal_id_for(email_id, investor_id),
            email_id=email_id,
            investor_id=investor_id,
            **fields,
        )


class Activity(Record):
    """An approved activity on a contact record; its id is the proposal's, so approval is once."""

    id: RecordId
    proposal_id: RecordId
    email_id: RecordId
    investor_id: RecordId
    contact_id: RecordId | None = None
    occurred_at: Timestamp | None = None
    summary: str = ""
    created_by: str
    created_at: Timestamp = Field(default_factory=utcnow)


class DigestPolicy(Record):
    enabled: bool = False
    send_hour: int = Field(default=18, ge=0, le=23)


class AuditEntry(Record):
    id: RecordId = Field(default_factory=new_id)
    actor: str
    action: str
    target: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    at: Timestamp = Field(default_factory=utcnow)

    @property
    def sort_key(self) -> str:
        """Newest-first key: time, then id, so entries of the same instant keep one order."""
        return f"{time_key(self.at)}|{self.id}"


class CaptureProblem(Record):
    """A message capture could not read: kept, retried on later runs, shown in sync status."""

    id: RecordId
    account_id: RecordId
    gmail_message_id: str
    reason: str
    attempts: int = 1
    at: Timestamp = Field(default_factory=utcnow)

    @classmethod
    def new(cls, account_id: str, gmail_message_id: str, reason: str) -> CaptureProblem:
        return cls(
            id=sighting_id_for(account_id, gmail_message_id),
            account_id=account_id,
            gmail_message_id=gmail_message_id,
            reason=reason,
        )

    @model_validator(mode="after")
    def _id_follows_message(self) -> CaptureProblem:
        # Keyed like the sighting it is missing, so recording it twice counts one more attempt.
        if self.id != sighting_id_for(self.account_id, self.gmail_message_id):
            raise ValueError("a capture problem's id must be sighting_id_for(account, message)")
        return self


class Guard(Record):
    """A create-if-absent record: a sync lease, a digest day. Whoever creates it owns the work."""

    id: RecordId
    owner: str = ""
    state: str = ""
    attempts: int = 0
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)


class Caller(BaseModel):
    """Who made a request, after the token was verified and resolved."""

    model_config = ConfigDict(frozen=True)

    email: str
    role: Role | ServiceRole
    user_id: str | None = None

    @property
    def is_service(self) -> bool:
        return isinstance(self.role, ServiceRole)
