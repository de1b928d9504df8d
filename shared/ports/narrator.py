"""The narrator port: the language model that writes the digest's paragraph per teammate."""

from __future__ import annotations

from typing import Protocol


class Narrator(Protocol):
    """Writes one paragraph from a prompt, or None (``shared.adapters.narrator.ChatNarrator``)."""

    def narrate(self, system: str, prompt: str) -> str | None: ...
