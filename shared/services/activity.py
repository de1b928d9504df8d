"""The email-activity panel (admin only): search captured investor mail, and the investor picker.

The store finds the mail (``Store.query_activity``: what is listed, its order, its filters and
words; the rules are in ``shared.domain.activity``, with ``ActivityParams``, the one schema of the
request's parameters); this module turns the store's hits into the panel's rows, which is the same
work for every store: the mailboxes that hold each email (by address), and the investors it is
linked to, by name. Names are looked up once per page (``Store.get_investors``, batched), not per
row. A soft-deleted (or vanished) investor is named by the address its link matched, as the digest
does: the panel is an audit surface, so its history keeps a readable name.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.domain.activity import (
    ActivityHit,
    ActivityInvestor,
    ActivityItem,
    ActivityMailbox,
    ActivityPage,
    ActivityQuery,
    PickerInvestor,
)
from shared.domain.activity_keys import activity_time
from shared.domain.models import Caller, EmailAccount, Investor, InvestorLink
from shared.errors import BadRequestError, NotFoundError
from shared.ports import ActivityPanelStore, CrmStore, MailStore


def search(store: ActivityPanelStore, query: ActivityQuery) -> ActivityPage:
    """One page of the panel (``GET /activity``: ``ActivityParams.query()`` of its parameters as
    the router validated them)."""
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


def search_own(store: ActivityPanelStore, caller: Caller, query: ActivityQuery) -> ActivityPage:
    """The panel's search scoped to the caller's own mailboxes (``GET /me/activity``): the mail
    a live sighting puts in one of them, each row naming only their own mailboxes.

    The store's search takes one mailbox: ``account_id`` names which of the caller's; without
    it, the caller's only mailbox (none: an empty page; several: BadRequestError asking which).
    A mailbox that is not the caller's is refused as unknown.
    """
    own = [
        a for a in store.list_email_accounts(include_deleted=True) if a.belongs_to(caller.user_id)
    ]
    own_ids = {a.id for a in own}
    if query.account_id:
        if query.account_id not in own_ids:
            raise NotFoundError("no such mailbox of yours", account_id=query.account_id)
        scoped = query
    elif not own:
        return ActivityPage(items=[], has_more=False, next_page_token="")
    elif len(own) > 1:
        raise BadRequestError(
            "you have several mailboxes: name one with account_id",
            account_id=sorted(own_ids),
        )
    else:
        scoped = query.model_copy(update={"account_id": own[0].id})
    page = search(store, scoped)
    items = [
        item.model_copy(
            update={"mailboxes": [m for m in item.mailboxes if m.account_id in own_ids]}
        )
        for item in page.items
    ]
    return page.model_copy(update={"items": items})
