"""Fixtures the integration files share: the Gmail sandbox world, one SQLite store, the demo
fund's mail captured into a store (``captured_fund``), and loopback calls that bypass any proxy.

``store`` (a store of each kind) is in ``tests/conftest.py``, since the contract suite shares
it: it runs its test on SQLite and on the Firestore emulator. ``sqlite_store`` is one store on
SQLite, for tests that read its file or need only one. A file that needs another setup names its
fixture for what differs (``bare_stack``, ``store_with_lp_mail``), never reusing a shared
fixture's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.scenario import Scenario, seed_crm, seed_mail
from shared.adapters.sqlite import SqliteStore
from shared.ports import Store
from tests.support.gmail import GmailWorld, gmail_world
from tests.support.sync import NOW, sync_all


@pytest.fixture
def world() -> Iterator[GmailWorld]:
    with gmail_world() as running:
        yield running


@pytest.fixture
def captured_fund(store: Store, world: GmailWorld) -> Scenario:
    """The demo fund's mail, captured: an intro from Zoe (Ada and Ben), Ada's reply to Jo
    (outbound), a partner's mail to Ben, a newsletter (bulk) and a cold pitch (unmatched)."""
    seeded = seed_crm(store)
    seed_mail(world.sandbox, seeded, now=NOW)
    sync_all(store, world)
    return seeded


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    sqlite = SqliteStore(tmp_path / "crm.sqlite3")
    yield sqlite
    sqlite.close()


@pytest.fixture
def loopback_bypasses_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests honours HTTP(S)_PROXY even for 127.0.0.1 unless NO_PROXY says otherwise (files
    that call loopback servers through google's transports use it for the whole module)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
