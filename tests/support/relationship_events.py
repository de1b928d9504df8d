"""Random events that change relationship figures, drawn from a seed, on any store.

Each event makes the store calls the service that owns it makes (capture: email, links, then the
sighting last; re-match: unlink and link; offboarding: offboard, then the purge's pages), with
deterministic ids and a fixed clock, so two stores driven by one seed end in the same state.
``EXTRA_EVENTS`` is the hook for events other areas add (the correction "not investor mail" and
its undo): each is ``(name, weight, function(world))``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.domain.models import (
    Contact,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Sighting,
    User,
    email_id_for,
)
from shared.domain.relationships import Contribution, contributions_of
from shared.ports import Store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TEAM_DOMAIN = "fund.example"


@dataclass
class Message:
    email: Email
    # (account id, gmail id, is_sent) of each mailbox that captured it
    sightings: list[tuple[str, str, bool]] = field(default_factory=list)
    contact_ids: list[str] = field(default_factory=list)


@dataclass
class World:
    """What the driver knows about the store it drives (ids only; the store holds the truth)."""

    store: Store
    rng: random.Random
    accounts: list[str] = field(default_factory=list)
    offboarded: set[str] = field(default_factory=set)
    investors: list[str] = field(default_factory=list)
    contacts: dict[str, Contact] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    counter: int = 0
    log: list[str] = field(default_factory=list)

    def next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def live_accounts(self) -> list[str]:
        return [a for a in self.accounts if a not in self.offboarded]


def _address(account_id: str, world: World) -> str:
    account = world.store.get_email_account(account_id)
    assert account is not None
    return account.address


def add_mailbox(world: World) -> None:
    n = len(world.accounts) + 1
    address = f"mate{n}@{TEAM_DOMAIN}"
    owner = None
    if n % 3 != 0:  # every third mailbox has no owner
        user = User.new(address, f"Mate {n}")
        world.store.add_user(user)
        owner = user.id
    account = EmailAccount.new(address, owner)
    world.store.add_email_account(account)
    world.accounts.append(account.id)


def add_investor(world: World) -> None:
    n = len(world.investors) + 1
    investor = Investor(id=f"inv{n}", name=f"Investor {n}", emails=[])
    world.store.upsert_investor(investor)
    world.investors.append(investor.id)
    for k in range(2):
        contact = Contact(
            id=f"c{n}x{k}",
            name=f"Contact {n}.{k}",
            investor_id=investor.id,
            emails=[f"p{n}x{k}@lp{n}.example"],
        )
        world.store.upsert_contact(contact)
        world.contacts[contact.id] = contact


def _capture(world: World, message: Message, account_id: str, gmail_id: str, sent: bool) -> None:
    """Capture's order: the email, its links, the sighting last."""
    store = world.store
    store.upsert_email(message.email)
    for contact_id in message.contact_ids:
        contact = world.contacts[contact_id]
        if contact.investor_id is None or contact.deleted:
            continue
        store.link_email_to_investor(
            InvestorLink.new(
                message.email.id, contact.investor_id, contact_id, contact.emails[0], MatchHeader.TO
            )
        )
    store.record_sighting(
        Sighting.new(
            account_id,
            gmail_id,
            message.email.id,
            is_sent=sent,
            label_ids=["SENT"] if sent else ["INBOX"],
            thread_id=f"t-{gmail_id}",
        )
    )


def capture_new(world: World, *, crash: bool = False) -> None:
    live = world.live_accounts()
    if not live or not world.contacts:
        return
    rng = world.rng
    account_id = rng.choice(live)
    contact_id = rng.choice(sorted(world.contacts))
    contact = world.contacts[contact_id]
    outbound = rng.random() < 0.45
    if world.threads and rng.random() < 0.6:
        root = rng.choice(world.threads)
    else:
        root = f"<{world.next('root')}@mail.example>"
        world.threads.append(root)
    message_id = f"<{world.next('m')}@mail.example>"
    # Out-of-order mail: dates anywhere in the last 400 days, whatever the capture order.
    at = NOW - timedelta(days=rng.randint(0, 400), minutes=rng.randint(0, 1440))
    me = _address(account_id, world)
    sender, to = (me, contact.emails[0]) if outbound else (contact.emails[0], me)
    email = Email(
        id=email_id_for(message_id),
        message_id=message_id,
        in_reply_to=root if root != message_id else "",
        references=[root],
        subject="Re: fund",
        sender=Mailbox(address=sender),
        to=[Mailbox(address=to)],
        date=at,
        first_seen_at=NOW,
        participant_addresses=sorted({sender, to}),
        participant_domains=sorted({sender.split("@")[1], to.split("@")[1]}),
    )
    message = Message(email, contact_ids=[contact_id])
    gmail_id = world.next("g")
    message.sightings.append((account_id, gmail_id, outbound))
    world.messages.append(message)
    if crash:
        # The run stops after the email and its links; the redo captures it whole.
        world.store.upsert_email(email)
        for cid in message.contact_ids:
            investor_id = world.contacts[cid].investor_id
            if investor_id:
                world.store.link_email_to_investor(
                    InvestorLink.new(email.id, investor_id, cid, to, MatchHeader.TO)
                )
    _capture(world, message, account_id, gmail_id, outbound)


def capture_crash_and_redo(world: World) -> None:
    capture_new(world, crash=True)


def seen_by_another_mailbox(world: World) -> None:
    """Inbound mail to several teammates: each mailbox captures it."""
    candidates = [m for m in world.messages if not any(s[2] for s in m.sightings)]
    live = world.live_accounts()
    if not candidates or not live:
        return
    message = world.rng.choice(candidates)
    seen = {s[0] for s in message.sightings}
    others = [a for a in live if a not in seen]
    if not others:
        return
    account_id = world.rng.choice(others)
    gmail_id = world.next("g")
    message.sightings.append((account_id, gmail_id, False))
    _capture(world, message, account_id, gmail_id, False)


def redelivery(world: World) -> None:
    messages = [m for m in world.messages if m.sightings]
    if not messages:
        return
    message = world.rng.choice(messages)
    account_id, gmail_id, sent = world.rng.choice(message.sightings)
    if account_id in world.offboarded:
        return
    _capture(world, message, account_id, gmail_id, sent)


def _some_sighting(world: World) -> tuple[str, str] | None:
    pairs = [(a, g) for m in world.messages for a, g, _ in m.sightings if a not in world.offboarded]
    return world.rng.choice(pairs) if pairs else None


def trash(world: World) -> None:
    pair = _some_sighting(world)
    if pair:
        world.store.set_sighting_deleted(*pair, True)


def restore(world: World) -> None:
    pair = _some_sighting(world)
    if pair:
        world.store.set_sighting_deleted(*pair, False)


def permanent_delete(world: World) -> None:
    """Gmail's messagesDeleted: the sighting goes, for good (the driver forgets it)."""
    message = world.rng.choice(world.messages) if world.messages else None
    if message is None or not message.sightings:
        return
    account_id, gmail_id, _ = message.sightings[0]
    if account_id in world.offboarded:
        return
    world.store.set_sighting_deleted(account_id, gmail_id, True)
    message.sightings.pop(0)


def purge_body(world: World) -> None:
    """The body purge of mail with no link left (changes nothing the figures read)."""
    if not world.messages:
        return
    email_id = world.rng.choice(world.messages).email.id
    world.store.update_email(email_id, lambda e: e.model_copy(update={"body": "", "snippet": ""}))


def offboard(world: World) -> None:
    live = world.live_accounts()
    if len(live) < 2:
        return
    account_id = world.rng.choice(live)
    world.store.offboard_email_account(account_id)
    while world.store.soft_delete_account_sightings(account_id, limit=3):
        pass
    world.offboarded.add(account_id)


def deactivate_owner(world: World) -> None:
    users = sorted((u for u in world.store.list_users() if u.is_active), key=lambda u: u.id)
    if users:
        world.store.change_user(world.rng.choice(users).id, is_active=False)


def rematch(world: World) -> None:
    """An address removed then added back: unlink, then link again."""
    if not world.messages:
        return
    message = world.rng.choice(world.messages)
    for link in world.store.list_links(message.email.id):
        world.store.unlink_email_from_investor(message.email.id, link.investor_id)
    if world.rng.random() < 0.7:
        for cid in message.contact_ids:
            contact = world.contacts[cid]
            if contact.investor_id and not contact.deleted:
                world.store.link_email_to_investor(
                    InvestorLink.new(
                        message.email.id,
                        contact.investor_id,
                        cid,
                        contact.emails[0],
                        MatchHeader.TO,
                    )
                )


def move_contact(world: World) -> None:
    """A contact moved to another investor; re-match moves its mail's links."""
    if len(world.investors) < 2 or not world.contacts:
        return
    contact = world.contacts[world.rng.choice(sorted(world.contacts))]
    target = world.rng.choice([i for i in world.investors if i != contact.investor_id])
    moved = contact.model_copy(update={"investor_id": target})
    world.store.upsert_contact(moved)
    world.contacts[moved.id] = moved
    for message in world.messages:
        if contact.id not in message.contact_ids:
            continue
        if contact.investor_id:
            world.store.unlink_email_from_investor(message.email.id, contact.investor_id)
        if not moved.deleted:
            world.store.link_email_to_investor(
                InvestorLink.new(
                    message.email.id, target, contact.id, contact.emails[0], MatchHeader.TO
                )
            )


def delete_or_restore_contact(world: World) -> None:
    """A record deleted (its mail unlinked by re-match) or restored (linked again)."""
    if not world.contacts:
        return
    contact = world.contacts[world.rng.choice(sorted(world.contacts))]
    flipped = contact.model_copy(update={"deleted": not contact.deleted})
    world.store.upsert_contact(flipped)
    world.contacts[contact.id] = flipped
    for message in world.messages:
        if contact.id not in message.contact_ids or not contact.investor_id:
            continue
        if flipped.deleted:
            world.store.unlink_email_from_investor(message.email.id, contact.investor_id)
        else:
            world.store.link_email_to_investor(
                InvestorLink.new(
                    message.email.id,
                    contact.investor_id,
                    contact.id,
                    contact.emails[0],
                    MatchHeader.TO,
                )
            )


def graveyard_toggle(world: World) -> None:
    if not world.investors:
        return
    investor = world.store.get_investor(world.rng.choice(world.investors))
    assert investor is not None
    world.store.upsert_investor(investor.model_copy(update={"graveyard": not investor.graveyard}))


EVENTS: list[tuple[str, int, Callable[[World], None]]] = [
    ("capture", 30, capture_new),
    ("crash_and_redo", 5, capture_crash_and_redo),
    ("seen_by_another_mailbox", 8, seen_by_another_mailbox),
    ("redelivery", 10, redelivery),
    ("trash", 6, trash),
    ("restore", 6, restore),
    ("permanent_delete", 3, permanent_delete),
    ("purge_body", 3, purge_body),
    ("offboard", 1, offboard),
    ("deactivate_owner", 1, deactivate_owner),
    ("rematch", 5, rematch),
    ("move_contact", 2, move_contact),
    ("delete_or_restore_contact", 2, delete_or_restore_contact),
    ("graveyard", 2, graveyard_toggle),
    ("mailbox_added", 2, add_mailbox),
]
# Events other areas add (the correction and its undo): (name, weight, function).
EXTRA_EVENTS: list[tuple[str, int, Callable[[World], None]]] = []


def run_events(store: Store, seed: int, count: int) -> World:
    """Set up a small fund, then draw ``count`` events."""
    world = World(store=store, rng=random.Random(seed))
    for _ in range(3):
        add_mailbox(world)
    for _ in range(4):
        add_investor(world)
    events = EVENTS + EXTRA_EVENTS
    names = [e[0] for e in events]
    weights = [e[1] for e in events]
    functions = {e[0]: e[2] for e in events}
    for _ in range(count):
        name = world.rng.choices(names, weights)[0]
        world.log.append(name)
        functions[name](world)
    return world


def expected_rows(store: Store) -> dict[str, Contribution]:
    """The rows stored mail calls for, computed here from the store's emails, sightings and
    links (what the recompute command rebuilds)."""
    rows: dict[str, Contribution] = {}
    after = ""
    while emails := store.list_emails(limit=200, after_id=after):
        for email in emails:
            rows.update(
                contributions_of(email, store.list_sightings(email.id), store.list_links(email.id))
            )
        after = emails[-1].id
    return rows


def stored_rows(store: Store) -> dict[str, Contribution]:
    rows: dict[str, Contribution] = {}
    after = ""
    while page := store.list_contributions(limit=200, after_id=after):
        rows.update({r.id: r for r in page})
        after = page[-1].id
    return rows
