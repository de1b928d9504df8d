"""The Firestore Store's settings, guards and audit (``shared.ports.settings``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    APP_SETTINGS,
    AUDIT,
    GUARDS,
    _document,
    _from_store,
    _json_value,
    _Query,
    _setting_document_id,
    _valid_document_id,
)
from shared.adapters.firestore.indexes import Direction
from shared.domain.models import (
    AuditEntry,
    Guard,
)
from shared.domain.paging import (
    check_limit,
)
from shared.errors import ConflictError


class SettingsMixin(FirestoreBase):
    """The settings, guards and audit, over the client of :class:`FirestoreBase`."""

    def _setting_ref(self, key: str) -> firestore.DocumentReference:
        return self._ref(APP_SETTINGS, _setting_document_id(key))

    def get_setting(self, key: str) -> Any | None:
        snapshot = self._setting_ref(key).get()
        self.reads[APP_SETTINGS] = self.reads.get(APP_SETTINGS, 0) + 1
        data = snapshot.to_dict() if snapshot.exists else None
        return _from_store(data.get("value")) if data else None

    def set_setting(self, key: str, value: Any) -> None:
        self._setting_ref(key).set({"key": key, "value": _json_value(value)})
        self._count_write(APP_SETTINGS)

    def update_setting(self, key: str, change: Callable[[Any | None], Any]) -> Any:
        """``change`` may run more than once (the library retries on contention): keep it pure."""
        ref = self._setting_ref(key)

        def body(transaction: firestore.Transaction) -> Any:
            snapshot = ref.get(transaction=transaction)
            self.reads[APP_SETTINGS] = self.reads.get(APP_SETTINGS, 0) + 1
            data = snapshot.to_dict() if snapshot.exists else None
            current = _from_store(data.get("value")) if data else None
            value = change(current)
            transaction.set(ref, {"key": key, "value": _json_value(value)})
            return value

        return self._transact(body)

    def create_guard(self, guard: Guard) -> bool:
        return self._create(self._ref(GUARDS, guard.id), _document(guard))

    def get_guard(self, guard_id: str) -> Guard | None:
        return self._get(Guard, GUARDS, guard_id)

    def update_guard(self, guard_id: str, change: Callable[[Guard], Guard | None]) -> Guard | None:
        """``change`` gets a copy and may run more than once (retries): keep it pure."""
        if not _valid_document_id(guard_id):
            return None
        ref = self._ref(GUARDS, guard_id)

        def body(transaction: firestore.Transaction) -> Guard | None:
            current = self._get(Guard, GUARDS, guard_id, transaction)
            if current is None:
                return None
            updated = change(current.model_copy(deep=True))
            if updated is None:
                return current
            if updated.id != guard_id:
                raise ValueError(f"update_guard cannot rename {guard_id!r} to {updated.id!r}")
            transaction.set(ref, _document(updated))
            return updated

        return self._transact(body)

    def append_audit(self, entry: AuditEntry) -> None:
        created = self._create(
            self._ref(AUDIT, entry.id), _document(entry, sort_key=entry.sort_key)
        )
        if not created:
            raise ConflictError("audit entry already recorded", audit_id=entry.id)

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; ``sort_key`` (``at|id``) breaks ties of equal times by id, descending,
        exactly as the SQLite store's ``ORDER BY at DESC, id DESC``."""
        check_limit(limit)
        spec = _Query(
            AUDIT,
            equals=(("target", target),) if target is not None else (),
            order_by=(("sort_key", Direction.DESCENDING),),
            limit=limit,
        )
        return self._query_models(AuditEntry, spec)
