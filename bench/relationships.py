"""Relationship intelligence: the ranked investor list, the daily re-score, and what keeping the
figures adds to capture.

What it measures:

- **The list** (``shared.services.relationships.ranked_investors``: the store's query plus the
  page's name look-ups, what ``GET /investors/relationships`` does after parsing), sorted by
  ``strength`` and by ``last_contact``, ``limit`` 50: the first page, and the tenth (pages 1-9
  walked with their tokens first, only the tenth timed). On Firestore, the documents read per
  page: ``relationship_scores`` read by the query (at most ``limit`` + 1) and, apart, the
  ``investors`` name look-ups (one per listed item).
- **The daily re-score** of every investor (``rescore_all``): seconds on SQLite; documents read
  and written on Firestore. Measured on each store's first corpus; for the others the same
  scores are computed in memory from the corpus rows and written through the store.
- **The added cost per captured matched message**: the same mail written through the store's
  capture calls (email, links, sighting last) into two fresh stores, one keeping relationship
  rows and one with ``_refresh_email`` as it was before them (SQLite, CPU time by
  ``time.process_time``, best of three alternating rounds); on Firestore the relationship rows
  the store wrote per message (``FirestoreStore.writes``), the extra writes capture pays.

Corpora: SQLite 100,000 matched emails over 2,000 investors (Zipf-like skew, 20 mailboxes, a
fifth outbound, threads of one to four messages over 400 days); Firestore (the emulator,
started here) 2,000 and 4,000 emails over 2,000 investors. The contribution rows of the corpus
are written in bulk as the store writes them (SQLite: ``INSERT`` of the row's JSON; Firestore:
batched ``set`` of ``_document(row)``): writing 100,000 emails through capture-sized
transactions would take most of the run, and the list and the re-score read only the rows.
The first emails are also written through the store's methods and their rows compared with the
bulk ones, so the two cannot drift.

Run time: about 6 minutes on 2 shared cores (most of it the emulator: populating, and the
re-score at 2,000 emails, about a minute, as the emulator scans the collection for each
investor's query; production does not).

Output: human lines, then ``RESULT store=<s> corpus=<n> kind=<strength|last_contact> p50_ms=<x>
p95_ms=<x> reads_per_page=<n or -> added_cpu_ms_per_msg=<x> added_writes_per_msg=<n or ->``
followed by ``page10_p50_ms``, ``page10_p95_ms``, ``name_reads_per_page``, ``limit``; and per
store and corpus one ``RESULT ... kind=rescore investors=<n> seconds=<x> reads=<n or ->
writes=<n or ->``.

    PYTHONPATH=. .venv/bin/python bench/relationships.py [--quick] [--only sqlite,firestore]
        [--sqlite-corpus 100000] [--firestore-corpus 2000,4000] [--samples N]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import time
import types
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._support import run_configs, team_address
from bench.activity import open_store
from shared.domain.models import (
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
from shared.domain.relationships import Contribution, RelationshipSort, contributions_of
from shared.services import relationships

MAILBOXES = 20
INVESTORS = 2_000
LIMIT = 50
PAGES = 10
OUTBOUND_SHARE = 0.20
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CHECKED = 30  # emails also written through the store and their rows compared with the bulk
CAPTURE_SAMPLE = 1_000  # messages captured per round for the added cost (SQLite)
FIRESTORE_CAPTURE_SAMPLE = 60
BATCH = 400


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# -- the corpus --------------------------------------------------------------------------------


@dataclass
class Corpus:
    accounts: list[EmailAccount]
    investors: list[Investor]
    emails: list[Email] = field(default_factory=list)
    links: dict[str, list[InvestorLink]] = field(default_factory=dict)
    sightings: dict[str, list[Sighting]] = field(default_factory=dict)


def make_corpus(size: int, seed: int = 11, investors: int = INVESTORS) -> Corpus:
    rng = random.Random(seed)
    accounts = [EmailAccount.new(team_address(i)) for i in range(MAILBOXES)]
    people = [
        Investor(id=f"inv-{i:04d}", name=f"LP {i} Fund", emails=[f"partner{i}@lp{i}.vc"])
        for i in range(investors)
    ]
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(investors)]
    corpus = Corpus(accounts, people)
    chosen_all = rng.choices(range(investors), weights=weights, k=size)
    thread_root = ""
    thread_left = 0
    for n in range(size):
        investor = people[chosen_all[n]]
        box = accounts[rng.randrange(MAILBOXES)]
        outbound = rng.random() < OUTBOUND_SHARE
        contact = Mailbox(address=investor.emails[0])
        sender, to = (
            (Mailbox(address=box.address), contact)
            if outbound
            else (contact, Mailbox(address=box.address))
        )
        message_id = f"<{n}.{rng.getrandbits(32):08x}@bench.example>"
        if thread_left <= 0:
            thread_root, thread_left = message_id, rng.randint(1, 4)
        thread_left -= 1
        email = Email(
            id=f"{rng.getrandbits(64):016x}",
            message_id=message_id,
            references=[thread_root] if thread_root != message_id else [],
            subject="Quarterly update",
            sender=sender,
            to=[to],
            date=NOW - timedelta(seconds=rng.randrange(400 * 86_400)),
            first_seen_at=NOW,
            participant_addresses=[sender.address, to.address],
        )
        corpus.emails.append(email)
        corpus.links[email.id] = [
            InvestorLink.new(email.id, investor.id, None, investor.emails[0], MatchHeader.FROM)
        ]
        corpus.sightings[email.id] = [
            Sighting.new(box.id, f"{rng.getrandbits(48):012x}", email.id, is_sent=outbound)
        ]
    return corpus


def rows_of(corpus: Corpus, email: Email) -> dict[str, Contribution]:
    return contributions_of(email, corpus.sightings[email.id], corpus.links[email.id])


def seed_directory(store: Any, corpus: Corpus) -> None:
    for index, account in enumerate(corpus.accounts):
        user = User.new(account.address, f"Team {index}", Role.ADMIN if index == 0 else Role.MEMBER)
        store.add_user(user)
        store.add_email_account(account.model_copy(update={"user_id": user.id}))


def capture(store: Any, corpus: Corpus, emails: Sequence[Email]) -> None:
    """As capture writes matched mail: the email, its links, then the sighting (last)."""
    for email in emails:
        store.upsert_email(email)
        for link in corpus.links[email.id]:
            store.link_email_to_investor(link)
        for sighting in corpus.sightings[email.id]:
            store.record_sighting(sighting)


def populate_sqlite(store: Any, corpus: Corpus) -> None:
    from shared.adapters.sqlite.base import _dump

    for investor in corpus.investors:
        store.upsert_investor(investor)
    checked = corpus.emails[:CHECKED]
    capture(store, corpus, checked)
    for email in checked:
        want = rows_of(corpus, email)
        for row in want.values():
            if store.list_investor_contributions(row.investor_id).count(row) != 1:
                raise RuntimeError("the store's rows differ from the bulk rows")
    rows = [row for email in corpus.emails[CHECKED:] for row in rows_of(corpus, email).values()]
    with store._write() as conn:
        conn.executemany(
            "INSERT INTO relationship_contributions (id, email_id, investor_id, at_key, doc)"
            " VALUES (?,?,?,?,?)",
            [(r.id, r.email_id, r.investor_id, r.at_key, _dump(r)) for r in rows],
        )
    print(f"    {CHECKED} emails through the store match the bulk rows; {len(rows)} rows bulk")


def populate_firestore(store: Any, corpus: Corpus) -> None:
    from shared.adapters.firestore.documents import CONTRIBUTIONS, INVESTORS, _document

    client = store._client
    for start in range(0, len(corpus.investors), BATCH):
        batch = client.batch()
        for investor in corpus.investors[start : start + BATCH]:
            batch.set(client.collection(INVESTORS).document(investor.id), _document(investor))
        batch.commit()
    checked = corpus.emails[:CHECKED]
    capture(store, corpus, checked)
    for email in checked:
        for row in rows_of(corpus, email).values():
            stored = client.collection(CONTRIBUTIONS).document(row.id).get().to_dict()
            if stored != _document(row):
                raise RuntimeError("the store's row differs from the bulk document")
    rows = [row for email in corpus.emails[CHECKED:] for row in rows_of(corpus, email).values()]
    for start in range(0, len(rows), BATCH):
        batch = client.batch()
        for row in rows[start : start + BATCH]:
            batch.set(client.collection(CONTRIBUTIONS).document(row.id), _document(row))
        batch.commit()
    print(f"    {CHECKED} emails through the store match the bulk documents; {len(rows)} bulk")


# -- measurements ------------------------------------------------------------------------------


def _reads(store: Any, collection: str) -> int:
    return int(getattr(store, "reads", {}).get(collection, 0))


@dataclass
class Listed:
    first_ms: list[float] = field(default_factory=list)
    tenth_ms: list[float] = field(default_factory=list)
    score_reads: list[int] = field(default_factory=list)
    name_reads: list[int] = field(default_factory=list)


def timed_page(store: Any, sort: RelationshipSort, token: str, m: Listed) -> tuple[float, str]:
    scores_before = _reads(store, "relationship_scores")
    names_before = _reads(store, "investors")
    started = time.perf_counter()
    page = relationships.ranked_investors(store, sort, limit=LIMIT, page_token=token)
    elapsed = (time.perf_counter() - started) * 1000
    if hasattr(store, "reads"):
        m.score_reads.append(_reads(store, "relationship_scores") - scores_before)
        m.name_reads.append(_reads(store, "investors") - names_before)
    assert len(page.items) == LIMIT, "a page of the ranking came back short"
    return elapsed, page.next_page_token


def measure_list(store: Any, sort: RelationshipSort, samples: int) -> Listed:
    m = Listed()
    for n in range(samples):
        elapsed, _ = timed_page(store, sort, "", m)
        m.first_ms.append(elapsed)
        if n % 3 == 0:
            token = ""
            for _ in range(PAGES - 1):
                _, token = timed_page(store, sort, token, m)
            elapsed, _ = timed_page(store, sort, token, m)
            m.tenth_ms.append(elapsed)
    return m


def _refresh_email_without_rows(self: Any, conn: Any, email: Email) -> Email:
    """``SqliteMail._refresh_email`` as it was before relationship rows (it read only the
    sightings' mailbox ids and the links' investor ids): the baseline of the added cost."""
    from shared.adapters.sqlite.base import _dump
    from shared.domain.models import utcnow

    live = sorted(
        {
            row[0]
            for row in conn.execute(
                "SELECT account_id FROM sightings WHERE email_id = ? AND deleted = 0", (email.id,)
            )
        }
    )
    investors = sorted(
        {
            row[0]
            for row in conn.execute(
                "SELECT investor_id FROM investor_links WHERE email_id = ?", (email.id,)
            )
        }
    )
    email = email.denormalised(live, investors, at=utcnow())
    conn.execute(
        "INSERT OR REPLACE INTO emails (id, matched, matched_key, doc) VALUES (?,?,?,?)",
        (email.id, int(email.matched), email.matched_key, _dump(email)),
    )
    self._sync_activity(conn, email)
    return email


def added_cpu_ms_per_msg(workdir: Path) -> float:
    """CPU per captured matched message with rows minus without, best of three rounds."""
    from shared.adapters.sqlite import SqliteStore

    corpus = make_corpus(CAPTURE_SAMPLE, seed=23, investors=200)
    per_round: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):
        for keep in (True, False):
            store = SqliteStore(workdir / f"cap-{uuid.uuid4().hex[:8]}.sqlite3")
            seed_directory(store, corpus)
            for investor in corpus.investors:
                store.upsert_investor(investor)
            if not keep:
                store._refresh_email = types.MethodType(_refresh_email_without_rows, store)  # type: ignore[method-assign]
            gc.collect()
            started = time.process_time()
            capture(store, corpus, corpus.emails)
            per_round[keep].append((time.process_time() - started) * 1000 / CAPTURE_SAMPLE)
            rows = len(store.list_contributions(limit=CAPTURE_SAMPLE + 1))
            assert rows == (CAPTURE_SAMPLE if keep else 0), rows
            store.close()
    with_rows, without = min(per_round[True]), min(per_round[False])
    print(
        f"  capture CPU per matched message: {with_rows:.3f} ms with rows, {without:.3f} ms"
        f" without (best of 3 each)",
        flush=True,
    )
    return with_rows - without


def added_writes_per_msg(store: Any) -> float:
    """Relationship rows the store wrote per captured message, redeliveries included (a
    redelivery writes none)."""
    corpus = make_corpus(FIRESTORE_CAPTURE_SAMPLE, seed=29, investors=50)
    for investor in corpus.investors:
        store.upsert_investor(investor)
    before = store.writes.get("relationship_contributions", 0)
    capture(store, corpus, corpus.emails)
    first = store.writes.get("relationship_contributions", 0) - before
    capture(store, corpus, corpus.emails[:10])  # redelivered
    again = store.writes.get("relationship_contributions", 0) - before - first
    print(
        f"  capture of {len(corpus.emails)} matched messages wrote {first} relationship rows;"
        f" 10 redeliveries wrote {again}",
        flush=True,
    )
    return first / len(corpus.emails)


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())


@dataclass(frozen=True)
class Config:
    store: str
    corpus: int
    samples: int
    rescore: bool = True


def measure_rescore(store: Any, config: Config) -> str:
    reads_before = dict(getattr(store, "reads", {}))
    writes_before = dict(getattr(store, "writes", {}))
    started = time.perf_counter()
    result = relationships.rescore_all(store, now=NOW)
    seconds = time.perf_counter() - started
    if config.store == "firestore":
        reads = total(store.reads) - total(reads_before)
        writes = total(store.writes) - total(writes_before)
        detail = {k: v - reads_before.get(k, 0) for k, v in store.reads.items()}
        print(f"  re-score reads by collection: {json.dumps(detail, sort_keys=True)}")
    else:
        reads = writes = -1
    return " ".join(
        [
            f"RESULT store={config.store}",
            f"corpus={config.corpus}",
            "kind=rescore",
            f"investors={result.investors}",
            f"seconds={seconds:.2f}",
            f"reads={reads if reads >= 0 else '-'}",
            f"writes={writes if writes >= 0 else '-'}",
        ]
    )


def score_in_memory(store: Any, corpus: Corpus) -> None:
    """The scores ``rescore_all`` would write, from the corpus's rows in memory (the same
    domain functions), written through the store: for corpora where the re-score itself is
    not the measurement (the emulator scans the collection per investor query)."""
    from shared.domain.relationships import figures_of, score_of, teammate_directory

    directory = teammate_directory(store.list_email_accounts(), store.list_users())
    by_investor: dict[str, list[Contribution]] = {i.id: [] for i in corpus.investors}
    for email in corpus.emails:
        for row in rows_of(corpus, email).values():
            by_investor[row.investor_id].append(row)
    store.put_relationship_scores(
        score_of(key, figures_of(rows, directory, NOW), listed=True, previous=None, now=NOW)
        for key, rows in by_investor.items()
    )


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
        gc.collect()
        gc.freeze()
        if config.rescore:
            lines.append(measure_rescore(store, config))
        else:
            score_in_memory(store, corpus)
            print("  scores computed in memory from the corpus rows (re-score measured once)")
        if config.rescore:
            print(f"  {lines[-1].removeprefix('RESULT ')}", flush=True)
        if config.store == "sqlite":
            cpu, writes_per_msg = f"{added_cpu_ms_per_msg(workdir):.3f}", "-"
        else:
            cpu, writes_per_msg = "-", f"{added_writes_per_msg(store):.2f}"
        for sort in RelationshipSort:
            m = measure_list(store, sort, config.samples)
            per_page = f"{max(m.score_reads)}" if m.score_reads else "-"
            parts = [
                f"RESULT store={config.store}",
                f"corpus={config.corpus}",
                f"kind={sort.value}",
                f"p50_ms={percentile(m.first_ms, 0.5):.2f}",
                f"p95_ms={percentile(m.first_ms, 0.95):.2f}",
                f"reads_per_page={per_page}",
                f"added_cpu_ms_per_msg={cpu}",
                f"added_writes_per_msg={writes_per_msg}",
                f"page10_p50_ms={percentile(m.tenth_ms, 0.5):.2f}",
                f"page10_p95_ms={percentile(m.tenth_ms, 0.95):.2f}",
                "name_reads_per_page="
                + (f"{statistics.mean(m.name_reads):.1f}" if m.name_reads else "-"),
                f"limit={LIMIT}",
                f"samples={len(m.first_ms)}",
            ]
            lines.append(" ".join(parts))
            print(f"  {lines[-1].removeprefix('RESULT ')}", flush=True)
        gc.unfreeze()
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated subset of sqlite,firestore")
    parser.add_argument("--sqlite-corpus", default="100000")
    parser.add_argument("--firestore-corpus", default="2000,4000")
    parser.add_argument("--samples", type=int, default=0, help="first pages per sort")
    args = parser.parse_args(argv)
    wanted = {key for key in args.only.split(",") if key}
    sizes = {
        "sqlite": [int(n) for n in args.sqlite_corpus.split(",") if n],
        "firestore": [int(n) for n in args.firestore_corpus.split(",") if n],
    }
    if args.quick:
        sizes = {"sqlite": [5000], "firestore": [600]}
    samples = {"sqlite": args.samples or 60, "firestore": args.samples or 9}
    # The re-score is measured on each store's first corpus (on the emulator it takes minutes
    # and its reads and writes depend on the investors, not on the corpus beyond their rows).
    configs = [
        Config(store, size, samples[store], rescore=index == 0)
        for store in ("sqlite", "firestore")
        if not wanted or store in wanted
        for index, size in enumerate(sizes[store])
    ]
    if not configs:
        parser.error(f"--only matched nothing: {args.only}")
    print(
        f"relationships over {MAILBOXES} mailboxes and {INVESTORS} investors, limit {LIMIT}; timed:"
        " shared.services.relationships.ranked_investors (store + names)",
        flush=True,
    )
    return run_configs("relationships", configs, run_config)


if __name__ == "__main__":
    sys.exit(main())
