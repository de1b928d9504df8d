"""The re-match job against the Gmail sandbox, on SQLite and on Firestore: a CRM address
added, removed, an exclusion added, and Gmail's dotted/undotted forms, each applied to mail
captured earlier (links, unlinks, bodies fetched from Gmail, proposals made and withdrawn,
progress kept)."""

from __future__ import annotations

import time
from typing import Any

from sandbox.scenario import TEAM, Scenario, message
from shared.adapters.queue import LocalQueue
from shared.catalog import Topic
from shared.domain.models import (
    Caller,
    Contact,
    Investor,
    ProposalStatus,
    Role,
    account_id_for,
    email_id_for,
    proposal_id_for,
)
from shared.ports import Store
from shared.services import proposals
from shared.services.rematch import job_progress, queue_rematch, run_rematch
from tests.support.gmail import GmailWorld
from tests.support.sync import NOW, sync_once

COLD_PITCH = "<pitch.42@startup.example>"
SAM = "sam@startup.example"


def rematch(
    store: Store,
    world: GmailWorld,
    *,
    addresses: tuple[str, ...] = (),
    domains: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Queue a job as an admin's change would, run it to the end, return its stored progress."""
    queue = LocalQueue()
    job_id = queue_rematch(
        store, queue, addresses=addresses, domains=domains, reason="test", actor=TEAM[0]
    )
    assert [m.message for m in queue.published] == [{"job_id": job_id}]
    assert queue.published[0].topic == Topic.REMATCH.value
    assert job_progress(store, job_id)["state"] == "queued"
    returned = run_rematch(store, job_id, gmail_for=world.gmail_for, deadline=time.monotonic() + 60)
    progress = job_progress(store, job_id)
    assert returned == progress
    assert progress["state"] == "done"
    return progress


def add_sam(store: Store, emails: list[str]) -> None:
    store.upsert_investor(Investor(id="inv-startup", name="Startup Angels"))
    store.upsert_contact(
        Contact(id="con-sam", name="Sam Stranger", investor_id="inv-startup", emails=emails)
    )


def test_unmatched_mail_is_matched_with_its_body_once_a_contact_has_the_address(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    pitch_id = email_id_for(COLD_PITCH)
    before = store.get_email(pitch_id)
    assert before is not None
    assert not before.matched
    assert (before.snippet, before.body) == ("", "")  # metadata only until it matches
    raw_gets = world.sandbox.calls(TEAM[0])

    add_sam(store, [SAM])
    progress = rematch(store, world, addresses=(SAM,))

    email = store.get_email(pitch_id)
    assert email is not None
    assert email.matched
    assert email.investor_ids == ["inv-startup"]
    assert "Would love 15 minutes." in email.body  # fetched from Gmail by the job
    assert email.snippet
    (link,) = store.list_links(pitch_id)
    assert (link.investor_id, link.contact_id, link.matched_address) == (
        "inv-startup",
        "con-sam",
        SAM,
    )
    proposal = store.get_proposal(proposal_id_for(pitch_id, "inv-startup"))
    assert proposal is not None
    assert proposal.status is ProposalStatus.PROPOSED
    assert proposal.account_id == account_id_for(TEAM[0])  # the mailbox that holds the pitch
    assert (progress["done"], progress["linked"], progress["unlinked"]) == (1, 1, 0)
    assert progress["bodies_fetched"] == 1
    assert world.sandbox.calls(TEAM[0]) != raw_gets  # the body came from Ada's mailbox

    # The same job again finds nothing new to do.
    again = rematch(store, world, addresses=(SAM,))
    assert (again["done"], again["linked"], again["unlinked"], again["bodies_fetched"]) == (
        1,
        0,
        0,
        0,
    )


def test_removing_the_address_unlinks_and_withdraws_the_open_proposal(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    add_sam(store, [SAM])
    rematch(store, world, addresses=(SAM,))
    pitch_id = email_id_for(COLD_PITCH)

    add_sam(store, [])  # the contact is kept without the address
    progress = rematch(store, world, addresses=(SAM,))

    email = store.get_email(pitch_id)
    assert email is not None
    assert not email.matched
    assert email.investor_ids == []
    assert store.list_links(pitch_id) == []
    proposal = store.get_proposal(proposal_id_for(pitch_id, "inv-startup"))
    assert proposal is not None
    assert proposal.status is ProposalStatus.WITHDRAWN
    assert (progress["done"], progress["linked"], progress["unlinked"]) == (1, 0, 1)


def test_an_approved_proposal_stays_approved_when_its_match_goes(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    reply_id = email_id_for(captured_fund.message_ids["reply"])
    proposal_id = proposal_id_for(reply_id, captured_fund.angel.id)
    admin = Caller(email=captured_fund.admin.email, role=Role.ADMIN, user_id=captured_fund.admin.id)
    approved = proposals.decide(store, admin, proposal_id, ProposalStatus.APPROVED)
    assert approved.activity is not None

    store.upsert_contact(captured_fund.angel_contact.model_copy(update={"emails": []}))
    progress = rematch(store, world, addresses=tuple(captured_fund.angel_contact.emails))

    assert progress["unlinked"] == 1
    assert store.list_links(reply_id) == []
    email = store.get_email(reply_id)
    assert email is not None
    assert not email.matched
    kept = store.get_proposal(proposal_id)
    assert kept is not None
    assert kept.status is ProposalStatus.APPROVED  # a person's decision stands
    assert kept.decided_by == captured_fund.admin.email
    assert store.get_activity(proposal_id) is not None


def test_an_exclusion_unlinks_the_domains_mail(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    zeta = [email_id_for(captured_fund.message_ids[key]) for key in ("intro", "partner")]
    for email_id in zeta:
        assert store.list_links(email_id)

    store.set_setting("exclusions", ["@zeta.vc"])
    progress = rematch(store, world, domains=("zeta.vc",))

    for email_id in zeta:
        email = store.get_email(email_id)
        assert email is not None
        assert not email.matched
        assert store.list_links(email_id) == []
        proposal = store.get_proposal(proposal_id_for(email_id, captured_fund.investor.id))
        assert proposal is not None
        assert proposal.status is ProposalStatus.WITHDRAWN
    assert progress["unlinked"] == 2
    assert progress["linked"] == 0
    # The newsletter (bulk) is found too, and stays unmatched; mail of other domains is untouched.
    assert progress["done"] == 3
    reply = store.get_email(email_id_for(captured_fund.message_ids["reply"]))
    assert reply is not None
    assert reply.matched


def test_a_dotted_gmail_contact_matches_mail_to_the_undotted_googlemail_form(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    ada = TEAM[0]
    mid, raw = message(
        sender=f"Ada Admin <{ada}>",
        to=["Mary Ann Lee <maryannlee@googlemail.com>"],
        subject="Our fund's LP letter",
        body="Mary Ann, as promised, the letter.",
        date=NOW,
    )
    world.sandbox.add_message(ada, raw, label_ids=("SENT",))
    assert sync_once(store, world, ada).reason == "ran"
    email_id = email_id_for(mid)
    captured = store.get_email(email_id)
    assert captured is not None
    assert not captured.matched

    store.upsert_investor(Investor(id="inv-mal", name="Mary Ann Lee (angel)"))
    store.upsert_contact(
        Contact(
            id="con-mal",
            name="Mary Ann Lee",
            investor_id="inv-mal",
            emails=["Mary.Ann.Lee@gmail.com"],
        )
    )
    progress = rematch(store, world, addresses=("Mary.Ann.Lee@gmail.com",))

    email = store.get_email(email_id)
    assert email is not None
    assert email.investor_ids == ["inv-mal"]
    assert "the letter" in email.body
    (link,) = store.list_links(email_id)
    assert link.contact_id == "con-mal"
    assert store.get_proposal(proposal_id_for(email_id, "inv-mal")) is not None
    assert (progress["linked"], progress["bodies_fetched"]) == (1, 1)


def test_a_match_restored_after_a_withdrawal_is_proposed_again(
    store: Store, world: GmailWorld, captured_fund: Scenario
) -> None:
    pitch_id = email_id_for(COLD_PITCH)
    proposal_id = proposal_id_for(pitch_id, "inv-startup")
    add_sam(store, [SAM])
    rematch(store, world, addresses=(SAM,))
    add_sam(store, [])
    rematch(store, world, addresses=(SAM,))
    withdrawn = store.get_proposal(proposal_id)
    assert withdrawn is not None
    assert withdrawn.status is ProposalStatus.WITHDRAWN

    add_sam(store, [SAM])  # the admin puts the address back
    progress = rematch(store, world, addresses=(SAM,))

    assert progress["linked"] == 1
    email = store.get_email(pitch_id)
    assert email is not None
    assert email.investor_ids == ["inv-startup"]
    reopened = store.get_proposal(proposal_id)
    assert reopened is not None
    assert reopened.status is ProposalStatus.PROPOSED  # a person can decide it again
