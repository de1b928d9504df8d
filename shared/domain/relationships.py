"""Relationship intelligence: who on the team knows an investor (or a contact), how well, and
when they last spoke. Every term is defined here once; docs/relationships.md works an example.

Why it is built this way:

- The figures are a pure function of *contribution rows*, one per (email, investor), and each
  row is a pure function of what the store already keeps for that email (the email, its
  sightings, its links): :func:`contributions_of`. Both stores write the rows in the very
  transaction that recomputes the email's denormalised fields, replacing them by id, so a
  redelivered or redone capture writes the same row again and never counts twice, and the
  recompute command (built from stored mail with the same function) must find them equal.
- Nothing is a counter. The per-investor *score* (strength, last contact, daily snapshots) is
  derived from the rows by the daily re-score with the clock passed in, so windows roll and
  strength decays with no new mail, and no document is written by every captured message of a
  busy investor.
- Teammates are resolved from mailboxes at read time (a row keeps mailbox ids), so an owner
  change, a deactivated user or an ownerless mailbox shows as it is today.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.domain.activity_keys import activity_time
from shared.domain.models import (
    Direction,
    Email,
    EmailAccount,
    InvestorLink,
    Record,
    RecordId,
    Sighting,
    Timestamp,
    User,
    is_record_id,
    sha256_hex,
    time_key,
)
from shared.domain.paging import decode_page_token, split_time_id_key
from shared.errors import BadRequestError

# A thread is a two-way exchange when it holds messages both ways at most this far apart.
EXCHANGE_GAP = timedelta(days=30)
# The windows the counts are given for, in days.
WINDOWS: tuple[int, ...] = (30, 90, 365)
# Strength: points for recency (last contact, linear to zero over a year), frequency (messages
# in the last 365 days, logarithmic, full at 60) and reciprocity (two-way exchanges in the last
# 365 days, full at 6). Weights sum to 100.
RECENCY_POINTS = 40.0
FREQUENCY_POINTS = 30.0
RECIPROCITY_POINTS = 30.0
RECENCY_HORIZON_DAYS = 365
FREQUENCY_FULL_AT = 60
RECIPROCITY_FULL_AT = 6
# Daily strength snapshots kept on a score (going cold looks 30 days back).
SNAPSHOT_DAYS = 35
# Sort key of "never": below every time key (which start with a four-digit year).
_NEVER = "0"


def contribution_id_for(email_id: str, investor_id: str) -> str:
    """Deterministic: the same (email, investor) always lands on the same row."""
    return sha256_hex(f"{email_id}|{investor_id}")[:40]


def thread_key(email: Email) -> str:
    """The thread an email belongs to, the same in every mailbox (Gmail's thread ids are per
    mailbox): the first References id, else In-Reply-To, else its own Message-ID."""
    root = (email.references[0] if email.references else "") or email.in_reply_to
    return sha256_hex(root or email.message_id or email.id)[:24]


class Contribution(Record):
    """What one email adds to one investor's figures.

    ``direction`` is outbound iff a mailbox that holds it live sent it (its sighting is in
    Sent): the team's sent copy decides, so no address list is needed. ``account_ids`` are the
    mailboxes it counts for: the sending mailboxes for outbound mail, every live mailbox for
    inbound mail (inbound mail seen by several mailboxes counts for each owner).
    """

    id: RecordId
    email_id: RecordId
    investor_id: RecordId
    contact_ids: list[str] = Field(default_factory=list)
    at: Timestamp
    thread_key: str
    direction: Direction
    account_ids: list[str] = Field(default_factory=list)
    # ``<time_key(at)>|<email id>``: the row's order within an investor.
    at_key: str = ""


def contributions_of(
    email: Email | None, sightings: Iterable[Sighting], links: Iterable[InvestorLink]
) -> dict[str, Contribution]:
    """The rows an email makes, by row id: one per linked investor while a mailbox holds it
    live; none for mail every mailbox deleted, purged or never matched."""
    if email is None:
        return {}
    live = [s for s in sightings if not s.deleted]
    by_investor: dict[str, set[str]] = defaultdict(set)
    for link in links:
        contacts = by_investor[link.investor_id]
        if link.contact_id:
            contacts.add(link.contact_id)
    if not live or not by_investor:
        return {}
    sent = sorted({s.account_id for s in live if s.is_sent})
    direction = Direction.OUTBOUND if sent else Direction.INBOUND
    accounts = sent or sorted({s.account_id for s in live})
    at = activity_time(email)
    thread = thread_key(email)
    rows = {}
    for investor_id, contacts in by_investor.items():
        row_id = contribution_id_for(email.id, investor_id)
        rows[row_id] = Contribution(
            id=row_id,
            email_id=email.id,
            investor_id=investor_id,
            contact_ids=sorted(contacts),
            at=at,
            thread_key=thread,
            direction=direction,
            account_ids=accounts,
            at_key=f"{time_key(at)}|{email.id}",
        )
    return rows


def contribution_changes(
    before: Mapping[str, Contribution], after: Mapping[str, Contribution]
) -> tuple[list[Contribution], list[str]]:
    """The rows to write (new or different) and the row ids to delete: an unchanged email
    writes nothing, so a redelivery costs no write."""
    writes = [row for key, row in sorted(after.items()) if before.get(key) != row]
    deletes = sorted(key for key in before if key not in after)
    return writes, deletes


# -- teammates --------------------------------------------------------------------------------


class TeammateStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"  # the owning user is deactivated
    OWNERLESS = "ownerless"  # the mailbox has no owner (or is gone)


class Teammate(BaseModel):
    """Who a mailbox stands for: its owner, or the mailbox itself when it has none."""

    key: str
    user_id: str | None = None
    name: str = ""
    email: str = ""
    account_ids: list[str] = Field(default_factory=list)
    status: TeammateStatus


def teammate_directory(
    accounts: Iterable[EmailAccount], users: Iterable[User]
) -> dict[str, Teammate]:
    """Mailbox id -> teammate (several mailboxes of one owner map to one teammate)."""
    by_user = {u.id: u for u in users}
    owned: dict[str, list[str]] = defaultdict(list)
    directory: dict[str, Teammate] = {}
    account_list = sorted(accounts, key=lambda a: a.id)
    for account in account_list:
        if account.user_id and account.user_id in by_user:
            owned[account.user_id].append(account.id)
    for account in account_list:
        user = by_user.get(account.user_id or "")
        if user is None:
            directory[account.id] = Teammate(
                key=f"mailbox:{account.id}",
                email=account.address,
                account_ids=[account.id],
                status=TeammateStatus.OWNERLESS,
            )
        else:
            directory[account.id] = Teammate(
                key=f"user:{user.id}",
                user_id=user.id,
                name=user.name,
                email=user.email,
                account_ids=owned[user.id],
                status=TeammateStatus.ACTIVE if user.is_active else TeammateStatus.DEACTIVATED,
            )
    return directory


def _teammates_of(row: Contribution, directory: Mapping[str, Teammate]) -> list[Teammate]:
    found: dict[str, Teammate] = {}
    for account_id in row.account_ids:
        mate = directory.get(account_id) or Teammate(
            key=f"mailbox:{account_id}", account_ids=[account_id], status=TeammateStatus.OWNERLESS
        )
        found.setdefault(mate.key, mate)
    return [found[key] for key in sorted(found)]


# -- figures ----------------------------------------------------------------------------------


class ContactPoint(BaseModel):
    """First or last contact: when, by which email, which way, with which teammates."""

    at: datetime
    email_id: str
    direction: Direction
    teammates: list[Teammate]


class WindowCounts(BaseModel):
    days: int
    inbound: int
    outbound: int
    two_way_exchanges: int


class TeammateFigures(BaseModel):
    teammate: Teammate
    two_way_exchanges: int
    messages: int
    last_contact_at: datetime


class StrengthInputs(BaseModel):
    """What the strength is made of, shown with it."""

    days_since_last_contact: int | None
    messages_365: int
    two_way_exchanges_365: int
    recency_points: float
    frequency_points: float
    reciprocity_points: float


class Figures(BaseModel):
    """One investor's (or contact's) relationship figures as of ``as_of``."""

    as_of: datetime
    messages: int
    inbound: int
    outbound: int
    two_way_exchanges: int
    one_way_inbound: int
    one_way_outbound: int
    first_contact: ContactPoint | None
    last_contact: ContactPoint | None
    last_two_way_at: datetime | None
    windows: list[WindowCounts]
    teammates: list[TeammateFigures]
    strength: int
    strength_inputs: StrengthInputs


def _paired(messages: Sequence[Contribution]) -> list[bool]:
    """For each message of one thread (sorted by time): whether a message the other way lies
    within EXCHANGE_GAP of it."""
    times = {
        way: [m.at for m in messages if m.direction == way]
        for way in (Direction.INBOUND, Direction.OUTBOUND)
    }
    result = []
    for message in messages:
        other = Direction.OUTBOUND if message.direction == Direction.INBOUND else Direction.INBOUND
        result.append(any(abs(t - message.at) <= EXCHANGE_GAP for t in times[other]))
    return result


def strength_of(
    last_contact_at: datetime | None, messages_365: int, two_way_365: int, now: datetime
) -> tuple[int, StrengthInputs]:
    """Strength 0-100 = recency + frequency + reciprocity points (see the constants)."""
    days = None if last_contact_at is None else max(0, (now - last_contact_at).days)
    recency = 0.0 if days is None else RECENCY_POINTS * max(0.0, 1 - days / RECENCY_HORIZON_DAYS)
    frequency = FREQUENCY_POINTS * min(
        1.0, math.log1p(messages_365) / math.log1p(FREQUENCY_FULL_AT)
    )
    reciprocity = RECIPROCITY_POINTS * min(1.0, two_way_365 / RECIPROCITY_FULL_AT)
    # The parts are shown to one decimal, and the total is made from the parts as shown, so
    # anyone can add them up.
    inputs = StrengthInputs(
        days_since_last_contact=days,
        messages_365=messages_365,
        two_way_exchanges_365=two_way_365,
        recency_points=round(recency, 1),
        frequency_points=round(frequency, 1),
        reciprocity_points=round(reciprocity, 1),
    )
    total = max(
        0,
        min(
            100,
            round(inputs.recency_points + inputs.frequency_points + inputs.reciprocity_points),
        ),
    )
    return total, inputs


def figures_of(
    rows: Iterable[Contribution], directory: Mapping[str, Teammate], now: datetime
) -> Figures:
    """The figures of a set of rows (one investor's, or those naming one contact)."""
    ordered = sorted(rows, key=lambda r: r.at_key)
    threads: dict[str, list[Contribution]] = defaultdict(list)
    for row in ordered:
        threads[row.thread_key].append(row)
    exchange_at: dict[str, datetime] = {}
    paired_ids: set[str] = set()
    for key, messages in threads.items():
        marks = _paired(messages)
        paired = [m for m, mark in zip(messages, marks, strict=True) if mark]
        if paired:
            exchange_at[key] = max(m.at for m in paired)
            paired_ids.update(m.id for m in paired)
    inbound = [r for r in ordered if r.direction == Direction.INBOUND]

    def point(row: Contribution) -> ContactPoint:
        return ContactPoint(
            at=row.at,
            email_id=row.email_id,
            direction=row.direction,
            teammates=_teammates_of(row, directory),
        )

    windows = []
    for days in WINDOWS:
        since = now - timedelta(days=days)
        recent = [r for r in ordered if r.at > since]
        windows.append(
            WindowCounts(
                days=days,
                inbound=sum(r.direction == Direction.INBOUND for r in recent),
                outbound=sum(r.direction == Direction.OUTBOUND for r in recent),
                two_way_exchanges=sum(at > since for at in exchange_at.values()),
            )
        )
    mates: dict[str, TeammateFigures] = {}
    mate_threads: dict[str, set[str]] = defaultdict(set)
    for row in ordered:  # in time order: the last row seen is a teammate's last contact
        for mate in _teammates_of(row, directory):
            if row.thread_key in exchange_at:
                mate_threads[mate.key].add(row.thread_key)
            known = mates.get(mate.key)
            mates[mate.key] = TeammateFigures(
                teammate=mate,
                two_way_exchanges=len(mate_threads[mate.key]),
                messages=(known.messages if known else 0) + 1,
                last_contact_at=row.at,
            )
    teammates = list(mates.values())
    teammates.sort(
        key=lambda t: (-t.two_way_exchanges, -t.last_contact_at.timestamp(), t.teammate.key)
    )
    last = ordered[-1] if ordered else None
    year = windows[-1]
    strength, inputs = strength_of(
        last.at if last else None, year.inbound + year.outbound, year.two_way_exchanges, now
    )
    return Figures(
        as_of=now,
        messages=len(ordered),
        inbound=len(inbound),
        outbound=len(ordered) - len(inbound),
        two_way_exchanges=len(exchange_at),
        one_way_inbound=sum(
            r.direction == Direction.INBOUND and r.id not in paired_ids for r in ordered
        ),
        one_way_outbound=sum(
            r.direction == Direction.OUTBOUND and r.id not in paired_ids for r in ordered
        ),
        first_contact=point(ordered[0]) if ordered else None,
        last_contact=point(last) if last else None,
        last_two_way_at=max(exchange_at.values()) if exchange_at else None,
        windows=windows,
        teammates=teammates,
        strength=strength,
        strength_inputs=inputs,
    )


# -- the daily score --------------------------------------------------------------------------


class RelationshipScore(Record):
    """One investor's ranking fields, written by the daily re-score only.

    ``listed``: not graveyard and not deleted when scored (rankings and going cold read only
    listed scores; graveyard investors keep their figures). The ``*_sort`` keys are unique
    (``|<investor id>``), so listings page on them (``key < last``) newest or strongest first.
    """

    id: RecordId
    strength: int
    last_contact_at: Timestamp | None = None
    last_two_way_at: Timestamp | None = None
    listed: bool = True
    # UTC day (ISO) -> strength that day; the last SNAPSHOT_DAYS days.
    snapshots: dict[str, int] = Field(default_factory=dict)
    # Strength 30 days ago minus today (0 without a snapshot from then).
    drop_30d: int = 0
    scored_at: Timestamp
    strength_sort: str = ""
    last_contact_sort: str = ""
    last_two_way_sort: str = ""


def score_of(
    investor_id: str,
    figures: Figures,
    *,
    listed: bool,
    previous: RelationshipScore | None,
    now: datetime,
) -> RelationshipScore:
    """Today's score, carrying the previous snapshots forward (today's replaces a same-day
    one, so re-scoring twice in a day is harmless)."""
    today = now.date()
    snapshots = dict(previous.snapshots) if previous else {}
    snapshots[today.isoformat()] = figures.strength
    oldest = (today - timedelta(days=SNAPSHOT_DAYS - 1)).isoformat()
    snapshots = {day: value for day, value in sorted(snapshots.items()) if day >= oldest}
    then = snapshots.get((today - timedelta(days=30)).isoformat())
    last = figures.last_contact.at if figures.last_contact else None
    return RelationshipScore(
        id=investor_id,
        strength=figures.strength,
        last_contact_at=last,
        last_two_way_at=figures.last_two_way_at,
        listed=listed,
        snapshots=snapshots,
        drop_30d=max(0, then - figures.strength) if then is not None else 0,
        scored_at=now,
        strength_sort=f"{figures.strength:03d}|{investor_id}",
        last_contact_sort=f"{time_key(last) if last else _NEVER}|{investor_id}",
        last_two_way_sort=(
            f"{time_key(figures.last_two_way_at) if figures.last_two_way_at else _NEVER}"
            f"|{investor_id}"
        ),
    )


class RelationshipSort(StrEnum):
    STRENGTH = "strength"
    LAST_CONTACT = "last_contact"


def sort_field(sort: RelationshipSort) -> str:
    return "strength_sort" if sort == RelationshipSort.STRENGTH else "last_contact_sort"


def ranking_page_key(sort: RelationshipSort, page_token: str) -> str:
    """The sort key a ranking's page token resumes below; BadRequestError unless it is one of
    that ranking's keys (a token is the caller's input)."""
    key = decode_page_token(page_token)
    prefix, _, investor_id = key.rpartition("|")
    valid = bool(prefix) and is_record_id(investor_id)
    if valid and sort == RelationshipSort.STRENGTH:
        valid = len(prefix) == 3 and prefix.isdigit() and int(prefix) <= 100
    elif valid and prefix != _NEVER:
        try:
            split_time_id_key(key)
        except BadRequestError:
            valid = False
    if not valid:
        raise BadRequestError("page_token is not valid")
    return key


def cold_cutoff_key(now: datetime, cold_days: int) -> str:
    """Scores whose ``last_two_way_sort`` lies in (``_NEVER``-prefixed, this) have had a
    two-way exchange, but none since ``now - cold_days``."""
    return time_key(now - timedelta(days=cold_days))


NEVER_KEY_BOUND = _NEVER + "|\uffff"


class ColdReason(StrEnum):
    NO_EXCHANGE = "no_two_way_exchange"
    STRENGTH_DROP = "strength_drop"


class GoingCold(BaseModel):
    investor_id: str
    name: str = ""
    strength: int
    last_two_way_at: datetime | None
    drop_30d: int
    reasons: list[ColdReason]


def going_cold_of(
    score: RelationshipScore, *, now: datetime, cold_days: int, cold_drop: int, name: str = ""
) -> GoingCold | None:
    """Going cold: a two-way exchange once, none for ``cold_days``; or strength down by more
    than ``cold_drop`` in 30 days. Graveyard (unlisted) investors never are."""
    if not score.listed:
        return None
    reasons = []
    if score.last_two_way_at is not None and score.last_two_way_at < now - timedelta(
        days=cold_days
    ):
        reasons.append(ColdReason.NO_EXCHANGE)
    if score.drop_30d > cold_drop:
        reasons.append(ColdReason.STRENGTH_DROP)
    if not reasons:
        return None
    return GoingCold(
        investor_id=score.id,
        name=name,
        strength=score.strength,
        last_two_way_at=score.last_two_way_at,
        drop_30d=score.drop_30d,
        reasons=reasons,
    )
