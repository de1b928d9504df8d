"""One investor's timeline: approved activities and matched mail, newest first, in one list.

Two listings feed it (the approved activities, the activity panel's mail), each paging on a
``<time_key>|<id>`` key, so the timeline pages on the same kind of key: a page resumes below
the last key it showed, in both sources at once. :func:`merge` is the one rule: an item is
shown only when no unread item of another source can sort above it (a source that has more
stops the page at its own resume key), so pages never skip or repeat an item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.domain.activity import ActivityItem
from shared.domain.models import Activity, time_key
from shared.domain.paging import encode_page_token


class TimelineItem(BaseModel):
    """An approved activity (``activity``) or a matched email (``email``, as the panel shows
    it); ``date`` is what the timeline is ordered by."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["activity", "email"]
    date: datetime
    activity: Activity | None = None
    email: ActivityItem | None = None

    @property
    def key(self) -> str:
        if self.activity is not None:
            return self.activity.sort_key
        assert self.email is not None
        return f"{time_key(self.date)}|{self.email.id}"


class TimelinePage(BaseModel):
    """Newest first; keep paging while ``has_more`` (a page may be short, even empty)."""

    items: list[TimelineItem]
    has_more: bool
    next_page_token: str = ""


@dataclass(frozen=True)
class SourcePage:
    """What one source returned: its items (newest first) and, if it has more, the key it
    would resume below."""

    items: Sequence[TimelineItem]
    resume_key: str = ""


def merge(sources: Sequence[SourcePage], limit: int) -> TimelinePage:
    """The first ``limit`` items of the sources, newest first, that no unread item can precede."""
    cutoff = max((s.resume_key for s in sources if s.resume_key), default="")
    ordered = sorted((i for s in sources for i in s.items), key=lambda i: i.key, reverse=True)
    safe = [item for item in ordered if item.key >= cutoff] if cutoff else ordered
    shown = safe[:limit]
    more = bool(cutoff) or len(safe) > len(shown)
    if not more:
        return TimelinePage(items=shown, has_more=False)
    resume = shown[-1].key if shown else cutoff
    return TimelinePage(items=shown, has_more=True, next_page_token=encode_page_token(resume))
