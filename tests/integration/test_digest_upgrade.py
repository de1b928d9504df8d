"""Upgrade to the digest's denormalised fields, and to the names links carry, on both stores.

The store starts as the code before them left it: the demo fund's mail captured, then every
email row or document stripped of ``sent_account_ids``, ``links`` and ``digest_ready`` (what
the old ``Email`` never wrote; nothing else in its row differs). The digest built then reads
each email's sightings and links and must say what it says once the operator has run
``python -m shared.cli repair-digest-fields`` (a subprocess, configured by ``CRM_*`` settings as
an operator runs it), which must bring every email to exactly the row new code writes. On
Firestore the reads show the repair's point: the digest stops reading sightings and links.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.firestore_emulator import FirestoreEmulator
from sandbox.scenario import TEAM, Scenario
from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.documents import (
    CONTACTS,
    EMAILS,
    INVESTORS,
    LINKS,
    ORGANIZATIONS,
    SIGHTINGS,
)
from shared.adapters.sqlite import SqliteStore
from shared.adapters.sqlite.schema import MIGRATIONS
from shared.domain.models import Email, email_id_for
from shared.ports import Store
from shared.services import digest as digest_service
from shared.services.digest import build_digest

ROOT = Path(__file__).resolve().parents[2]
NEW_FIELDS = ("sent_account_ids", "links", "digest_ready")
SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def every_email(store: Store) -> dict[str, Email]:
    return {email.id: email for email in store.list_emails(limit=500)}


def write_as_old_code(store: Store) -> None:
    """Remove the new fields from every stored email, as rows written before them lack them."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            paths = ", ".join(f"'$.{name}'" for name in NEW_FIELDS)
            conn.execute(f"UPDATE emails SET doc = json_remove(doc, {paths})")  # noqa: S608
        return
    assert isinstance(store, FirestoreStore)
    client: Any = store._client  # the test plays the old code's writes, below the port
    for snapshot in client.collection(EMAILS).stream():
        # The old code wrote whole documents: the same one, less the new fields. Deleted first:
        # the emulator's ``set`` keeps fields the new document lacks (and ignores DELETE_FIELD).
        data = snapshot.to_dict() or {}
        snapshot.reference.delete()
        snapshot.reference.set({k: v for k, v in data.items() if k not in NEW_FIELDS})
        assert not set(NEW_FIELDS) & set(snapshot.reference.get().to_dict() or {})


def run_repair(store: Store, request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if isinstance(store, SqliteStore):
        env["CRM_SQLITE_PATH"] = str(store.path)
    else:
        assert isinstance(store, FirestoreStore)
        env["CRM_STORE_BACKEND"] = "firestore"
        env["CRM_GCP_PROJECT"] = str(store._client.project)
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        env.update(emulator.environ())
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "repair-digest-fields"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def digest_and_reads(store: Store, until: datetime) -> tuple[tuple[str, str, str], dict[str, int]]:
    """One build and the documents it read. ``until`` is fixed per test: the digest shows each
    mailbox's sync lag as of it, so builds a minute apart (a loaded machine) would differ."""
    reads: dict[str, int] | None = getattr(store, "reads", None)
    before = dict(reads or {})
    digest = build_digest(store, SINCE, until, None)
    spent = {k: v - before.get(k, 0) for k, v in (reads or {}).items() if v != before.get(k, 0)}
    return (digest.subject, digest.text, digest.html), spent


def test_the_repair_brings_emails_from_before_the_digest_fields_up_to_date(
    store: Store, captured_fund: Scenario, request: pytest.FixtureRequest
) -> None:
    until = datetime.now(UTC) + timedelta(seconds=1)
    # A copy soft-deleted in one mailbox: the live and Sent sets must leave it out either way.
    ben = store.get_email_account_by_address(TEAM[1])
    assert ben is not None
    intro = store.get_email(email_id_for(captured_fund.message_ids["intro"]))
    assert intro is not None and ben.id in intro.live_account_ids
    gone = next(s for s in store.list_sightings(intro.id) if s.account_id == ben.id)
    assert store.set_sighting_deleted(ben.id, gone.gmail_message_id, True)
    as_written = every_email(store)
    assert as_written and all(e.digest_ready for e in as_written.values())
    assert any(e.sent_account_ids for e in as_written.values())  # Ada's reply, in her Sent
    assert any(e.links for e in as_written.values())
    digest_new, _ = digest_and_reads(store, until)
    assert "Zeta" in digest_new[1]  # the digest has something to say

    write_as_old_code(store)
    old = every_email(store)
    assert not any(e.digest_ready or e.sent_account_ids or e.links for e in old.values())
    digest_old, reads_old = digest_and_reads(store, until)
    assert digest_old == digest_new

    repaired = run_repair(store, request)
    assert repaired.returncode == 0, repaired.stderr
    assert "repair-digest-fields: done" in repaired.stdout
    assert f"recomputed {len(as_written)}" in repaired.stdout

    assert every_email(store) == as_written  # exactly what the new code writes
    digest_after, reads_after = digest_and_reads(store, until)
    assert digest_after == digest_new
    if isinstance(store, FirestoreStore):
        assert reads_old.get(SIGHTINGS, 0) > 0 and reads_old.get(LINKS, 0) > 0
        assert SIGHTINGS not in reads_after and LINKS not in reads_after
        assert sum(reads_after.values()) < sum(reads_old.values())

    again = run_repair(store, request)
    assert again.returncode == 0, again.stderr
    assert "already done" in again.stdout


def write_as_code_before_names(store: Store) -> Store:
    """The store as the code before ``LinkNames`` left it: links and the emails' copies of them
    without names; on SQLite also the schema before the CRM stamps (version 8). Returns the
    store reopened as the new code opens it (SQLite migrates)."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE investor_links SET doc = json_remove(doc, '$.names')")
            paths = ", ".join(f"'$.links[{i}].names'" for i in range(8))
            conn.execute(f"UPDATE emails SET doc = json_remove(doc, {paths})")  # noqa: S608
            for table in ("organizations", "investors", "contacts"):
                conn.execute(f"DROP INDEX {table}_by_updated")
                conn.execute(f"ALTER TABLE {table} DROP COLUMN updated_key")
            conn.execute("PRAGMA user_version = 8")
        store.close()
        reopened = SqliteStore(store.path)
        assert reopened.schema_version() == len(MIGRATIONS)
        return reopened
    assert isinstance(store, FirestoreStore)
    client: Any = store._client  # the test plays the old code's writes, below the port
    for collection in (LINKS, EMAILS):
        for snapshot in client.collection(collection).stream():
            data = snapshot.to_dict() or {}
            data.pop("names", None)
            for link in data.get("links", []):
                link.pop("names", None)
            snapshot.reference.delete()  # see write_as_old_code
            snapshot.reference.set(data)
    return store


def undated(emails: dict[str, Email]) -> dict[str, Email]:
    """The emails with their links' name-stamps set aside (a repair takes names at its time)."""
    return {
        key: email.model_copy(
            update={
                "links": [
                    ln.model_copy(update={"names": ln.names.model_copy(update={"at": SINCE})})
                    if ln.names
                    else ln
                    for ln in email.links
                ]
            }
        )
        for key, email in emails.items()
    }


def test_the_repair_gives_links_from_before_the_names_their_names(
    store: Store,
    captured_fund: Scenario,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    until = datetime.now(UTC) + timedelta(seconds=1)
    # No slack: the digest's CRM query then finds no record changed since the names.
    monkeypatch.setattr(digest_service, "NAMES_CLOCK_SLACK", timedelta(0))
    as_written = every_email(store)
    links = [ln for e in as_written.values() for ln in e.links]
    assert links and all(ln.names is not None for ln in links)
    digest_new, _ = digest_and_reads(store, until)

    store = write_as_code_before_names(store)
    old = every_email(store)
    assert not any(ln.names for e in old.values() for ln in e.links)
    assert not any(ln.names for e in old.values() for ln in store.list_links(e.id))
    digest_old, reads_old = digest_and_reads(store, until)
    assert digest_old == digest_new

    started = datetime.now(UTC)
    repaired = run_repair(store, request)
    assert repaired.returncode == 0, repaired.stderr
    assert "repair-digest-fields: done" in repaired.stdout
    assert f"recomputed 0, named {len(links)}" in repaired.stdout

    now = every_email(store)
    assert undated(now) == undated(as_written)  # the names the new code writes
    assert all(ln.names and ln.names.at >= started for e in now.values() for ln in e.links)
    assert all(ln.names for e in now.values() for ln in store.list_links(e.id))
    digest_after, reads_after = digest_and_reads(store, until)
    assert digest_after == digest_new
    if isinstance(store, FirestoreStore):
        crm = (ORGANIZATIONS, INVESTORS, CONTACTS)
        assert sum(reads_old.get(c, 0) for c in crm) > len(crm)  # each record by id
        assert {c: reads_after.get(c, 0) for c in crm} == dict.fromkeys(crm, 1)  # one query each

    again = run_repair(store, request)
    assert again.returncode == 0, again.stderr
    assert "already done" in again.stdout
