"""The app's own settings an admin may change through the API (today: the backfill horizon).

The exclusion list is a setting too, but it has its own routes (``PUT /exclusions``), since
changing it re-matches stored mail. Every change here is audited with its value before and
after. A horizon change touches no stored mail: shrinking it deletes nothing, and a longer one
is read by the next full sync (a new mailbox's first, or an admin's full resync), since a
finished backfill never lists the mailbox again on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.models import AuditEntry, Caller
from shared.ports import SettingsStore
from shared.services.capture import BACKFILL_DAYS_SETTING, DEFAULT_BACKFILL_DAYS

MIN_BACKFILL_DAYS = 1
MAX_BACKFILL_DAYS = 3650
HORIZON_NOTE = (
    "The backfill horizon applies at each mailbox's next full sync: a longer horizon reaches "
    "older mail once an admin asks for a full resync (POST /mailboxes/<id>/resync); a shorter "
    "one deletes nothing already captured."
)


@dataclass(frozen=True)
class AppSettings:
    backfill_horizon_days: int


def backfill_horizon_days(store: SettingsStore) -> int:
    """The stored horizon, or the default when none was ever set."""
    return int(store.get_setting(BACKFILL_DAYS_SETTING) or DEFAULT_BACKFILL_DAYS)


def get_app_settings(store: SettingsStore) -> AppSettings:
    return AppSettings(backfill_horizon_days=backfill_horizon_days(store))


def update_app_settings(
    store: SettingsStore, caller: Caller, *, backfill_horizon_days: int | None = None
) -> tuple[AppSettings, bool]:
    """Change the settings given (None: keep); returns them and whether anything changed.
    Only a real change is audited. The range (MIN_BACKFILL_DAYS..MAX_BACKFILL_DAYS) is the
    request model's to check (``functions.admin.settings.SettingsChange``), once."""
    if backfill_horizon_days is not None:
        days = backfill_horizon_days
        seen: list[Any] = []

        def set_horizon(current: Any | None) -> int:
            seen[:] = [current]  # the last run is the one that committed
            return days

        store.update_setting(BACKFILL_DAYS_SETTING, set_horizon)
        before = int(seen[0] or DEFAULT_BACKFILL_DAYS) if seen else DEFAULT_BACKFILL_DAYS
        if before != days:
            store.append_audit(
                AuditEntry(
                    actor=caller.email,
                    action="settings.update",
                    target=BACKFILL_DAYS_SETTING,
                    details={"before": before, "after": days},
                )
            )
            return get_app_settings(store), True
    return get_app_settings(store), False
