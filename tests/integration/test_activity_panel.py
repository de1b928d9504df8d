"""The seed spec's email-activity panel, one rule per test, on SQLite and on Firestore.

Mail reaches the store the way it does in production wherever that is natural: the scenario's
mailboxes in the Gmail sandbox, captured by the real sync (full, then partial syncs for deletes),
a contact added and applied by the re-match job, a mailbox added through the directory service.
The panel is read through the service (``shared.services.activity``) with request-like
parameters, exactly as the admin API's route calls it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.scenario import TEAM, Scenario, message
from shared.adapters.firestore import FirestoreStore
from shared.adapters.queue import LocalQueue
from shared.domain.activity import ActivityPage, ActivityParams
from shared.domain.models import (
    Caller,
    Contact,
    Direction,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Role,
    Sighting,
    email_id_for,
)
from shared.domain.tenancy import SOURCE_SETTING, TeamDomains
from shared.errors import BadRequestError
from shared.ports import Store
from shared.services import activity, directory
from shared.services.rematch import queue_rematch, run_rematch
from tests.support.gmail import GmailWorld
from tests.support.sync import NOW, sync_once

ADA, BEN = TEAM
ADMIN = Caller(email=ADA, role=Role.ADMIN)


def panel(store: Store, **params: str) -> ActivityPage:
    return activity.search(store, ActivityParams.model_validate(params).query())


def listed(store: Store, **params: str) -> list[str]:
    """Every id the panel lists for the parameters, across all pages."""
    ids: list[str] = []
    token = ""
    while True:
        page = panel(store, **params, **({"page_token": token} if token else {}))
        ids += [item.id for item in page.items]
        if not page.has_more:
            return ids
        token = page.next_page_token


def ids_of(captured_fund: Scenario, *keys: str) -> list[str]:
    return [email_id_for(captured_fund.message_ids[key]) for key in keys]


PITCH = email_id_for("<pitch.42@startup.example>")
NEWSLETTER = email_id_for("<monthly.2026-11@news.zeta.vc>")


def test_unmatched_mail_is_hidden(store: Store, captured_fund: Scenario) -> None:
    assert store.get_email(PITCH) is not None  # captured (metadata only), just not listed
    assert store.get_email(NEWSLETTER) is not None  # bulk: stored, never matched
    shown = listed(store)
    assert shown == ids_of(captured_fund, "partner", "reply", "intro")  # newest first
    assert listed(store, q="pitch") == []
    assert listed(store, q="monthly") == []


def test_mail_appears_once_its_sender_is_added_as_a_contact(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    assert PITCH not in listed(store)
    store.upsert_investor(Investor(id="inv-startup", name="Startup Angels"))
    store.upsert_contact(
        Contact(
            id="con-sam",
            name="Sam Stranger",
            investor_id="inv-startup",
            emails=["sam@startup.example"],
        )
    )
    queue = LocalQueue()
    job = queue_rematch(
        store, queue, addresses=["sam@startup.example"], reason="contact added", actor=ADA
    )
    run_rematch(store, job, gmail_for=world.gmail_for, deadline=time.monotonic() + 60)

    assert PITCH in listed(store)
    assert listed(store, investor_id="inv-startup") == [PITCH]
    (item,) = panel(store, q="pitch").items
    assert [(i.id, i.name) for i in item.investors] == [("inv-startup", "Startup Angels")]
    assert item.snippet  # the body was fetched when it matched: its words are searchable
    assert listed(store, q="minutes") == [PITCH]  # "Would love 15 minutes."


def test_a_soft_deleted_sighting_hides_only_mail_no_other_mailbox_holds(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    intro, partner = ids_of(captured_fund, "intro", "partner")
    ben = store.get_email_account_by_address(BEN)
    ada = store.get_email_account_by_address(ADA)
    assert ben is not None and ada is not None
    for email_id in (intro, partner):  # Ben deletes both in Gmail; the partial sync sees it
        (sighting,) = [s for s in store.list_sightings(email_id) if s.account_id == ben.id]
        world.sandbox.delete_message(BEN, sighting.gmail_message_id)
    assert sync_once(store, world, BEN).ran

    assert partner not in listed(store)  # Ben held the only copy
    assert intro in listed(store)  # Ada still holds the intro
    (item,) = [i for i in panel(store).items if i.id == intro]
    assert [(m.account_id, m.address) for m in item.mailboxes] == [(ada.id, ADA)]
    assert listed(store, account_id=ben.id) == []  # no live sighting left in Ben's mailbox
    assert intro in listed(store, account_id=ada.id)


def test_direction_is_decided_by_the_sender_even_for_a_mailbox_added_later(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    intro, reply, partner = ids_of(captured_fund, "intro", "reply", "partner")
    directions = {item.id: item.direction for item in panel(store).items}
    assert directions == {
        intro: Direction.INBOUND,  # from Zoe
        reply: Direction.OUTBOUND,  # from Ada, one of the team's mailboxes
        partner: Direction.INBOUND,
    }

    # Carol's mail to Zoe, copied to Ada, is captured before Carol's own mailbox exists.
    carol = "carol@fund.example"
    mid, raw = message(
        sender=f"Carol <{carol}>",
        to=["zoe@zeta.vc"],
        cc=[ADA],
        subject="Fund update",
        body="Numbers attached.",
        date=NOW - timedelta(hours=1),
    )
    world.sandbox.add_message(ADA, raw, label_ids=("INBOX",))
    assert sync_once(store, world, ADA).ran
    carols = email_id_for(mid)
    assert listed(store, direction="inbound")[0] == carols
    assert carols not in listed(store, direction="outbound")

    fund = TeamDomains(frozenset({"fund.example"}), SOURCE_SETTING)
    directory.add_mailbox(store, ADMIN, address=carol, team=fund)
    assert listed(store, direction="outbound") == [carols, reply]
    assert listed(store, direction="inbound") == [partner, intro]


def test_graveyard_mail_is_listed_and_searchable_but_not_in_the_picker(
    store: Store, captured_fund: Scenario
) -> None:
    zeta = captured_fund.investor
    assert [p.id for p in activity.picker(store)] == sorted(
        [zeta.id, captured_fund.angel.id], key=lambda i: {zeta.id: 1, captured_fund.angel.id: 0}[i]
    )  # "Jo Smith (angel)" < "Zeta Capital Fund I"
    store.upsert_investor(zeta.model_copy(update={"graveyard": True}))

    assert [p.id for p in activity.picker(store)] == [captured_fund.angel.id]
    intro, partner = ids_of(captured_fund, "intro", "partner")
    assert listed(store, investor_id=zeta.id) == [partner, intro]
    assert listed(store, q="diligence") == [partner]
    (item,) = panel(store, q="intro zeta").items
    assert item.id == intro
    assert [(i.name, i.graveyard) for i in item.investors] == [(zeta.name, True)]


def test_each_filter_alone_and_combined(store: Store, captured_fund: Scenario) -> None:
    intro, reply, partner = ids_of(captured_fund, "intro", "reply", "partner")
    ada = store.get_email_account_by_address(ADA)
    ben = store.get_email_account_by_address(BEN)
    assert ada is not None and ben is not None
    zeta, jo = captured_fund.investor.id, captured_fund.angel.id
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({}, [partner, reply, intro]),
        ({"investor_id": zeta}, [partner, intro]),
        ({"investor_id": jo}, [reply]),
        ({"account_id": ada.id}, [reply, intro]),
        ({"account_id": ben.id}, [partner, intro]),
        ({"direction": "outbound"}, [reply]),
        ({"direction": "inbound"}, [partner, intro]),
        ({"investor_id": zeta, "account_id": ada.id}, [intro]),
        ({"investor_id": jo, "account_id": ben.id}, []),
        ({"account_id": ada.id, "direction": "outbound"}, [reply]),
        ({"investor_id": zeta, "direction": "outbound"}, []),
        ({"investor_id": zeta, "account_id": ben.id, "direction": "inbound"}, [partner, intro]),
        ({"investor_id": zeta, "q": "diligence"}, [partner]),
        ({"account_id": ada.id, "q": "deck"}, [reply]),  # Ada's reply: "Sharing the deck."
    ]
    for params, want in cases:
        assert listed(store, **params, limit="1") == want, params


def test_paging_returns_every_item_once_with_equal_times_and_short_pages(store: Store) -> None:
    """35 emails at three instants (ties broken by id), some filtered in memory on Firestore
    (so some pages are short there): any page size gives every item once, in one order."""
    account = EmailAccount.new(ADA)
    store.add_email_account(account)
    store.upsert_investor(Investor(id="inv-zeta", name="Zeta"))
    when = datetime(2024, 3, 1, 12, tzinfo=UTC)
    made: list[tuple[datetime, str]] = []
    rare_ids: set[str] = set()
    for n in range(35):
        date = when + timedelta(seconds=n % 3)
        sender = Mailbox(name="Zoe", address="zoe@zeta.vc")
        subject = "Investment memo" + (" rare" if n % 7 == 0 else "")
        email = Email(id=f"m{(n * 17) % 35:02d}", subject=subject, sender=sender, date=date)
        store.upsert_email(email)
        store.link_email_to_investor(
            InvestorLink.new(email.id, "inv-zeta", None, sender.address, MatchHeader.FROM)
        )
        store.record_sighting(Sighting.new(account.id, f"g{n}", email.id))
        made.append((date, email.id))
        if n % 7 == 0:
            rare_ids.add(email.id)
    newest_first = [email_id for _, email_id in sorted(made, reverse=True)]
    rare = [email_id for email_id in newest_first if email_id in rare_ids]

    short_pages = 0
    for limit in (1, 2, 4, 7, 50):
        assert listed(store, limit=str(limit)) == newest_first
        # "investment" is looked up, "rare" checked in memory: Firestore reads at most
        # 5 x (limit + 1) emails a page, so a page can end short of matches.
        ids, token = [], ""
        while True:
            params = {"q": "rare investment", "limit": str(limit)}
            page = panel(store, **params, **({"page_token": token} if token else {}))
            ids += [item.id for item in page.items]
            short_pages += page.has_more and len(page.items) < limit
            if not page.has_more:
                break
            token = page.next_page_token
        assert ids == rare
    if isinstance(store, FirestoreStore):
        assert short_pages > 0  # the budget case was exercised


def test_q_is_accent_and_case_insensitive_prefix_based_and_every_word_must_match(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    mid, raw = message(
        sender="Zoë Zeta <zoe@zeta.vc>",
        to=[ADA],
        subject="Réunion à ZÜRICH: Straße plans",
        body="Café après?",
        date=NOW - timedelta(minutes=5),
    )
    world.sandbox.add_message(ADA, raw, label_ids=("INBOX",))
    assert sync_once(store, world, ADA).ran
    meeting = email_id_for(mid)
    intro, partner = ids_of(captured_fund, "intro", "partner")

    assert listed(store, q="reunion zurich") == [meeting]  # accents and case folded
    assert listed(store, q="RÉUN zür") == [meeting]  # prefixes, typed with accents
    assert listed(store, q="strasse") == [meeting]  # ß is ss
    assert listed(store, q="cafe apres") == [meeting]  # the snippet is searched
    assert listed(store, q="zoe") == [meeting, intro]  # the sender's name ("Zoë", "Zoe Zeta")
    assert listed(store, q="zeta.vc") == [meeting, partner, intro]  # the sender's address
    assert listed(store, q="reunion paris") == []  # every word must match
    assert listed(store, q="union") == []  # a prefix of a word, not any substring
    with pytest.raises(BadRequestError):
        panel(store, q="a ! ?")  # no word of two characters or more
