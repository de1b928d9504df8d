"""The app's settings (admins only): ``GET``/``PATCH /settings``, today the backfill horizon.

The exclusion list stays at ``/exclusions`` (``functions.admin.crm``): changing it re-matches
mail. See ``shared.services.app_settings`` for when a horizon change takes effect.
"""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Caller
from shared.services import app_settings
from shared.web import ADMINS


class AppSettings(ApiModel):
    """How far back a mailbox's full sync lists mail, in days."""

    backfill_horizon_days: int


class SettingsChange(ApiModel):
    """Fields left out keep their value."""

    backfill_horizon_days: int | None = Field(
        default=None, ge=app_settings.MIN_BACKFILL_DAYS, le=app_settings.MAX_BACKFILL_DAYS
    )


class SettingsWrite(AppSettings):
    """The settings after a change, whether it changed anything, and when it takes effect."""

    changed: bool
    note: str = Field(max_length=1000)


def _reply(current: app_settings.AppSettings) -> AppSettings:
    return AppSettings(backfill_horizon_days=current.backfill_horizon_days)


@api.route("GET", "/settings", roles=ADMINS, response=AppSettings, tag="settings")
def get_settings(request: flask.Request, caller: Caller) -> AppSettings:
    """The app's settings (the exclusion list has its own route, /exclusions)."""
    return _reply(app_settings.get_app_settings(wiring.store()))


@api.route(
    "PATCH", "/settings", roles=ADMINS, body=SettingsChange, response=SettingsWrite, tag="settings"
)
def patch_settings(request: flask.Request, caller: Caller, body: SettingsChange) -> SettingsWrite:
    """Change settings (audited); fields left out keep their value. A backfill horizon change
    deletes nothing and applies at each mailbox's next full sync (``note`` says so)."""
    current, changed = app_settings.update_app_settings(
        wiring.store(), caller, backfill_horizon_days=body.backfill_horizon_days
    )
    return SettingsWrite(
        backfill_horizon_days=current.backfill_horizon_days,
        changed=changed,
        note=app_settings.HORIZON_NOTE,
    )
