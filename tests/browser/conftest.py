"""The console in a real Chromium against the local stack in sandbox mode.

One stack for the whole browser tier (``console_stack``, package scope: torn down when the
tier is done, so no other tier runs beside its environment): the scenario's fund and mail
captured, plus a hostile message from a known contact (script tags, ``onerror`` attributes and
``javascript:`` links in its subject, sender name and body), which every page must render inert.
Each test gets a fresh browser context (``page``): no state leaks between tests, as the token
lives in page memory only. Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared import wiring
from tests.support.browser import (
    CONSOLE_DIST,
    HOSTILE_BODY,
    HOSTILE_NAME,
    HOSTILE_SUBJECT,
    SCREENSHOTS,
    ConsolePage,
    HostileWatch,
    launch_chromium,
)


@pytest.fixture(scope="package")
def running_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, Scenario, dict[str, str]]]:
    if not (CONSOLE_DIST / "index.html").is_file():
        pytest.fail("the console is not built: run `make console` (make test builds it)")
    folder = tmp_path_factory.mktemp("console")
    with local_stack(
        sqlite_path=folder / "crm.sqlite3",
        bootstrap_admin=TEAM[0],
        start_ticker=False,
        env={"CRM_MODE": "sandbox"},
    ) as stack:
        scenario = seed_crm(wiring.store())
        seed_mail(stack.gmail, scenario)
        _, hostile = message(
            sender=f'"{HOSTILE_NAME}" <zoe@zeta.vc>',
            to=[TEAM[0]],
            subject=HOSTILE_SUBJECT,
            body=HOSTILE_BODY,
            date=datetime.now(UTC),
            message_id="<hostile.1@zeta.vc>",
        )
        stack.gmail.add_message(TEAM[0], hostile, label_ids=("INBOX",))
        stack.server.ticker.fire_now("sync_poll")
        assert wiring.local_queue().wait_idle(60)
        env = {k: v for k, v in os.environ.items() if k.startswith("CRM_")}
        yield stack, scenario, env


@pytest.fixture
def console_stack(
    running_stack: tuple[Stack, Scenario, dict[str, str]],
) -> tuple[Stack, Scenario]:
    """The running stack, its configuration put back: the suite's autouse fixture clears
    ``CRM_*`` before each test, and the server reads settings per request."""
    stack, scenario, env = running_stack
    os.environ.update(env)
    wiring.reset()
    return stack, scenario


@pytest.fixture(scope="package")
def chromium() -> Iterator[object]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def console(
    console_stack: tuple[Stack, Scenario], chromium: object, request: pytest.FixtureRequest
) -> Iterator[ConsolePage]:
    stack, _ = console_stack
    context = chromium.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    watch = HostileWatch.attach(page, stack.base_url)
    console = ConsolePage(page=page, base_url=stack.base_url, watch=watch)
    try:
        yield console
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        context.close()
        watch.assert_clean()
