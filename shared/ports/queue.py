"""The queue port: fan-out of work to other functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Queue(Protocol):
    """Fan-out: Pub/Sub topics in the cloud, an in-process queue on one machine."""

    def publish(self, topic: str, message: Mapping[str, Any]) -> str: ...
