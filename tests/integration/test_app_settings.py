"""The app settings service on both stores: the horizon it writes is the one capture's backfill
query reads, each real change is audited once with its before and after, and a value out of
range is refused by the request model (the one check of the range) before any write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from functions.admin.settings import SettingsChange
from shared.domain.models import Caller, Role
from shared.ports import Store
from shared.services import app_settings
from shared.services.capture import backfill_query

ADMIN = Caller(email="ada@fund.example", role=Role.ADMIN)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def after_of(store: Store) -> datetime:
    query = backfill_query(store, NOW)
    return datetime.fromtimestamp(int(query.split()[0].removeprefix("after:")), tz=UTC)


def test_the_horizon_written_is_the_one_the_backfill_reads_and_is_audited(store: Store) -> None:
    assert app_settings.get_app_settings(store).backfill_horizon_days == 365
    assert after_of(store) == NOW - timedelta(days=365)

    current, changed = app_settings.update_app_settings(store, ADMIN, backfill_horizon_days=90)
    assert (current.backfill_horizon_days, changed) == (90, True)
    assert after_of(store) == NOW - timedelta(days=90)
    assert app_settings.update_app_settings(store, ADMIN, backfill_horizon_days=90)[1] is False
    assert app_settings.update_app_settings(store, ADMIN)[1] is False

    for bad in (0, 3651):
        with pytest.raises(ValidationError):
            SettingsChange.model_validate({"backfill_horizon_days": bad})
    for edge in (1, 3650):
        assert (
            SettingsChange.model_validate({"backfill_horizon_days": edge}).backfill_horizon_days
            == edge
        )
    assert app_settings.get_app_settings(store).backfill_horizon_days == 90
    entries = [e for e in store.list_audit(limit=100) if e.action == "settings.update"]
    assert [(e.actor, e.target, e.details) for e in entries] == [
        (ADMIN.email, "backfill_horizon_days", {"before": 365, "after": 90})
    ]
