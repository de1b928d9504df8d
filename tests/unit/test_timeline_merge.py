"""The timeline's merge of two paged sources (shared/domain/timeline.py): pages never skip or
repeat an item, however the sources' pages fall."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from shared.domain.models import Activity
from shared.domain.paging import decode_page_token
from shared.domain.timeline import SourcePage, TimelineItem, merge

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def activity(n: int, minutes: int) -> TimelineItem:
    when = T0 + timedelta(minutes=minutes)
    record = Activity(
        id=f"act-{n:03d}",
        proposal_id=f"act-{n:03d}",
        email_id="e",
        investor_id="inv",
        occurred_at=when,
        created_by="a@f.example",
    )
    return TimelineItem(kind="activity", date=when, activity=record)


def source(items: list[TimelineItem], token: str, size: int) -> SourcePage:
    """A source page: up to ``size`` items below ``token``, resuming at the last one."""
    below = [i for i in items if not token or i.key < token][:size]
    more = len([i for i in items if not token or i.key < token]) > size
    return SourcePage(below, below[-1].key if more and below else "")


def test_paging_two_sources_covers_every_item_once_in_order() -> None:
    rng = random.Random(13)
    for _ in range(30):
        left = sorted(
            (activity(n, rng.randrange(50)) for n in range(rng.randrange(12))),
            key=lambda i: i.key,
            reverse=True,
        )
        right = sorted(
            (activity(100 + n, rng.randrange(50)) for n in range(rng.randrange(12))),
            key=lambda i: i.key,
            reverse=True,
        )
        seen: list[str] = []
        token = ""
        for _ in range(100):
            limit = rng.randrange(1, 4)
            page = merge(
                [source(left, token, rng.randrange(1, 4)), source(right, token, limit)], limit
            )
            seen += [i.key for i in page.items]
            if not page.has_more:
                break
            token = decode_page_token(page.next_page_token)
        expected = sorted((i.key for i in left + right), reverse=True)
        assert seen == expected
