"""The ERROR events the deployment alerts on are logged under their stable names."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.auth import exceptions as auth_exceptions

from shared import events
from shared.adapters.gmail.credentials import SCOPE_READONLY, translate_auth_error
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import EmailAccount
from shared.errors import ConfigurationError
from shared.ports import SyncStateChange
from shared.services.watch_health import report_expired_watches

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def events_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, dict[str, object]]]:
    return [
        (record.levelno, str(fields.get("event")), fields)
        for record in caplog.records
        if isinstance(fields := getattr(record, "fields", None), dict)
    ]


class TestExpiredWatch:
    def test_only_active_mailboxes_past_their_expiration_are_reported(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = SqliteStore(tmp_path / "crm.sqlite3")
        expirations = {
            "lapsed@fund.example": NOW - timedelta(hours=1),
            "fresh@fund.example": NOW + timedelta(days=6),
            "paused@fund.example": NOW - timedelta(days=2),
            "never@fund.example": None,
        }
        for address, expiration in expirations.items():
            account = EmailAccount.new(address)
            store.add_email_account(account)
            if expiration is not None:
                store.update_sync_state(account.id, SyncStateChange(watch_expiration=expiration))
        store.set_email_account_paused(EmailAccount.new("paused@fund.example").id, True)

        with caplog.at_level(logging.ERROR):
            expired = report_expired_watches(store, NOW)

        assert expired == ["lapsed@fund.example"]
        logged = events_logged(caplog)
        assert [(level, event) for level, event, _ in logged] == [
            (logging.ERROR, events.WATCH_EXPIRED)
        ]
        assert logged[0][2]["mailbox"] == "lapsed@fund.example"


class TestUnauthorizedClient:
    def test_a_refused_delegation_is_logged_under_its_event(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        refusal = auth_exceptions.RefreshError(
            "unauthorized_client: Client is unauthorized to retrieve access tokens",
            {"error": "unauthorized_client", "error_description": "Client is unauthorized"},
        )
        with caplog.at_level(logging.ERROR):
            error = translate_auth_error(refusal, "ada@fund.example", [SCOPE_READONLY])

        assert isinstance(error, ConfigurationError)
        logged = events_logged(caplog)
        assert [(level, event) for level, event, _ in logged] == [
            (logging.ERROR, events.UNAUTHORIZED_CLIENT)
        ]
        assert logged[0][2]["mailbox"] == "ada@fund.example"
        assert logged[0][2]["scopes"] == [SCOPE_READONLY]

    def test_other_grant_errors_are_not_this_event(self, caplog: pytest.LogCaptureFixture) -> None:
        unknown_user = auth_exceptions.RefreshError(
            "invalid_grant: Invalid email or User ID", {"error": "invalid_grant"}
        )
        with caplog.at_level(logging.ERROR):
            translate_auth_error(unknown_user, "nobody@fund.example", [SCOPE_READONLY])
        assert events.UNAUTHORIZED_CLIENT not in [event for _, event, _ in events_logged(caplog)]
