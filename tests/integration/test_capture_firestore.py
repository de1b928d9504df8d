"""Capture on Firestore (the emulator, the real client, FirestoreStore) against the Gmail
sandbox: the seeded scenario ends in the same logical state as on SQLite, and a crash after the
k-th store write (first, second, last and a few seeded-random k) followed by a rerun ends as an
undisturbed Firestore run. States are compared through Store methods, never SQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.firestore_emulator import FirestoreEmulator, new_project_id
from sandbox.gmail import GmailSandbox
from sandbox.scenario import Scenario, seed_crm, seed_mail
from shared.adapters.firestore import FirestoreStore
from shared.adapters.firestore.indexes import QueryRecorder
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import email_id_for
from tests.support.gmail import CountingStore, Crash, CrashingStore, gmail_world
from tests.support.store_reads import (
    assert_queries_are_indexed,
    store_snapshot,
)
from tests.support.sync import sync_all

pytestmark = pytest.mark.firestore

NOW = datetime.now(UTC)
CRASH_SEED = 20261125


@pytest.fixture(scope="module")
def recorder() -> QueryRecorder:
    return QueryRecorder()


@pytest.fixture(scope="module")
def service_account() -> dict[str, str]:
    """One service-account key for every sandbox here (key generation is the slow part)."""
    return GmailSandbox().service_account_info()


@dataclass
class Run:
    """One fund: a Gmail sandbox seeded like every other one here, and a store."""

    sandbox: GmailSandbox
    store: Any
    scenario: Scenario


@pytest.fixture
def new_firestore(
    firestore_emulator: FirestoreEmulator, recorder: QueryRecorder, service_account: dict[str, str]
) -> Iterator[Any]:
    clients = []

    def make() -> Run:
        client = firestore_emulator.client(new_project_id("capture"))
        clients.append(client)
        return seeded(FirestoreStore(client, recorder=recorder), service_account)

    yield make
    for client in clients:
        client.close()


def seeded(store: Any, service_account: dict[str, str]) -> Run:
    # The same seed and the same sequence of additions give the same Gmail ids and history ids.
    sandbox = GmailSandbox(service_account=service_account)
    scenario = seed_crm(store)
    seed_mail(sandbox, scenario, now=NOW)
    return Run(sandbox, store, scenario)


def test_the_scenario_captured_on_firestore_ends_as_on_sqlite(
    tmp_path: Path, new_firestore: Any, service_account: dict[str, str], recorder: QueryRecorder
) -> None:
    on_sqlite = seeded(SqliteStore(tmp_path / "crm.sqlite3"), service_account)
    with gmail_world(on_sqlite.sandbox) as world:
        sync_all(on_sqlite.store, world)
    on_firestore = new_firestore()
    with gmail_world(on_firestore.sandbox) as world:
        sync_all(on_firestore.store, world)

    expected = store_snapshot(on_sqlite.store)
    assert store_snapshot(on_firestore.store) == expected
    # Not two empty stores agreeing: the scenario's rules all show.
    assert len(expected["emails"]) == 5
    assert len(expected["sightings"]) == 6  # the intro is in both mailboxes
    assert len(expected["proposals"]) == 3
    intro = on_firestore.store.get_email(email_id_for(on_firestore.scenario.message_ids["intro"]))
    assert intro is not None
    assert intro.investor_ids == [on_firestore.scenario.investor.id]
    assert "LP update" in intro.body
    assert_queries_are_indexed(recorder)


@pytest.fixture(scope="module")
def undisturbed(
    firestore_emulator: FirestoreEmulator, recorder: QueryRecorder, service_account: dict[str, str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """An undisturbed Firestore run: how many store writes it makes, and where it ends."""
    client = firestore_emulator.client(new_project_id("reference"))
    try:
        run = seeded(FirestoreStore(client, recorder=recorder), service_account)
        counting = CountingStore(run.store)
        with gmail_world(run.sandbox) as world:
            sync_all(counting, world)
        yield counting.writes, store_snapshot(run.store)
    finally:
        client.close()


def crash_points(total_writes: int) -> dict[str, int]:
    """First, second and last write, and three seeded-random ones in between."""
    between = random.Random(CRASH_SEED).sample(range(2, total_writes - 1), 3)
    return {
        "first": 0,
        "second": 1,
        "last": total_writes - 1,
        **{f"random{i}": k for i, k in enumerate(sorted(between))},
    }


@pytest.mark.parametrize("point", ["first", "second", "last", "random0", "random1", "random2"])
def test_a_crash_after_the_kth_write_then_a_rerun_ends_as_an_undisturbed_run(
    point: str,
    undisturbed: tuple[int, dict[str, Any]],
    new_firestore: Any,
    recorder: QueryRecorder,
) -> None:
    total_writes, expected = undisturbed
    assert total_writes > 20
    k = crash_points(total_writes)[point]
    run = new_firestore()
    with gmail_world(run.sandbox) as world:
        crashing = CrashingStore(run.store, allowed=k)
        with pytest.raises(Crash):
            sync_all(crashing, world)
        assert crashing.writes == k
        # The crashed run's lease expires; a later run takes over and finishes.
        sync_all(run.store, world, now=NOW + timedelta(hours=1))
    assert store_snapshot(run.store) == expected, f"crash at write {k} of {total_writes}"
    assert_queries_are_indexed(recorder)
