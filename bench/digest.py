"""Build time of the daily digest, and Firestore documents read, against the size of the store.

What it measures: the wall time of ``shared.services.digest.build_digest(store, since, until,
None)`` (the count-only fallback narrator: no model call is timed) over a window ("the day")
inside a larger corpus of investor mail, median of 3 builds; on Firestore also the documents
read by one build (the sum of the deltas of ``FirestoreStore.reads``, per collection too).
Configurations:

- ``sqlite``: corpora of 10,000 and 100,000 matched emails, of which the day holds 2,000;
- ``firestore`` (the emulator, started here, one per configuration): corpora of 2,000 and
  10,000, of which the day holds 500.

Targets: under 1 s on SQLite at 100,000; Firestore reads that grow with the day's mail, not with
the corpus (the two Firestore configurations have the same day, so their reads should match).

The store is populated directly through the Store port (no Gmail): 20 active users, one
mailbox each; 300 investors, each with an organisation (its own domain) and two contacts. Every
email is written as capture writes it: ``upsert_email`` (header fields, participants, snippet
and a 0.5-3 KB body, as matched mail keeps), ``link_email_to_investor`` (one investor, through
one of its contacts, carrying the names capture's matcher holds: ``LinkNames``), then
``record_sighting`` in each mailbox that saw it (the sighting last).
The mix: every email is in one mailbox, or in two for a quarter of them (a teammate on cc);
20% are outbound (from the mailbox owner to the contact, a Sent sighting); investors are picked
with a skew (a few busy LPs, a long tail). In the day, 5% of the mail is old when it is linked
(a late backfill: counted per investor, not listed).

The window: ``matched_at`` is the store's clock at link time, so the older corpus is populated
first, then ``since = now``, then the day's mail, then ``until = now``. The CRM is seeded at
least ``NAMES_CLOCK_SLACK`` (1 min) before the day's mail, as a fund's CRM predates its day
(the run waits out what is left of it): otherwise the digest re-reads every record as
possibly changed since the day's names were taken. The window is checked
(the store's listing of it holds exactly the day's mail) before anything is timed. Firestore
population runs on a few threads (each email's writes in order on one thread, through the Store
methods only): the emulator is a separate process, and one request at a time leaves it idle.

Run time: SQLite takes ~2.5 min (100,000 emails at ~900/s). The emulator
(@firestore-emulator/server) answers every query by scanning the whole collection, and every
link and sighting write runs two queries (the email's sightings and links) in its transaction,
so Firestore population is quadratic in the corpus: ~1 min at 2,000, ~4 min at 4,000, over
15 min at 10,000 on 2 cores; its build time grows with the corpus for the same reason (that is
the emulator, not Firestore: the reads do not grow). So the larger Firestore corpus defaults to
4,000, which keeps ``make bench`` to minutes and still doubles the corpus to show that reads
follow the day, not the corpus; ``--firestore-corpus 10000`` runs the issue's size (~25 min).

Output: human lines (population time, build times, the digest's counts, reads per collection),
then per configuration exactly ``RESULT store=<sqlite|firestore> corpus=<n> day_emails=<n>
build_s=<x> reads=<n or -> reads_per_email=<x or ->`` (documents read by one build per email
of the day: the issue's target is at most 1.5, the same at both corpus sizes).

    PYTHONPATH=. .venv/bin/python bench/digest.py [--quick] [--only sqlite,firestore]
        [--firestore-corpus N] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._support import team_address
from shared.domain.models import (
    NAMES_CLOCK_SLACK,
    Contact,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    LinkNames,
    Mailbox,
    MatchHeader,
    Organization,
    Role,
    Sighting,
    User,
    email_id_for,
)
from shared.ports import Store
from shared.services.digest import build_digest

MAILBOXES = 20
INVESTORS = 300
CONTACTS_PER_INVESTOR = 2
SECOND_MAILBOX_SHARE = 0.25  # a teammate on cc: the same email in two mailboxes
OUTBOUND_SHARE = 0.20  # from the mailbox owner to the contact
DAY_BACKFILL_SHARE = 0.05  # in the day's window but over 7 days old when linked
BUILDS = 3
FIRESTORE_WRITERS = 8

_BODY = (
    "Thanks for the update on the portfolio. We reviewed the numbers for the quarter and have a "
    "few questions on the cohort retention, the pipeline for next year and the runway after "
    "the bridge. Could we find thirty minutes next week? "
)


@dataclass(frozen=True)
class Config:
    store: str  # "sqlite" | "firestore"
    corpus: int  # matched emails in the store, the day's included
    day: int  # of which linked inside the window


def configs(quick: bool, firestore_large: int = 4_000) -> list[Config]:
    if quick:
        return [Config("sqlite", 1000, 200), Config("firestore", 300, 100)]
    return [
        Config("sqlite", 10_000, 2_000),
        Config("sqlite", 100_000, 2_000),
        Config("firestore", 2_000, 500),
        Config("firestore", firestore_large, 500),
    ]


# -- the CRM and the mail ---------------------------------------------------------------------


@dataclass(frozen=True)
class Crm:
    accounts: list[EmailAccount]
    contacts: list[Contact]  # CONTACTS_PER_INVESTOR per investor, investor by investor
    weights: list[float]  # per investor: how busy it is
    investors: dict[str, Investor]
    organizations: dict[str, Organization]


def seed(store: Store) -> Crm:
    """20 active users with one mailbox each (the first an admin); 300 investors, each with an
    organisation on its own domain and two contacts."""
    accounts = []
    for index in range(MAILBOXES):
        address = team_address(index)
        user = User.new(address, f"Team {index}", Role.ADMIN if index == 0 else Role.MEMBER)
        store.add_user(user)
        account = EmailAccount.new(address, user.id)
        store.add_email_account(account)
        accounts.append(account)
    contacts = []
    investors: dict[str, Investor] = {}
    organizations: dict[str, Organization] = {}
    for index in range(INVESTORS):
        domain = f"lp{index}.vc"
        org = Organization(id=f"org-{index}", name=f"LP {index} Capital", domains=[domain])
        investor = Investor(
            id=f"inv-{index}", name=f"LP {index} Fund", organization_id=org.id, domains=[domain]
        )
        store.upsert_organization(org)
        store.upsert_investor(investor)
        investors[investor.id], organizations[org.id] = investor, org
        for person in ("partner", "principal")[:CONTACTS_PER_INVESTOR]:
            contact = Contact(
                id=f"con-{person}-{index}",
                name=f"{person.title()} {index}",
                investor_id=investor.id,
                organization_id=org.id,
                emails=[f"{person}{index}@{domain}"],
            )
            store.upsert_contact(contact)
            contacts.append(contact)
    # Zipf-like: the busiest LP gets ~10x the mail of the median one.
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(INVESTORS)]
    return Crm(accounts, contacts, weights, investors, organizations)


@dataclass(frozen=True)
class Mail:
    email: Email
    link: InvestorLink
    sightings: tuple[Sighting, ...]


def make_mail(crm: Crm, serial: int, rng: random.Random, *, date: datetime) -> Mail:
    """One matched email as capture would store it, its link, and its sightings."""
    investor_index = rng.choices(range(INVESTORS), weights=crm.weights)[0]
    contact = crm.contacts[investor_index * CONTACTS_PER_INVESTOR + rng.randrange(2)]
    assert contact.investor_id is not None
    contact_box = Mailbox(name=contact.name, address=contact.emails[0])
    owners = rng.sample(range(MAILBOXES), 2 if rng.random() < SECOND_MAILBOX_SHARE else 1)
    team = [crm.accounts[i] for i in owners]
    team_boxes = [Mailbox(name=f"Team {i}", address=crm.accounts[i].address) for i in owners]
    outbound = rng.random() < OUTBOUND_SHARE
    if outbound:
        sender, to, header = team_boxes[0], [contact_box], MatchHeader.TO
    else:
        sender, to, header = contact_box, [team_boxes[0]], MatchHeader.FROM
    cc = team_boxes[1:]
    domain = sender.address.rsplit("@", 1)[1]
    message_id = f"<digest-bench-{serial}-{rng.getrandbits(32):08x}@{domain}>"
    subject = f"LP {investor_index}: quarterly follow-up #{serial}"
    body = _BODY * rng.randint(2, 12)
    everyone = [sender, *to, *cc]
    email = Email(
        id=email_id_for(message_id),
        message_id=message_id,
        subject=subject,
        sender=sender,
        to=to,
        cc=cc,
        date=date,
        size=len(body) + 900,
        participant_addresses=[m.address for m in everyone],
        participant_domains=sorted({m.address.rsplit("@", 1)[1] for m in everyone}),
        snippet=body[:200],
        body=body,
    )
    link = InvestorLink.new(email.id, contact.investor_id, contact.id, contact.emails[0], header)
    investor = crm.investors[contact.investor_id]
    organization = crm.organizations[investor.organization_id or ""]
    # The names capture's matcher held (contact, its investor, the organisation its domain
    # found), taken before it read them: here, when the mail is made.
    names = LinkNames.of(
        at=datetime.now(UTC), investor=investor, organization=organization, contact=contact
    )
    link = link.model_copy(update={"names": names})
    gmail_id = f"{rng.getrandbits(64):016x}"
    sightings = tuple(
        Sighting.new(
            account.id,
            gmail_id,
            email.id,
            thread_id=gmail_id,
            label_ids=["SENT"] if outbound and position == 0 else ["INBOX"],
            is_sent=outbound and position == 0,
            internal_date=date,
        )
        for position, account in enumerate(team)
    )
    return Mail(email, link, sightings)


def write_mail(store: Store, mail: Mail) -> None:
    """As capture writes a matched message: the email, its link, then each sighting."""
    store.upsert_email(mail.email)
    store.link_email_to_investor(mail.link)
    for sighting in mail.sightings:
        store.record_sighting(sighting)


def populate(
    store: Store, crm: Crm, first: int, count: int, *, now: datetime, day: bool, writers: int
) -> float:
    """Write ``count`` emails (serials from ``first``); returns the wall time. Corpus mail is
    dated over the last 300 days; the day's mail over the last 24 hours, except a late-backfill
    share dated weeks back."""
    rng = random.Random(first * 7919 + count)
    mail = []
    for serial in range(first, first + count):
        if day and rng.random() >= DAY_BACKFILL_SHARE:
            date = now - timedelta(hours=rng.uniform(0.05, 24))
        else:
            date = now - timedelta(days=rng.uniform(8 if day else 0.01, 300))
        mail.append(make_mail(crm, serial, rng, date=date))
    started = time.perf_counter()
    step = max(count // 5, 1000)

    def progress(done: int) -> None:
        if done % step == 0 and done < count:
            elapsed = time.perf_counter() - started
            print(f"    {done}/{count} in {elapsed:.0f} s ({done / elapsed:.0f}/s)", flush=True)

    if writers <= 1:
        for done, item in enumerate(mail, 1):
            write_mail(store, item)
            progress(done)
    else:
        with ThreadPoolExecutor(max_workers=writers) as pool:
            for done, _ in enumerate(pool.map(lambda item: write_mail(store, item), mail), 1):
                progress(done)
    return time.perf_counter() - started


# -- stores -----------------------------------------------------------------------------------


@contextlib.contextmanager
def open_store(kind: str, workdir: Path) -> Iterator[Store]:
    if kind == "sqlite":
        from shared.adapters.sqlite import SqliteStore

        yield SqliteStore(workdir / f"digest-{uuid.uuid4().hex[:8]}.sqlite3")
        return
    from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
    from shared.adapters.firestore import FirestoreStore

    with FirestoreEmulator() as emulator:
        yield FirestoreStore(emulator.client(new_project_id("bench")))


def reads_of(store: Store) -> dict[str, int] | None:
    reads = getattr(store, "reads", None)
    return dict(reads) if isinstance(reads, dict) else None


def window_count(store: Store, since: datetime, until: datetime) -> int:
    count, token = 0, ""
    while True:
        page = store.list_emails_matched_between(since, until, limit=500, page_token=token)
        count += len(page.items)
        token = page.next_token
        if not token:
            return count


def tick() -> datetime:
    """Now, a millisecond after whatever the store's clock last stamped: a strict window edge."""
    time.sleep(0.002)
    now = datetime.now(UTC)
    time.sleep(0.002)
    return now


# -- one configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    build_s: float
    reads: int | None


def run_config(config: Config, workdir: Path, profile: bool) -> Outcome:
    label = f"[{config.store} corpus={config.corpus} day={config.day}]"
    writers = FIRESTORE_WRITERS if config.store == "firestore" else 1
    older = config.corpus - config.day
    with open_store(config.store, workdir) as store:
        crm = seed(store)
        now = datetime.now(UTC)
        print(
            f"{label} populating {older} older emails, then the day's {config.day}, "
            f"({writers} writer thread(s)) ...",
            flush=True,
        )
        older_s = populate(store, crm, 0, older, now=now, day=False, writers=writers)
        # A fund's CRM predates the day's mail: the digest re-reads records stamped within
        # NAMES_CLOCK_SLACK before the day's oldest name-stamp, so let the seed age past it.
        settle = (now + NAMES_CLOCK_SLACK - datetime.now(UTC)).total_seconds()
        if settle > 0:
            print(f"  waiting {settle:.0f} s for the CRM's stamps to age past the slack")
            time.sleep(settle + 1)
        since = tick()
        day_s = populate(
            store, crm, older, config.day, now=datetime.now(UTC), day=True, writers=writers
        )
        until = tick()
        total = config.corpus
        print(
            f"  population: {total} emails in {older_s + day_s:.1f} s "
            f"({total / (older_s + day_s):.0f} emails/s; older {older_s:.1f} s, "
            f"day {day_s:.1f} s)",
            flush=True,
        )
        in_window = window_count(store, since, until)
        if in_window != config.day:
            raise RuntimeError(f"the window holds {in_window} emails, not {config.day}")

        times = []
        reads_per_build: list[dict[str, int]] = []
        digest = None
        for _ in range(BUILDS):
            before = reads_of(store)
            started = time.perf_counter()
            digest = build_digest(store, since, until, None)
            times.append(time.perf_counter() - started)
            after = reads_of(store)
            if before is not None and after is not None:
                reads_per_build.append(
                    {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
                )
        assert digest is not None
        build_s = statistics.median(times)
        print(
            f"  build_digest (fallback narrator): median {build_s:.3f} s of "
            f"{', '.join(f'{t:.3f}' for t in times)}; digest: {digest.email_count} emails, "
            f"{digest.investor_count} investors, {digest.user_count} users, "
            f"{digest.earlier_count} earlier; HTML {len(digest.html) / 1024:.0f} KB",
            flush=True,
        )
        reads: int | None = None
        if reads_per_build:
            per_collection = reads_per_build[0]
            reads = sum(per_collection.values())
            detail = ", ".join(f"{k} {v}" for k, v in sorted(per_collection.items()))
            print(
                f"  documents read by one build: {reads} ({detail}); "
                f"{reads / config.day:.2f} per email of the day",
                flush=True,
            )
        if profile:
            print_profile(store, since, until)
    return Outcome(build_s, reads)


def print_profile(store: Store, since: datetime, until: datetime, top: int = 18) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    build_digest(store, since, until, None)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print("  cProfile of one build (by own time):")
    for line in out.getvalue().splitlines():
        if line.strip():
            print(f"    {line}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated subset of sqlite,firestore")
    parser.add_argument("--profile", action="store_true", help="cProfile one build per config")
    parser.add_argument(
        "--firestore-corpus",
        type=int,
        default=4_000,
        help="the larger Firestore corpus (the emulator scans a collection per query: "
        "populating it is quadratic, ~25 min at 10,000 on 2 cores)",
    )
    args = parser.parse_args(argv)
    wanted = {key for key in args.only.split(",") if key}
    selected = [
        c for c in configs(args.quick, args.firestore_corpus) if not wanted or c.store in wanted
    ]
    if not selected:
        parser.error(f"--only matched nothing: {args.only}")
    print(
        f"digest over {MAILBOXES} mailboxes (one active user each), {INVESTORS} investors "
        f"({CONTACTS_PER_INVESTOR} contacts each); {SECOND_MAILBOX_SHARE:.0%} of mail in two "
        f"mailboxes, {OUTBOUND_SHARE:.0%} outbound; median of {BUILDS} builds",
        flush=True,
    )
    started = time.perf_counter()
    lines: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp:
        for config in selected:
            try:
                outcome = run_config(config, Path(tmp), args.profile)
            except Exception as exc:
                print(f"digest: {config} failed: {exc}", file=sys.stderr, flush=True)
                failed = True
                continue
            lines.append(
                f"RESULT store={config.store} corpus={config.corpus} day_emails={config.day} "
                f"build_s={outcome.build_s:.3f} "
                f"reads={outcome.reads if outcome.reads is not None else '-'} "
                "reads_per_email="
                + (f"{outcome.reads / config.day:.2f}" if outcome.reads is not None else "-")
            )
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    for line in lines:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
