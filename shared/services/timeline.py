"""One investor's timeline (admins): approved activities and matched mail, newest first.

The activities come from the listings area, the mail from the activity panel's own search
(``services.activity.search``: the same rows, mailboxes and investor names the panel shows);
``shared.domain.timeline.merge`` interleaves them so paging neither skips nor repeats.
"""

from __future__ import annotations

from shared.domain.activity import ActivityQuery
from shared.domain.activity_keys import activity_page_key
from shared.domain.paging import decode_page_token
from shared.domain.timeline import SourcePage, TimelineItem, TimelinePage, merge
from shared.errors import NotFoundError
from shared.ports import TimelineStore
from shared.services import activity as panel


def timeline(
    store: TimelineStore, investor_id: str, *, limit: int = 50, page_token: str = ""
) -> TimelinePage:
    """One page of the investor's timeline; 404 for an unknown investor (a soft-deleted one
    keeps its history), 400 for a page token that is not one of the timeline's."""
    activity_page_key(page_token)  # the caller's input, checked before anything is read
    if not store.get_investors([investor_id]):
        raise NotFoundError("no such investor", investor_id=investor_id)
    activities = store.list_activity_page(
        investor_id=investor_id, limit=limit, page_token=page_token
    )
    mail = panel.search(
        store, ActivityQuery(investor_id=investor_id, limit=limit, page_token=page_token)
    )
    sources = [
        SourcePage(
            [
                TimelineItem(kind="activity", date=a.occurred_at or a.created_at, activity=a)
                for a in activities.items
            ],
            decode_page_token(activities.next_token) if activities.next_token else "",
        ),
        SourcePage(
            [TimelineItem(kind="email", date=item.date, email=item) for item in mail.items],
            decode_page_token(mail.next_page_token) if mail.has_more else "",
        ),
    ]
    return merge(sources, limit)
