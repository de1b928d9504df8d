"""Backfill throughput of Gmail capture against Gmail's real per-user quota.

What it measures: a full sync (``shared.services.sync.run_sync`` called until it reports
"ran", with a one-hour budget so a run never stops early) of mailboxes held by the Gmail sandbox
with Gmail's REAL per-user rate enforced (``units_per_second=250``, real clock, the default
concurrency limit of 10 requests in flight per user) through the production client as
``shared.wiring`` builds it (domain-wide delegation, ``gmail_batch_size`` default 10, the
default ``RetryPolicy``). Configurations:

- ``sqlite``, 1 mailbox, 5,000 messages;
- ``sqlite``, 4 mailboxes at once (one thread each, one mailbox each), 5,000 messages each; the
  quota is per user, so the ceiling is 4 x one mailbox's;
- ``firestore`` (the emulator, started here), 1 mailbox, 2,000 messages;
- ``firestore-matched`` and ``firestore-unmatched``: 1 mailbox of 500 messages, every one
  matched, or none (strangers and 5% bulk): what one message of each kind costs in Firestore
  documents read and written (the adapter counts both, ``FirestoreStore.reads``/``writes``)
  and in Gmail quota units.

The mail (``bench/_support.py``): per mailbox exactly 20% matched (from, or for a quarter of
them sent to, one of 40 LPs' contacts or another person at an LP's domain), 5% bulk (LP
newsletters with List-Id: never matched) and 75% strangers; text bodies of 0.5-3 KB.

The ceiling: the fetch plan costs a metadata get (5 units) for every message, a raw get (5 units)
for matched mail, and a messages.list (5 units) per 500 ids: 250 / (5 + 5 x 0.20 + 0.01) = 41.6
messages/s per mailbox. ``rate`` = messages / wall time of the whole sync; ``ratio`` =
rate / ceiling.

CPU time: the sandbox runs in a child process (``bench/_support.py`` says why), so this
process's CPU time (``time.process_time()``, all threads, including the Firestore client's
gRPC threads) over the sync is capture's own: HTTP client and batch parsing, parse, match,
store. ``cpu_ms_per_msg`` = that / messages. The sync threads' own ``time.thread_time()`` is
printed beside it.

Per message: ``units_per_msg`` = Gmail quota units the sandbox charged / messages captured;
on Firestore ``reads_per_msg`` and ``writes_per_msg`` = documents read and written over the
sync (the run's own bookkeeping included: lease, sync state, problems) / messages captured.

Output: human lines, then per configuration exactly ``RESULT store=<sqlite|firestore>
mailboxes=<n> messages=<n> rate=<msg/s> ceiling=<msg/s> ratio=<rate/ceiling>
cpu_ms_per_msg=<x> config=<key> units_per_msg=<x>``, and on Firestore also
``reads_per_msg=<x> writes_per_msg=<x>``.

    PYTHONPATH=. .venv/bin/python bench/capture.py [--quick]
        [--only sqlite1,sqlite4,firestore,firestore-matched,firestore-unmatched]
        [--per-mailbox N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._support import (
    BULK_SHARE,
    GMAIL_UNITS_PER_SECOND,
    MATCHED_SHARE,
    MailboxSpec,
    RemoteSandbox,
    ceiling_msgs_per_s,
    remote_sandbox,
    seed_crm,
)
from shared.adapters.gmail.api import GmailApiClient, QuotaPacer
from shared.adapters.gmail.credentials import SCOPE_READONLY, delegated_credentials
from shared.adapters.queue import LocalQueue
from shared.config import Settings
from shared.ports import Store
from shared.services import sync

RUN_BUDGET_S = 3600.0
MAX_RUNS = 50


@dataclass(frozen=True)
class Config:
    key: str
    store: str  # "sqlite" | "firestore"
    mailboxes: int
    per_mailbox: int
    matched_share: float = MATCHED_SHARE
    bulk_share: float = BULK_SHARE


@dataclass
class MailboxRun:
    address: str
    captured: int = 0
    matched: int = 0
    failed: int = 0
    runs: int = 0
    wall_s: float = 0.0
    thread_cpu_s: float = 0.0
    error: str = ""
    client_stats: dict[str, int] = field(default_factory=dict)
    sleeps: list[float] = field(default_factory=list)


def configs(quick: bool) -> list[Config]:
    if quick:
        return [
            Config("sqlite1", "sqlite", 1, 300),
            Config("sqlite4", "sqlite", 4, 150),
            Config("firestore", "firestore", 1, 200),
            Config("firestore-matched", "firestore", 1, 100, matched_share=1.0, bulk_share=0.0),
            Config("firestore-unmatched", "firestore", 1, 100, matched_share=0.0),
        ]
    return [
        Config("sqlite1", "sqlite", 1, 5000),
        Config("sqlite4", "sqlite", 4, 5000),
        Config("firestore", "firestore", 1, 2000),
        Config("firestore-matched", "firestore", 1, 500, matched_share=1.0, bulk_share=0.0),
        Config("firestore-unmatched", "firestore", 1, 500, matched_share=0.0),
    ]


@contextlib.contextmanager
def open_store(kind: str, workdir: Path) -> Iterator[Store]:
    if kind == "sqlite":
        from shared.adapters.sqlite import SqliteStore

        yield SqliteStore(workdir / f"crm-{uuid.uuid4().hex[:8]}.sqlite3")
        return
    from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
    from shared.adapters.firestore import FirestoreStore

    with FirestoreEmulator() as emulator:
        yield FirestoreStore(emulator.client(new_project_id("bench")))


BATCH_SIZE: int = Settings.model_fields["gmail_batch_size"].default
# The client paces itself as production does (shared.config: gmail_units_per_second).
UNITS_PER_SECOND_SETTING: float = Settings.model_fields["gmail_units_per_second"].default


def production_client(address: str, remote: RemoteSandbox, sleeps: list[float]) -> GmailApiClient:
    """The Gmail client as ``shared.wiring.gmail_for`` builds it: delegated read-only
    credentials, the configured batch size, the default retry policy. Only ``sleep`` is
    wrapped, to record the retry waits (it still really sleeps)."""

    def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    credentials = delegated_credentials(address, [SCOPE_READONLY], key_info=remote.key_info)
    return GmailApiClient(
        credentials,
        endpoint=remote.base_url,
        batch_size=BATCH_SIZE,
        sleep=recording_sleep,
        pacer=QuotaPacer(UNITS_PER_SECOND_SETTING),
    )


def make_client(address: str, remote: RemoteSandbox, sleeps: list[float]) -> GmailApiClient:
    return production_client(address, remote, sleeps)


def sync_mailbox(
    store: Store,
    client: Any,
    address: str,
    result: MailboxRun,
    start: threading.Barrier,
    profile: cProfile.Profile | None,
) -> None:
    """Sync one mailbox to the end (continuations included), recording counts and times."""
    account = store.get_email_account_by_address(address)
    assert account is not None
    start.wait()
    if profile is not None:
        profile.enable()
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        for _ in range(MAX_RUNS):
            outcome = sync.run_sync(
                store,
                sync.SyncRequest(account.id),
                gmail_for=lambda _address: client,
                queue=LocalQueue(),
                now=datetime.now(UTC),
                run_id=uuid.uuid4().hex,
                budget_s=RUN_BUDGET_S,
            )
            result.runs += 1
            if outcome.result is not None:
                result.captured += outcome.result.report.captured
                result.matched += outcome.result.report.matched
                result.failed += outcome.result.report.failed
            if not outcome.ran:
                raise RuntimeError(f"sync did not run: {outcome.reason}")
            if outcome.reason == "ran":
                break
        else:
            raise RuntimeError(f"sync of {address} not finished after {MAX_RUNS} runs")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.wall_s = time.perf_counter() - t0
        result.thread_cpu_s = time.thread_time() - c0
        if profile is not None:
            profile.disable()
        result.client_stats = client.stats()


def run_config(config: Config, workdir: Path, profile_path: str | None) -> dict[str, float]:
    now = datetime.now(UTC)
    specs = [
        MailboxSpec(
            index,
            f"team{index}@fund.example",
            config.per_mailbox,
            matched_share=config.matched_share,
            bulk_share=config.bulk_share,
        )
        for index in range(config.mailboxes)
    ]
    total = config.mailboxes * config.per_mailbox
    print(
        f"[{config.key}] loading {total} messages into the sandbox (child process) ...",
        flush=True,
    )
    with (
        remote_sandbox(specs, units_per_second=GMAIL_UNITS_PER_SECOND, now=now) as remote,
        open_store(config.store, workdir) as store,
    ):
        addresses = seed_crm(store, config.mailboxes)
        assert addresses == [spec.address for spec in specs]
        results = {address: MailboxRun(address) for address in addresses}
        clients = {
            address: make_client(address, remote, results[address].sleeps) for address in addresses
        }
        barrier = threading.Barrier(len(addresses) + 1)
        profiles = {address: cProfile.Profile() if profile_path else None for address in addresses}
        threads = [
            threading.Thread(
                target=sync_mailbox,
                args=(store, clients[a], a, results[a], barrier, profiles[a]),
                name=f"sync:{a}",
            )
            for a in addresses
        ]
        for thread in threads:
            thread.start()
        remote.reset_bucket()  # every mailbox starts with the same (full, 1 s) bucket
        reads0, writes0 = document_counts(store)
        reads_by0 = dict(getattr(store, "reads", None) or {})
        writes_by0 = dict(getattr(store, "writes", None) or {})
        units0 = sum(s["units"] for s in remote.stats().values())
        barrier.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        reads1, writes1 = document_counts(store)
        stats = remote.stats()
        problems = sum(
            len(store.list_capture_problems(store_account_id(store, a), limit=10000))
            for a in addresses
        )
        for client in clients.values():
            client.close()

    if profile_path:
        dump_profiles(profiles, f"{profile_path}.{config.key}")
    for address, run in results.items():
        kinds = remote.kinds[address]
        units = stats[address]["units"]
        calls = stats[address]["calls"]
        print(
            f"  {address}: {run.captured} captured ({run.matched} matched, {run.failed} failed; "
            f"generated {kinds}) in {run.wall_s:.1f} s over {run.runs} run(s); "
            f"{units} units = {units / max(run.captured, 1):.2f} units/msg, "
            f"{units / run.wall_s:.0f} units/s; sandbox calls {calls}; client {run.client_stats}; "
            f"retry sleeps {len(run.sleeps)} = {sum(run.sleeps):.1f} s "
            f"({100 * sum(run.sleeps) / run.wall_s:.0f}% of the wall time); "
            f"sync thread CPU {run.thread_cpu_s:.2f} s"
            + (f"; ERROR {run.error}" if run.error else "")
        )
    errors = [run.error for run in results.values() if run.error]
    captured = sum(run.captured for run in results.values())
    if captured != total or problems:
        print(
            f"  WARNING: {captured} of {total} messages captured, {problems} capture problems "
            "left in the store"
        )
    ceiling = ceiling_msgs_per_s(config.matched_share, GMAIL_UNITS_PER_SECOND) * config.mailboxes
    units = sum(s["units"] for s in stats.values()) - units0
    per_msg = {"units_per_msg": units / max(captured, 1)}
    if reads1 is not None and reads0 is not None and writes1 is not None and writes0 is not None:
        per_msg["reads_per_msg"] = (reads1 - reads0) / max(captured, 1)
        per_msg["writes_per_msg"] = (writes1 - writes0) / max(captured, 1)
        print(
            f"  Firestore documents per captured message: {per_msg['reads_per_msg']:.2f} read, "
            f"{per_msg['writes_per_msg']:.2f} written; Gmail {per_msg['units_per_msg']:.2f} "
            f"units/msg; reads by collection {diff_counts(store, 'reads', reads_by0)}, "
            f"writes by collection {diff_counts(store, 'writes', writes_by0)}"
        )
    rate = total / wall
    thread_cpu = sum(run.thread_cpu_s for run in results.values())
    print(
        f"  {config.store}, {config.mailboxes} mailbox(es) x {config.per_mailbox}: "
        f"{total} messages in {wall:.1f} s = {rate:.1f} msg/s; quota ceiling {ceiling:.1f} msg/s "
        f"(matched share {config.matched_share:.0%}, bulk {config.bulk_share:.0%}); "
        f"process CPU {cpu:.1f} s ({1000 * cpu / total:.2f} ms/msg), "
        f"sync threads CPU {thread_cpu:.1f} s ({1000 * thread_cpu / total:.2f} ms/msg)",
        flush=True,
    )
    if errors:
        raise RuntimeError(f"{config.key}: {errors[0]}")
    return {
        "rate": rate,
        "ceiling": ceiling,
        "ratio": rate / ceiling,
        "cpu_ms_per_msg": 1000 * cpu / total,
        **per_msg,
    }


def document_counts(store: Store) -> tuple[int | None, int | None]:
    """Firestore documents read and written so far (None on a store that does not count)."""
    reads = getattr(store, "reads", None)
    writes = getattr(store, "writes", None)
    return (
        sum(reads.values()) if reads is not None else None,
        sum(writes.values()) if writes is not None else None,
    )


def diff_counts(store: Store, name: str, before: dict[str, int]) -> dict[str, int]:
    now: dict[str, int] = getattr(store, name, None) or {}
    return {k: v - before.get(k, 0) for k, v in sorted(now.items()) if v - before.get(k, 0)}


def store_account_id(store: Store, address: str) -> str:
    account = store.get_email_account_by_address(address)
    assert account is not None
    return account.id


def dump_profiles(profiles: dict[str, cProfile.Profile | None], path: str) -> None:
    import pstats

    loaded = [p for p in profiles.values() if p is not None]
    if not loaded:
        return
    stats = pstats.Stats(loaded[0])
    for extra in loaded[1:]:
        stats.add(extra)
    stats.dump_stats(path)
    print(f"  profile of the sync thread(s) written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset of sqlite1,sqlite4,firestore,firestore-matched,"
        "firestore-unmatched",
    )
    parser.add_argument("--profile", default="", help="cProfile the sync threads to FILE.<key>")
    parser.add_argument(
        "--per-mailbox", type=int, default=0, help="override the messages per mailbox"
    )
    args = parser.parse_args(argv)
    wanted = {key for key in args.only.split(",") if key}
    selected = [c for c in configs(args.quick) if not wanted or c.key in wanted]
    if args.per_mailbox:
        selected = [
            Config(c.key, c.store, c.mailboxes, args.per_mailbox, c.matched_share, c.bulk_share)
            for c in selected
        ]
    if not selected:
        parser.error(f"--only matched nothing: {args.only}")
    print(
        f"Gmail sandbox at {GMAIL_UNITS_PER_SECOND:.0f} units/s per user, real clock, "
        f"concurrency limit 10; client batch size {BATCH_SIZE}, paced to "
        f"{UNITS_PER_SECOND_SETTING:.0f} units/s, default retry policy",
        flush=True,
    )
    lines: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        for config in selected:
            try:
                figures = run_config(config, Path(tmp), args.profile or None)
            except Exception as exc:
                print(f"capture: {config.key} failed: {exc}", file=sys.stderr, flush=True)
                failed = True
                continue
            lines.append(
                f"RESULT store={config.store} mailboxes={config.mailboxes} "
                f"messages={config.mailboxes * config.per_mailbox} "
                f"rate={figures['rate']:.1f} ceiling={figures['ceiling']:.1f} "
                f"ratio={figures['ratio']:.3f} cpu_ms_per_msg={figures['cpu_ms_per_msg']:.2f} "
                f"config={config.key} units_per_msg={figures['units_per_msg']:.2f}"
                + "".join(
                    f" {key}={figures[key]:.2f}"
                    for key in ("reads_per_msg", "writes_per_msg")
                    if key in figures
                )
            )
            print(lines[-1], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
