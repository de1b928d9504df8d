"""The activity index area of the store: the email-activity panel's denormalised read side."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from shared.domain.activity import ActivityHits, ActivityQuery
from shared.domain.models import Investor


class ActivityIndexStore(Protocol):
    """The panel's listing, its direction upkeep, and the batched investor look-up it names
    a page's investors with."""

    def query_activity(self, query: ActivityQuery) -> ActivityHits:
        """Listed mail (linked to an investor, with a live sighting) passing every filter and
        matching every word of ``query``, newest first by (date, id); ``page_token`` resumes
        below the previous page. A page may be short with ``has_more`` (a store that filters
        in memory stops at its read budget). The hits' emails may lack their body (a page never
        shows it). BadRequestError for a malformed page token."""
        ...

    def refresh_activity_direction(self, addresses: Sequence[str]) -> int:
        """Re-derive the direction of stored mail sent from any of these addresses, after the
        team's addresses changed (a mailbox added or removed); how many emails changed."""
        ...

    def get_investors(self, investor_ids: Iterable[str]) -> list[Investor]:
        """The investors with these ids, soft-deleted ones included, by id; one batched read
        (the panel names the investors of a page)."""
        ...
