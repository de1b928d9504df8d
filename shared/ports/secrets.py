"""The secrets port: secret values by name (Secret Manager, or env and files on one machine)."""

from __future__ import annotations

from typing import Protocol


class Secrets(Protocol):
    """Secret values by name (``smtp-password``). Implementations cache values, and absences,
    once per instance; ``get_optional`` returns None only for a secret that does not exist
    (a permission or credential problem still raises ConfigurationError)."""

    def get(self, name: str) -> str: ...
    def get_optional(self, name: str) -> str | None: ...
