"""Capture: turning one mailbox's Gmail into stored emails, sightings, links and proposals.

The one rule everything here serves: never lose a message and never duplicate one, and say so
when behind. How:

- **Writes are idempotent and the sighting is written last.** An email is keyed by its
  Message-ID, a sighting by (mailbox, Gmail id), a link by (email, investor, contact), a
  proposal by (email, investor). A message counts as captured for a mailbox only once its
  sighting exists, and the sighting is the last write of a message (written with the email and
  its links in one transaction, ``record_capture``, after the proposals); a run that dies
  anywhere before it leaves a message that the next run simply captures again, landing on the
  same keys.
- **The cursor moves only past what is stored.** A full sync saves the ``messages.list`` page
  token after each page is stored and sets the history id (taken from the profile *before* the
  first page) only when the last page is done; a partial sync advances the history id record
  by record as pages are stored. The store keeps the history id from ever moving backwards.
- **One unreadable message never stops the rest.** It is recorded as a capture problem (shown
  in the mailbox's status) and retried at the start of later runs; the coverage check finds
  anything that still slipped through by comparing Gmail's ids with stored sightings.
- **Match-only storage.** Every new message is fetched with ``format=metadata`` (the headers
  matching needs); only matched mail gets a second fetch for its body (``raw`` when small,
  else ``full``; attachments never). Unmatched mail keeps header metadata only.
- **A decoded value is never re-read as structure.** Gmail hands metadata (and ``full``
  headers) over already decoded, so a display name may now hold CR LF ``Bcc: ...`` or a NUL.
  The Gmail adapter makes such values safe before they reach the parser and says what it did
  (``GmailMessage.header_notes``); the email carries those as header problems (counted in the
  mailbox's status). Matched mail fetched ``raw`` takes its headers from the raw bytes.
- **Snippets are text.** Gmail's snippet is HTML-escaped (``We&#39;d``); the adapter unescapes
  it once, and the email says so (``snippet_plain``), so nothing unescapes it twice.

Gmail's JSON never reaches this module: the port hands over typed messages and history records.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.addresses import canonical_address
from shared.domain.headers import has_control, one_line
from shared.domain.matching import (
    Exclusions,
    Match,
    lookup_keys,
    match_participants,
    without_corrected,
)
from shared.domain.models import (
    CaptureProblem,
    Contact,
    Email,
    EmailAccount,
    Investor,
    LinkNames,
    Mailbox,
    MatchHeader,
    Organization,
    Proposal,
    ProposalEvidence,
    ProposalStatus,
    Sighting,
    SyncState,
    SyncStatus,
    email_id_for,
    utcnow,
)
from shared.domain.parser import ParsedMessage, parse_message
from shared.errors import ConflictError, NotFoundError
from shared.ports import (
    CaptureStore,
    CrmStore,
    FetchResult,
    GmailClient,
    GmailMessage,
    HistoryChangeKind,
    HistoryExpiredError,
    MailboxStore,
    SettingsStore,
    SyncStateChange,
)

logger = logging.getLogger(__name__)

# The headers matching, threading and the panel need; Gmail returns only these with metadata.
METADATA_HEADERS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "Precedence",
    "Auto-Submitted",
    "Content-Type",
)
NOT_CAPTURED_LABELS = frozenset({"DRAFT", "CHAT"})
DELETED_LABELS = frozenset({"TRASH", "SPAM"})
# A message id that gains one of these labels, or loses DRAFT, may have just become capturable
# (a draft sent under its own id, mail moved into the inbox): the partial sync fetches it like a
# new message if it was never sighted, and the fetch checks its labels again.
BECAME_MAIL_LABELS = frozenset({"SENT", "INBOX"})
BODY_LIMIT_BYTES = 512 * 1024
# Below this Gmail size estimate the body is fetched as raw RFC 5322 (one parse, exact bytes);
# above it as ``full``, whose attachment parts come without their data.
RAW_FETCH_LIMIT_BYTES = 256 * 1024
FETCH_CHUNK = 100  # ids per get_messages call (the adapter batches 25 parts at a time)
# Messages whose writes share one commit (Store.batched): a commit is about a quarter of a
# message's CPU on SQLite; a small batch holds the write lock only some tens of milliseconds.
WRITE_BATCH = 25
# Ids a full sync ingests between looks at its deadline (a stop waits for at most one step).
STOP_STEP = 50
EXCLUSIONS_SETTING = "exclusions"
BACKFILL_DAYS_SETTING = "backfill_horizon_days"
DEFAULT_BACKFILL_DAYS = 365
COVERAGE_QUERY = "newer_than:2d -in:chats -in:drafts"
RECONCILE_EVERY = timedelta(days=7)
# A run reads at most this many of its mailbox's capture problems (the status counts up to it)
# and retries the first PROBLEMS_RETRIED of them, by Gmail id, before anything new.
PROBLEMS_READ = 1000
PROBLEMS_RETRIED = 500


@dataclass
class IngestReport:
    """What one batch of ids did: counts for the sync state and the log."""

    captured: int = 0
    matched: int = 0
    skipped: int = 0
    missing: int = 0
    failed: int = 0

    def add(self, other: IngestReport) -> None:
        for name in ("captured", "matched", "skipped", "missing", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Capture:
    """Capture for one mailbox: the store, that mailbox's Gmail, and what matching needs."""

    store: CaptureStore
    gmail: GmailClient
    account: EmailAccount
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _own: set[str] | None = None
    _exclusions: Exclusions | None = None
    _problem_ids: set[str] | None = None

    # -- context loaded once per run -------------------------------------------------------

    @property
    def own_addresses(self) -> set[str]:
        if self._own is None:
            self._own = own_canonical_addresses(self.store)
        return self._own

    @property
    def exclusions(self) -> Exclusions:
        if self._exclusions is None:
            self._exclusions = load_exclusions(self.store)
        return self._exclusions

    # -- ingest ----------------------------------------------------------------------------

    def ingest(self, gmail_ids: Sequence[str], *, retry_known: bool = False) -> IngestReport:
        """Capture these messages for this mailbox; ids it already has are skipped (unless
        ``retry_known``), so a redelivered or overlapping run does no work twice."""
        report = IngestReport()
        wanted = list(dict.fromkeys(gmail_ids))
        if not retry_known:
            known = self.store.sighted_message_ids(self.account.id, wanted)
            report.skipped += len(known)
            wanted = [gid for gid in wanted if gid not in known]
        chunks = [wanted[at : at + FETCH_CHUNK] for at in range(0, len(wanted), FETCH_CHUNK)]
        if not chunks:
            return report
        # The next chunk's metadata is fetched while this one is parsed, matched and written:
        # Gmail's quota is paced in time, so a mailbox whose fetches waited for its writes would
        # leave quota unused, most of all when several mailboxes share one interpreter.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-prefetch") as pool:
            ahead = pool.submit(self._fetch_metadata, chunks[0])
            for index, chunk in enumerate(chunks):
                fetched = ahead.result()
                if index + 1 < len(chunks):
                    ahead = pool.submit(self._fetch_metadata, chunks[index + 1])
                report.add(self._ingest_chunk(chunk, fetched))
        return report

    def _fetch_metadata(self, ids: Sequence[str]) -> FetchResult:
        return self.gmail.get_messages(ids, format="metadata", metadata_headers=METADATA_HEADERS)

    def _ingest_chunk(self, ids: Sequence[str], fetched: FetchResult) -> IngestReport:
        report = IngestReport()
        report.missing += len(fetched.missing)
        for gid in fetched.missing:  # deleted between list and get: nothing left to capture
            self._clear_problem(gid)
        for gid, reason in fetched.failed.items():
            self._problem(gid, f"metadata fetch failed: {reason}")
            report.failed += 1

        prepared: list[tuple[GmailMessage, ParsedMessage]] = []
        for gid in ids:
            message = fetched.messages.get(gid)
            if message is None:
                continue
            if NOT_CAPTURED_LABELS & set(message.label_ids):
                # Labels as of this fetch, not as of the history record that named the id: a
                # draft is never stored, whichever record made capture look at it.
                report.skipped += 1
                continue
            prepared.append((message, parse_message(message.header_block)))

        # The chunk's stored emails in one batched read: what the body fetch and the writes
        # decide on. Only an email written earlier in this chunk (a Message-ID seen twice) is
        # read again, so its second message sees the first one's write.
        email_ids = {m.id: self._email_id(m, p) for m, p in prepared}
        stored: dict[str, Email | None] = {}
        if prepared:
            stored.update(self.store.get_emails(email_ids.values()))
        written: set[str] = set()
        matches = self._match_all(prepared)
        bodies = self._fetch_bodies(prepared, matches, email_ids, stored)
        planned = [(m, p, matches.get(m.id, []), bodies.get(m.id)) for m, p in prepared]
        for at in range(0, len(planned), WRITE_BATCH):
            with self.store.batched():
                self._write_all(planned[at : at + WRITE_BATCH], email_ids, stored, written, report)
        return report

    def _write_all(
        self,
        planned: Sequence[tuple[GmailMessage, ParsedMessage, list[Match], ParsedMessage | None]],
        email_ids: dict[str, str],
        stored: dict[str, Email | None],
        written: set[str],
        report: IngestReport,
    ) -> None:
        """Each message's writes; one that fails is recorded as a problem and the rest go on.
        ``stored``: the emails as the chunk's read found them; ``written``: the ids written so
        far in the chunk (a Message-ID seen twice is read again)."""
        for message, parsed, found, body in planned:
            gid = message.id
            email_id = email_ids[gid]
            try:
                if email_id in written:
                    stored[email_id] = self.store.get_email(email_id)
                written.add(email_id)
                self._write(message, parsed, found, body, email_id, stored.get(email_id))
            except Exception as exc:
                # One message must never stop the rest; its reason is kept for the status.
                logger.exception(
                    "message capture failed",
                    extra={"fields": {"mailbox": self.account.address, "gmail_id": gid}},
                )
                self._problem(gid, f"{type(exc).__name__}: {exc}"[:500])
                report.failed += 1
                continue
            report.captured += 1
            report.matched += bool(found)

    def _match_all(
        self, prepared: Sequence[tuple[GmailMessage, ParsedMessage]]
    ) -> dict[str, list[Match]]:
        """Match a chunk of messages with one round of store look-ups for all of them."""
        candidates = {m.id: participants(p) for m, p in prepared if not p.is_bulk}
        return match_many(self.store, candidates, self.own_addresses, self.exclusions)

    def _fetch_bodies(
        self,
        prepared: Sequence[tuple[GmailMessage, ParsedMessage]],
        matches: dict[str, list[Match]],
        email_ids: dict[str, str],
        stored_emails: dict[str, Email | None],
    ) -> dict[str, ParsedMessage]:
        """Second fetch, for matched mail only, and only when no mailbox stored its body yet."""
        small: list[str] = []
        large: list[str] = []
        for message, _ in prepared:
            gid = message.id
            if gid not in matches:
                continue
            stored = stored_emails.get(email_ids[gid])
            if stored is not None and stored.matched and (stored.body or stored.snippet):
                continue
            if not without_corrected(matches[gid], stored):
                continue  # every match corrected away: it will not be stored as matched
            (small if message.size_estimate <= RAW_FETCH_LIMIT_BYTES else large).append(gid)
        bodies, failed = fetch_bodies(self.gmail, small, large)
        for gid, reason in failed.items():
            # Kept without its body for now: the metadata is stored and the body retried.
            self._problem(gid, f"body fetch failed: {reason}")
        return bodies

    def _email_id(self, message: GmailMessage, parsed: ParsedMessage) -> str:
        return email_id_for(
            parsed.message_id,
            from_address=parsed.sender.address if parsed.sender else "",
            date=message.header("Date"),
            subject=parsed.subject,
            body_sha256=hashlib.sha256(message.snippet_escaped.encode()).hexdigest(),
        )

    def _write(
        self,
        message: GmailMessage,
        parsed: ParsedMessage,
        found: list[Match],
        body: ParsedMessage | None,
        email_id: str,
        stored: Email | None,
    ) -> None:
        """The writes of one message, sighting last (see the module docstring). ``stored``:
        the email as the chunk's read found it."""
        # With the raw message in hand, its own headers are the better source: Gmail's metadata
        # values come decoded, which can split an encoded display name holding a comma. The
        # ``full`` format's headers are decoded values too: the adapter made them safe.
        from_body = body is not None and bool(body.from_)
        headers = body if body is not None and from_body else parsed
        notes = decoded_header_notes(message, read_from_raw=from_body)
        email = build_email(email_id, message, headers, notes=notes)
        # An admin's "not investor mail" holds in every mailbox that sees the email.
        found = without_corrected(found, stored)
        snippet = message.snippet
        if found:
            if body is not None:
                email = with_body(email, snippet, body)
            elif stored is not None and (stored.body or stored.snippet):
                email = email.model_copy(update=_stored_text(stored))
            else:
                email = email.model_copy(update={"snippet": snippet})
        elif stored is not None and stored.matched:
            # Matched through another mailbox's view (or a re-match): keep what it stored.
            email = email.model_copy(update=_stored_text(stored))
        labels = list(message.label_ids)
        sighting = Sighting.new(
            self.account.id,
            message.id,
            email.id,
            thread_id=message.thread_id,
            label_ids=labels,
            is_sent="SENT" in labels,
            internal_date=message.internal_date,
            deleted=bool(DELETED_LABELS & set(labels)),
        )
        if found:
            # Before the email: the capture below is the message's last write (the sighting),
            # so a run stopped in between proposes again, on the same keys.
            propose(
                self.store,
                email.id,
                email,
                found,
                account=self.account,
                account_id=self.account.id,
                actor="capture",
            )
        # Additive only: another mailbox's run must never undo links; unlinking is the
        # re-match job's, which looks at the email as a whole.
        self.store.record_capture(email, sighting, [m.to_link(email.id) for m in found])
        if email.header_problems and (stored is None or not stored.header_problems):
            # Counted once per email, by the mailbox that stored it first with its problem.
            logger.warning(
                "header problem: a decoded header held control characters",
                extra={
                    "fields": {
                        "event": "header_problem",
                        "mailbox": self.account.address,
                        "gmail_id": message.id,
                        "problems": len(email.header_problems),
                    }
                },
            )
            self.store.update_sync_state(self.account.id, SyncStateChange(header_problems_added=1))
        self._clear_problem(message.id)

    @property
    def problem_ids(self) -> set[str]:
        """The mailbox's recorded problems, read once per run and then kept up to date here
        (clearing is then only a write for messages that had one, not for every captured
        message, and the run's end counts them without reading them again)."""
        if self._problem_ids is None:
            problems = self.store.list_capture_problems(self.account.id, limit=PROBLEMS_READ)
            self._problem_ids = {p.gmail_message_id for p in problems}
        return self._problem_ids

    def _problem(self, gmail_id: str, reason: str) -> None:
        self.store.record_capture_problem(CaptureProblem.new(self.account.id, gmail_id, reason))
        self.problem_ids.add(gmail_id)

    def _clear_problem(self, gmail_id: str) -> None:
        if gmail_id in self.problem_ids:
            self.store.clear_capture_problem(self.account.id, gmail_id)
            self.problem_ids.discard(gmail_id)


def _stored_text(stored: Email) -> dict[str, Any]:
    """The text fields of a stored email, to keep when this capture brings none of its own."""
    return {
        "snippet": stored.snippet,
        "snippet_plain": stored.snippet_plain,
        "body": stored.body,
        "body_truncated": stored.body_truncated,
    }


def match_many(
    store: CrmStore,
    participant_lists: dict[str, list[tuple[MatchHeader, Mailbox]]],
    own_addresses: set[str],
    exclusions: Exclusions,
) -> dict[str, list[Match]]:
    """Match many messages with one round of store look-ups for all of them (only keys with
    at least one match are returned)."""
    if not participant_lists:
        return {}
    # Before the look-ups: a CRM change they miss commits later, so its store stamp is later.
    names_at = utcnow()
    addresses: set[str] = set()
    domains: set[str] = set()
    for found in participant_lists.values():
        found_addresses, found_domains = lookup_keys(found, own_addresses)
        addresses.update(found_addresses)
        domains.update(found_domains)
    contacts = store.find_contacts_by_addresses(addresses)
    organizations = store.find_organizations_by_domains(domains)
    investors = {i.id: i for i in store.find_investors_by_addresses(addresses)}
    investors.update({i.id: i for i in store.find_investors_by_domains(domains)})
    investors.update(
        {i.id: i for i in store.find_investors_by_organizations(o.id for o in organizations)}
    )
    for contact in contacts:
        if contact.investor_id and contact.investor_id not in investors:
            investor = store.get_investor(contact.investor_id)
            if investor is not None:
                investors[investor.id] = investor
    result: dict[str, list[Match]] = {}
    for key, found in participant_lists.items():
        matched = match_participants(
            found,
            contacts=contacts,
            investors=list(investors.values()),
            organizations=organizations,
            own_addresses=own_addresses,
            exclusions=exclusions,
            is_bulk=False,
        )
        if matched:
            result[key] = matched
    return _with_names(store, result, names_at, investors, contacts, organizations)


def _with_names(
    store: CrmStore,
    found: dict[str, list[Match]],
    at: datetime,
    investors: dict[str, Investor],
    contacts: Sequence[Contact],
    organizations: Sequence[Organization],
) -> dict[str, list[Match]]:
    """The matches carrying the names of the records the look-ups found (``LinkNames``), for
    the digest. The one extra read: the organisation of a matched investor that no
    participant's domain found (a contact at a public or other domain), once per chunk."""
    orgs: dict[str, Organization | None] = {o.id: o for o in organizations}
    people = {c.id: c for c in contacts}
    for matches in found.values():
        for match in matches:
            org_id = investors[match.investor_id].organization_id
            if org_id and org_id not in orgs:
                orgs[org_id] = store.get_organization(org_id)
    named: dict[str, list[Match]] = {}
    for key, matches in found.items():
        named[key] = []
        for match in matches:
            investor = investors[match.investor_id]
            names = LinkNames.of(
                at=at,
                investor=investor,
                organization=orgs.get(investor.organization_id or ""),
                contact=people.get(match.contact_id or ""),
            )
            named[key].append(replace(match, names=names))
    return named


def fetch_bodies(
    gmail: GmailClient, small: Sequence[str], large: Sequence[str] = ()
) -> tuple[dict[str, ParsedMessage], dict[str, str]]:
    """Bodies of matched mail: ``raw`` for small messages, ``full`` (no attachment data) for
    large ones. Returns the parsed messages and the ids that failed, with reasons."""
    bodies: dict[str, ParsedMessage] = {}
    failed: dict[str, str] = {}
    for ids, fmt in ((small, "raw"), (large, "full")):
        if not ids:
            continue
        fetched = gmail.get_messages(ids, format=fmt)
        for gid, message in fetched.messages.items():
            bodies[gid] = parse_message(message.mime)
        failed.update(fetched.failed)
    return bodies, failed


def with_body(email: Email, snippet: str, body: ParsedMessage) -> Email:
    """The email with its body text, truncated at 512 KiB (UTF-8) and flagged if it was."""
    text = body.body_text
    encoded = text.encode("utf-8")
    truncated = len(encoded) > BODY_LIMIT_BYTES
    if truncated:
        text = encoded[:BODY_LIMIT_BYTES].decode("utf-8", "ignore")
    return email.model_copy(
        update={
            "snippet": snippet,
            "snippet_plain": True,
            "body": text,
            "body_truncated": truncated,
        }
    )


def load_exclusions(store: SettingsStore) -> Exclusions:
    return Exclusions.parse(store.get_setting(EXCLUSIONS_SETTING) or [])


def own_canonical_addresses(store: MailboxStore) -> set[str]:
    return {canonical_address(a) for a in store.own_addresses()}


# -- pure helpers --------------------------------------------------------------------------------


def decoded_header_notes(message: GmailMessage, *, read_from_raw: bool = False) -> list[str]:
    """The problems of a message's metadata header values (the adapter's notes); with
    ``read_from_raw``, noted as such (the headers were taken from the raw message instead)."""
    if not read_from_raw:
        return list(message.header_notes)
    return [
        f"{name}: held control characters once decoded; read from the raw message"
        for name in message.control_header_names
    ]


def participants(parsed: ParsedMessage) -> list[tuple[MatchHeader, Mailbox]]:
    return (
        [(MatchHeader.FROM, m) for m in parsed.from_]
        + [(MatchHeader.REPLY_TO, m) for m in parsed.reply_to]
        + [(MatchHeader.TO, m) for m in parsed.to]
        + [(MatchHeader.CC, m) for m in parsed.cc]
        + [(MatchHeader.BCC, m) for m in parsed.bcc]
    )


def email_participants(email: Email) -> list[tuple[MatchHeader, Mailbox]]:
    """The stored email's participants with their headers (the re-match job's input)."""
    return (
        ([(MatchHeader.FROM, email.sender)] if email.sender else [])
        + [(MatchHeader.REPLY_TO, m) for m in email.reply_to]
        + [(MatchHeader.TO, m) for m in email.to]
        + [(MatchHeader.CC, m) for m in email.cc]
        + [(MatchHeader.BCC, m) for m in email.bcc]
    )


def build_email(
    email_id: str,
    message: GmailMessage,
    parsed: ParsedMessage,
    *,
    notes: Sequence[str] = (),
) -> Email:
    """The email's header record (no body): what every captured message keeps. ``notes``: the
    problems found in the decoded values it was parsed from. No stored name or subject holds
    a control character (a raw message's encoded words may decode to some): they are made one
    line here and noted."""
    written = set(parsed.participant_addresses)
    # Canonical forms too, so a re-match by a contact's (canonical) address finds the mail.
    searchable = sorted(written | {canonical_address(a) for a in written})
    problems = list(notes)

    def flat(header: str, mailboxes: Sequence[Mailbox]) -> list[Mailbox]:
        kept = []
        for mailbox in mailboxes:
            if has_control(mailbox.name):
                mailbox = mailbox.model_copy(update={"name": one_line(mailbox.name)})
                note = f"{header}: a display name held control characters; made one line"
                if note not in problems:
                    problems.append(note)
            kept.append(mailbox)
        return kept

    senders = flat("From", parsed.from_)
    subject = parsed.subject
    if has_control(subject):
        subject = one_line(subject)
        problems.append("Subject: held control characters; flattened to one line")
    return Email(
        id=email_id,
        message_id=parsed.message_id or "",
        in_reply_to=parsed.in_reply_to or "",
        references=list(parsed.references),
        subject=subject,
        sender=senders[0] if senders else None,
        reply_to=flat("Reply-To", parsed.reply_to),
        to=flat("To", parsed.to),
        cc=flat("Cc", parsed.cc),
        bcc=flat("Bcc", parsed.bcc),
        date=parsed.date or message.internal_date,
        size=message.size_estimate,
        participant_addresses=searchable,
        participant_domains=list(parsed.participant_domains),
        is_bulk=parsed.is_bulk,
        header_problems=list(dict.fromkeys(problems)),
        snippet_plain=True,
    )


def apply_matches(
    store: CaptureStore,
    email_id: str,
    found: Iterable[Match],
    *,
    account_id: str | None,
    actor: str,
    unlink: bool = True,
) -> tuple[int, int]:
    """Make the email's links and open proposals equal to ``found``: link and propose what is
    new, unlink what no longer matches and withdraw its open proposal. Returns (linked, unlinked).

    Every write is idempotent, so capture, a redelivery and the re-match job can all call it.
    Pairs an admin corrected ("not investor mail") are neither linked nor proposed. A new
    proposal carries its evidence (``proposal_evidence``), from the email as stored.
    """
    found = list(found)
    email = store.get_email(email_id) if found else None  # most captured mail matches nothing
    found = without_corrected(found, email)
    wanted = {m.investor_id for m in found}
    for match in found:
        store.link_email_to_investor(match.to_link(email_id))
    account = store.get_email_account(account_id) if found and account_id else None
    propose(store, email_id, email, found, account=account, account_id=account_id, actor=actor)
    unlinked = 0
    stale = {link.investor_id for link in store.list_links(email_id)} - wanted if unlink else set()
    for investor_id in sorted(stale):
        unlinked += store.unlink_email_from_investor(email_id, investor_id)
        proposal = Proposal.new(email_id, investor_id)
        if store.get_proposal(proposal.id) is not None:
            # Already approved or rejected by a person: their decision stands.
            with contextlib.suppress(ConflictError):
                store.decide_proposal(proposal.id, ProposalStatus.WITHDRAWN, actor)
    return len(wanted), unlinked


def propose(
    store: CaptureStore,
    email_id: str,
    email: Email | None,
    found: Iterable[Match],
    *,
    account: EmailAccount | None,
    account_id: str | None,
    actor: str,
) -> None:
    """Open a proposal for each match, carrying its evidence from ``email``; idempotent. A
    proposal withdrawn earlier is opened again, unless an admin's correction withdrew it."""
    for match in found:
        proposal = Proposal.new(
            email_id,
            match.investor_id,
            contact_id=match.contact_id,
            account_id=account_id,
            evidence=proposal_evidence(email, match, account),
        )
        if not store.create_proposal(proposal):
            existing = store.get_proposal(proposal.id)
            if existing is not None and existing.status is ProposalStatus.WITHDRAWN:
                # A correction may have landed since the email was read (its link was then
                # refused by the store): a corrected pair's proposal stays withdrawn.
                current = store.get_email(email_id)
                if current is not None and match.investor_id in current.corrected_investor_ids:
                    continue
                store.decide_proposal(proposal.id, ProposalStatus.PROPOSED, actor)


def proposal_evidence(
    email: Email | None, match: Match, account: EmailAccount | None
) -> ProposalEvidence:
    """What a person deciding the proposal needs to see: the mail, the mailbox, the match."""
    return ProposalEvidence(
        subject=email.subject if email else "",
        sender=email.sender if email else None,
        date=email.date if email else None,
        snippet=email.snippet if email else "",
        account_id=account.id if account else "",
        mailbox=account.address if account else "",
        matched_address=match.matched_address,
        header=match.header,
        via=match.via,
    )


# -- sync runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """How a run ended: done, or stopped at its deadline and wanting a continuation."""

    mode: str
    report: IngestReport
    finished: bool
    coverage_gap: int = 0
    # The mailbox's capture problems left at the end of the run (at most PROBLEMS_READ).
    problems: int = 0


def backfill_query(store: SettingsStore, now: datetime) -> str:
    days = int(store.get_setting(BACKFILL_DAYS_SETTING) or DEFAULT_BACKFILL_DAYS)
    after = int((now - timedelta(days=days)).timestamp())
    return f"after:{after} -in:chats -in:drafts"


def run_capture(
    capture: Capture,
    *,
    deadline: float,
    coverage: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """One bounded run: retry known problems, then a full sync (first run, or after history
    expired) or a partial sync, then optionally the coverage check."""
    store, account = capture.store, capture.account
    report = IngestReport()
    retried = sorted(capture.problem_ids)[:PROBLEMS_RETRIED]
    if retried:
        report.add(capture.ingest(retried, retry_known=True))
    state = account.sync
    if not state.backfill_done or state.history_id == 0:
        mode, finished = "full", _full_sync(capture, state, report, deadline, clock)
    else:
        try:
            mode, finished = "partial", _partial_sync(capture, state, report, deadline, clock)
        except HistoryExpiredError:
            logger.warning(
                "history expired; falling back to a full sync",
                extra={"fields": {"mailbox": account.address, "event": "history_expired"}},
            )
            store.update_sync_state(
                account.id,
                SyncStateChange(
                    reset_history=True,
                    history_id=0,
                    backfill_done=False,
                    backfill_page_token="",
                    backfill_history_id=0,
                ),
            )
            fresh = store.get_email_account(account.id)
            if fresh is None:
                raise NotFoundError("mailbox gone during its sync", account_id=account.id) from None
            mode, finished = "full", _full_sync(capture, fresh.sync, report, deadline, clock)
    gap = 0
    if finished and coverage:
        gap = check_coverage(capture, report)
    problems = min(len(capture.problem_ids), PROBLEMS_READ)
    return RunResult(
        mode=mode, report=report, finished=finished, coverage_gap=gap, problems=problems
    )


def _full_sync(
    capture: Capture,
    state: SyncState,
    report: IngestReport,
    deadline: float,
    clock: Callable[[], float],
) -> bool:
    store, gmail, account = capture.store, capture.gmail, capture.account
    if not state.backfill_page_token:
        # The cursor for afterwards is read *before* the first page: whatever arrives while
        # the backfill runs is then replayed by the partial sync, never skipped.
        profile = gmail.get_profile()
        state = store.update_sync_state(
            account.id,
            SyncStateChange(
                backfill_history_id=profile.history_id,
                messages_total=profile.messages_total,
                messages_done=0 if state.backfill_history_id == 0 else None,
                status=SyncStatus.SYNCING,
            ),
        )
    query = backfill_query(store, capture.now())
    token = state.backfill_page_token
    done = state.messages_done
    while True:
        page = gmail.list_message_ids(query=query, page_token=token)
        # A page (up to 500 ids) is ingested a step at a time, and the deadline is looked at
        # between steps: a run asked to stop (its deadline, or the one-machine server's
        # SIGTERM) ends within one step. The checkpoint then stays at this page; the next run
        # lists it again and skips what this one stored.
        for start in range(0, len(page.ids), STOP_STEP):
            report.add(capture.ingest(page.ids[start : start + STOP_STEP]))
            if clock() >= deadline and start + STOP_STEP < len(page.ids):
                return False
        done += len(page.ids)
        token = page.next_page_token
        if not token:
            store.update_sync_state(
                account.id,
                SyncStateChange(
                    history_id=state.backfill_history_id,
                    backfill_done=True,
                    backfill_page_token="",
                    messages_done=done,
                ),
            )
            _log_progress(account, done, state.messages_total, "full sync done")
            return True
        store.update_sync_state(
            account.id, SyncStateChange(backfill_page_token=token, messages_done=done)
        )
        _log_progress(account, done, state.messages_total, "full sync progress")
        if clock() >= deadline:
            return False


def _partial_sync(
    capture: Capture,
    state: SyncState,
    report: IngestReport,
    deadline: float,
    clock: Callable[[], float],
) -> bool:
    store, gmail, account = capture.store, capture.gmail, capture.account
    token = ""
    while True:
        page = gmail.list_history(start_history_id=state.history_id, page_token=token)
        added: list[str] = []
        restore: list[str] = []
        soft_delete: list[str] = []
        for record in page.records:
            for change in record.changes:
                labels = set(change.label_ids)
                if change.kind is HistoryChangeKind.MESSAGE_ADDED:
                    # Mail that arrives straight in TRASH or SPAM is not captured, as the
                    # backfill (which lists neither) would not: it is when it leaves them.
                    if not (NOT_CAPTURED_LABELS | DELETED_LABELS) & labels:
                        added.append(change.message_id)
                elif change.kind is HistoryChangeKind.MESSAGE_DELETED:
                    soft_delete.append(change.message_id)
                elif change.kind is HistoryChangeKind.LABELS_ADDED:
                    if DELETED_LABELS & labels:
                        soft_delete.append(change.message_id)
                    if BECAME_MAIL_LABELS & labels:
                        added.append(change.message_id)
                else:
                    if DELETED_LABELS & labels:
                        restore.append(change.message_id)
                    if "DRAFT" in labels:
                        # A draft sent under its own message id (Gmail's other shape of a send
                        # is a new id in messagesAdded, above).
                        added.append(change.message_id)
        # Ids already sighted are skipped without a fetch; the rest are fetched and their
        # labels checked then, so an auto-saved draft (a new id per save) stores nothing.
        report.add(capture.ingest(added))
        for gid in soft_delete:
            store.set_sighting_deleted(account.id, gid, True)
        for gid in restore:
            # Mail moved back out of TRASH/SPAM: restore its sighting, or capture it if it
            # was never seen (the backfill lists no trash or spam).
            if not store.set_sighting_deleted(account.id, gid, False):
                report.add(capture.ingest([gid]))
            else:
                fresh = gmail.get_messages([gid], format="minimal")
                if gid in fresh.messages and DELETED_LABELS & set(fresh.messages[gid].label_ids):
                    store.set_sighting_deleted(account.id, gid, True)
        token = page.next_page_token
        if not token:
            store.update_sync_state(account.id, SyncStateChange(history_id=page.history_id))
            return True
        if page.records:
            last = max(r.id for r in page.records)
            store.update_sync_state(account.id, SyncStateChange(history_id=last))
        if clock() >= deadline:
            return False


def check_coverage(capture: Capture, report: IngestReport) -> int:
    """Compare Gmail's ids (last 48 hours; everything in the horizon weekly) with stored
    sightings, capture what is missing and return how many were missing. Ids, not counts:
    Gmail's counts are estimates."""
    store, gmail, account = capture.store, capture.gmail, capture.account
    now = capture.now()
    weekly = account.sync.last_reconciled_at is None or (
        now - account.sync.last_reconciled_at >= RECONCILE_EVERY
    )
    query = backfill_query(store, now) if weekly else COVERAGE_QUERY
    ids: list[str] = []
    token = ""
    while True:
        page = gmail.list_message_ids(query=query, page_token=token)
        ids.extend(page.ids)
        token = page.next_page_token
        if not token:
            break
    missing = sorted(set(ids) - store.sighted_message_ids(account.id, ids))
    if missing:
        logger.warning(
            "coverage gap: Gmail has messages capture did not store",
            extra={"fields": {"mailbox": account.address, "missing": len(missing), "event": "gap"}},
        )
        report.add(capture.ingest(missing))
    store.update_sync_state(
        account.id,
        SyncStateChange(coverage_gap=len(missing), last_reconciled_at=now if weekly else None),
    )
    return len(missing)


def _log_progress(account: EmailAccount, done: int, total: int, message: str) -> None:
    logger.info(
        message,
        extra={
            "fields": {
                "mailbox": account.address,
                "messages_done": done,
                "messages_total": total,
                "event": "sync_progress",
            }
        },
    )
