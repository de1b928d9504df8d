"""The clock port: the time, so tests and the demo can hold it still or move it on."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...
