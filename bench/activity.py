"""Latency of the email-activity panel's search, and Firestore documents read per page.

What it measures: the wall time of ``shared.services.activity.search(store, query)`` (the
store's search plus the page's name look-ups: what ``GET /activity`` does after parsing) for the
first page and for the tenth page (pages 1 to 9 are walked first with their tokens; only the
tenth is timed), ``limit`` 50. Configurations:

- ``sqlite``: corpora of 10,000 and 100,000 matched emails;
- ``firestore`` (the emulator, started here, one per configuration): 2,000 and 10,000.

The corpus: 20 mailboxes, 500 investors with a Zipf-like skew (the busiest has ~150x the mail
of the quietest); every email linked to one investor (a tenth to two), in one mailbox (a quarter
in two), 20% outbound (sent by the mailbox's owner). Its text has three bands of words: 5
common words each in ~half the mail, 100 words each in ~1%, and a rare word per email drawn
from a pool of half the corpus size (each rare word in ~2 emails). Dates spread over 300 days,
on whole seconds, with repeats (ties are ordered by id).

Kinds: ``filters`` (every combination of the investor, mailbox and direction filters, the
empty one included, values drawn as an admin would pick them: investors by their share of the
mail); ``text`` (``q`` alone, one word from each band in turn); ``text+filters`` (a word of a
random band with a random non-empty combination of filters).

Baselines in the same run: ``baseline_get_ms``, the median of one ``get_email`` (a primary-key
read: the floor of a request to this store); on SQLite also ``naive_ms``, the seed's query
shape (``EXISTS`` a link, ``EXISTS`` a live sighting, ``ORDER BY`` the date) over the same
rows without the panel's tables, first page, no filters: what the facet index and FTS5 save.

Firestore reads: per request, the email documents ``query_activity`` read
(``FirestoreStore.activity_email_reads``), and apart the name look-ups (investors, mailboxes,
links documents, from ``FirestoreStore.reads``). Targets: a page of ``filters`` or single-word
``text`` filled in at most limit + 3 email reads, the same at both corpus sizes; no request
over 5 x (limit + 1). Populating Firestore through capture-sized transactions is quadratic in
the emulator (each transaction queries an email's sightings and links, and the emulator scans
the collection), so the corpus is written with batched writes of exactly the documents the store
writes (``firestore.documents.email_document``, denormalised fields from ``Email.denormalised``);
the first emails are also written through the Store's own methods and compared with what the batch
writes, so the two cannot drift: 10,000 emails then take about a minute. Emulator latencies
grow with the collection (it scans it per query, ~0.1 s at 2,000, ~0.2 s at 10,000); reads do
not, and they are what production bills and waits for.

Run time: about 6 minutes on 2 cores, most of it populating SQLite's 100,000 emails through
the Store (~400/s).

Output: human lines, then per store, corpus and kind exactly ``RESULT store=<s> corpus=<n>
kind=<filters|text|text+filters> p50_ms=<x> p95_ms=<x> max_reads_per_page=<n or -> limit=<n>``
(first page), followed by ``page10_p50_ms``, ``page10_p95_ms``, sample counts, the baselines
and on Firestore ``fill_reads_max`` (most email reads of any full page of ``filters`` or
single-word ``text``; "-" for ``text+filters``) and ``name_reads_per_page``.

    PYTHONPATH=. .venv/bin/python bench/activity.py [--quick] [--only sqlite,firestore]
        [--sqlite-corpus 10000,100000] [--firestore-corpus 2000,4000] [--samples N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._support import run_configs, team_address
from shared.domain import search
from shared.domain.activity import ActivityQuery
from shared.domain.models import (
    Direction,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Role,
    Sighting,
    User,
)
from shared.ports import Store
from shared.services import activity

MAILBOXES = 20
INVESTORS = 500
LIMIT = 50
PAGES = 10
SECOND_INVESTOR_SHARE = 0.10
SECOND_MAILBOX_SHARE = 0.25
OUTBOUND_SHARE = 0.20
COMMON = ("update", "portfolio", "quarterly", "meeting", "capital")
MID_WORDS = 100
NOW = datetime(2025, 6, 1, tzinfo=UTC)
MATCHED_AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
BATCH = 400  # writes per Firestore batch (the limit is 500)
CHECKED = 30  # emails also written through the Store's methods and compared (Firestore)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 50 values is the 48th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# -- the corpus --------------------------------------------------------------------------------


def pseudo_word(rng: random.Random, syllables: int) -> str:
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))


@dataclass
class Corpus:
    accounts: list[EmailAccount]
    investors: list[Investor]
    weights: list[float]
    mid: list[str]
    rare: list[str]  # rare words that were used
    emails: list[Email] = field(default_factory=list)
    links: dict[str, list[InvestorLink]] = field(default_factory=dict)
    sightings: dict[str, list[Sighting]] = field(default_factory=dict)


def make_corpus(size: int, seed: int = 5) -> Corpus:
    rng = random.Random(seed)
    accounts = [EmailAccount.new(team_address(i)) for i in range(MAILBOXES)]
    investors = [
        Investor(id=f"inv-{i:03d}", name=f"LP {i} Fund", emails=[f"partner{i}@lp{i}.vc"])
        for i in range(INVESTORS)
    ]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(INVESTORS)]
    mid = sorted({pseudo_word(rng, 3) for _ in range(MID_WORDS * 2)})[:MID_WORDS]
    pool = [pseudo_word(rng, 4) + str(n) for n in range(max(size // 2, 1))]
    corpus = Corpus(accounts, investors, weights, mid, [])
    used: set[str] = set()
    seconds = 300 * 86_400
    last_offset = 0
    for n in range(size):
        chosen = rng.choices(range(INVESTORS), weights=weights)[0]
        linked = [investors[chosen]]
        if rng.random() < SECOND_INVESTOR_SHARE:
            other = investors[rng.randrange(INVESTORS)]
            if other.id != linked[0].id:
                linked.append(other)
        boxes = rng.sample(accounts, 2 if rng.random() < SECOND_MAILBOX_SHARE else 1)
        contact = Mailbox(name=f"Partner {chosen}", address=linked[0].emails[0])
        if rng.random() < OUTBOUND_SHARE:
            sender, to = Mailbox(name="Team", address=boxes[0].address), [contact]
        else:
            sender, to = contact, [Mailbox(address=boxes[0].address)]
        rare = rng.choice(pool)
        used.add(rare)
        words = [w for w in COMMON if rng.random() < 0.5]
        subject = " ".join([*words[:2], rng.choice(mid), f"#{n}"])
        snippet = " ".join([*words[2:], rare, "thanks for the note"])
        # Whole seconds, and a tenth of the mail on an earlier email's second: ties by id.
        offset = last_offset if n and rng.random() < 0.1 else rng.randrange(seconds)
        last_offset = offset
        email = Email(
            id=f"{rng.getrandbits(64):016x}",
            subject=subject,
            snippet=snippet,
            sender=sender,
            to=to,
            date=NOW - timedelta(seconds=offset),
            first_seen_at=NOW,
            participant_addresses=[sender.address, *(m.address for m in to)],
        )
        corpus.emails.append(email)
        corpus.links[email.id] = [
            InvestorLink.new(email.id, i.id, None, i.emails[0], MatchHeader.FROM) for i in linked
        ]
        gid = f"{rng.getrandbits(48):012x}"
        corpus.sightings[email.id] = [Sighting.new(b.id, gid, email.id) for b in boxes]
    corpus.rare = sorted(used)
    return corpus


def seed_directory(store: Store, corpus: Corpus) -> None:
    for index, account in enumerate(corpus.accounts):
        user = User.new(account.address, f"Team {index}", Role.ADMIN if index == 0 else Role.MEMBER)
        store.add_user(user)
        store.add_email_account(account.model_copy(update={"user_id": user.id}))
    for investor in corpus.investors:
        store.upsert_investor(investor)


def write_through_store(store: Store, corpus: Corpus, emails: Sequence[Email]) -> None:
    """As capture writes matched mail: the email, its links, then each sighting."""
    for email in emails:
        store.upsert_email(email)
        for link in corpus.links[email.id]:
            store.link_email_to_investor(link)
        for sighting in corpus.sightings[email.id]:
            store.record_sighting(sighting)


def populate_sqlite(store: Store, corpus: Corpus) -> None:
    step = max(len(corpus.emails) // 5, 1)
    started = time.perf_counter()
    for done in range(0, len(corpus.emails), step):
        write_through_store(store, corpus, corpus.emails[done : done + step])
        elapsed = time.perf_counter() - started
        end = min(done + step, len(corpus.emails))
        print(f"    {end}/{len(corpus.emails)} in {elapsed:.0f} s", flush=True)


def populate_firestore(store: Any, corpus: Corpus) -> None:
    """Batched writes of the store's own documents; the first emails also through the Store's
    methods, to prove the two write the same."""
    from shared.adapters.firestore.documents import EMAILS, email_document

    own = store.own_addresses()
    client = store._client

    def document(email: Email) -> dict[str, Any]:
        denormalised = email.model_copy(update={"matched_at": MATCHED_AT})
        denormalised = denormalised.denormalised(
            corpus.sightings[email.id], corpus.links[email.id], at=MATCHED_AT
        )
        return email_document(denormalised, own)

    checked = corpus.emails[:CHECKED]
    write_through_store(store, corpus, checked)
    ignore = {"matched_at", "matched_key"}  # the store stamps the time it linked
    for email in checked:
        stored = client.collection(EMAILS).document(email.id).get().to_dict() or {}
        built = document(email)
        for name in set(stored) | set(built):
            if name not in ignore and stored.get(name) != built.get(name):
                raise RuntimeError(f"batch document differs from the store's on {name!r}")
    print(f"    {len(checked)} emails written through the Store match the batch documents")
    started = time.perf_counter()
    rest = corpus.emails[CHECKED:]
    for start in range(0, len(rest), BATCH):
        batch = client.batch()
        for email in rest[start : start + BATCH]:
            batch.set(client.collection(EMAILS).document(email.id), document(email))
        batch.commit()
        done = start + BATCH
        if done % 2000 < BATCH:
            elapsed = time.perf_counter() - started
            print(f"    {min(done, len(rest))}/{len(rest)} in {elapsed:.0f} s", flush=True)


# -- the queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    label: str
    query: ActivityQuery
    single_word: bool


def filter_combinations() -> list[tuple[bool, bool, bool]]:
    return [(i, a, d) for i in (False, True) for a in (False, True) for d in (False, True)]


def make_query(
    rng: random.Random, corpus: Corpus, combo: tuple[bool, bool, bool], q: str = ""
) -> ActivityQuery:
    use_investor, use_account, use_direction = combo
    investor = rng.choices(corpus.investors, weights=corpus.weights)[0] if use_investor else None
    account = rng.choice(corpus.accounts) if use_account else None
    return ActivityQuery(
        investor_id=investor.id if investor else None,
        account_id=account.id if account else None,
        direction=rng.choice(list(Direction)) if use_direction else None,
        q=q,
        words=tuple(search.query_words(q)),
        limit=LIMIT,
    )


def band_word(rng: random.Random, corpus: Corpus, band: str) -> str:
    if band == "common":
        return rng.choice(COMMON)
    if band == "mid":
        return rng.choice(corpus.mid)
    return rng.choice(corpus.rare)


def requests(kind: str, corpus: Corpus, samples: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    made = []
    combos = filter_combinations()
    bands = ("common", "mid", "rare")
    for n in range(samples):
        if kind == "filters":
            combo = combos[n % len(combos)]
            made.append(Request(f"filters{combo}", make_query(rng, corpus, combo), False))
        elif kind == "text":
            band = bands[n % 3]
            word = band_word(rng, corpus, band)
            made.append(Request(band, make_query(rng, corpus, (False,) * 3, word), True))
        else:
            band = bands[n % 3]
            combo = rng.choice(combos[1:])
            word = band_word(rng, corpus, band)
            made.append(Request(band, make_query(rng, corpus, combo, word), False))
    return made


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Measured:
    first_ms: list[float] = field(default_factory=list)
    tenth_ms: list[float] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)  # email documents per request (Firestore)
    fill_reads: list[int] = field(default_factory=list)  # of full pages
    name_reads: list[int] = field(default_factory=list)


NAME_COLLECTIONS = ("investors", "email_accounts", "email_investor_links")


def timed_page(store: Store, query: ActivityQuery, measured: Measured) -> tuple[float, Any]:
    email_reads = getattr(store, "activity_email_reads", None)
    names_before = _name_reads(store)
    started = time.perf_counter()
    page = activity.search(store, query)
    elapsed = (time.perf_counter() - started) * 1000
    if email_reads is not None:
        read = store.activity_email_reads - email_reads  # type: ignore[attr-defined]
        measured.reads.append(read)
        if len(page.items) == query.limit:
            measured.fill_reads.append(read)
        measured.name_reads.append(_name_reads(store) - names_before)
    return elapsed, page


def _name_reads(store: Store) -> int:
    reads = getattr(store, "reads", None)
    return sum(reads.get(c, 0) for c in NAME_COLLECTIONS) if isinstance(reads, dict) else 0


def measure(store: Store, reqs: Sequence[Request], page10_share: int) -> Measured:
    measured = Measured()
    for n, request in enumerate(reqs):
        elapsed, page = timed_page(store, request.query, measured)
        measured.first_ms.append(elapsed)
        if n % page10_share != 0:
            continue
        # Walk to the tenth page; only the tenth is kept as a page-10 sample.
        pages = 1
        while page.has_more and pages < PAGES:
            query = request.query.model_copy(update={"page_token": page.next_page_token})
            elapsed, page = timed_page(store, query, measured)
            pages += 1
            if pages == PAGES:
                measured.tenth_ms.append(elapsed)
    return measured


def baseline_get_ms(store: Store, corpus: Corpus) -> float:
    rng = random.Random(3)
    times = []
    for email in rng.sample(corpus.emails, 30):
        started = time.perf_counter()
        store.get_email(email.id)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def naive_ms(store: Any) -> float:
    """The seed spec's query shape on the same rows, first page, no filter."""
    sql = (
        "SELECT e.id FROM emails e"
        " WHERE EXISTS (SELECT 1 FROM investor_links l WHERE l.email_id = e.id)"
        " AND EXISTS (SELECT 1 FROM sightings s WHERE s.email_id = e.id AND s.deleted = 0)"
        " ORDER BY json_extract(e.doc, '$.date') DESC, e.id DESC LIMIT ?"
    )
    conn = store._connection()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        conn.execute(sql, (LIMIT + 1,)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# -- stores ------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_store(kind: str, workdir: Path) -> Iterator[Store]:
    if kind == "sqlite":
        from shared.adapters.sqlite import SqliteStore

        sqlite = SqliteStore(workdir / f"activity-{uuid.uuid4().hex[:8]}.sqlite3")
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
    from shared.adapters.firestore import FirestoreStore

    with FirestoreEmulator() as emulator:
        client = emulator.client(new_project_id("bench"))
        try:
            yield FirestoreStore(client)
        finally:
            client.close()


@dataclass(frozen=True)
class Config:
    store: str
    corpus: int
    samples: int


KINDS = ("filters", "text", "text+filters")


def run_config(config: Config, workdir: Path) -> list[str]:
    label = f"[{config.store} corpus={config.corpus}]"
    corpus = make_corpus(config.corpus)
    lines = []
    with open_store(config.store, workdir) as store:
        print(f"{label} populating ...", flush=True)
        started = time.perf_counter()
        seed_directory(store, corpus)
        if config.store == "sqlite":
            populate_sqlite(store, corpus)
        else:
            populate_firestore(store, corpus)
        print(f"  populated in {time.perf_counter() - started:.0f} s", flush=True)
        # The corpus's objects stay alive for the run: keep the collector from walking them
        # during timed requests (a server's heap does not hold the whole corpus).
        gc.collect()
        gc.freeze()
        every = activity.search(store, ActivityQuery(limit=1))
        assert every.items, "nothing is listed"
        base = baseline_get_ms(store, corpus)
        naive = naive_ms(store) if config.store == "sqlite" else None
        print(
            f"  baselines: get_email {base:.2f} ms"
            + (f"; the seed's plain query {naive:.0f} ms" if naive is not None else ""),
            flush=True,
        )
        for index, kind in enumerate(KINDS):
            reqs = requests(kind, corpus, config.samples, seed=17 + index)
            # Page-10 walks on a third of the samples: each costs ten requests.
            measured = measure(store, reqs, page10_share=3)
            lines.append(result_line(config, kind, measured, base, naive))
            print(f"  {lines[-1].removeprefix('RESULT ')}", flush=True)
    gc.unfreeze()
    return lines


def result_line(config: Config, kind: str, m: Measured, base: float, naive: float | None) -> str:
    def ms(values: Sequence[float], share: float) -> str:
        return f"{percentile(values, share):.2f}" if values else "-"

    parts = [
        f"RESULT store={config.store}",
        f"corpus={config.corpus}",
        f"kind={kind}",
        f"p50_ms={ms(m.first_ms, 0.5)}",
        f"p95_ms={ms(m.first_ms, 0.95)}",
        f"max_reads_per_page={max(m.reads) if m.reads else '-'}",
        f"limit={LIMIT}",
        f"page10_p50_ms={ms(m.tenth_ms, 0.5)}",
        f"page10_p95_ms={ms(m.tenth_ms, 0.95)}",
        f"samples={len(m.first_ms)}",
        f"page10_samples={len(m.tenth_ms)}",
        f"baseline_get_ms={base:.2f}",
    ]
    if naive is not None:
        parts.append(f"naive_ms={naive:.1f}")
    if m.reads:
        fill = max(m.fill_reads) if m.fill_reads and kind != "text+filters" else "-"
        parts.append(f"fill_reads_max={fill}")
        parts.append(f"name_reads_per_page={statistics.mean(m.name_reads):.1f}")
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated subset of sqlite,firestore")
    parser.add_argument("--sqlite-corpus", default="10000,100000")
    parser.add_argument("--firestore-corpus", default="2000,10000")
    parser.add_argument("--samples", type=int, default=0, help="first pages per kind")
    args = parser.parse_args(argv)
    wanted = {key for key in args.only.split(",") if key}
    sizes = {
        "sqlite": [int(n) for n in args.sqlite_corpus.split(",") if n],
        "firestore": [int(n) for n in args.firestore_corpus.split(",") if n],
    }
    if args.quick:
        sizes = {"sqlite": [2000], "firestore": [300]}
    samples = {"sqlite": args.samples or 90, "firestore": args.samples or 30}
    configs = [
        Config(store, size, samples[store])
        for store in ("sqlite", "firestore")
        if not wanted or store in wanted
        for size in sizes[store]
    ]
    if not configs:
        parser.error(f"--only matched nothing: {args.only}")
    print(
        f"activity search over {MAILBOXES} mailboxes and {INVESTORS} investors, limit {LIMIT}; "
        f"timed: shared.services.activity.search (store + names)",
        flush=True,
    )
    return run_configs("activity", configs, run_config)


if __name__ == "__main__":
    sys.exit(main())
