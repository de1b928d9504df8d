"""The local stack the admin API's end-to-end tests run against, and the fund seeded in it.

``stack``: issuer, Gmail sandbox, SMTP sink and local server on loopback, SQLite in the test's
folder, the scenario's admin as bootstrap admin, no ticker (tests fire jobs themselves).
``scenario``: the scenario's CRM seeded in it (no mail). ``synced``: the scenario's CRM and mail,
captured by one ``sync_poll``. A file that needs another setup names its fixture for what
differs (``console_stack``, ``watched``), never reusing one of these names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, Scenario, seed_crm, seed_mail
from shared import wiring


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3", bootstrap_admin=TEAM[0], start_ticker=False
    ) as running:
        yield running


@pytest.fixture
def scenario(stack: Stack) -> Scenario:
    return seed_crm(wiring.store())


@pytest.fixture
def synced(stack: Stack) -> Scenario:
    scenario = seed_crm(wiring.store())
    seed_mail(stack.gmail, scenario)
    stack.server.ticker.fire_now("sync_poll")
    assert wiring.local_queue().wait_idle(30)
    return scenario
