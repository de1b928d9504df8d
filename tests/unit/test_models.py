"""Domain models: normalisation, validation and deterministic ids, and the rules the
aggregates apply (a proposal decides, a mailbox pauses and offboards, a user's role changes, a
sync state applies a change, an email merges a capture and denormalises itself). Pure, no I/O:
the time is an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.models import (
    Activity,
    CaptureProblem,
    DigestPolicy,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    LinkedInvestor,
    MatchHeader,
    Organization,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    Sighting,
    SyncState,
    SyncStateChange,
    SyncStatus,
    User,
    account_id_for,
    email_id_for,
    normalize_message_id,
    proposal_id_for,
    user_id_for,
)
from shared.errors import ConflictError, NotFoundError


class TestAddresses:
    def test_addresses_are_lower_cased_and_trimmed(self) -> None:
        user = User.new("  Alice@Fund.EXAMPLE ", "Alice")
        assert user.email == "alice@fund.example"

    def test_a_string_without_at_sign_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not an e-mail address"):
            User.new("alice.fund.example")

    def test_address_lists_are_normalised_and_deduplicated(self) -> None:
        investor = Investor(name="Zeta", emails=["A@Zeta.vc", "a@zeta.vc", "b@zeta.vc"])
        assert investor.emails == ["a@zeta.vc", "b@zeta.vc"]

    def test_domains_lose_a_leading_at_sign(self) -> None:
        organization = Organization(name="Zeta", domains=["@Zeta.VC", "zeta.vc."])
        assert organization.domains == ["zeta.vc"]

    def test_a_bad_domain_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            Organization(name="Zeta", domains=["not a domain"])


class TestIds:
    def test_user_id_is_the_same_for_any_spelling_of_the_address(self) -> None:
        assert user_id_for("Alice@Fund.example") == user_id_for("alice@fund.example ")

    def test_message_ids_with_and_without_brackets_name_one_email(self) -> None:
        assert normalize_message_id(" <ABC.123@Mail.Example> ") == "abc.123@mail.example"
        assert email_id_for("<ABC.123@mail.example>") == email_id_for("abc.123@MAIL.example")

    def test_without_message_id_the_id_falls_back_to_headers_and_body(self) -> None:
        one = email_id_for(None, from_address="a@x.io", date="d", subject="s", body_sha256="b")
        same = email_id_for("", from_address="A@X.io", date="d", subject="s", body_sha256="b")
        other = email_id_for(None, from_address="a@x.io", date="d", subject="s", body_sha256="c")
        assert one == same
        assert one != other
        assert one != email_id_for("<d@x.io>")

    def test_one_proposal_key_per_email_and_investor(self) -> None:
        first = Proposal.new("e1", "i1")
        again = Proposal.new("e1", "i1", contact_id="c9")
        assert first.id == again.id == proposal_id_for("e1", "i1")
        assert first.id != proposal_id_for("e1", "i2")

    def test_ids_that_cannot_be_firestore_document_names_are_refused(self) -> None:
        for bad in ("a/b", "..", "__reserved__", ""):
            with pytest.raises(ValidationError):
                Sighting(id=bad, account_id="a", gmail_message_id="g", email_id="e")

    def test_sighting_and_link_ids_are_deterministic(self) -> None:
        assert Sighting.new("acc", "g1", "e1").id == "acc:g1"
        link = InvestorLink.new("e1", "i1", None, "X@Y.io", MatchHeader.FROM)
        assert link.id == "e1:i1:-"
        assert link.matched_address == "x@y.io"


class TestValidation:
    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="timezone-aware"):
            Email(id="e1", date=datetime(2026, 1, 1))

    def test_datetimes_are_stored_in_utc(self) -> None:
        email = Email(id="e1", date=datetime.fromisoformat("2026-01-01T10:00:00+02:00"))
        assert email.date == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
        assert email.date is not None and email.date.utcoffset() is not None

    def test_roles_are_an_enum(self) -> None:
        assert User.new("a@b.io", role=Role("admin")).role is Role.ADMIN
        with pytest.raises(ValidationError):
            User(id=user_id_for("a@b.io"), email="a@b.io", role="owner")

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            EmailAccount(id=account_id_for("t@f.io"), address="t@f.io", colour="red")  # type: ignore[call-arg]

    def test_digest_policy_hour_is_0_to_23(self) -> None:
        assert DigestPolicy().model_dump() == {"enabled": False, "send_hour": 18}
        with pytest.raises(ValidationError):
            DigestPolicy(send_hour=24)

    def test_investor_name_key_follows_the_name(self) -> None:
        investor = Investor(name="Élan Ventures")
        assert investor.name_key == "élan ventures"
        investor.name = "Zeta"
        assert investor.name_key == "zeta"

    def test_proposal_sort_key_orders_by_time_then_id(self) -> None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        a = Proposal.new("e1", "i1", created_at=at)
        b = Proposal.new("e2", "i1", created_at=at)
        later = Proposal.new("e3", "i1", created_at=datetime(2026, 1, 2, tzinfo=UTC))
        assert later.sort_key > max(a.sort_key, b.sort_key)
        assert a.sort_key != b.sort_key


class TestNaturalKeys:
    def test_a_user_id_not_derived_from_the_address_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="user_id_for"):
            User(id="u_arbitrary", email="ann@fund.example")

    def test_a_mailbox_id_not_derived_from_the_address_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="account_id_for"):
            EmailAccount(id="a_arbitrary", address="deals@fund.example")


# -- the aggregates' rules: what both stores apply inside their transactions ---------------------

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = AT + timedelta(hours=1)


class TestSyncState:
    def test_history_id_only_increases(self) -> None:
        state = SyncState(history_id=900)
        assert state.applied(SyncStateChange(history_id=500)).history_id == 900
        assert state.applied(SyncStateChange(history_id=901)).history_id == 901

    def test_a_reset_may_lower_it(self) -> None:
        state = SyncState(history_id=900)
        changed = state.applied(SyncStateChange(history_id=0, reset_history=True))
        assert changed.history_id == 0

    def test_unset_fields_are_kept(self) -> None:
        state = SyncState(status=SyncStatus.OK, last_error="", messages_done=7)
        changed = state.applied(SyncStateChange(last_error="boom"))
        assert (changed.status, changed.messages_done, changed.last_error) == (
            SyncStatus.OK,
            7,
            "boom",
        )

    def test_header_problems_are_added_to_the_stored_count(self) -> None:
        state = SyncState(header_problems=2)
        assert state.applied(SyncStateChange(header_problems_added=1)).header_problems == 3


def seen(account_id: str, *, sent: bool = False, deleted: bool = False) -> Sighting:
    return Sighting.new(account_id, f"g-{account_id}", "e1", is_sent=sent, deleted=deleted)


def linked(investor_id: str, contact_id: str | None = None) -> InvestorLink:
    address = f"{contact_id or 'desk'}@{investor_id}.example"
    return InvestorLink.new("e1", investor_id, contact_id, address, MatchHeader.FROM)


class TestEmailDenormalisation:
    def test_matched_at_is_set_once_and_cleared_when_unlinked(self) -> None:
        email = Email(id="e1")
        first = email.denormalised([seen("a2"), seen("a1")], [linked("i1")], at=AT)
        assert first.matched is True
        assert first.live_account_ids == ["a1", "a2"]
        kept = first.denormalised([], [linked("i1"), linked("i2")], at=LATER)
        assert kept.matched_at == first.matched_at
        gone = kept.denormalised([], [], at=LATER)
        assert (gone.matched, gone.matched_at, gone.investor_ids) == (False, None, [])

    def test_matched_at_is_the_time_the_store_gives(self) -> None:
        assert Email(id="e1").denormalised([], [linked("i1")], at=AT).matched_at == AT

    def test_the_digest_fields_follow_the_live_sightings_and_the_links(self) -> None:
        sightings = [seen("a3", sent=True), seen("a1"), seen("a2", sent=True, deleted=True)]
        links = [linked("i2", "c2"), linked("i1"), linked("i2", "c1")]
        email = Email(id="e1").denormalised(sightings, links, at=AT)
        assert email.digest_ready is True
        assert email.live_account_ids == ["a1", "a3"]
        assert email.sent_account_ids == ["a3"]  # a2's Sent copy is soft-deleted
        assert email.investor_ids == ["i1", "i2"]
        assert email.links == [
            LinkedInvestor.of(link) for link in sorted(links, key=lambda link: link.id)
        ]

    def test_callers_cannot_set_denormalised_fields(self) -> None:
        forged = Email(
            id="e1",
            matched=True,
            investor_ids=["i1"],
            live_account_ids=["a1"],
            sent_account_ids=["a1"],
            links=[LinkedInvestor.of(linked("i1"))],
            digest_ready=True,
        )
        fresh = forged.merged_into(None)
        assert (fresh.matched, fresh.sent_account_ids, fresh.links, fresh.digest_ready) == (
            False,
            [],
            [],
            False,
        )
        stored = Email(id="e1", matched=False, first_seen_at=datetime(2026, 1, 1, tzinfo=UTC))
        merged = forged.model_copy(update={"subject": "new"}).merged_into(stored)
        assert merged.matched is False
        assert merged.investor_ids == []
        assert (merged.sent_account_ids, merged.links, merged.digest_ready) == ([], [], False)
        assert merged.subject == "new"
        assert merged.first_seen_at == datetime(2026, 1, 1, tzinfo=UTC)


class TestDecide:
    def test_approval_creates_one_activity_keyed_by_the_proposal(self) -> None:
        proposal = Proposal.new("e1", "i1")
        outcome = proposal.decide(
            ProposalStatus.APPROVED,
            "alice@fund.example",
            email=None,
            existing_activity=None,
            at=AT,
        )
        assert outcome.changed
        assert outcome.activity is not None and outcome.activity.id == proposal.id
        assert outcome.proposal.decided_by == "alice@fund.example"

    def test_a_decision_is_stamped_with_the_time_given(self) -> None:
        proposal = Proposal.new("e1", "i1")
        outcome = proposal.decide(
            ProposalStatus.REJECTED, "bob", email=None, existing_activity=None, at=AT
        )
        assert outcome.proposal.decided_at == AT

    def test_the_same_decision_twice_changes_nothing(self) -> None:
        proposal = Proposal.new("e1", "i1", status=ProposalStatus.APPROVED)
        activity = Activity(
            id=proposal.id, proposal_id=proposal.id, email_id="e1", investor_id="i1", created_by="x"
        )
        outcome = proposal.decide(
            ProposalStatus.APPROVED, "bob", email=None, existing_activity=activity, at=AT
        )
        assert not outcome.changed
        assert outcome.activity == activity

    def test_a_different_decision_once_decided_is_a_conflict_naming_the_state(self) -> None:
        proposal = Proposal.new("e1", "i1", status=ProposalStatus.REJECTED)
        with pytest.raises(ConflictError, match="already rejected") as caught:
            proposal.decide(
                ProposalStatus.APPROVED, "bob", email=None, existing_activity=None, at=AT
            )
        assert caught.value.details["state"] == "rejected"

    def test_a_decided_proposal_cannot_be_reopened(self) -> None:
        approved = Proposal.new("e1", "i1", status=ProposalStatus.APPROVED)
        with pytest.raises(ConflictError, match="already approved"):
            approved.decide(
                ProposalStatus.PROPOSED, "rematch", email=None, existing_activity=None, at=AT
            )

    def test_a_withdrawn_proposal_is_reopened_when_its_match_returns(self) -> None:
        withdrawn = Proposal.new("e1", "i1", status=ProposalStatus.WITHDRAWN, decided_by="rematch")
        outcome = withdrawn.decide(
            ProposalStatus.PROPOSED, "rematch", email=None, existing_activity=None, at=AT
        )
        assert outcome.changed
        assert outcome.proposal.status is ProposalStatus.PROPOSED
        assert outcome.proposal.decided_by == ""
        open_one = Proposal.new("e1", "i1")
        assert not open_one.decide(
            ProposalStatus.PROPOSED, "rematch", email=None, existing_activity=None, at=AT
        ).changed


class TestMailbox:
    def test_paused_while_any_reason_remains(self) -> None:
        account = EmailAccount.new("deals@fund.example")
        both = account.with_pause(True, PauseReason.ADMIN).with_pause(
            True, PauseReason.OWNER_INACTIVE
        )
        one_left = both.with_pause(False, PauseReason.ADMIN)
        assert (one_left.paused, one_left.pause_reasons) == (True, [PauseReason.OWNER_INACTIVE])
        assert not one_left.with_pause(False, PauseReason.OWNER_INACTIVE).paused

    def test_an_inactive_owner_pauses_the_mailbox_and_an_active_one_lifts_only_that(self) -> None:
        account = EmailAccount.new("deals@fund.example").with_pause(True, PauseReason.ADMIN)
        inactive = User.new("deals@fund.example").model_copy(update={"is_active": False})
        owned = account.owned_by(inactive)
        assert owned.user_id == inactive.id
        assert set(owned.pause_reasons) == {PauseReason.ADMIN, PauseReason.OWNER_INACTIVE}
        back = owned.owned_by(inactive.model_copy(update={"is_active": True}))
        assert back.pause_reasons == [PauseReason.ADMIN]

    def test_offboarding_is_stamped_once_and_ends_every_write(self) -> None:
        account = EmailAccount.new("deals@fund.example")
        assert account.is_claimable()
        gone = account.offboarded(AT).offboarded(LATER)
        assert (gone.deleted, gone.deleted_at) == (True, AT)
        assert not gone.is_claimable()
        with pytest.raises(NotFoundError):
            gone.refuse_offboarded()
        with pytest.raises(NotFoundError):
            gone.with_sync_change(SyncStateChange(history_id=5))
        with pytest.raises(ConflictError):
            gone.with_pause(True, PauseReason.ADMIN)


class TestUserRole:
    def test_a_role_change_is_stamped_with_the_time_given(self) -> None:
        user = User.new("ada@fund.example")
        changed = user.with_role(role=Role.ADMIN, is_active=None, other_active_admins=0, at=AT)
        assert (changed.role, changed.is_active, changed.updated_at) == (Role.ADMIN, True, AT)

    def test_the_last_active_admin_cannot_step_down(self) -> None:
        admin = User.new("ada@fund.example", role=Role.ADMIN)
        with pytest.raises(ConflictError, match="no active admin"):
            admin.with_role(role=None, is_active=False, other_active_admins=0, at=AT)
        demoted = admin.with_role(role=Role.MEMBER, is_active=None, other_active_admins=1, at=AT)
        assert demoted.role is Role.MEMBER


class TestCaptureProblem:
    def test_a_repeat_counts_one_more_attempt_and_keeps_the_latest_reason(self) -> None:
        first = CaptureProblem.new("a1", "m1", "bad MIME")
        again = CaptureProblem.new("a1", "m1", "still bad").counted_after(first)
        assert (again.attempts, again.reason) == (2, "still bad")
        assert first.counted_after(None) == first
