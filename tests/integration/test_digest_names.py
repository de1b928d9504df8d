"""The digest names the CRM records from the copies capture carried onto each link
(``LinkNames``), and a record changed after capture shows as it is now, on both stores.

The oracle: the same window built with the carried names stripped from the links, so the
digest reads every record by id, as it did before names were carried. ``NAMES_CLOCK_SLACK`` is
set to zero here, so a change is found only by its store stamp (``updated_at``), not because
the test's records were all written within the slack of its capture.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.scenario import Scenario
from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.documents import CONTACTS, INVESTORS, ORGANIZATIONS
from shared.domain.matching import Exclusions
from shared.domain.models import (
    Contact,
    Email,
    Investor,
    LinkNames,
    Mailbox,
    MatchHeader,
    Organization,
    email_id_for,
)
from shared.ports import Store
from shared.services import digest as digest_service
from shared.services.capture import match_many

SINCE = datetime(2000, 1, 1, tzinfo=UTC)
CRM = (ORGANIZATIONS, INVESTORS, CONTACTS)


@pytest.fixture(autouse=True)
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_service, "NAMES_CLOCK_SLACK", timedelta(0))


def without_names(store: Store) -> digest_service.EmailsInWindow:
    def listing(since: datetime, until: datetime) -> Iterator[Email]:
        for email in store.list_emails(limit=500):
            links = [ln.model_copy(update={"names": None}) for ln in email.links]
            yield email.model_copy(update={"links": links})

    return listing


_UNTIL: dict[str, datetime] = {}


@pytest.fixture(autouse=True)
def _one_window_per_test() -> Iterator[None]:
    _UNTIL.clear()
    yield
    _UNTIL.clear()


def build(store: Store, *, carried: bool = True) -> tuple[tuple[str, str, str], dict[str, int]]:
    """The digest of everything captured, and the CRM documents it read (Firestore). The
    window ends where the test's first build put it: the digest shows each mailbox's sync lag
    as of that end, so builds a minute apart (a loaded machine) would differ."""
    reads: dict[str, int] = getattr(store, "reads", {})
    before = dict(reads)
    digest = digest_service.build_digest(
        store,
        SINCE,
        _UNTIL.setdefault("until", datetime.now(UTC) + timedelta(seconds=1)),
        None,
        emails_in_window=None if carried else without_names(store),
    )
    spent = {k: reads.get(k, 0) - before.get(k, 0) for k in CRM}
    return (digest.subject, digest.text, digest.html), spent


def test_capture_carries_the_names_the_matcher_held(store: Store, captured_fund: Scenario) -> None:
    intro = store.get_email(email_id_for(captured_fund.message_ids["intro"]))
    assert intro is not None
    (link,) = store.list_links(intro.id)
    assert link.names is not None and link.names.at <= link.created_at
    assert (link.names.investor, link.names.organization, link.names.contact) == (
        "Zeta Capital Fund I",
        "Zeta Capital",
        "Zoe Zeta",
    )
    assert link.names.organization_domains == ["zeta.vc"]
    assert [ln.names for ln in intro.links] == [link.names]  # the email's copy, for the digest
    every_link = [ln for e in store.list_emails(limit=500) for ln in store.list_links(e.id)]
    assert every_link and all(ln.names is not None for ln in every_link)

    digest, reads = build(store)
    oracle, oracle_reads = build(store, carried=False)
    assert digest == oracle
    assert "Zeta Capital Fund I (Zeta Capital)" in digest[1]
    if isinstance(store, FirestoreStore):
        # One query per CRM collection, none of whose records changed since (a query with no
        # result is billed one read); the oracle reads each named record by id.
        assert reads == dict.fromkeys(CRM, 1)
        assert sum(oracle_reads.values()) > sum(reads.values())


def test_a_name_changed_after_capture_shows_in_the_next_digest(
    store: Store, captured_fund: Scenario
) -> None:
    before, _ = build(store)
    assert "Zoe Zeta" in before[1] and "Jo Smith ·" in before[1]

    # Edits as the CRM makes them: the stored record changed and written back. Its
    # updated_at is the stored one, older than the names, unless the store stamps the write.
    investor = store.get_investor(captured_fund.investor.id)
    contact = store.get_contact(captured_fund.contact.id)
    angel_contact = store.get_contact(captured_fund.angel_contact.id)
    organization = store.get_organization(captured_fund.organization.id)
    assert investor and contact and angel_contact and organization
    store.upsert_investor(investor.model_copy(update={"name": "Zeta Fund II"}))
    store.upsert_contact(contact.model_copy(update={"name": "Zoe Zeta-Ng"}))
    store.upsert_contact(angel_contact.model_copy(update={"deleted": True}))
    store.upsert_organization(organization.model_copy(update={"name": "Zeta Partners"}))

    after, _ = build(store)
    assert after != before
    assert "Zeta Fund II (Zeta Partners)" in after[1]
    assert "Zoe Zeta-Ng" in after[1]
    assert "Zeta Capital Fund I" not in after[1] and "Zoe Zeta ·" not in after[1]
    assert "Jo Smith ·" not in after[1]  # a deleted contact falls back to the address
    assert after == build(store, carried=False)[0]

    # The investor moves to a new organisation: its title and the domain match follow it.
    moved = store.get_investor(captured_fund.investor.id)
    assert moved is not None
    other = Organization(id="org-omega", name="Omega Partners", domains=["omega.example"])
    store.upsert_organization(other)
    store.upsert_investor(moved.model_copy(update={"organization_id": other.id}))
    again, _ = build(store)
    assert "Zeta Fund II (Omega Partners)" in again[1]
    assert again == build(store, carried=False)[0]


def test_the_one_read_capture_adds_is_an_organisation_no_domain_found(store: Store) -> None:
    """Matching holds the contact and its investor; the investor's organisation is in hand when
    a participant's domain found it, and read by id (once per chunk) when not: a contact at a
    public mail domain."""
    org = Organization(id="org-lp", name="LP Capital", domains=["lp.example"])
    investor = Investor(id="inv-lp", name="LP Fund I", organization_id=org.id)
    at_gmail = Contact(id="con-gm", name="Gail", investor_id=investor.id, emails=["g@gmail.com"])
    at_org = Contact(id="con-lp", name="Lee", investor_id=investor.id, emails=["lee@lp.example"])
    store.upsert_organization(org)
    store.upsert_investor(investor)
    for contact in (at_gmail, at_org):
        store.upsert_contact(contact)
    reads: dict[str, int] = getattr(store, "reads", {})

    def match(*senders: str) -> tuple[list[LinkNames | None], int]:
        before = reads.get(ORGANIZATIONS, 0)
        found = match_many(
            store,
            {s: [(MatchHeader.FROM, Mailbox(address=s))] for s in senders},
            {"ada@fund.example"},
            Exclusions(),
        )
        names = [m.names for s in senders for m in found[s]]
        return names, reads.get(ORGANIZATIONS, 0) - before

    (by_gmail,), org_reads = match("g@gmail.com")
    assert by_gmail is not None
    assert (by_gmail.investor, by_gmail.organization, by_gmail.contact) == (
        "LP Fund I",
        "LP Capital",
        "Gail",
    )
    names, org_reads_in_hand = match("lee@lp.example", "g@gmail.com")
    assert [n.contact for n in names if n] == ["Lee", "Gail"]
    assert all(n and n.organization == "LP Capital" for n in names)
    if isinstance(store, FirestoreStore):
        assert org_reads == 1  # no domain look-up (gmail.com is public): the one get
        assert org_reads_in_hand == 1  # the domain query found it: nothing more


def test_hostile_names_carried_on_links_come_out_inert(
    store: Store, captured_fund: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names a link carries were typed into the CRM (or imported from a CSV): in the
    digest they are text like the names read from the records, escaped in the HTML and never
    a header line."""
    monkeypatch.setattr(digest_service, "NAMES_CLOCK_SLACK", timedelta(0))
    hostile = '=HYPERLINK("x")<script>alert(1)</script>\r\nBcc: evil@example.com\x00=?utf-8?q?x?='

    def listing(since: datetime, until: datetime) -> Iterator[Email]:
        for email in store.list_emails(limit=500):
            links = [
                ln.model_copy(
                    update={
                        "names": ln.names.model_copy(
                            update={
                                "investor": hostile,
                                "organization": hostile,
                                "contact": hostile,
                            }
                        )
                    }
                )
                if ln.names
                else ln
                for ln in email.links
            ]
            yield email.model_copy(update={"links": links})

    digest = digest_service.build_digest(
        store, SINCE, datetime.now(UTC) + timedelta(seconds=1), None, emails_in_window=listing
    )

    assert "HYPERLINK" in digest.html  # the carried names were used
    assert "<script" not in digest.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in digest.html
    assert not {"\r", "\n", "\x00"} & set(digest.subject)
    assert "\x00" not in digest.text and "\x00" not in digest.html
    assert "\nBcc: evil@example.com" not in digest.text.replace("\r\n", "\n")
