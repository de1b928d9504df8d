"""Relationship intelligence: per investor and per contact figures, the ranked list, going cold,
the daily re-score and the recompute command.

The figures are computed on read from the contribution rows (exact at any moment); the ranked
list and going cold read the scores the daily re-score writes (one indexed query per page), so
they are as of the last re-score, which runs on the first digest tick of each UTC day with the
clock passed in: windows roll and strength decays with no new mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from shared.domain.models import Guard
from shared.domain.relationships import (
    Figures,
    GoingCold,
    RelationshipScore,
    RelationshipSort,
    Teammate,
    cold_cutoff_key,
    figures_of,
    going_cold_of,
    score_of,
    teammate_directory,
)
from shared.errors import NotFoundError
from shared.ports import ActivityIndexStore, RelationshipsStore

logger = logging.getLogger(__name__)

# Scores written per store call during the re-score (bounded memory, one commit each).
_RESCORE_CHUNK = 400
_EMAILS_PAGE = 500


class InvestorRelationship(BaseModel):
    investor_id: str
    name: str
    graveyard: bool
    figures: Figures


class ContactRelationship(BaseModel):
    contact_id: str
    name: str
    investor_id: str | None
    figures: Figures


class RankedInvestor(BaseModel):
    investor_id: str
    name: str
    strength: int
    last_contact_at: datetime | None
    last_two_way_at: datetime | None
    scored_at: datetime


class RankedPage(BaseModel):
    items: list[RankedInvestor]
    next_page_token: str


def _directory(store: RelationshipsStore) -> dict[str, Teammate]:
    return teammate_directory(store.list_email_accounts(include_deleted=True), store.list_users())


def investor_relationship(
    store: RelationshipsStore, investor_id: str, *, now: datetime
) -> InvestorRelationship:
    """One investor's figures, exact as of ``now`` (graveyard investors keep theirs)."""
    investor = store.get_investor(investor_id)
    if investor is None or investor.deleted:
        raise NotFoundError("no such investor", investor_id=investor_id)
    rows = store.list_investor_contributions(investor_id)
    return InvestorRelationship(
        investor_id=investor.id,
        name=investor.name,
        graveyard=investor.graveyard,
        figures=figures_of(rows, _directory(store), now),
    )


def contact_relationship(
    store: RelationshipsStore, contact_id: str, *, now: datetime
) -> ContactRelationship:
    """One contact's figures: the rows of mail that matched the contact (whichever investor)."""
    contact = store.get_contact(contact_id)
    if contact is None or contact.deleted:
        raise NotFoundError("no such contact", contact_id=contact_id)
    rows = store.list_contact_contributions(contact_id)
    return ContactRelationship(
        contact_id=contact.id,
        name=contact.name,
        investor_id=contact.investor_id,
        figures=figures_of(rows, _directory(store), now),
    )


def _names(store: ActivityIndexStore, scores: list[RelationshipScore]) -> dict[str, str]:
    """Names of the scored investors still listed today (one batched read for the page); an
    investor moved to the graveyard or deleted since the last re-score is left out."""
    return {
        investor.id: investor.name
        for investor in store.get_investors([score.id for score in scores])
        if not investor.deleted and not investor.graveyard
    }


def ranked_investors(
    store: RelationshipsStore, sort: RelationshipSort, *, limit: int = 50, page_token: str = ""
) -> RankedPage:
    """Investors by strength or last contact, as of the last re-score; graveyard left out."""
    page = store.list_relationship_scores(sort, limit=limit, page_token=page_token)
    names = _names(store, page.items)
    return RankedPage(
        items=[
            RankedInvestor(
                investor_id=s.id,
                name=names[s.id],
                strength=s.strength,
                last_contact_at=s.last_contact_at,
                last_two_way_at=s.last_two_way_at,
                scored_at=s.scored_at,
            )
            for s in page.items
            if s.id in names
        ],
        next_page_token=page.next_token,
    )


def going_cold(
    store: RelationshipsStore, *, now: datetime, cold_days: int, cold_drop: int
) -> list[GoingCold]:
    """Investors going cold (``going_cold_of``), coldest first (oldest two-way exchange)."""
    scores = store.list_cold_scores(cutoff_key=cold_cutoff_key(now, cold_days), cold_drop=cold_drop)
    names = _names(store, scores)
    found = [
        cold
        for s in scores
        if s.id in names
        and (
            cold := going_cold_of(
                s, now=now, cold_days=cold_days, cold_drop=cold_drop, name=names[s.id]
            )
        )
        is not None
    ]
    far_future = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(found, key=lambda c: (c.last_two_way_at or far_future, c.investor_id))


@dataclass
class RescoreResult:
    investors: int = 0
    scores_written: int = 0


def rescore_all(store: RelationshipsStore, *, now: datetime) -> RescoreResult:
    """Score every investor (graveyard and deleted ones too, unlisted) as of ``now``."""
    directory = _directory(store)
    investors = store.list_investors(include_graveyard=True, include_deleted=True)
    result = RescoreResult(investors=len(investors))
    for start in range(0, len(investors), _RESCORE_CHUNK):
        chunk = investors[start : start + _RESCORE_CHUNK]
        previous = store.get_relationship_scores([i.id for i in chunk])
        scores = []
        for investor in chunk:
            figures = figures_of(store.list_investor_contributions(investor.id), directory, now)
            # The admin list's last-contact sort (GET /investors?sort=last_contact) follows the
            # figures daily, instead of capture writing the investor per message.
            store.set_last_contact(
                investor.id, figures.last_contact.at if figures.last_contact else None
            )
            scores.append(
                score_of(
                    investor.id,
                    figures,
                    listed=not (investor.graveyard or investor.deleted),
                    previous=previous.get(investor.id),
                    now=now,
                )
            )
        store.put_relationship_scores(scores)
        result.scores_written += len(scores)
    return result


def rescore_guard_id(now: datetime) -> str:
    return f"relationships-rescore-{now.date().isoformat()}"


def rescore_once_today(store: RelationshipsStore, *, now: datetime) -> RescoreResult | None:
    """The daily re-score, at most once per UTC day: whoever creates the day's guard runs it
    (the first digest tick of the day). None if it already ran (or runs) today."""
    if not store.create_guard(Guard(id=rescore_guard_id(now), owner="relationships")):
        return None
    return rescore_all(store, now=now)


def daily_rescore(store: RelationshipsStore, *, now: datetime) -> RescoreResult | None:
    """:func:`rescore_once_today` for the digest tick: a failure is logged and does not stop
    the digest (that day's ranking then stays yesterday's)."""
    try:
        done = rescore_once_today(store, now=now)
    except Exception:
        logger.exception("relationship re-score failed")
        return None
    if done is not None:
        logger.info("relationship re-score: %d investors", done.investors)
    return done


@dataclass
class RecomputeResult:
    emails: int = 0
    rows_changed: int = 0
    rescore: RescoreResult = field(default_factory=RescoreResult)


def recompute(store: RelationshipsStore, *, now: datetime) -> RecomputeResult:
    """Rebuild every contribution row from stored mail (rows of vanished mail removed), then
    re-score. ``rows_changed`` is 0 when the rows kept by capture were already right."""
    result = RecomputeResult()
    after = ""
    while True:
        emails = store.list_emails(limit=_EMAILS_PAGE, after_id=after)
        if not emails:
            break
        for email in emails:
            result.rows_changed += store.recompute_email_contributions(email.id)
        result.emails += len(emails)
        after = emails[-1].id
    after = ""
    while True:
        rows = store.list_contributions(limit=_EMAILS_PAGE, after_id=after)
        if not rows:
            break
        for email_id in sorted({r.email_id for r in rows}):
            if store.get_email(email_id) is None:
                result.rows_changed += store.recompute_email_contributions(email_id)
        after = rows[-1].id
    result.rescore = rescore_all(store, now=now)
    return result
