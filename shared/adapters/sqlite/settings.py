"""The SQLite Store, settings, guards and the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.adapters.sqlite.base import _dump, _load, _SqliteBase
from shared.domain.models import (
    AuditEntry,
    Guard,
    time_key,
)
from shared.domain.paging import (
    check_limit,
)
from shared.errors import ConflictError


class SqliteSettings(_SqliteBase):
    """Settings, guards and the audit log."""

    def get_setting(self, key: str) -> Any | None:
        row = (
            self._connection()
            .execute("SELECT value FROM app_settings WHERE key = ?", (key,))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO app_settings (key, value) VALUES (?,?)",
                (key, json.dumps(value)),
            )

    def update_setting(self, key: str, change: Callable[[Any | None], Any]) -> Any:
        with self._write() as conn:
            row = conn.execute("SELECT value FROM app_settings WHERE key = ?", (key,)).fetchone()
            self._after_read("update_setting")
            value = change(json.loads(row[0]) if row else None)
            conn.execute(
                "INSERT OR REPLACE INTO app_settings (key, value) VALUES (?,?)",
                (key, json.dumps(value)),
            )
            return value

    def create_guard(self, guard: Guard) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO guards (id, doc) VALUES (?,?)", (guard.id, _dump(guard))
            )
            return cursor.rowcount == 1

    def get_guard(self, guard_id: str) -> Guard | None:
        return self._one(Guard, "SELECT doc FROM guards WHERE id = ?", (guard_id,))

    def update_guard(self, guard_id: str, change: Callable[[Guard], Guard | None]) -> Guard | None:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM guards WHERE id = ?", (guard_id,)).fetchone()
            if row is None:
                return None
            current = _load(Guard, row[0])
            self._after_read("update_guard")
            updated = change(current.model_copy(deep=True))
            if updated is None:
                return current
            if updated.id != guard_id:
                raise ValueError(f"update_guard cannot rename {guard_id!r} to {updated.id!r}")
            conn.execute("UPDATE guards SET doc = ? WHERE id = ?", (_dump(updated), guard_id))
            return updated

    def append_audit(self, entry: AuditEntry) -> None:
        with self._write() as conn:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO audit (id, target, at, actor, action, sort_key, doc)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    entry.id,
                    entry.target,
                    time_key(entry.at),
                    entry.actor,
                    entry.action,
                    entry.sort_key,
                    _dump(entry),
                ),
            ).rowcount
        if not inserted:
            raise ConflictError("audit entry already recorded", audit_id=entry.id)

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        check_limit(limit)
        if target is None:
            return self._many(
                AuditEntry, "SELECT doc FROM audit ORDER BY at DESC, id DESC LIMIT ?", (limit,)
            )
        return self._many(
            AuditEntry,
            "SELECT doc FROM audit WHERE target = ? ORDER BY at DESC, id DESC LIMIT ?",
            (target, limit),
        )
