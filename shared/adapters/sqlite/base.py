"""SQLite connections and transactions: one connection per thread, ``BEGIN IMMEDIATE`` for every
read-modify-write, the test hook between a writer's reads and its writes, and the migration run.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from shared.adapters.sqlite.schema import _DATA_MIGRATIONS, MIGRATIONS
from shared.domain.models import (
    Activity,
    Contact,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Organization,
    Sighting,
)

M = TypeVar("M", bound=BaseModel)

_BUSY_TIMEOUT_S = 30.0


@dataclass
class SqliteHooks:
    """Test seams. ``after_read(operation)`` runs inside a read-modify-write, after its reads and
    before its writes, while the write lock is held."""

    after_read: Callable[[str], None] | None = None


def _dump(model: BaseModel) -> str:
    return model.model_dump_json()


def _load(cls: type[M], doc: str) -> M:
    return cls.model_validate_json(doc)


def _placeholders(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class _SqliteBase:
    """The connection, transaction and migration helpers every area's mixin shares."""

    def __init__(self, path: Path, *, hooks: SqliteHooks | None = None) -> None:
        self.path = Path(path)
        self.hooks = hooks or SqliteHooks()
        # One connection per thread; it closes when its thread ends and the local is collected.
        self._local = threading.local()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -- connections and transactions --------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: no implicit transactions; we say BEGIN IMMEDIATE ourselves.
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close with them)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write: a transaction, or inside ``batched`` a savepoint (undone alone if it
        fails, committed with the batch)."""
        conn = self._connection()
        if conn.in_transaction:
            conn.execute("SAVEPOINT write")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                raise
            conn.execute("RELEASE write")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def batched(self) -> Iterator[None]:
        """This thread's writes inside share one transaction and one commit (a commit is about
        a quarter of a captured message's CPU). Each write is still all or nothing; what the
        completed ones wrote is committed even when the block raises."""
        conn = self._connection()
        if conn.in_transaction:  # nested: the outer batch commits
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _after_read(self, operation: str) -> None:
        if self.hooks.after_read is not None:
            self.hooks.after_read(operation)

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for index in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                data_step = _DATA_MIGRATIONS.get(index + 1)
                if data_step is not None:
                    getattr(self, data_step)(conn)
                conn.execute(f"PRAGMA user_version={index + 1}")

    def schema_version(self) -> int:
        return int(self._connection().execute("PRAGMA user_version").fetchone()[0])

    def _one(self, cls: type[M], sql: str, params: Sequence[object] = ()) -> M | None:
        row = self._connection().execute(sql, params).fetchone()
        return _load(cls, row[0]) if row else None

    def _many(self, cls: type[M], sql: str, params: Sequence[object] = ()) -> list[M]:
        return [_load(cls, row[0]) for row in self._connection().execute(sql, params)]

    if TYPE_CHECKING:
        # Helpers one area's mixin calls on another's (defined in the named module); declared
        # here so each mixin type-checks on its own.
        @staticmethod
        def _put_account(conn: sqlite3.Connection, account: EmailAccount) -> None: ...  # mailboxes

        @staticmethod
        def _refuse_offboarded(conn: sqlite3.Connection, account_id: str) -> None: ...  # mailboxes

        def _refresh_email(self, conn: sqlite3.Connection, email: Email) -> Email: ...  # mail

        # mail
        def _stored_email(self, conn: sqlite3.Connection, email_id: str) -> Email | None: ...

        def find_emails_by_participants(
            self,
            *,
            addresses: Sequence[str] = (),
            domains: Sequence[str] = (),
            limit: int = 500,
            after_id: str = "",
        ) -> list[Email]: ...  # mail

        def _sync_activity(self, conn: sqlite3.Connection, email: Email) -> bool: ...  # activity

        # listings
        def _put_listing_keys(
            self, conn: sqlite3.Connection, record: Organization | Investor | Contact
        ) -> None: ...

        @staticmethod
        def _put_activity_row(conn: sqlite3.Connection, activity: Activity) -> None: ...
        def _sync_contributions(  # relationships
            self,
            conn: sqlite3.Connection,
            email: Email | None,
            email_id: str,
            sightings: Sequence[Sighting],
            links: Sequence[InvestorLink],
        ) -> int: ...
