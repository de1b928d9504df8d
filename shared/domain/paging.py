"""Paging and windows of the stores' listings: limits, page tokens and the range keys they resume.

Every listing pages on a unique sortable key (``<time_key>|<id>``: proposals, the panel, the
digest's window) rather than on cursors or offsets, which the Firestore emulator ignores and
production bills for. A page token is that key, base64-encoded; it is the caller's input, so
reading one checks it is exactly what a listing wrote. Pure functions: both stores call them,
so they cannot disagree on what a token or a window means.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

from shared.domain.models import is_record_id, time_key
from shared.errors import BadRequestError

# A token is base64 of a key of at most a few hundred characters; anything longer is not one.
MAX_PAGE_TOKEN = 4096
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+={0,2}")

# Sightings soft-deleted per purge transaction: each may rewrite its email too, so a page is at
# most 2 x 200 writes, under Firestore's 500 per commit.
MAX_PURGE_PAGE = 200


def check_limit(limit: int) -> int:
    """Listing limits below 1 are a caller's mistake on every store, never an empty page."""
    if limit < 1:
        raise BadRequestError("limit must be at least 1", limit=limit)
    return limit


def check_purge_limit(limit: int) -> int:
    """A purge page's limit: at least 1 and at most :data:`MAX_PURGE_PAGE` (one commit)."""
    check_limit(limit)
    if limit > MAX_PURGE_PAGE:
        raise BadRequestError(f"limit must be at most {MAX_PURGE_PAGE}", limit=limit)
    return limit


def encode_page_token(key: str) -> str:
    """Opaque page token: the last item's sort key. Stores page on a unique sortable key rather
    than cursors or offsets (which the Firestore emulator ignores and production bills for)."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> str:
    """The key a page token carries; BadRequestError unless it is exactly what
    :func:`encode_page_token` writes (a token is the caller's input: garbage, a truncated or
    re-padded token, or one of unbounded length is refused, never read as a position).
    Each listing then checks that the key is one of its own (:func:`time_id_page_key`)."""
    if not token or len(token) > MAX_PAGE_TOKEN or not _TOKEN_CHARS.fullmatch(token):
        raise BadRequestError("page_token is not valid")
    try:
        key = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise BadRequestError("page_token is not valid") from exc
    # Empty: never one of ours. Not canonical: base64 decoding forgives what encoding never writes.
    if not key or encode_page_token(key) != token:
        raise BadRequestError("page_token is not valid")
    return key


def split_time_id_key(key: str) -> tuple[datetime, str]:
    """The time and id of a ``<time_key>|<id>`` key (an activity key, a proposal's
    ``sort_key``, an email's ``matched_key``); BadRequestError if it is not one (a page token
    is a caller's input)."""
    stamp, _, record_id = key.partition("|")
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadRequestError("page_token is not valid") from exc
    if len(stamp) != 27 or not is_record_id(record_id):
        raise BadRequestError("page_token is not valid")
    return when, record_id


def time_id_page_key(page_token: str) -> str:
    """The ``<time_key>|<id>`` key of a page token of a listing ordered by time then id
    (proposals, the panel, the digest's window); BadRequestError for any other key."""
    key = decode_page_token(page_token)
    split_time_id_key(key)
    return key


def matched_window_keys(since: datetime, until: datetime, page_token: str) -> tuple[str, str]:
    """The ``matched_key`` bounds of ``since < matched_at <= until``, resumed after a page.

    "\uffff" sorts after any id, so ``<since>|\uffff`` excludes mail matched exactly at
    ``since`` and ``<until>|\uffff`` includes mail matched exactly at ``until``.
    """
    lower = f"{time_key(since)}|\uffff"
    if page_token:
        lower = max(lower, time_id_page_key(page_token))
    return lower, f"{time_key(until)}|\uffff"


def proposal_window_keys(
    created_from: datetime | None, created_to: datetime | None, page_token: str
) -> tuple[str | None, str | None]:
    """``sort_key`` bounds (``lower <= key < upper``; None = open) of ``created_from <=
    created_at < created_to``, resumed below a page's last key. One field carries the window
    and the paging, so any filter combination needs no index beyond (equalities, sort_key)."""
    lower = _window_key("created_from", created_from)
    upper = _window_key("created_to", created_to)
    if page_token:
        resume = time_id_page_key(page_token)
        upper = resume if upper is None else min(upper, resume)
    return lower, upper


def _window_key(name: str, value: datetime | None) -> str | None:
    # time_key is fixed-width (so sortable) for four-digit years only.
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadRequestError(f"{name} must carry a time zone")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise BadRequestError(f"{name} is out of range") from None
    if utc.year < 1000:
        raise BadRequestError(f"{name} is out of range")
    return f"{time_key(utc)}|"
