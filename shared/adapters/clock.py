"""Clock adapters: the system clock, and a settable one for tests of schedules and windows."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from shared.domain.models import utcnow


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class FixedClock:
    """A clock tests move by hand; thread-safe because the ticker reads it from its thread."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("clock time must be timezone-aware")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now
