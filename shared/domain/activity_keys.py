"""What both stores derive from an email to list and search it in the email-activity panel.

``Store.query_activity`` filters, orders and searches on these fields. Pure functions of the
email and the team's addresses, so the stores cannot disagree on them; each store recomputes
them inside the transaction that recomputes the email's denormalised fields
(:meth:`shared.domain.models.Email.denormalised`).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime

from shared.domain import search
from shared.domain.models import Direction, Email, time_key
from shared.domain.paging import time_id_page_key

ANY = "*"


def activity_time(email: Email) -> datetime:
    """What the panel orders by: the Date header, or first sight for mail without one."""
    return email.date or email.first_seen_at


def activity_key(email: Email) -> str:
    """``<time_key>|<id>``: unique, fixed-width time first, so string order is the panel's
    order (by date, ties by id); paging resumes below the last key seen."""
    return f"{time_key(activity_time(email))}|{email.id}"


def activity_page_key(page_token: str) -> str:
    """The activity key a page token resumes below ("" for the first page)."""
    if not page_token:
        return ""
    return time_id_page_key(page_token)


def is_listed(email: Email) -> bool:
    """Linked to an investor or contact (every link names an investor) and held by at least
    one live sighting: soft delete lives on the sighting, so mail no mailbox holds is hidden."""
    return email.matched and bool(email.investor_ids) and bool(email.live_account_ids)


def email_direction(email: Email, own_addresses: Container[str]) -> Direction:
    """Outbound iff the sender is one of the team's mailbox addresses or aliases."""
    sender = email.sender.address if email.sender else ""
    return Direction.OUTBOUND if sender and sender in own_addresses else Direction.INBOUND


def facet_token(investor_id: str | None, account_id: str | None, direction: str | None) -> str:
    """The token of one combination of the panel's filters (``*`` = not filtered). Ids cannot
    hold ``|`` or ``*`` (``models.RecordId``), so tokens of different combinations never clash."""
    return f"{investor_id or ANY}|{account_id or ANY}|{direction or ANY}"


def email_search_words(email: Email) -> list[str]:
    """The words ``q`` searches: subject, snippet, the sender's display name and address
    (the sender's, not every recipient's: "mail from Zoe" is what the panel is asked)."""
    sender = email.sender
    parts = (email.subject, email.snippet, *((sender.name, sender.address) if sender else ()))
    return search.text_words(parts)


@dataclass(frozen=True)
class ActivityFields:
    """An email's derived listing fields. For mail that is not listed: no facets and no words,
    so no query can find it (``direction`` is then meaningless and left inbound)."""

    listed: bool
    key: str
    direction: Direction
    facets: tuple[str, ...]
    words: tuple[str, ...]

    @property
    def prefixes(self) -> list[str]:
        """Firestore's ``search_words``: every 2..15-character prefix of the words."""
        return search.prefixes(self.words)


def activity_fields(email: Email, own_addresses: Container[str]) -> ActivityFields:
    """Everything the panel filters, orders and searches on, for one email.

    ``facets``: one token per combination of the filters the email satisfies, the unfiltered
    one included: every investor it is linked to or none, every mailbox holding a live sighting
    or none, its direction or none. Any combination of filters is then one exact token.
    """
    key = activity_key(email)
    if not is_listed(email):
        return ActivityFields(False, key, Direction.INBOUND, (), ())
    direction = email_direction(email, own_addresses)
    facets = sorted(
        facet_token(investor, account, way)
        for investor in (None, *email.investor_ids)
        for account in (None, *email.live_account_ids)
        for way in (None, direction.value)
    )
    return ActivityFields(True, key, direction, tuple(facets), tuple(email_search_words(email)))
