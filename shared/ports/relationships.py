"""The relationships area of the store: contribution rows (one per email and investor) and the
daily relationship scores (``shared.domain.relationships``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from shared.domain.relationships import Contribution, RelationshipScore, RelationshipSort
from shared.ports.paging import Page


class RelationshipStore(Protocol):
    """Contribution rows are the mail area's to write: every transaction that recomputes an
    email's denormalised fields also replaces its rows (``contributions_of``), so this area
    only reads them, except for the recompute command's repair of one email. Scores are
    written by the daily re-score alone."""

    def list_investor_contributions(self, investor_id: str) -> list[Contribution]:
        """Every row of one investor, by ``at_key``."""
        ...

    def list_contact_contributions(self, contact_id: str) -> list[Contribution]:
        """Every row naming the contact, by ``at_key``."""
        ...

    def list_contributions(self, *, limit: int = 500, after_id: str = "") -> list[Contribution]:
        """Every row by id, ``limit`` at a time (the recompute command's comparison)."""
        ...

    def recompute_email_contributions(self, email_id: str) -> int:
        """Rebuild one email's rows from its stored mail in one transaction (rows of an email
        that no longer exists are removed); returns how many rows were written or deleted."""
        ...

    def get_relationship_scores(self, investor_ids: Sequence[str]) -> dict[str, RelationshipScore]:
        """The stored scores of these investors, by id (absent ones left out)."""
        ...

    def put_relationship_scores(self, scores: Iterable[RelationshipScore]) -> None:
        """Write scores (the re-score's; replaces each by id)."""
        ...

    def list_relationship_scores(
        self, sort: RelationshipSort, *, limit: int = 50, page_token: str = ""
    ) -> Page[RelationshipScore]:
        """Listed scores only (not graveyard, not deleted when scored), strongest or most
        recently contacted first, ties by investor id descending."""
        ...

    def list_cold_scores(
        self, *, cutoff_key: str, cold_drop: int, limit: int = 200
    ) -> list[RelationshipScore]:
        """Listed scores whose last two-way exchange is before ``cutoff_key`` (a ``time_key``;
        scores with none are left out) or whose ``drop_30d`` exceeds ``cold_drop``; by
        investor id, each query at most ``limit``."""
        ...
