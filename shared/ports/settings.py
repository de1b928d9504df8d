"""The settings, guards and audit area of the store: app settings, once-only work records
(leases, jobs, the digest's day), and the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shared.domain.models import AuditEntry, Guard


class SettingsStore(Protocol):
    """Settings (JSON-compatible values), guards and audit entries.

    Callbacks given to ``update_setting``/``update_guard`` must be pure: Firestore may run them
    again when it retries a contended transaction.
    """

    def get_setting(self, key: str) -> Any | None: ...
    def set_setting(self, key: str, value: Any) -> None: ...
    def update_setting(self, key: str, change: Callable[[Any | None], Any]) -> Any:
        """Read-modify-write of one setting in a transaction; returns the new value."""
        ...

    def create_guard(self, guard: Guard) -> bool:
        """Create-if-absent; True if this caller created it (and so owns the work)."""
        ...

    def get_guard(self, guard_id: str) -> Guard | None: ...
    def update_guard(self, guard_id: str, change: Callable[[Guard], Guard | None]) -> Guard | None:
        """Read-modify-write of a guard in a transaction; ``change`` returning None keeps it."""
        ...

    def append_audit(self, entry: AuditEntry) -> None:
        """Record one entry; the same entry id twice raises ConflictError."""
        ...

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        ...
