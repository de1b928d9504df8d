"""A broken configuration is an error an admin can read, never a crash: shown in words in the
mailbox's status and the logs, never with the secret's contents, and not redelivered forever."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.stack import GMAIL_KEY_SECRET, Stack, local_stack
from sandbox.gmail import GmailSandbox
from sandbox.scenario import TEAM, seed_crm, seed_mail
from shared import wiring
from shared.domain.models import SyncStatus

PEM_HEAD = "-----BEGIN PRIVATE KEY-----"


@pytest.fixture
def broken_key(tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """The stack with the Gmail key's secret holding a key file cut in half (not JSON)."""
    gmail = GmailSandbox()
    text = json.dumps(gmail.service_account_info())
    cut = text[: len(text) // 2]
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3",
        bootstrap_admin=TEAM[0],
        start_ticker=False,
        gmail=gmail,
        env={"CRM_SECRET_GMAIL_DWD_KEY": cut},
    ) as running:
        yield running, cut


def test_an_unreadable_gmail_key_is_the_mailboxs_error_in_words(
    broken_key: tuple[Stack, str], caplog: pytest.LogCaptureFixture
) -> None:
    stack, secret_text = broken_key
    store = wiring.store()
    seed_mail(stack.gmail, seed_crm(store))
    caplog.set_level(logging.INFO)

    assert stack.server.ticker.fire_now("sync_poll") == 200
    assert wiring.local_queue().wait_idle(30)

    # Acknowledged, not redelivered until dead-lettered: a retry cannot fix a configuration.
    assert wiring.local_queue().dead_letters == []
    ada = store.get_email_account_by_address(TEAM[0])
    assert ada is not None
    assert ada.sync.status is SyncStatus.ERROR
    assert GMAIL_KEY_SECRET in ada.sync.last_error
    assert "not a service-account key" in ada.sync.last_error
    # The JSON log line carries a record's message and its fields.
    logged = "\n".join(
        r.getMessage() + " " + json.dumps(getattr(r, "fields", {}), default=str)
        for r in caplog.records
    )
    assert "internal error" not in logged and "Traceback" not in logged
    assert GMAIL_KEY_SECRET in logged
    middle = secret_text[len(secret_text) // 2 :][:60]
    for text in (ada.sync.last_error, logged):
        assert PEM_HEAD not in text
        assert middle not in text
