"""The email-activity search (``Store.query_activity`` and the service over it), on both stores.

One varied corpus (several mailboxes, one with an alias; investors live, graveyard and
soft-deleted; mail linked to one or two investors or to none; sightings live and soft-deleted;
equal timestamps; a missing Date header; accents, case, a word longer than the index's 15
characters) is written through the Store on each adapter. Every query is then drained page by
page and compared with an oracle written here from the panel's rules (not from the stores'
code), and the two stores' pages are compared with each other, names and mailboxes included.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.indexes import QueryRecorder
from shared.adapters.sqlite import SqliteStore
from shared.adapters.sqlite.schema import MIGRATIONS
from shared.domain import search
from shared.domain.activity import ActivityPage, ActivityQuery
from shared.domain.models import (
    Direction,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Sighting,
)
from shared.errors import BadRequestError
from shared.ports import Store
from shared.services import activity

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
ADA, BEN, CARL = "ada@fund.example", "ben@fund.example", "carl@fund.example"
ALIAS = "deals@fund.example"  # one of Ada's aliases: mail from it is outbound too
ACCOUNTS = [
    EmailAccount.new(ADA).model_copy(update={"aliases": [ALIAS]}),
    EmailAccount.new(BEN),
    EmailAccount.new(CARL),
]
INVESTORS = [
    Investor(id="inv-zeta", name="Zeta Capital", emails=["zoe@zeta.vc"]),
    Investor(id="inv-etoile", name="Étoile Fund", emails=["eloise@etoile.fr"]),
    Investor(id="inv-grave", name="Graveyard Partners", emails=["gus@grave.vc"], graveyard=True),
    Investor(id="inv-gone", name="Gone Ventures", emails=["gina@gone.vc"]),
]
SENDERS = [
    Mailbox(name="Zoë Zeta", address="zoe@zeta.vc"),
    Mailbox(name="ÉLOÏSE Durand", address="eloise@etoile.fr"),
    Mailbox(name="Gus Grave", address="gus@grave.vc"),
    Mailbox(name="Gina", address="gina@gone.vc"),
    Mailbox(name="Ada", address=ADA),
    Mailbox(name="Deals desk", address=ALIAS),
    Mailbox(name="Carl", address=CARL),
    Mailbox(name="Sam Stranger", address="sam@startup.example"),
]
SUBJECTS = [
    "Investment update for Q3",
    "ÉTÉ plans and the fund's straße",
    "Re: quarterly follow-up",
    "Supercalifragilisticexpialidocious term sheet",
    "Intro: Zeta x Fund",
    "Invoice 2024-17",
    "Due-diligence questions",
    "",
]
SNIPPETS = ["", "Thanks for the investment memo.", "Café at noon? Naïve question.", "see deck"]


@dataclass
class Corpus:
    """What was written, and the panel the rules say it makes."""

    emails: dict[str, Email] = field(default_factory=dict)
    links: dict[str, list[InvestorLink]] = field(default_factory=dict)
    live: dict[str, set[str]] = field(default_factory=dict)  # email id -> live account ids


def build_corpus(seed: int = 4, count: int = 44) -> tuple[Corpus, list[Sighting]]:
    """Emails, their links and sightings (some soft-deleted), deterministic for ``seed``."""
    rng = random.Random(seed)
    corpus = Corpus()
    sightings: list[Sighting] = []
    for n in range(count):
        sender = rng.choice(SENDERS)
        # Few distinct times: many ties, broken by id. Every 9th email has no Date header.
        date = None if n % 9 == 4 else T0 + timedelta(minutes=rng.randrange(6))
        email = Email(
            # Ids in random order against insertion: equal times arrive out of id order.
            id=f"e{rng.getrandbits(24):06x}-{n:03d}",
            subject=rng.choice(SUBJECTS),
            snippet=rng.choice(SNIPPETS),
            sender=sender,
            to=[Mailbox(address=rng.choice([ADA, BEN, "zoe@zeta.vc"]))],
            date=date,
            first_seen_at=T0 - timedelta(days=1, seconds=n),
            participant_addresses=[sender.address],
        )
        corpus.emails[email.id] = email
        linked = rng.sample(INVESTORS, rng.choice([0, 1, 1, 1, 2]))
        corpus.links[email.id] = [
            InvestorLink.new(email.id, i.id, None, i.emails[0], MatchHeader.FROM) for i in linked
        ]
        corpus.live[email.id] = set()
        for account in rng.sample(ACCOUNTS, rng.choice([1, 1, 2, 3])):
            deleted = rng.random() < 0.25
            sightings.append(Sighting.new(account.id, f"g{n}", email.id, deleted=deleted))
            if not deleted:
                corpus.live[email.id].add(account.id)
    return corpus, sightings


def seed(store: Store) -> Corpus:
    for account in ACCOUNTS:
        store.add_email_account(account)
    for investor in INVESTORS:
        store.upsert_investor(investor)
    corpus, sightings = build_corpus()
    for email in corpus.emails.values():
        store.upsert_email(email)
        for link in corpus.links[email.id]:
            store.link_email_to_investor(link)
    for sighting in sightings:
        store.record_sighting(sighting)
    # Deleted after its mail was linked: its mail stays, named by the matched address.
    store.upsert_investor(INVESTORS[3].model_copy(update={"deleted": True}))
    return corpus


# -- the oracle: the seed spec's rules, written out ---------------------------------------------

OWN = {ADA, ALIAS, BEN, CARL}


def expected(corpus: Corpus, query: ActivityQuery) -> list[str]:
    rows = []
    for email in corpus.emails.values():
        investors = {link.investor_id for link in corpus.links[email.id]}
        live = corpus.live[email.id]
        if not investors or not live:
            continue
        outbound = email.sender is not None and email.sender.address in OWN
        direction = Direction.OUTBOUND if outbound else Direction.INBOUND
        if query.investor_id and query.investor_id not in investors:
            continue
        if query.account_id and query.account_id not in live:
            continue
        if query.direction and query.direction is not direction:
            continue
        sender = email.sender or Mailbox(address="x@x.x")
        text = " ".join([email.subject, email.snippet, sender.name, sender.address])
        have = search.words(text)
        if not all(any(w.startswith(q) for w in have) for q in query.words):
            continue
        rows.append(((email.date or email.first_seen_at), email.id))
    return [email_id for _, email_id in sorted(rows, reverse=True)]


def drain(store: Store, query: ActivityQuery) -> tuple[list[ActivityPage], list[str]]:
    """Every page of a query through the service, from its page token; the pages and the ids
    in order."""
    pages: list[ActivityPage] = []
    token = query.page_token
    while True:
        page = activity.search(store, query.model_copy(update={"page_token": token}))
        pages.append(page)
        assert len(page.items) <= query.limit
        if not page.has_more:
            assert page.next_page_token == ""
            return pages, [item.id for page in pages for item in page.items]
        assert page.next_page_token
        token = page.next_page_token
        assert len(pages) < 200, "paging does not terminate"


def q(text: str = "", **filters: Any) -> ActivityQuery:
    return ActivityQuery(q=text, words=tuple(search.query_words(text)), **filters)


ACCOUNT_IDS = [a.id for a in ACCOUNTS]
NOTHING = {("quarterly", "zz"), ("supercalifragilisticexpialidociousness",)}  # match no mail
FILTER_QUERIES = [
    q(investor_id=investor, account_id=account, direction=direction, limit=3)
    for investor in (None, "inv-zeta", "inv-grave", "inv-gone")
    for account in (None, ACCOUNT_IDS[0], ACCOUNT_IDS[2])
    for direction in (None, Direction.INBOUND, Direction.OUTBOUND)
]
TEXT_QUERIES = [
    q("inv", limit=3),
    q("INVESTMENT", limit=2),
    q("ete", limit=3),  # ÉTÉ
    q("Été PLANS", limit=3),
    q("strasse", limit=3),  # straße
    q("naive cafe", limit=3),
    q("eloise", limit=3),  # ÉLOÏSE in a display name
    q("zeta.vc", limit=3),  # an address is words too
    q("deals fund", limit=3),
    q("supercalifragilisticexp", limit=3),  # longer than the index's 15 characters
    q("supercalifragilisticexpialidociousness", limit=3),
    q("q3 update", limit=2),  # the longest word is looked up, "q3" checked in memory
    q("quarterly zz", limit=3),  # matches nothing: every word must match
    q("inv", investor_id="inv-zeta", limit=2),
    q("ete", account_id=ACCOUNT_IDS[0], direction=Direction.OUTBOUND, limit=2),
    q("supercalifragilistic", investor_id="inv-etoile", direction=Direction.INBOUND, limit=1),
    q("term sheet", account_id=ACCOUNT_IDS[1], limit=1),
]


# -- fixtures: one seeded corpus per store for the module (the tests only read) ------------------


@pytest.fixture(scope="module")
def sqlite_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Corpus]]:
    store = SqliteStore(tmp_path_factory.mktemp("activity") / "crm.sqlite3")
    yield store, seed(store)
    store.close()


@pytest.fixture(scope="module")
def firestore_corpus(
    firestore_emulator: FirestoreEmulator, firestore_query_recorder: QueryRecorder
) -> Iterator[tuple[Store, Corpus]]:
    client = firestore_emulator.client(new_project_id("activity"))
    try:
        store = FirestoreStore(client, recorder=firestore_query_recorder)
        yield store, seed(store)
    finally:
        client.close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("firestore", id="firestore", marks=pytest.mark.firestore),
    ]
)
def seeded(request: pytest.FixtureRequest) -> tuple[Store, Corpus]:
    result: tuple[Store, Corpus] = request.getfixturevalue(f"{request.param}_corpus")
    return result


# -- tests --------------------------------------------------------------------------------------


def test_the_corpus_exercises_what_it_claims() -> None:
    """The oracle's corpus holds the cases the other tests rely on (else they prove little)."""
    corpus, sightings = build_corpus()
    everything = expected(corpus, q(limit=1))
    assert 20 < len(everything) < len(corpus.emails)  # some hidden: unmatched or not live
    assert any(s.deleted for s in sightings)
    dates = [corpus.emails[i].date for i in everything]
    assert len(set(dates)) < len(dates)  # ties
    assert None in dates
    for query in TEXT_QUERIES + FILTER_QUERIES:
        if query.words not in NOTHING:
            assert expected(corpus, query), f"no mail for {query}: the test would prove nothing"


def query_id(query: ActivityQuery) -> str:
    filters = [query.investor_id, (query.account_id or "")[:6], query.direction, query.q]
    return "-".join(str(f) for f in filters if f) or "all"


@pytest.mark.parametrize("query", FILTER_QUERIES + TEXT_QUERIES, ids=query_id)
def test_every_query_lists_what_the_rules_say_once_newest_first(
    seeded: tuple[Store, Corpus], query: ActivityQuery
) -> None:
    store, corpus = seeded
    _, ids = drain(store, query)
    assert ids == expected(corpus, query)
    assert len(ids) == len(set(ids))


def test_both_stores_give_the_same_pages(
    sqlite_corpus: tuple[Store, Corpus], firestore_corpus: tuple[Store, Corpus]
) -> None:
    """Item for item, names, mailboxes and direction included (page boundaries may differ only
    where Firestore's read budget ends a page early)."""
    for query in [q(limit=5), *FILTER_QUERIES[::5], *TEXT_QUERIES]:
        sqlite_items = [i for p in drain(sqlite_corpus[0], query)[0] for i in p.items]
        firestore_items = [i for p in drain(firestore_corpus[0], query)[0] for i in p.items]
        assert sqlite_items == firestore_items, query
        assert bool(sqlite_items) is (query.words not in NOTHING), query


def test_items_carry_what_the_panel_shows(seeded: tuple[Store, Corpus]) -> None:
    store, corpus = seeded
    _, ids = drain(store, q(limit=50))
    page = activity.search(store, q(limit=50))
    assert [item.id for item in page.items] == ids[:50]
    by_address = {a.id: a.address for a in ACCOUNTS}
    names = {i.id: i.name for i in INVESTORS}
    for item in page.items:
        email = corpus.emails[item.id]
        assert item.date == (email.date or email.first_seen_at)
        assert (item.subject, item.snippet, item.sender, item.to) == (
            email.subject,
            email.snippet,
            email.sender,
            email.to,
        )
        outbound = email.sender is not None and email.sender.address in OWN
        assert item.direction is (Direction.OUTBOUND if outbound else Direction.INBOUND)
        assert {(m.account_id, m.address) for m in item.mailboxes} == {
            (a, by_address[a]) for a in corpus.live[item.id]
        }
        for investor in item.investors:
            if investor.id == "inv-gone":  # soft-deleted: the address its link matched
                assert (investor.name, investor.deleted) == ("gina@gone.vc", True)
            else:
                assert (investor.name, investor.deleted) == (names[investor.id], False)
            assert investor.graveyard is (investor.id == "inv-grave")
        assert {i.id for i in item.investors} == {x.investor_id for x in corpus.links[item.id]}


def test_a_page_token_from_a_deleted_row_still_resumes_below_it(
    seeded: tuple[Store, Corpus],
) -> None:
    """The token is the last row's key, not a position: rows that vanish meanwhile (the last
    one included) neither repeat nor skip the rest."""
    store, corpus = seeded
    query = q(limit=4)
    first = activity.search(store, query)
    last = first.items[-1]
    rest_before = drain(store, query.model_copy(update={"page_token": first.next_page_token}))[1]
    # Hide the last item of the page by soft-deleting all its sightings, then page on.
    sightings = [s for s in store.list_sightings(last.id) if not s.deleted]
    for sighting in sightings:
        store.set_sighting_deleted(sighting.account_id, sighting.gmail_message_id, True)
    try:
        token = first.next_page_token
        assert drain(store, query.model_copy(update={"page_token": token}))[1] == rest_before
        assert last.id not in drain(store, query)[1]
    finally:
        for sighting in sightings:
            store.set_sighting_deleted(sighting.account_id, sighting.gmail_message_id, False)
    assert drain(store, query)[1] == expected(corpus, query)


@pytest.mark.parametrize(
    "token", ["%%%", "bm90IGEga2V5", "MjAyNC0wNi0wM1QwOTowMDowMC4wMDAwMDBa"]
)  # not base64; "not a key"; a time without "|id"
def test_a_malformed_page_token_is_a_bad_request(seeded: tuple[Store, Corpus], token: str) -> None:
    store, _ = seeded
    with pytest.raises(BadRequestError):
        store.query_activity(q(page_token=token))


def test_firestore_reads_stay_within_the_budget(
    firestore_corpus: tuple[Store, Corpus],
) -> None:
    """A page reads at most 5 x (limit + 1) email documents; a filter alone reads limit + 1;
    a page cut short by the budget says has_more, and paging on finds the rest."""
    store, _ = firestore_corpus
    assert isinstance(store, FirestoreStore)
    for query, exact in [
        (q(limit=3), True),
        (q(account_id=ACCOUNT_IDS[2], direction=Direction.OUTBOUND, limit=2), True),
        (q("inv", limit=3), True),
        (q("q3 update", limit=1), False),
        (q("inv zz", limit=1), False),  # many "inv" read, none has "zz"
    ]:
        token, short = "", False
        while True:
            before = store.activity_email_reads
            page = store.query_activity(query.model_copy(update={"page_token": token}))
            read = store.activity_email_reads - before
            assert read <= 5 * (query.limit + 1), query
            if exact and page.has_more:
                assert read == query.limit + 1, query
            short |= page.has_more and len(page.hits) < query.limit
            if not page.has_more:
                break
            token = page.next_token
        if query.words == ("inv", "zz"):
            assert short  # nothing matches, and the budget ends the first pages early


def test_mail_without_a_live_sighting_or_a_link_is_never_found(
    seeded: tuple[Store, Corpus],
) -> None:
    store, corpus = seeded
    hidden = [i for i in corpus.emails if not corpus.live[i] or not corpus.links[i]]
    assert hidden
    listed = set(drain(store, q(limit=200))[1])
    assert listed.isdisjoint(hidden)
    for email_id in hidden[:3]:
        words = search.query_words(corpus.emails[email_id].subject)
        if words:
            assert email_id not in drain(store, q(" ".join(words), limit=200))[1]


def test_a_sqlite_file_from_before_the_panel_gets_its_rows_on_upgrade(tmp_path: Path) -> None:
    """Schema version 4 builds the panel's rows for mail stored before it (its data step): a
    version-3 file holding the corpus (rows copied from a current store) is opened."""
    current = SqliteStore(tmp_path / "current.sqlite3")
    corpus = seed(current)
    current.close()
    old = sqlite3.connect(tmp_path / "old.sqlite3")
    for script in MIGRATIONS[:3]:
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
    old.execute("PRAGMA user_version = 3")
    old.execute("ATTACH DATABASE ? AS src", (str(tmp_path / "current.sqlite3"),))
    for table, columns in {
        "email_accounts": "id, address, deleted, doc",
        "investors": "id, name_key, graveyard, deleted, organization_id, doc",
        "emails": "id, matched, matched_key, doc",
        "sightings": "id, account_id, gmail_message_id, email_id, deleted, doc",
        "investor_links": "id, email_id, investor_id, doc",
    }.items():
        old.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM src.{table}")  # noqa: S608
    old.commit()
    old.close()

    upgraded = SqliteStore(tmp_path / "old.sqlite3")
    try:
        assert upgraded.schema_version() == len(MIGRATIONS)
        for query in (q(limit=7), q("ete", limit=7), q(direction=Direction.OUTBOUND, limit=7)):
            assert drain(upgraded, query)[1] == expected(corpus, query)
    finally:
        upgraded.close()
