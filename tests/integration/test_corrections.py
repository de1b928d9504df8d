"""Corrections and the email detail on SQLite and on Firestore, against the Gmail sandbox: the
same answers on both stores.

"Not investor mail" unlinks, withdraws, purges the text, and holds when another mailbox captures
the same message and when the re-match job runs; undoing re-links, reopens the proposal and
fetches the body again from Gmail. The detail explains each match and scopes a member to their
own mailboxes, threads included.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from sandbox.scenario import TEAM, Scenario, message
from shared.adapters.queue import LocalQueue
from shared.domain.models import (
    Caller,
    MatchVia,
    ProposalStatus,
    Role,
    email_id_for,
    proposal_id_for,
)
from shared.errors import NotFoundError
from shared.ports import Store
from shared.services import corrections, crm, email_detail
from shared.services.rematch import queue_rematch, run_rematch
from tests.support.gmail import GmailWorld
from tests.support.sync import NOW, sync_once

ADA, BEN = TEAM
ZETA, ANGEL = "inv-zeta-fund-1", "inv-jo-smith"
INTRO = email_id_for("<intro.q3@zeta.vc>")
REPLY = email_id_for("<follow-on.1@fund.example>")
PARTNER = email_id_for("<diligence.7@zeta.vc>")
PARTNER_BODY = "Ben, a few questions on the cap table."


def admin(scenario: Scenario) -> Caller:
    return Caller(email=ADA, role=Role.ADMIN, user_id=scenario.admin.id)


def member(scenario: Scenario) -> Caller:
    return Caller(email=BEN, role=Role.MEMBER, user_id=scenario.member.id)


def status(store: Store, email_id: str, investor_id: str) -> ProposalStatus:
    proposal = store.get_proposal(proposal_id_for(email_id, investor_id))
    assert proposal is not None
    return proposal.status


def test_a_correction_holds_through_capture_elsewhere_and_rematch_and_undo_restores(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    queue = LocalQueue()
    done = corrections.mark_not_investor_mail(
        store, queue, admin(captured_fund), PARTNER, ZETA, exclude_address=False, now=NOW
    )
    assert (done.unlinked, done.proposal_status) == (1, "withdrawn")
    email = store.get_email(PARTNER)
    assert email is not None
    assert (email.matched, email.snippet, email.body) == (False, "", "")

    # Ada's mailbox gets the same message; her capture must not link it back.
    _, raw = message(
        message_id="<diligence.7@zeta.vc>",
        sender="Kim Partner <kim@zeta.vc>",
        to=[BEN],
        subject="Diligence questions",
        body=PARTNER_BODY,
        date=NOW - timedelta(days=1),
    )
    world.sandbox.add_message(ADA, raw, label_ids=("INBOX",))
    gets = world.sandbox.calls(ADA).get("messages.get", 0)
    sync_once(store, world, ADA)
    # Its metadata only: no body is fetched for mail whose every match was corrected away.
    assert world.sandbox.calls(ADA).get("messages.get", 0) - gets == 1
    again = store.get_email(PARTNER)
    assert again is not None and len(again.live_account_ids) == 2
    assert (again.matched, again.body) == (False, "")

    job_id = queue_rematch(store, queue, domains=["zeta.vc"], reason="test", actor=ADA)
    run_rematch(store, job_id, gmail_for=world.gmail_for, deadline=time.monotonic() + 60)
    assert store.list_links(PARTNER) == []
    assert status(store, PARTNER, ZETA) is ProposalStatus.WITHDRAWN
    assert store.list_links(INTRO) != []

    undone = corrections.undo_not_investor_mail(
        store, queue, admin(captured_fund), PARTNER, ZETA, gmail_for=world.gmail_for
    )
    assert (undone.relinked, undone.body_fetched) == (True, True)
    back = store.get_email(PARTNER)
    assert back is not None
    assert back.matched and back.corrections == []
    assert back.body.strip() == PARTNER_BODY
    assert status(store, PARTNER, ZETA) is ProposalStatus.PROPOSED
    actions = [e.action for e in store.list_audit(limit=10) if e.target == PARTNER]
    assert actions == ["email.not_investor_mail.undo", "email.not_investor_mail"]
    with pytest.raises(NotFoundError):
        corrections.undo_not_investor_mail(
            store, queue, admin(captured_fund), PARTNER, ZETA, gmail_for=world.gmail_for
        )


def test_an_approved_activity_is_marked_and_the_exclusion_comes_and_goes(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    queue = LocalQueue()
    proposal_id = proposal_id_for(REPLY, ANGEL)
    store.decide_proposal(proposal_id, ProposalStatus.APPROVED, ADA)
    done = corrections.mark_not_investor_mail(
        store, queue, admin(captured_fund), REPLY, ANGEL, exclude_address=True, now=NOW
    )
    assert done.activity_corrected and done.proposal_status == "approved"
    assert done.excluded_address == "j.smith+vc@googlemail.com"
    assert done.exclusion_job_id and queue.published  # the exclusion's re-match is queued
    activity = store.get_activity(proposal_id)
    assert activity is not None and (activity.corrected, activity.corrected_at) == (True, NOW)
    assert "j.smith+vc@googlemail.com" in crm.get_exclusions(store)[0]

    corrections.undo_not_investor_mail(
        store, queue, admin(captured_fund), REPLY, ANGEL, gmail_for=world.gmail_for
    )
    activity = store.get_activity(proposal_id)
    assert activity is not None and not activity.corrected
    assert "j.smith+vc@googlemail.com" not in crm.get_exclusions(store)[0]
    assert [ln.investor_id for ln in store.list_links(REPLY)] == [ANGEL]


def test_the_detail_explains_matches_and_scopes_a_member(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    ada, ben = captured_fund.accounts
    seen = email_detail.email_detail(store, admin(captured_fund), INTRO)
    assert {s.account_id for s in seen.sightings} == {ada.id, ben.id}
    zoe = next(p for p in seen.participants if p.address == "zoe@zeta.vc")
    assert [(m.investor_id, m.via, m.contact_id) for m in zoe.matches] == [
        (ZETA, MatchVia.CONTACT, "con-zoe")
    ]
    assert seen.body.startswith("Hi Ada")

    partner = email_detail.email_detail(store, admin(captured_fund), PARTNER)
    kim = next(p for p in partner.participants if p.address == "kim@zeta.vc")
    assert [(m.via, m.domain, m.organization_id) for m in kim.matches] == [
        (MatchVia.DOMAIN, "zeta.vc", "org-zeta")
    ]

    mine = email_detail.email_detail(store, member(captured_fund), INTRO)
    assert [s.account_id for s in mine.sightings] == [ben.id]
    assert all(t.account_id == ben.id for t in mine.thread)
    for hidden in (REPLY, email_id_for("<nowhere@x.example>")):
        with pytest.raises(NotFoundError) as refused:
            email_detail.email_detail(store, member(captured_fund), hidden)
        assert str(refused.value) == "no such email"
