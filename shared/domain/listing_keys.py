"""The admin lists' sortable keys and filters: one definition both stores write and query.

Every list pages on a unique key of its own order (``key < last`` or ``key > last``, never
cursors or offsets, which the Firestore emulator ignores), so each record carries its key as a
top-level field (Firestore) or column (SQLite), written with the record:

- ``listing_name``: the name case-folded, then ``\\x01`` and the id. Sorting on it is sorting
  by name then id, and a name-prefix search is a range on the same field, which is why a
  prefix search can only sort by name (on Firestore a range and its order must share a field).
- ``last_contact_key`` (investors): ``<time_key>|<id>`` of the newest listed mail linked to the
  investor, or ``0|<id>`` for none yet ("0" sorts below every year, so newest first puts never
  contacted investors last). It is a listing key, refreshed from stored mail
  (``refresh_listing_keys``), not a figure of record: relationship figures own the exact value.
- ``email_domains`` (contacts): the domains of the contact's addresses, so "contacts at
  example.com" is one array-contains query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from shared.domain.addresses import canonical_address
from shared.domain.models import is_record_id, normalize_domain, time_key
from shared.domain.paging import check_limit, decode_page_token, split_time_id_key
from shared.errors import BadRequestError

NAME_SEPARATOR = "\x01"
NEVER_CONTACTED = "0"
# Lists serve at most this many records per page (the console pages; exports chunk).
MAX_LIST_LIMIT = 500


class InvestorSort(StrEnum):
    """The orders the investor list offers, each one indexed query per filter set.

    Hook for relationship strength: add ``STRENGTH = "strength"`` here and its key field to
    ``INVESTOR_SORT_FIELDS`` (the stores and the index file follow that table)."""

    NAME = "name"
    LAST_CONTACT = "last_contact"


# The stored key each sort orders on, and whether newest/highest first (descending).
INVESTOR_SORT_FIELDS: dict[InvestorSort, tuple[str, bool]] = {
    InvestorSort.NAME: ("listing_name", False),
    InvestorSort.LAST_CONTACT: ("last_contact_key", True),
}


def name_listing_key(name: str, record_id: str) -> str:
    """Case-folded name, then the id: unique, and sorted as the lists show names."""
    return f"{name.casefold()}{NAME_SEPARATOR}{record_id}"


def last_contact_key(at: datetime | None, investor_id: str) -> str:
    """Newest-first key of an investor's last contact (``0|id`` when there is none)."""
    return f"{time_key(at) if at else NEVER_CONTACTED}|{investor_id}"


def contact_domains(emails: Iterable[str]) -> list[str]:
    """The domains of a contact's addresses, normalised as organisation domains are."""
    domains: set[str] = set()
    for address in emails:
        try:
            domains.add(normalize_domain(address.rpartition("@")[2]))
        except ValueError:
            continue  # not an address with a domain: nothing to find it by
    return sorted(domains)


def name_prefix_bounds(prefix: str) -> tuple[str, str]:
    """``lower <= listing_name < upper`` holds exactly for names starting with ``prefix``
    (case-folded): the upper bound is the prefix with its last character incremented."""
    folded = prefix.casefold()
    if not folded:
        raise BadRequestError("name_prefix must not be empty")
    stem = folded
    while stem:
        last = ord(stem[-1]) + 1
        if 0xD800 <= last <= 0xDFFF:
            last = 0xE000
        if last <= 0x10FFFF:
            return folded, stem[:-1] + chr(last)
        stem = stem[:-1]
    # Every character is U+10FFFF: nothing sorts above, so the range is open at the top.
    return folded, "\U0010ffff" * (len(folded) + 2)


def one_filter(**filters: object) -> str | None:
    """The one filter given among mutually exclusive ones (each is its own indexed query);
    BadRequestError naming them if several are."""
    given = [name for name, value in filters.items() if value not in (None, "")]
    if len(given) > 1:
        raise BadRequestError(
            f"give at most one of {', '.join(filters)}", given=", ".join(sorted(given))
        )
    return given[0] if given else None


def check_investor_search(sort: InvestorSort, name_prefix: str) -> None:
    """A name-prefix search sorts by name only: on Firestore a range and its order must be on
    the same field, and both stores answer alike."""
    if name_prefix and sort is not InvestorSort.NAME:
        raise BadRequestError("a name_prefix search sorts by name only", sort=sort.value)


def name_page_key(page_token: str) -> str:
    """The ``listing_name`` a name-sorted page resumes after; BadRequestError for a token
    that is not one (a token is the caller's input)."""
    key = decode_page_token(page_token)
    _, separator, record_id = key.rpartition(NAME_SEPARATOR)
    if not separator or not is_record_id(record_id):
        raise BadRequestError("page_token is not valid")
    return key


def last_contact_page_key(page_token: str) -> str:
    """The ``last_contact_key`` a last-contact page resumes below."""
    key = decode_page_token(page_token)
    stamp, _, record_id = key.partition("|")
    if stamp != NEVER_CONTACTED:
        split_time_id_key(key)
    elif not is_record_id(record_id):
        raise BadRequestError("page_token is not valid")
    return key


def investor_page_key(sort: InvestorSort, page_token: str) -> str:
    """The key an investor page resumes at, by the sort's key kind."""
    if sort is InvestorSort.NAME:
        return name_page_key(page_token)
    return last_contact_page_key(page_token)


def check_list_limit(limit: int) -> int:
    """1..MAX_LIST_LIMIT (BadRequestError otherwise)."""
    check_limit(limit)
    if limit > MAX_LIST_LIMIT:
        raise BadRequestError(f"limit must be at most {MAX_LIST_LIMIT}", limit=limit)
    return limit


def address_filter(address: str) -> str:
    """The key an address search compares (canonical: Gmail dots and +tags folded);
    BadRequestError for something that is not an address (a caller's input)."""
    try:
        return canonical_address(address)
    except ValueError:
        raise BadRequestError("address is not an e-mail address") from None


def domain_filter(domain: str) -> str:
    """The key a domain search compares; BadRequestError for something that is not a domain."""
    try:
        return normalize_domain(domain)
    except ValueError:
        raise BadRequestError("domain is not a domain") from None
