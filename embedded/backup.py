"""Backups on one machine: a consistent copy of the SQLite store, and putting one back.

    python -m embedded.backup [--from var/crm.sqlite3] [--to var/backups/crm-<UTC time>.sqlite3]
    python -m embedded.backup --restore var/backups/crm-20260101T020000Z.sqlite3

A plain ``cp`` of a database in WAL mode can copy the main file and its ``-wal`` from two
different moments, and misses whatever the WAL still holds. SQLite's online backup API
(``sqlite3.Connection.backup``) copies every page inside one read transaction instead: a
snapshot of one moment, taken while the local server keeps writing (WAL readers never block
writers). It is done in one step on purpose: an incremental backup restarts whenever another
connection writes, so under a steady writer it might never finish.

The copy is switched to the rollback journal (one self-contained file, no ``-wal``/``-shm`` to
carry along), checked with ``PRAGMA integrity_check`` and only then renamed into place, so a
file at the target path is always a whole backup. ``--restore`` copies a backup back through the
same API into the live database, which keeps the live file's WAL consistent (copying a file over
a database whose ``-wal`` is still on disk could have SQLite replay stale frames onto it).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_BACKUP_DIR = Path("var/backups")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    schema_version: int


def default_target(now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return DEFAULT_BACKUP_DIR / f"crm-{stamp}.sqlite3"


def backup(source: Path, target: Path) -> BackupResult:
    """Copy the database at ``source`` to ``target`` consistently; refuses to overwrite."""
    if not source.exists():
        raise FileNotFoundError(f"no database at {source} (CRM_SQLITE_PATH)")
    if target.exists():
        raise FileExistsError(f"{target} exists: backups are never overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            closing(sqlite3.connect(source, timeout=30)) as live,
            closing(sqlite3.connect(partial)) as copy,
        ):
            live.backup(copy)  # pages=-1: the whole database in one read transaction
            copy.execute("PRAGMA journal_mode=DELETE")
            _check(copy, partial)
            version = int(copy.execute("PRAGMA user_version").fetchone()[0])
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, version)


def restore(backup_file: Path, database: Path) -> BackupResult:
    """Replace the contents of ``database`` with ``backup_file`` (checked first), in place."""
    with closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as source:
        _check(source, backup_file)
        database.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(database, timeout=30)) as live:
            source.backup(live)
            version = int(live.execute("PRAGMA user_version").fetchone()[0])
    return BackupResult(database, database.stat().st_size, version)


def _check(connection: sqlite3.Connection, path: Path) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise RuntimeError(f"{path} failed SQLite's integrity check: {result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedded.backup", description=__doc__)
    parser.add_argument("--from", dest="source", type=Path, default=None)
    parser.add_argument("--to", dest="target", type=Path, default=None)
    parser.add_argument("--restore", type=Path, default=None, help="a backup file to put back")
    args = parser.parse_args(argv)
    database = args.source or _configured_database()
    try:
        if args.restore is not None:
            result = restore(args.restore, database)
            print(f"restored {args.restore} into {result.path} (schema {result.schema_version})")
        else:
            result = backup(database, args.target or default_target())
            print(f"{result.path}: {result.size_bytes} bytes, schema {result.schema_version}")
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _configured_database() -> Path:
    from shared.config import get_settings

    return get_settings().sqlite_path


if __name__ == "__main__":
    sys.exit(main())
