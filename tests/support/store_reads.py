"""Pieces shared by the capture tests that must read the same on every store: the index check
of what a test's queries needed, a snapshot of
what capture stores, taken through Store methods only (no SQL), so a SQLite run and a Firestore
run can be compared, and counts of emails, sightings, links and proposals for the
idempotency tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox.scenario import TEAM
from shared.adapters.firestore.indexes import (
    QueryRecorder,
    check_coverage,
    load_exemptions,
    load_indexes,
)
from shared.domain.models import Email, Proposal
from shared.ports import Store


def assert_queries_are_indexed(recorder: QueryRecorder) -> None:
    """Production refuses a query without its composite index; the emulator runs it anyway."""
    report = check_coverage(
        recorder.shapes, load_indexes(), reserved=load_indexes(), exempt_fields=load_exemptions()
    )
    assert not report.missing, report.describe()
    assert not report.on_exempt_fields, report.describe()


# Every scenario message is to or from a team mailbox, so this domain reaches every stored email.
TEAM_DOMAIN = TEAM[0].rpartition("@")[2]


def all_emails(store: Store, *, domains: tuple[str, ...] = (TEAM_DOMAIN,)) -> list[Email]:
    """Every stored email with a participant in ``domains``, by id (paged as re-match pages)."""
    emails: list[Email] = []
    after = ""
    while True:
        page = store.find_emails_by_participants(domains=list(domains), limit=50, after_id=after)
        if not page:
            return emails
        emails.extend(page)
        after = page[-1].id


def all_proposals(store: Store) -> list[Proposal]:
    proposals: list[Proposal] = []
    token = ""
    while True:
        page = store.list_proposals(limit=50, page_token=token)
        proposals.extend(page.items)
        token = page.next_token
        if not token:
            return proposals


def store_snapshot(store: Store) -> dict[str, Any]:
    """Everything capture stores, minus times and run ids, read through the Store port."""
    emails = all_emails(store)
    sightings: list[tuple[str, str, bool]] = []
    links: list[str] = []
    for email in emails:
        sightings.extend((s.id, s.email_id, s.deleted) for s in store.list_sightings(email.id))
        links.extend(link.id for link in store.list_links(email.id))
    accounts = store.list_email_accounts()
    return {
        "emails": sorted(
            (
                e.id,
                e.matched,
                tuple(sorted(e.investor_ids)),
                tuple(sorted(e.live_account_ids)),
                bool(e.body),
                e.subject,
            )
            for e in emails
        ),
        "sightings": sorted(sightings),
        "links": sorted(links),
        "proposals": sorted((p.id, p.status.value) for p in all_proposals(store)),
        "problems": sorted(
            (p.account_id, p.gmail_message_id)
            for account in accounts
            for p in store.list_capture_problems(account.id, limit=1000)
        ),
        "backfill_done": sorted((a.id, a.sync.backfill_done) for a in accounts),
    }


def duplicates(store: Store) -> dict[str, Any]:
    """What must never happen, as counts: more than one email per Message-ID, more than one
    sighting per (mailbox, email), more than one link per (email, investor, contact), more than
    one proposal per (email, investor). Empty dicts when all is well."""
    emails = all_emails(store)
    per_message_id = Counter(e.message_id.strip("<>").lower() for e in emails if e.message_id)
    sightings: Counter[tuple[str, str]] = Counter()
    links: Counter[tuple[str, str, str]] = Counter()
    for email in emails:
        sightings.update((s.account_id, s.email_id) for s in store.list_sightings(email.id))
        links.update(
            (link.email_id, link.investor_id, link.contact_id or "-")
            for link in store.list_links(email.id)
        )
    proposals = Counter((p.email_id, p.investor_id) for p in all_proposals(store))
    return {
        name: {key: n for key, n in counter.items() if n > 1}
        for name, counter in (
            ("emails", per_message_id),
            ("sightings", sightings),
            ("links", links),
            ("proposals", proposals),
        )
    }
