"""Forced interleavings on SQLite: a writer paused between its read and its write must not let a
concurrent writer's commit be lost.

The Firestore emulator never rejects a conflicting transaction, so it cannot show this; on
production Firestore the same methods run in ``@firestore.transactional`` (pessimistic locks on
what they read). SQLite shows it for real: two connections, two threads, ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.sqlite import SqliteHooks, SqliteStore
from shared.domain.models import EmailAccount, Guard, Role, User
from shared.errors import ConflictError
from shared.ports import SyncStateChange


class PausingHook:
    """Pauses the first writer that reaches ``operation`` until released."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.paused = threading.Event()
        self.release = threading.Event()
        self._armed = True

    def __call__(self, operation: str) -> None:
        if operation == self.operation and self._armed:
            self._armed = False
            self.paused.set()
            assert self.release.wait(10), "test never released the paused writer"


def interleave(
    path: Path,
    operation: str,
    first: Callable[[SqliteStore], Any],
    second: Callable[[SqliteStore], Any],
) -> tuple[Any, Any, float]:
    """Run ``first`` until it has read, start ``second`` on another connection, let ``second``
    try to commit for a while, then release ``first``. Returns both results and how long
    ``second`` waited."""
    hook = PausingHook(operation)
    paused_store = SqliteStore(path, hooks=SqliteHooks(after_read=hook))
    other_store = SqliteStore(path)
    results: dict[str, Any] = {}
    second_done = threading.Event()

    def run(name: str, store: SqliteStore, call: Callable[[SqliteStore], Any]) -> None:
        try:
            results[name] = call(store)
        except Exception as exc:  # reported to the test thread
            results[name] = exc
        finally:
            store.close()
            if name == "second":
                second_done.set()

    t1 = threading.Thread(target=run, args=("first", paused_store, first))
    t1.start()
    assert hook.paused.wait(10)
    started = time.monotonic()
    t2 = threading.Thread(target=run, args=("second", other_store, second))
    t2.start()
    # While the first writer holds its read, the second must not be able to commit.
    assert not second_done.wait(0.3), "second writer committed while the first held its read"
    hook.release.set()
    t1.join(10)
    t2.join(10)
    return results["first"], results["second"], time.monotonic() - started


def test_counter_update_is_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite3"
    SqliteStore(path).set_setting("counter", 0)

    def bump(store: SqliteStore) -> int:
        return int(store.update_setting("counter", lambda value: (value or 0) + 1))

    first, second, waited = interleave(path, "update_setting", bump, bump)

    assert (first, second) == (1, 2)
    assert SqliteStore(path).get_setting("counter") == 2
    assert waited >= 0.3


def test_history_id_never_moves_backwards_under_interleaving(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite3"
    store = SqliteStore(path)
    account = EmailAccount.new("team@fund.example")
    store.add_email_account(account)

    # The paused (slower) run saw an older history id than the one committed meanwhile.
    first, second, _ = interleave(
        path,
        "update_sync_state",
        lambda s: s.update_sync_state(account.id, SyncStateChange(history_id=500)),
        lambda s: s.update_sync_state(account.id, SyncStateChange(history_id=900)),
    )

    assert first.history_id == 500
    assert second.history_id == 900
    stored = SqliteStore(path).get_email_account(account.id)
    assert stored is not None and stored.sync.history_id == 900


def test_two_admins_demoted_at_once_leave_one_admin(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite3"
    store = SqliteStore(path)
    alice = User.new("alice@fund.example", "Alice", Role.ADMIN)
    bob = User.new("bob@fund.example", "Bob", Role.ADMIN)
    store.add_user(alice)
    store.add_user(bob)

    first, second, _ = interleave(
        path,
        "change_user",
        lambda s: s.change_user(alice.id, role=Role.MEMBER),
        lambda s: s.change_user(bob.id, role=Role.MEMBER),
    )

    assert isinstance(first, User) and first.role is Role.MEMBER
    assert isinstance(second, ConflictError)
    assert [u.email for u in SqliteStore(path).list_active_admins()] == ["bob@fund.example"]


def test_guard_attempts_are_counted_once_each(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite3"
    store = SqliteStore(path)
    assert store.create_guard(Guard(id="digest-2026-11-25", state="sending"))

    def attempt(s: SqliteStore) -> Guard | None:
        return s.update_guard(
            "digest-2026-11-25", lambda g: g.model_copy(update={"attempts": g.attempts + 1})
        )

    interleave(path, "update_guard", attempt, attempt)

    guard = SqliteStore(path).get_guard("digest-2026-11-25")
    assert guard is not None and guard.attempts == 2


@pytest.mark.parametrize("isolation", ["DEFERRED"])
def test_without_begin_immediate_the_update_would_be_lost(tmp_path: Path, isolation: str) -> None:
    """The control: the same interleaving with plain reads and writes loses an update, so the
    tests above would catch a store that dropped ``BEGIN IMMEDIATE``."""
    import sqlite3

    path = tmp_path / "plain.sqlite3"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE c (k TEXT PRIMARY KEY, v INTEGER)")
    setup.execute("INSERT INTO c VALUES ('n', 0)")
    setup.close()

    read_done = threading.Event()
    release = threading.Event()

    def slow_writer() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        value = conn.execute("SELECT v FROM c WHERE k = 'n'").fetchone()[0]  # no lock held
        read_done.set()
        release.wait(5)
        conn.execute(f"BEGIN {isolation}")
        conn.execute("UPDATE c SET v = ? WHERE k = 'n'", (value + 1,))
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert read_done.wait(5)
    fast = sqlite3.connect(path, isolation_level=None, timeout=5)
    fast.execute("UPDATE c SET v = v + 1 WHERE k = 'n'")
    fast.close()
    release.set()
    thread.join(5)

    final = sqlite3.connect(path).execute("SELECT v FROM c").fetchone()[0]
    assert final == 1  # two increments, one lost: what BEGIN IMMEDIATE prevents


def test_schema_is_created_once_and_reopening_migrates_nothing(tmp_path: Path) -> None:
    from shared.adapters.sqlite.schema import MIGRATIONS

    path = tmp_path / "crm.sqlite3"
    first = SqliteStore(path)
    assert first.schema_version() == len(MIGRATIONS)
    first.set_setting("kept", {"a": 1})
    reopened = SqliteStore(path)
    assert reopened.schema_version() == len(MIGRATIONS)
    assert reopened.get_setting("kept") == {"a": 1}
    mode = reopened._connection().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_two_concurrent_captures_of_one_investor_lose_no_contribution(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from shared.domain.models import (
        Email,
        Investor,
        InvestorLink,
        Mailbox,
        MatchHeader,
        Sighting,
        email_id_for,
    )
    from shared.domain.relationships import contribution_id_for

    path = tmp_path / "crm.sqlite3"
    store = SqliteStore(path)
    account = EmailAccount.new("team@fund.example")
    store.add_email_account(account)
    store.upsert_investor(Investor(id="acme", name="Acme LP"))
    emails = []
    for n in (1, 2):
        email = Email(
            id=email_id_for(f"<{n}@acme.example>"),
            message_id=f"<{n}@acme.example>",
            sender=Mailbox(address="jane@acme.example"),
            date=datetime(2026, 5, n, tzinfo=UTC),
        )
        store.upsert_email(email)
        store.link_email_to_investor(
            InvestorLink.new(email.id, "acme", None, "jane@acme.example", MatchHeader.FROM)
        )
        emails.append(email)

    def capture(n: int) -> Callable[[SqliteStore], bool]:
        # The sighting is what capture writes last, and what makes the row.
        return lambda s: s.record_sighting(Sighting.new(account.id, f"g{n}", emails[n - 1].id))

    first, second, waited = interleave(path, "record_sighting", capture(1), capture(2))

    assert (first, second) == (True, True)
    assert waited >= 0.3
    rows = SqliteStore(path).list_investor_contributions("acme")
    assert [r.id for r in rows] == [contribution_id_for(e.id, "acme") for e in emails]


def test_a_file_from_before_the_crm_stamps_lists_its_records_by_their_updated_at(
    tmp_path: Path,
) -> None:
    """The stamps' schema version (9) fills ``updated_key`` of the CRM rows stored before it
    from the ``updated_at`` their writer gave them, so the records changed since a time are
    found as the new code's are."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from shared.adapters.sqlite.schema import MIGRATIONS
    from shared.domain.models import Contact, Investor, Organization

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # whole seconds: JSON drops the micros
    old = sqlite3.connect(tmp_path / "old.sqlite3")
    for script in MIGRATIONS[:8]:
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
    old.execute("PRAGMA user_version = 8")
    org = Organization(id="org-old", name="Old Org", updated_at=at)
    earlier = Organization(id="org-older", name="Older Org", updated_at=at - timedelta(days=1))
    investor = Investor(id="inv-old", name="Old Investor", updated_at=at)
    contact = Contact(id="con-old", name="Old Contact", updated_at=at)
    for record in (org, earlier):
        old.execute(
            "INSERT INTO organizations (id, deleted, doc) VALUES (?,0,?)",
            (record.id, record.model_dump_json()),
        )
    old.execute(
        "INSERT INTO investors (id, name_key, graveyard, deleted, doc) VALUES (?,?,0,0,?)",
        (investor.id, investor.name_key, investor.model_dump_json()),
    )
    old.execute(
        "INSERT INTO contacts (id, deleted, doc) VALUES (?,0,?)",
        (contact.id, contact.model_dump_json()),
    )
    old.commit()
    old.close()

    upgraded = SqliteStore(tmp_path / "old.sqlite3")
    try:
        assert upgraded.schema_version() == len(MIGRATIONS) == 9
        organizations, investors, contacts = upgraded.list_crm_updated_since(at)
        assert [o.id for o in organizations] == ["org-old"]  # the day before is not listed
        assert (investors, contacts) == ([investor], [contact])
        assert [o.id for o in upgraded.list_crm_updated_since(at - timedelta(days=2))[0]] == [
            "org-old",
            "org-older",
        ]
        assert upgraded.list_crm_updated_since(at + timedelta(microseconds=1)) == ([], [], [])
    finally:
        upgraded.close()
