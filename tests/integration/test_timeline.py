"""One investor's timeline on both stores: approved activities and listed mail interleave
newest first, pages neither skip nor repeat, and mail of other investors stays out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.models import (
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Proposal,
    ProposalStatus,
    Sighting,
    email_id_for,
)
from shared.errors import NotFoundError
from shared.ports import Store
from shared.services.timeline import timeline

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def listed_email(store: Store, account: EmailAccount, investor_id: str, day: int) -> Email:
    email = Email(
        id=email_id_for(f"<{uuid.uuid4().hex}@mail.example>"),
        subject=f"day {day}",
        sender=Mailbox(address="lp@lp.example"),
        date=T0 + timedelta(days=day),
        participant_addresses=["lp@lp.example"],
        participant_domains=["lp.example"],
    )
    store.upsert_email(email)
    store.link_email_to_investor(
        InvestorLink.new(email.id, investor_id, None, "lp@lp.example", MatchHeader.FROM)
    )
    store.record_sighting(Sighting.new(account.id, uuid.uuid4().hex[:12], email.id))
    return email


def test_activities_and_mail_interleave_newest_first(store: Store) -> None:
    account = EmailAccount.new("ada@fund.example")
    store.add_email_account(account)
    investor, other = Investor(name="LP"), Investor(name="Other")
    store.upsert_investor(investor)
    store.upsert_investor(other)
    mail = [listed_email(store, account, investor.id, day) for day in (1, 3, 5)]
    listed_email(store, account, other.id, 4)
    approved = []
    for email in mail[:2]:
        proposal = Proposal.new(email.id, investor.id, account_id=account.id)
        store.create_proposal(proposal)
        decision = store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "ada@fund.example")
        assert decision.activity is not None
        approved.append(decision.activity.id)

    seen: list[tuple[str, str]] = []
    token = ""
    for _ in range(20):
        page = timeline(store, investor.id, limit=2, page_token=token)
        for item in page.items:
            assert item.activity is not None or item.email is not None
            seen.append(
                (item.kind, item.activity.id if item.activity else item.email.id)  # type: ignore[union-attr]
            )
        if not page.has_more:
            break
        token = page.next_page_token
    # Same date: an activity and its email sort by id, so compare as sets per date.
    assert [kind for kind, _ in seen].count("activity") == 2
    assert {i for k, i in seen if k == "email"} == {e.id for e in mail}
    assert {i for k, i in seen if k == "activity"} == set(approved)
    assert len(seen) == len(set(seen)) == 5
    assert seen[0] == ("email", mail[2].id)  # day 5, no activity

    with pytest.raises(NotFoundError):
        timeline(store, "no-such-investor")
