"""The email-activity panel (admin only): search captured investor mail, and the investor picker.

The store finds the mail (``Store.query_activity``: what is listed, its order, its filters and
words; the rules are in ``shared.domain.activity``); this module turns request parameters into a
query and the store's hits into the panel's rows, which is the same work for every store: the
mailboxes that hold each email (by address), and the investors it is linked to, by name. Names
are looked up once per page (``Store.get_investors``, batched), not per row. A soft-deleted (or
vanished) investor is named by the address its link matched, as the digest does: the panel is
an audit surface, so its history keeps a readable name.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import TypeAdapter, ValidationError

from shared.domain import search as tokenizer
from shared.domain.activity import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ActivityHit,
    ActivityInvestor,
    ActivityItem,
    ActivityMailbox,
    ActivityPage,
    ActivityQuery,
    PickerInvestor,
)
from shared.domain.activity_keys import activity_page_key, activity_time
from shared.domain.models import Direction, EmailAccount, Investor, InvestorLink, RecordId
from shared.errors import BadRequestError
from shared.ports import ActivityPanelStore, CrmStore, MailStore

PARAMETERS = frozenset({"investor_id", "account_id", "direction", "q", "limit", "page_token"})
_RECORD_ID: TypeAdapter[str] = TypeAdapter(RecordId)


def parse_activity_query(args: Mapping[str, str]) -> ActivityQuery:
    """The query a request's parameters ask for; BadRequestError naming the first bad one.

    An empty parameter is an absent one. Unknown parameters are refused rather than ignored: a
    misspelt filter (``investor=``) would otherwise silently return everything. ``q`` must hold
    at least one word of two or more letters or digits: one-letter words are ignored (as
    prefixes they match nearly everything), and a ``q`` of nothing but those is an error, not
    "no text filter".
    """
    unknown = sorted(set(args) - PARAMETERS)
    if unknown:
        raise BadRequestError(f"unknown parameter {unknown[0]!r}", allowed=sorted(PARAMETERS))
    values = {name: value.strip() for name, value in args.items() if value.strip()}
    ids = {name: _record_id(name, values.get(name)) for name in ("investor_id", "account_id")}
    direction = None
    if "direction" in values:
        try:
            direction = Direction(values["direction"])
        except ValueError:
            raise BadRequestError(
                "direction must be inbound or outbound", direction=values["direction"]
            ) from None
    limit = DEFAULT_LIMIT
    if "limit" in values:
        try:
            limit = int(values["limit"])
        except ValueError:
            raise BadRequestError("limit must be a whole number", limit=values["limit"]) from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequestError(f"limit must be between 1 and {MAX_LIMIT}", limit=limit)
    q = values.get("q", "")
    words = tokenizer.query_words(q)
    if q and not words:
        raise BadRequestError(
            f"q has no word of at least {tokenizer.MIN_PREFIX} letters or digits", q=q
        )
    page_token = values.get("page_token", "")
    activity_page_key(page_token)  # a malformed token is the caller's 400, before any read
    return ActivityQuery(
        investor_id=ids["investor_id"],
        account_id=ids["account_id"],
        direction=direction,
        q=q,
        words=tuple(words),
        limit=limit,
        page_token=page_token,
    )


def _record_id(name: str, value: str | None) -> str | None:
    """An id parameter, if given; one that no record can have is a 400, not an empty page."""
    if value is None:
        return None
    try:
        return _RECORD_ID.validate_python(value)
    except ValidationError:
        raise BadRequestError(f"{name} is not a valid id", **{name: value}) from None


def search(store: ActivityPanelStore, query: ActivityQuery) -> ActivityPage:
    """One page of the panel (``GET /activity``, after ``parse_activity_query``)."""
    found = store.query_activity(query)
    accounts = {a.id: a for a in store.list_email_accounts(include_deleted=True)}
    wanted = {i for hit in found.hits for i in hit.email.investor_ids}
    investors = {i.id: i for i in store.get_investors(wanted)}
    items = [_item(store, hit, accounts, investors) for hit in found.hits]
    return ActivityPage(
        items=items,
        has_more=found.has_more,
        next_page_token=found.next_token if found.has_more else "",
    )


def picker(store: CrmStore) -> list[PickerInvestor]:
    """The investors the panel offers as a filter: graveyard and soft-deleted ones left out (their
    mail stays listed and searchable), by name (case-insensitive), then id."""
    return [
        PickerInvestor(id=i.id, name=i.name)
        for i in store.list_investors(include_graveyard=False, include_deleted=False)
    ]


def _item(
    store: MailStore,
    hit: ActivityHit,
    accounts: Mapping[str, EmailAccount],
    investors: Mapping[str, Investor],
) -> ActivityItem:
    email = hit.email
    links: list[InvestorLink] | None = None
    named: list[ActivityInvestor] = []
    for investor_id in email.investor_ids:
        investor = investors.get(investor_id)
        if investor is not None and not investor.deleted:
            named.append(
                ActivityInvestor(id=investor_id, name=investor.name, graveyard=investor.graveyard)
            )
            continue
        if links is None:  # only mail of a deleted investor pays for its links
            links = store.list_links(email.id)
        matched = [ln.matched_address for ln in links if ln.investor_id == investor_id]
        named.append(
            ActivityInvestor(
                id=investor_id,
                name=matched[0] if matched else investor_id,
                graveyard=investor.graveyard if investor else False,
                deleted=True,
            )
        )
    return ActivityItem(
        id=email.id,
        date=activity_time(email),
        direction=hit.direction,
        sender=email.sender,
        to=email.to,
        cc=email.cc,
        subject=email.subject,
        snippet=email.snippet,
        mailboxes=[
            ActivityMailbox(
                account_id=account_id,
                address=accounts[account_id].address if account_id in accounts else "",
            )
            for account_id in email.live_account_ids
        ],
        investors=named,
    )
