"""Time and peak Python memory of a CSV export of approved activities, on SQLite.

What it measures: ``shared.services.exports.start_export`` for activities with ``limit`` equal
to the whole table, consumed line by line into a sink that only counts bytes (what the web
layer does when it streams the reply), at 10,000 and 100,000 activities:

- ``seconds``: wall time of the export, without tracemalloc (it slows allocation down);
- ``peak_mb``: the tracemalloc peak during an identical export, relative to the memory traced
  when it started, after a traced warm-up export (which fills pydantic-core's bounded,
  process-wide JSON string cache, as a long-running server has it). Flat means the peak at
  100,000 is at most 1.2 times the peak at 10,000: the export holds one store page
  (``EXPORT_PAGE`` rows) at a time, never the file.
  (SQLite's own page cache is C memory, outside tracemalloc; it is bounded by its settings.)

The activities are written straight into the table the way an approval writes them (the
listing columns and the document), in one transaction: approving 100,000 proposals one
request at a time would time the approvals, not the export. Each has a subject-like summary
of 40-90 characters, a fifth of them starting with a formula character (escaped on export).

Usage: ``python -m bench.export [--sizes 10000 100000]``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.adapters.sqlite import SqliteStore
from shared.domain.models import Activity, Caller, Role
from shared.services import exports

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CALLER = Caller(email="ada@fund.example", role=Role.ADMIN)
WORDS = [
    "quarterly",
    "update",
    "term",
    "sheet",
    "capital",
    "call",
    "follow",
    "up",
    "intro",
    "meeting",
    "notes",
    "fund",
]


def seed(store: SqliteStore, count: int, rng: random.Random) -> None:
    activities: Iterator[Activity] = (
        Activity(
            id=f"act-{n:07d}",
            proposal_id=f"act-{n:07d}",
            email_id=f"email-{n:07d}",
            investor_id=f"inv-{rng.randrange(300):03d}",
            contact_id=f"con-{rng.randrange(600):03d}",
            account_id=f"acct-{rng.randrange(20):02d}",
            occurred_at=T0 + timedelta(minutes=n),
            summary=("=" if rng.random() < 0.2 else "")
            + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 12))),
            created_by="ada@fund.example",
            created_at=T0 + timedelta(minutes=n, hours=1),
        )
        for n in range(count)
    )
    with store._write() as conn:
        for activity in activities:
            store._put_activity_row(conn, activity)


def run_export(store: SqliteStore, rows: int) -> tuple[int, str]:
    """The whole export, streamed into a byte counter; (bytes, trailer line)."""
    size = 0
    last = ""
    request = exports.ExportRequest(kind=exports.ExportKind.ACTIVITIES, limit=rows)
    for line in exports.start_export(store, CALLER, request):
        size += len(line.encode("utf-8"))
        last = line
    return size, last.strip()


def measure(count: int, directory: Path) -> tuple[float, float]:
    store = SqliteStore(directory / f"export-{count}.sqlite3")
    seed(store, count, random.Random(count))

    started = time.perf_counter()
    size, last = run_export(store, count)
    seconds = time.perf_counter() - started
    assert last == f"# rows={count}", last

    # Traced from a warm-up export on: pydantic-core's JSON string cache (process-wide,
    # 16,384 entries) is then full of traced strings, as in a long-running server, and the
    # measured export replaces entries instead of looking like growth.
    tracemalloc.start()
    run_export(store, count)
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    run_export(store, count)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    store.close()
    peak_mb = peak / 1e6
    print(f"RESULT rows={count} seconds={seconds:.2f} peak_mb={peak_mb:.2f}")
    print(f"  ({size / 1e6:.1f} MB of CSV, {count / seconds:,.0f} rows/s)")
    return seconds, peak_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        peaks = [measure(count, Path(tmp))[1] for count in args.sizes]
    if len(peaks) >= 2:
        ratio = peaks[-1] / peaks[0]
        verdict = "flat" if ratio <= 1.2 else "NOT flat"
        print(f"peak at {args.sizes[-1]:,} / peak at {args.sizes[0]:,} = {ratio:.2f} ({verdict})")
        return 0 if ratio <= 1.2 else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
