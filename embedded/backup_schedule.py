"""Daily backups while the one-machine server runs: ``embedded.backup`` on a timer.

Each backup is SQLite's online backup (a snapshot of one moment while the server keeps
writing), checked with ``integrity_check`` before it is renamed into place; the newest
``keep`` are kept. A failure is an ERROR log line under a stable event name
(``backup_failed``) and the next attempt is at the next interval: a failed backup must be
seen, and must not stop the server. The first backup is taken at start when the newest one is
older than the interval (or there is none), so a machine restarted every night still gets one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from embedded.backup import backup
from shared.logging import log_event

logger = logging.getLogger(__name__)

DAY_S = 24 * 3600.0
BACKUP_GLOB = "crm-*.sqlite3"


class BackupSchedule:
    def __init__(
        self,
        database: Path,
        folder: Path,
        *,
        keep: int,
        interval_s: float = DAY_S,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.folder = folder
        self.keep = keep
        self.interval_s = interval_s
        self._now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backups(self) -> list[Path]:
        """Oldest first (the names carry a sortable UTC time)."""
        return sorted(self.folder.glob(BACKUP_GLOB))

    def run_once(self) -> Path | None:
        """One backup and the pruning; None (and an ERROR event) if it failed."""
        stamp = self._now().strftime("%Y%m%dT%H%M%S%fZ")
        target = self.folder / f"crm-{stamp}.sqlite3"
        try:
            result = backup(self.database, target)
            target.chmod(0o600)
        except Exception as exc:
            log_event(
                logger,
                logging.ERROR,
                "backup failed",
                event="backup_failed",
                target=str(target),
                reason=f"{type(exc).__name__}: {exc}"[:500],
            )
            return None
        removed = self._prune()
        log_event(
            logger,
            logging.INFO,
            "backup written",
            event="backup_done",
            target=str(result.path),
            size_bytes=result.size_bytes,
            removed=len(removed),
        )
        return result.path

    def _prune(self) -> list[Path]:
        old = self.backups()[: -self.keep]
        for path in old:
            path.unlink(missing_ok=True)
        return old

    def _due_at_start(self) -> bool:
        existing = self.backups()
        if not existing:
            return True
        age = self._now().timestamp() - existing[-1].stat().st_mtime
        return age >= self.interval_s

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="backups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._due_at_start():
            self.run_once()
        while not self._stop.wait(self.interval_s):
            self.run_once()
