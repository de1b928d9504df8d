"""The store's side of corrections and the email detail, on every adapter: a corrected pair is
never linked again (the link's own transaction refuses it), a correction survives a capture's
rewrite of the email, the last unlink purges the mail's text, an approved activity is marked
corrected and unmarked, a mailbox's sightings are found by Gmail thread, and a proposal keeps
its evidence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.domain.models import (
    Activity,
    Correction,
    Email,
    InvestorLink,
    Mailbox,
    MatchHeader,
    MatchVia,
    Proposal,
    ProposalEvidence,
    ProposalStatus,
    Sighting,
    email_id_for,
)
from shared.ports import Store

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def matched_email(store: Store, *investors: str) -> Email:
    """An email with a snippet and body, linked to each investor."""
    email = Email(
        id=email_id_for(f"<{uid()}@mail.example.com>"),
        subject="Q3 update",
        sender=Mailbox(name="LP", address="lp@fund.example"),
        date=T0,
        participant_addresses=["lp@fund.example"],
        participant_domains=["fund.example"],
        snippet="the snippet",
        body="the body words",
    )
    store.upsert_email(email)
    for investor in investors:
        store.link_email_to_investor(link(email.id, investor))
    return email


def link(email_id: str, investor_id: str) -> InvestorLink:
    return InvestorLink.new(email_id, investor_id, None, "lp@fund.example", MatchHeader.FROM)


def stored(store: Store, email_id: str) -> Email:
    email = store.get_email(email_id)
    assert email is not None
    return email


class TestCorrections:
    def test_a_corrected_pair_is_refused_and_others_still_link(self, store: Store) -> None:
        email = matched_email(store)
        correction = Correction(investor_id="inv-1", by="ada@fund.example", at=T0)
        after = store.set_email_correction(email.id, "inv-1", correction)
        assert after is not None and after.corrections == [correction]

        assert store.link_email_to_investor(link(email.id, "inv-1")) is False
        assert store.list_links(email.id) == []
        assert store.link_email_to_investor(link(email.id, "inv-2")) is True
        assert stored(store, email.id).investor_ids == ["inv-2"]

        assert store.set_email_correction(email.id, "inv-1", None) is not None
        assert store.link_email_to_investor(link(email.id, "inv-1")) is True
        assert stored(store, email.id).investor_ids == ["inv-1", "inv-2"]

    def test_a_correction_survives_a_capture_rewriting_the_email(self, store: Store) -> None:
        email = matched_email(store)
        store.set_email_correction(
            email.id, "inv-1", Correction(investor_id="inv-1", by="ada@fund.example", at=T0)
        )
        # Capture hands over a fresh email, which never carries corrections.
        store.upsert_email(email.model_copy(update={"subject": "Q3 update (again)"}))
        again = stored(store, email.id)
        assert again.subject == "Q3 update (again)"
        assert again.corrected_investor_ids == {"inv-1"}
        store.update_email(email.id, lambda e: e.model_copy(update={"corrections": []}))
        assert stored(store, email.id).corrected_investor_ids == {"inv-1"}

    def test_correcting_an_unknown_email_answers_none(self, store: Store) -> None:
        unknown = email_id_for(f"<{uid()}@nowhere>")
        assert store.set_email_correction(unknown, "inv-1", None) is None

    def test_the_last_unlink_purges_the_text_and_an_earlier_one_keeps_it(
        self, store: Store
    ) -> None:
        email = matched_email(store, "inv-1", "inv-2")
        assert store.unlink_email_from_investor(email.id, "inv-1") == 1
        partly = stored(store, email.id)
        assert (partly.snippet, partly.body) == ("the snippet", "the body words")

        assert store.unlink_email_from_investor(email.id, "inv-2") == 1
        purged = stored(store, email.id)
        assert (purged.matched, purged.snippet, purged.body) == (False, "", "")
        assert purged.subject == "Q3 update"  # the headers stay, as for never-matched mail


class TestActivityCorrected:
    def test_an_approved_activity_is_marked_and_unmarked(self, store: Store) -> None:
        email = matched_email(store, "inv-1")
        proposal = Proposal.new(email.id, "inv-1")
        store.create_proposal(proposal)
        store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "ada@fund.example")

        marked = store.set_activity_corrected(proposal.id, "ben@fund.example", T0)
        assert marked is not None
        again = store.get_activity(proposal.id)
        assert again == marked
        assert (again.corrected, again.corrected_by, again.corrected_at) == (
            True,
            "ben@fund.example",
            T0,
        )
        assert again.created_by == "ada@fund.example"  # the person's approval stays

        cleared = store.set_activity_corrected(proposal.id, "ben@fund.example", None)
        assert cleared is not None
        assert store.get_activity(proposal.id) == cleared
        assert (cleared.corrected, cleared.corrected_by, cleared.corrected_at) == (False, "", None)

    def test_marking_a_missing_activity_answers_none(self, store: Store) -> None:
        assert store.set_activity_corrected(uid("act-"), "ben@fund.example", T0) is None
        assert store.get_activity(uid("act-")) is None


class TestThreads:
    def test_sightings_are_found_by_mailbox_and_thread(self, store: Store) -> None:
        account, other_account = uid("a_"), uid("a_")
        first, second, elsewhere = (matched_email(store) for _ in range(3))
        in_thread = [
            Sighting.new(account, uid("g"), first.id, thread_id="t-1"),
            Sighting.new(account, uid("g"), second.id, thread_id="t-1", deleted=True),
        ]
        others = [
            Sighting.new(account, uid("g"), elsewhere.id, thread_id="t-2"),
            Sighting.new(other_account, uid("g"), first.id, thread_id="t-1"),
        ]
        for sighting in in_thread + others:
            store.record_sighting(sighting)
        found = store.list_thread_sightings(account, "t-1")
        assert found == sorted(in_thread, key=lambda s: s.id)
        assert len(store.list_thread_sightings(account, "t-1", limit=1)) == 1
        assert store.list_thread_sightings(account, "t-none") == []


class TestEvidence:
    def test_a_proposal_keeps_its_evidence(self, store: Store) -> None:
        email = matched_email(store, "inv-1")
        evidence = ProposalEvidence(
            subject=email.subject,
            sender=email.sender,
            date=email.date,
            snippet=email.snippet,
            account_id="a_x",
            mailbox="ada@fund.example",
            matched_address="lp@fund.example",
            header=MatchHeader.FROM,
            via=MatchVia.DOMAIN,
        )
        proposal = Proposal.new(email.id, "inv-1", evidence=evidence, created_at=T0)
        assert store.create_proposal(proposal) is True
        assert store.get_proposal(proposal.id) == proposal
        listed = store.list_proposals(investor_id="inv-1", created_to=T0 + timedelta(seconds=1))
        assert [p.evidence for p in listed.items] == [evidence]
        decided = store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "ada@fund.example")
        assert isinstance(decided.activity, Activity)
        assert decided.proposal.evidence == evidence
