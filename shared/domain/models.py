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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared.domain.addresses import canonical_address, normalize_address, normalize_domain
from shared.errors import ConflictError, NotFoundError

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

    def revalidated(self) -> Self:
        """The record re-validated, so derived keys (``name_key``, ``email_keys``) follow its data
        even when the caller built it with ``model_copy(update=...)``, which skips validators."""
        return type(self).model_validate(self.model_dump())


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

    def with_role(
        self, *, role: Role | None, is_active: bool | None, other_active_admins: int, at: datetime
    ) -> User:
        """The user after a role/activity change at ``at``; refused if it would leave no active
        admin (``other_active_admins`` is counted by the store, in the same transaction)."""
        changed = self.model_copy(
            update={
                "role": role if role is not None else self.role,
                "is_active": is_active if is_active is not None else self.is_active,
                "updated_at": at,
            }
        )
        was_admin = self.is_active and self.role is Role.ADMIN
        still_admin = changed.is_active and changed.role is Role.ADMIN
        if was_admin and not still_admin and other_active_admins == 0:
            raise ConflictError("the change would leave no active admin", user_id=self.id)
        return changed


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


# The SyncStateChange fields that replace the stored value when given.
_SYNC_FIELDS_SET = (
    "status",
    "last_success_at",
    "last_attempt_at",
    "last_error",
    "watch_expiration",
    "backfill_page_token",
    "backfill_history_id",
    "backfill_done",
    "last_reconciled_at",
    "messages_total",
    "messages_done",
    "messages_failed",
    "coverage_gap",
    "resync_pending",
)


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

    def applied(self, change: SyncStateChange) -> SyncState:
        """The new sync state; the history id never moves backwards except on an explicit reset."""
        update: dict[str, Any] = {}
        for name in _SYNC_FIELDS_SET:
            value = getattr(change, name)
            if value is not None:
                update[name] = value
        if change.header_problems_added:
            update["header_problems"] = self.header_problems + change.header_problems_added
        if change.reset_history:
            update["history_id"] = change.history_id or 0
        elif change.history_id is not None:
            update["history_id"] = max(self.history_id, change.history_id)
        return self.model_validate({**self.model_dump(), **update})


class EmailAccount(Record):
    """A team mailbox read through domain-wide delegation."""

    id: RecordId
    address: Address
    user_id: RecordId | None = None
    aliases: AddressList = Field(default_factory=list)
    paused: bool = False
    # Why it is paused (``with_pause`` keeps ``paused == bool(pause_reasons)``).
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

    def belongs_to(self, user_id: str | None) -> bool:
        """Whether the user ``user_id`` owns this mailbox (an ownerless one is no one's, and a
        caller without a user id, a service, owns none): what scopes a member's views."""
        return user_id is not None and self.user_id == user_id

    def refuse_offboarded(self) -> EmailAccount:
        """The account, unless it is offboarded: then its sync has ended and nothing more may be
        written for it (a run still going stops at its next write; a purge is not undone)."""
        if self.deleted:
            raise NotFoundError("mailbox is offboarded", account_id=self.id)
        return self

    def with_pause(self, paused: bool, reason: PauseReason) -> EmailAccount:
        """Add or lift one pause reason; paused while any reason remains. A mailbox paused before
        reasons were kept counts as paused by an admin."""
        if self.deleted:
            raise ConflictError("mailbox is offboarded", account_id=self.id)
        reasons = set(self.pause_reasons)
        if self.paused and not reasons:
            reasons.add(PauseReason.ADMIN)
        if paused:
            reasons.add(reason)
        else:
            reasons.discard(reason)
        ordered = sorted(reasons, key=lambda r: r.value)
        return self.model_copy(update={"paused": bool(ordered), "pause_reasons": ordered})

    def owned_by(self, owner: User | None) -> EmailAccount:
        """The mailbox with ``owner`` (None: ownerless). Its ``owner_inactive`` pause follows the
        owner: added while the owner is inactive, lifted otherwise (an admin's pause stays)."""
        inactive = owner is not None and not owner.is_active
        changed = self.with_pause(inactive, PauseReason.OWNER_INACTIVE)
        return changed.model_copy(update={"user_id": owner.id if owner else None})

    def is_claimable(self) -> bool:
        """A new user becomes the owner of the mailbox at their address when it has none: a
        mailbox's owner is the user with its address, unless an admin chose another."""
        return not self.deleted and self.user_id is None

    def offboarded(self, at: datetime) -> EmailAccount:
        """The account offboarded at ``at``; offboarding again changes nothing (the first time
        is kept)."""
        if self.deleted:
            return self
        return self.model_copy(update={"deleted": True, "deleted_at": at})

    def with_sync_change(self, change: SyncStateChange) -> EmailAccount:
        """The account with its sync state changed; refused once it is offboarded."""
        self.refuse_offboarded()
        return self.model_copy(update={"sync": self.sync.applied(change)})


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


CrmRecordT = TypeVar("CrmRecordT", Organization, Investor, Contact)


def stamped(record: CrmRecordT, at: datetime) -> CrmRecordT:
    """The CRM record as a store writes it at ``at`` (the store's clock): ``updated_at`` is
    that, whatever the caller set, so every write path (edits, soft delete, graveyard, CSV
    import, re-match) moves it and the digest can ask which records changed since it took
    their names."""
    return record.model_copy(update={"updated_at": at})


class Mailbox(Record):
    """A parsed address header entry: display name kept for drafts and the panel."""

    name: str = ""
    address: Address


class Correction(Record):
    """An admin's "not investor mail" on one email for one investor (``docs/email-detail-and-
    corrections.md``): while it stands, no capture, re-match or repair links the pair again (the
    store refuses the link), and undoing it removes it."""

    investor_id: RecordId
    by: str
    at: Timestamp = Field(default_factory=utcnow)
    # The address this correction added to the exclusions ("" if none): undoing removes it.
    excluded_address: str = ""


class Email(Record):
    """One message however many team mailboxes saw it.

    The header fields are always kept; snippet, body and search tokens only once it matched
    (match-only storage). ``live_account_ids``, ``investor_ids``, ``matched`` and the digest's
    fields (``sent_account_ids``, ``links``, ``digest_ready``) are denormalised from sightings and
    links and recomputed by the store inside the transaction that changes them.
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
    # What the daily digest needs of the sightings and links, so it reads the email alone:
    # the mailboxes whose live sighting is in Sent, and the links (by link id). Emails written
    # before these fields existed hold none and ``digest_ready`` False: the digest then reads
    # the sightings and links themselves, until ``repair-digest-fields`` recomputes them.
    sent_account_ids: list[str] = Field(default_factory=list)
    links: list[LinkedInvestor] = Field(default_factory=list)
    digest_ready: bool = False
    # The admins' corrections: kept by the store like the denormalised fields (a capture never
    # carries them), changed only through ``MailStore.set_email_correction``.
    corrections: list[Correction] = Field(default_factory=list)

    @property
    def corrected_investor_ids(self) -> frozenset[str]:
        """The investors an admin said this email is not mail of."""
        return frozenset(c.investor_id for c in self.corrections)

    def correction_for(self, investor_id: str) -> Correction | None:
        return next((c for c in self.corrections if c.investor_id == investor_id), None)

    def with_correction(self, investor_id: str, correction: Correction | None) -> Email:
        """The email with its correction for ``investor_id`` set (or removed, for None)."""
        kept = [c for c in self.corrections if c.investor_id != investor_id]
        if correction is not None:
            if correction.investor_id != investor_id:
                raise ValueError("a correction names the investor it corrects")
            kept.append(correction)
        kept.sort(key=lambda c: c.investor_id)
        return self.model_copy(update={"corrections": kept})

    def without_text_if_unmatched(self) -> Email:
        """Match-only storage after the last link went: unmatched mail keeps no snippet or
        body (its search words follow ``matched`` in the stores' index), as if it had never
        matched. A re-match or an undone correction fetches them again."""
        if self.matched or not (self.body or self.snippet or self.body_truncated):
            return self
        return self.model_copy(
            update={"snippet": "", "snippet_plain": True, "body": "", "body_truncated": False}
        )

    @property
    def matched_key(self) -> str:
        """``<matched_at>|<id>`` for matched mail, "" otherwise: the digest's window and paging
        key (one sortable field, so one range filter needs no composite index)."""
        if not self.matched or self.matched_at is None:
            return ""
        return f"{time_key(self.matched_at)}|{self.id}"

    def denormalised(
        self, sightings: Iterable[Sighting], links: Iterable[InvestorLink], *, at: datetime
    ) -> Email:
        """The email with its derived fields recomputed from all its sightings and links, as
        the store does at ``at``: ``matched``/``investor_ids``/``links`` from the links,
        ``live_account_ids``/``sent_account_ids`` from the live (not soft-deleted) sightings.

        ``matched_at`` is when the mail became known as investor mail: set (to ``at``) on the
        first link, kept while any link remains (the digest's window is on it), cleared when the
        last link goes.
        """
        live = [s for s in sightings if not s.deleted]
        ordered = sorted(links, key=lambda link: link.id)
        investors = sorted({link.investor_id for link in ordered})
        matched = bool(investors)
        return self.model_copy(
            update={
                "live_account_ids": sorted({s.account_id for s in live}),
                "sent_account_ids": sorted({s.account_id for s in live if s.is_sent}),
                "investor_ids": investors,
                "links": [LinkedInvestor.of(link) for link in ordered],
                "digest_ready": True,
                "matched": matched,
                "matched_at": (self.matched_at or at) if matched else None,
            }
        )

    def merged_into(self, stored: Email | None) -> Email:
        """The email to write when capture hands us this one and ``stored`` is what is kept.

        Captured fields replace the stored ones, except that the first sighting time is kept and
        the denormalised fields are the stored ones (the store recomputes them right after): a
        caller can never mark mail as matched or live by passing those fields.
        """
        if stored is None:
            return self.model_copy(
                update={
                    "matched": False,
                    "matched_at": None,
                    "investor_ids": [],
                    "live_account_ids": [],
                    "corrections": [],
                    "sent_account_ids": [],
                    "links": [],
                    "digest_ready": False,
                }
            )
        keep = {name: getattr(stored, name) for name in (*DENORMALISED_FIELDS, "corrections")}
        keep["first_seen_at"] = min(stored.first_seen_at, self.first_seen_at)
        return self.model_copy(update=keep)


# The Email fields the store derives from sightings and links, never taken from a caller.
DENORMALISED_FIELDS = (
    "matched",
    "matched_at",
    "investor_ids",
    "live_account_ids",
    "sent_account_ids",
    "links",
    "digest_ready",
)


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


# How far a CRM record's store stamp (``updated_at``) may fall before a name-stamp
# (``LinkNames.at``) that missed its change: the stamp is taken before the write commits, and
# two processes' clocks differ. The digest re-reads the records changed since the oldest
# name-stamp less this.
NAMES_CLOCK_SLACK = timedelta(minutes=1)


class LinkNames(Record):
    """What the digest shows of a link's CRM records, copied from the records the matcher held
    when it made the link, taken at ``at`` (before those records were read). ``None``: the
    record was deleted or missing then. Current unless a record changed since ``at``, which
    its store-stamped ``updated_at`` tells (``docs/digest-reads.md``)."""

    at: Timestamp
    investor: str | None = None
    organization_id: RecordId | None = None
    organization: str | None = None
    organization_domains: list[str] = Field(default_factory=list)
    contact: str | None = None

    @classmethod
    def of(
        cls,
        *,
        at: datetime,
        investor: Investor | None,
        organization: Organization | None,
        contact: Contact | None,
    ) -> LinkNames:
        """The names of the (live) records; ``organization`` is the investor's."""
        live_investor = investor if investor is not None and not investor.deleted else None
        live_org = organization if organization is not None and not organization.deleted else None
        return cls(
            at=at,
            investor=live_investor.name if live_investor else None,
            organization_id=live_investor.organization_id if live_investor else None,
            organization=live_org.name if live_org else None,
            organization_domains=list(live_org.domains) if live_org else [],
            contact=contact.name if contact is not None and not contact.deleted else None,
        )


class InvestorLink(Record):
    """Why an email matched an investor: which address, in which header; and the names the
    matcher held then (``names``: None on links written before they were carried)."""

    id: RecordId
    email_id: RecordId
    investor_id: RecordId
    contact_id: RecordId | None = None
    matched_address: Address
    header: MatchHeader
    created_at: Timestamp = Field(default_factory=utcnow)
    names: LinkNames | None = None

    def with_names_from(self, given: InvestorLink) -> InvestorLink | None:
        """This stored link with the names ``given`` (the same link made again) carries, if it
        has none yet (a link written before names were carried); None: nothing to write. A link
        is otherwise create-if-absent: names already carried stay (the digest keeps them
        current)."""
        if self.names is not None or given.names is None:
            return None
        return self.model_copy(update={"names": given.names})

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


class MatchVia(StrEnum):
    """How a participant reached an investor, most specific first (``shared.domain.matching``)."""

    CONTACT = "contact"
    INVESTOR_ADDRESS = "investor_address"
    DOMAIN = "domain"


class ProposalEvidence(Record):
    """What a proposal is about, copied from its email and match when it is made, so the queue
    can be decided without opening each email: the mail's subject, sender, date and snippet,
    the mailbox whose capture proposed it, and which address (in which header, how) matched."""

    subject: str = ""
    sender: Mailbox | None = None
    date: Timestamp | None = None
    snippet: str = ""
    account_id: str = ""
    mailbox: str = ""
    matched_address: str = ""
    header: MatchHeader | None = None
    via: MatchVia | None = None


class LinkedInvestor(Record):
    """An investor link as its email carries it (``Email.links``): what the digest needs to
    name the investor and the counterpart without reading the link."""

    investor_id: RecordId
    contact_id: RecordId | None = None
    matched_address: Address
    names: LinkNames | None = None

    @classmethod
    def of(cls, link: InvestorLink) -> LinkedInvestor:
        return cls(
            investor_id=link.investor_id,
            contact_id=link.contact_id,
            matched_address=link.matched_address,
            names=link.names,
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
    # Filled when capture or the re-match job makes it; proposals made before evidence existed
    # get theirs when listed (``shared.services.proposals.with_evidence``).
    evidence: ProposalEvidence | None = None

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

    def decide(
        self,
        status: ProposalStatus,
        actor: str,
        *,
        email: Email | None,
        existing_activity: Activity | None,
        at: datetime,
    ) -> Decision:
        """Apply a human's (or the re-match job's withdrawal) decision, made at ``at``.

        Deciding the same way twice is a no-op that reports ``changed=False``; deciding
        differently once decided is a conflict naming the current state. Approval creates the
        activity, keyed by the proposal id so there can only ever be one.
        """
        if status is ProposalStatus.PROPOSED:
            # Only the re-match job reopens, and only what it withdrew: a match that went away
            # and came back is proposed again. A person's approval or rejection is never undone.
            if self.status is ProposalStatus.WITHDRAWN:
                reopened = self.model_copy(
                    update={"status": status, "decided_by": "", "decided_at": None}
                )
                return Decision(proposal=reopened, changed=True, activity=None)
            if self.status is ProposalStatus.PROPOSED:
                return Decision(proposal=self, changed=False, activity=None)
            raise self._already_decided()
        if self.status is status:
            return Decision(proposal=self, changed=False, activity=existing_activity)
        if self.status is not ProposalStatus.PROPOSED:
            raise self._already_decided()
        decided = self.model_copy(update={"status": status, "decided_by": actor, "decided_at": at})
        activity = None
        if status is ProposalStatus.APPROVED:
            activity = existing_activity or Activity(
                id=self.id,
                proposal_id=self.id,
                email_id=self.email_id,
                investor_id=self.investor_id,
                contact_id=self.contact_id,
                account_id=self.account_id,
                occurred_at=email.date if email else None,
                summary=email.subject if email else "",
                created_by=actor,
            )
        return Decision(proposal=decided, changed=True, activity=activity)

    def _already_decided(self) -> ConflictError:
        return ConflictError(
            f"proposal already {self.status.value}",
            proposal_id=self.id,
            state=self.status.value,
        )


class Activity(Record):
    """An approved activity on a contact record; its id is the proposal's, so approval is once."""

    id: RecordId
    proposal_id: RecordId
    email_id: RecordId
    investor_id: RecordId
    contact_id: RecordId | None = None
    # The mailbox whose capture proposed it (the proposal's), for the by-mailbox list.
    account_id: RecordId | None = None
    occurred_at: Timestamp | None = None
    summary: str = ""
    created_by: str
    created_at: Timestamp = Field(default_factory=utcnow)
    # A person approved it, so a later "not investor mail" keeps it, marked (the timeline
    # shows it struck through); undoing the correction clears the mark.
    corrected: bool = False
    corrected_by: str = ""
    corrected_at: Timestamp | None = None

    def marked_corrected(self, by: str, at: datetime | None) -> Activity:
        """The activity marked corrected by ``by`` at ``at``, or unmarked (``at`` None)."""
        if at is None:
            return self.model_copy(
                update={"corrected": False, "corrected_by": "", "corrected_at": None}
            )
        return self.model_copy(update={"corrected": True, "corrected_by": by, "corrected_at": at})

    @property
    def sort_key(self) -> str:
        """Newest-first listing key: when it happened (approval time for mail without a
        date), then the id."""
        return f"{time_key(self.occurred_at or self.created_at)}|{self.id}"


@dataclass(frozen=True)
class Decision:
    """Outcome of deciding a proposal: the proposal now, and whether this call changed it."""

    proposal: Proposal
    changed: bool
    activity: Activity | None = None


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

    def counted_after(self, stored: CaptureProblem | None) -> CaptureProblem:
        """The problem to keep: this (latest) reason and time, and how many attempts failed
        so far (one more than ``stored``'s)."""
        if stored is None:
            return self
        return self.model_copy(update={"attempts": stored.attempts + 1})


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


def check_capture(email: Email, sighting: Sighting, links: Iterable[InvestorLink]) -> None:
    """What ``record_capture`` writes in one transaction must all be of the one email."""
    if sighting.email_id != email.id or any(link.email_id != email.id for link in links):
        raise ValueError("record_capture: a sighting or link of another email")
