"""Operator repairs of email rows stored before a capture fix (``python -m shared.cli repair-*``).

Two faults left wrong rows behind, and the re-match job reads rows as they are stored, so only a
repair makes them right:

- **Participants** (``repair_participants``): capture once re-read Gmail's decoded metadata values
  as address lists, so a display name holding CR LF ``Bcc: evil@y`` or a NUL could invent a
  sender or recipients and lose a contact's match. Emails whose stored header text holds control
  characters, or that carry a header problem (``Email.header_problems``), have their metadata
  fetched again through a mailbox that holds them, their header fields rewritten as capture
  writes them now, and are re-matched (links and proposals made or withdrawn, ``apply_matches``);
  mail that matches is re-parsed from its raw bytes, with its body. Rows the old parse got
  wrong without leaving a control character behind (a CR LF was stored as a space) cannot be
  told apart from good ones: ``everything=True`` re-fetches every email with a mailbox.
- **Digest fields** (``repair_digest_fields``): emails stored before the digest's denormalised
  fields existed (``Email.digest_ready`` false) get them recomputed from their sightings and
  links (``Store.update_email``), and links written before names were carried get their
  ``LinkNames`` (``Store.link_email_to_investor`` fills them in); not a fault (the digest reads
  the sources of such an email, and the records of such a link), but until then it reads more.
- **Snippets** (``repair_snippets``): Gmail's snippet is HTML-escaped (``We&#39;d``) and was
  stored as is. Each row not yet marked ``snippet_plain`` is unescaped once and marked, in one
  transaction (``Store.update_email``), so no row is ever unescaped twice; the store rebuilds the
  row's search words as it writes (FTS rows on SQLite, ``search_words`` on Firestore).

Both scan every email by id a page at a time (``Store.list_emails``: no filter, so no composite
index) and keep their cursor and counts on a guard record after each page: a run that stops (a
crash, ``max_pages``) is continued by the next, and a run after the end does nothing unless
asked to ``restart``, which is harmless too (marked rows are skipped; a header repair writes the
same fields again).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.headers import has_control
from shared.domain.matching import without_corrected
from shared.domain.models import (
    Contact,
    Email,
    EmailAccount,
    Guard,
    Investor,
    InvestorLink,
    LinkNames,
    Mailbox,
    Organization,
    utcnow,
)
from shared.domain.parser import parse_message
from shared.ports import CaptureStore, CrmStore, GmailClient, GmailMessage, SettingsStore
from shared.services.capture import (
    METADATA_HEADERS,
    RAW_FETCH_LIMIT_BYTES,
    apply_matches,
    build_email,
    decoded_header_notes,
    email_participants,
    fetch_bodies,
    load_exclusions,
    match_many,
    own_canonical_addresses,
    with_body,
)

PARTICIPANTS_GUARD = "repair:participants"
# ``everything`` keeps its own progress: a finished default run does not stop a full one.
PARTICIPANTS_ALL_GUARD = "repair:participants:all"
SNIPPETS_GUARD = "repair:snippets"
PAGE_SIZE = 200
ACTOR = "repair"

# The header fields a participants repair rewrites (the rest of the row is kept as stored).
HEADER_FIELDS = (
    "subject",
    "sender",
    "reply_to",
    "to",
    "cc",
    "bcc",
    "participant_addresses",
    "participant_domains",
    "is_bulk",
    "header_problems",
)
TEXT_FIELDS = ("snippet", "snippet_plain", "body", "body_truncated")


@dataclass
class RepairRun:
    """What one run did (``run``) and the repair's totals so far (``total``); ``state`` is
    ``done``, ``continues`` (stopped after ``max_pages``: run it again) or ``already done``."""

    name: str
    state: str
    run: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the operator."""
        counts = ", ".join(f"{key} {value}" for key, value in self.run.items())
        totals = ", ".join(f"{key} {value}" for key, value in self.total.items())
        return f"{self.name}: {self.state}; this run: {counts or 'nothing'}; in all: {totals}"


# -- progress on a guard ---------------------------------------------------------------------------


def _begin(store: SettingsStore, guard_id: str, counts: Sequence[str], restart: bool) -> Guard:
    """The repair's guard, created on its first run; a finished one is reset on ``restart``."""
    store.create_guard(
        Guard(
            id=guard_id,
            owner=ACTOR,
            state="running",
            data={"cursor": "", **dict.fromkeys(counts, 0)},
        )
    )
    if restart:

        def reset(guard: Guard) -> Guard:
            data = {"cursor": "", **dict.fromkeys(counts, 0)}
            return guard.model_copy(
                update={"state": "running", "data": data, "updated_at": utcnow()}
            )

        store.update_guard(guard_id, reset)
    guard = store.get_guard(guard_id)
    if guard is None:  # pragma: no cover - created just above
        raise RuntimeError(f"repair guard {guard_id} vanished")
    return guard


def _save(store: SettingsStore, guard_id: str, state: str, data: dict[str, Any]) -> None:
    def change(guard: Guard) -> Guard:
        return guard.model_copy(update={"state": state, "data": dict(data), "updated_at": utcnow()})

    store.update_guard(guard_id, change)


def _scan(
    store: CaptureStore,
    name: str,
    guard_id: str,
    counts: Sequence[str],
    repair_page: Callable[[list[Email], dict[str, int]], None],
    *,
    page_size: int,
    max_pages: int | None,
    restart: bool,
) -> RepairRun:
    """Page through every email from the saved cursor, ``repair_page`` each page, save the
    cursor and counts after each one."""
    guard = _begin(store, guard_id, counts, restart)
    data = dict(guard.data)
    total = {key: int(data.get(key, 0)) for key in counts}
    if guard.state == "done":
        return RepairRun(name, "already done", {}, total)
    run = dict.fromkeys(counts, 0)
    pages = 0
    while max_pages is None or pages < max_pages:
        emails = store.list_emails(limit=page_size, after_id=str(data.get("cursor", "")))
        if not emails:
            _save(store, guard_id, "done", data)
            return RepairRun(name, "done", run, {key: int(data[key]) for key in counts})
        step = dict.fromkeys(counts, 0)
        step["examined"] = len(emails)
        repair_page(emails, step)
        for key in counts:
            run[key] += step[key]
            data[key] = int(data.get(key, 0)) + step[key]
        data["cursor"] = emails[-1].id
        _save(store, guard_id, "running", data)
        pages += 1
    return RepairRun(name, "continues", run, {key: int(data[key]) for key in counts})


# -- snippets ------------------------------------------------------------------------------------

SNIPPET_COUNTS = ("examined", "unescaped", "marked")


def unescaped_snippet(email: Email) -> Email | None:
    """The email with its snippet unescaped and marked; None if it already is (never twice)."""
    if email.snippet_plain:
        return None
    return email.model_copy(update={"snippet": html.unescape(email.snippet), "snippet_plain": True})


class _SnippetChange:
    """``unescaped_snippet`` for ``update_email``, remembering the snippet it unescaped (the
    last attempt's, as a transaction may run it again)."""

    def __init__(self) -> None:
        self.before: str | None = None

    def __call__(self, stored: Email) -> Email | None:
        changed = unescaped_snippet(stored)
        self.before = stored.snippet if changed is not None else None
        return changed


def repair_snippets(
    store: CaptureStore,
    *,
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
    restart: bool = False,
) -> RepairRun:
    """Unescape every stored snippet not yet marked plain (see the module docstring)."""

    def repair_page(emails: list[Email], step: dict[str, int]) -> None:
        for email in emails:
            if email.snippet_plain:
                continue
            change = _SnippetChange()
            after = store.update_email(email.id, change)
            if after is None or change.before is None:
                continue  # gone meanwhile, or marked by someone else first
            step["marked"] += 1
            step["unescaped"] += int(after.snippet != change.before)

    return _scan(
        store,
        "repair-snippets",
        SNIPPETS_GUARD,
        SNIPPET_COUNTS,
        repair_page,
        page_size=page_size,
        max_pages=max_pages,
        restart=restart,
    )


# -- the digest's fields ---------------------------------------------------------------------------

# ":names": the guard of the run that also gives links their names (``LinkNames``); a run
# finished before names were carried kept its own guard, so it does not stop this one.
DIGEST_FIELDS_GUARD = "repair:digest-fields:names"
DIGEST_FIELD_COUNTS = ("examined", "recomputed", "named")


class _Recompute:
    """For ``update_email``: the stored email as is, so the store recomputes its derived fields
    from its sightings and links; None (no write) once they are there. Remembers whether the
    last attempt (the one a transaction committed) asked for the write."""

    def __init__(self) -> None:
        self.wrote = False

    def __call__(self, stored: Email) -> Email | None:
        self.wrote = not stored.digest_ready
        return stored if self.wrote else None


class _NamesNow:
    """The CRM records named by links, each read once per page, and the time taken before
    the first read (the names' ``at``: a change the reads miss is stamped later)."""

    def __init__(self, store: CrmStore) -> None:
        self.store = store
        self.at = utcnow()
        self._investors: dict[str, Investor | None] = {}
        self._organizations: dict[str, Organization | None] = {}
        self._contacts: dict[str, Contact | None] = {}

    def of(self, link: InvestorLink) -> LinkNames:
        if link.investor_id not in self._investors:
            self._investors[link.investor_id] = self.store.get_investor(link.investor_id)
        investor = self._investors[link.investor_id]
        org_id = investor.organization_id if investor is not None else None
        if org_id and org_id not in self._organizations:
            self._organizations[org_id] = self.store.get_organization(org_id)
        if link.contact_id and link.contact_id not in self._contacts:
            self._contacts[link.contact_id] = self.store.get_contact(link.contact_id)
        return LinkNames.of(
            at=self.at,
            investor=investor,
            organization=self._organizations.get(org_id or ""),
            contact=self._contacts.get(link.contact_id or ""),
        )


def repair_digest_fields(
    store: CaptureStore,
    *,
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
    restart: bool = False,
) -> RepairRun:
    """Give emails stored before ``Email.digest_ready`` existed the digest's fields
    (``sent_account_ids``, ``links``), recomputed by the store in one transaction with their
    other derived fields, so the digest stops reading their sightings and links; and give
    links written before names were carried their names (``LinkNames``, from the CRM records
    as they are now), so the digest stops reading those records one by one. The digest is the
    same before and after: it reads those sources for an email or link that lacks them."""

    def repair_page(emails: list[Email], step: dict[str, int]) -> None:
        names = _NamesNow(store)
        for email in emails:
            if not email.digest_ready:
                change = _Recompute()
                store.update_email(email.id, change)
                step["recomputed"] += int(change.wrote)
            if email.investor_ids and (
                not email.digest_ready or any(ln.names is None for ln in email.links)
            ):
                for link in store.list_links(email.id):
                    if link.names is None:
                        # Made again with its names: the store fills them in, and the email's
                        # copy of its links with them, in one transaction.
                        named = link.model_copy(update={"names": names.of(link)})
                        store.link_email_to_investor(named)
                        step["named"] += 1

    return _scan(
        store,
        "repair-digest-fields",
        DIGEST_FIELDS_GUARD,
        DIGEST_FIELD_COUNTS,
        repair_page,
        page_size=page_size,
        max_pages=max_pages,
        restart=restart,
    )


# -- participants --------------------------------------------------------------------------------

PARTICIPANT_COUNTS = (
    "examined",
    "refetched",
    "repaired",
    "unreachable",
    "linked",
    "unlinked",
)


def _mailboxes(email: Email) -> list[Mailbox]:
    return [
        *([email.sender] if email.sender else []),
        *email.reply_to,
        *email.to,
        *email.cc,
        *email.bcc,
    ]


def needs_participant_repair(email: Email) -> bool:
    """Whether the stored headers show the old fault: control characters in the header text,
    or a header problem recorded at capture."""
    if email.header_problems or has_control(email.subject):
        return True
    return any(has_control(m.name) or has_control(m.address) for m in _mailboxes(email))


def _holder(store: CaptureStore, email: Email) -> tuple[EmailAccount, str] | None:
    """A mailbox that holds the email (a live sighting first) and its Gmail id there."""
    sightings = sorted(store.list_sightings(email.id), key=lambda s: (s.deleted, s.account_id))
    for sighting in sightings:
        account = store.get_email_account(sighting.account_id)
        if account is not None and not account.deleted:
            return account, sighting.gmail_message_id
    return None


def _headers_of(email: Email) -> dict[str, Any]:
    return {name: getattr(email, name) for name in HEADER_FIELDS}


def repair_participants(
    store: CaptureStore,
    *,
    gmail_for: Callable[[str], GmailClient],
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
    restart: bool = False,
    everything: bool = False,
) -> RepairRun:
    """Re-fetch, rewrite and re-match the emails whose stored participants may be invented
    (every email with a mailbox when ``everything``; see the module docstring)."""
    own = own_canonical_addresses(store)
    exclusions = load_exclusions(store)

    def matches_of(email: Email) -> list[Any]:
        if email.is_bulk:
            return []
        found = match_many(store, {email.id: email_participants(email)}, own, exclusions)
        return found.get(email.id, [])

    def repair_one(
        email: Email, message: GmailMessage, account: EmailAccount, step: dict[str, int]
    ) -> None:
        gid = message.id
        fresh = build_email(
            email.id,
            message,
            parse_message(message.header_block),
            notes=decoded_header_notes(message),
        )
        found = without_corrected(matches_of(fresh), email)
        update = _headers_of(fresh)
        if found:
            # Matched mail: its headers from its own raw bytes (structure parsed before any
            # encoded word is decoded), and its body, as capture does.
            small = [gid] if fresh.size <= RAW_FETCH_LIMIT_BYTES else []
            bodies, _ = fetch_bodies(gmail_for(account.address), small, [] if small else [gid])
            body = bodies.get(gid)
            if body is not None:
                if body.from_:
                    fresh = build_email(email.id, message, body)
                    found = without_corrected(matches_of(fresh), email)
                    update = _headers_of(fresh)
                if found:
                    texts = with_body(fresh, message.snippet, body)
                    update.update({name: getattr(texts, name) for name in TEXT_FIELDS})
        before = _headers_of(email)

        def rewrite(stored: Email) -> Email:
            return stored.model_copy(update=update)

        stored = store.update_email(email.id, rewrite)
        if stored is None:
            return
        step["repaired"] += int(_headers_of(stored) != before)
        _, unlinked = apply_matches(
            store, email.id, found, account_id=account.id, actor=ACTOR, unlink=True
        )
        step["linked"] += int(bool(found) and not email.matched)
        step["unlinked"] += unlinked

    def repair_page(emails: list[Email], step: dict[str, int]) -> None:
        suspects = [e for e in emails if everything or needs_participant_repair(e)]
        by_mailbox: dict[str, tuple[EmailAccount, list[tuple[Email, str]]]] = {}
        for email in suspects:
            holder = _holder(store, email)
            if holder is None:
                step["unreachable"] += 1
                continue
            account, gid = holder
            by_mailbox.setdefault(account.address, (account, []))[1].append((email, gid))
        for address, (account, items) in sorted(by_mailbox.items()):
            fetched = gmail_for(address).get_messages(
                [gid for _, gid in items], format="metadata", metadata_headers=METADATA_HEADERS
            )
            for email, gid in items:
                message = fetched.messages.get(gid)
                if message is None:  # deleted in Gmail, or the fetch failed: left as stored
                    step["unreachable"] += 1
                    continue
                step["refetched"] += 1
                repair_one(email, message, account, step)

    return _scan(
        store,
        "repair-participants",
        PARTICIPANTS_ALL_GUARD if everything else PARTICIPANTS_GUARD,
        PARTICIPANT_COUNTS,
        repair_page,
        page_size=page_size,
        max_pages=max_pages,
        restart=restart,
    )
