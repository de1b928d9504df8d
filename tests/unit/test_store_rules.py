"""The rules both stores apply inside their transactions (pure)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from shared.domain.models import Activity, Email, Proposal, ProposalStatus, SyncState, SyncStatus
from shared.domain.store_rules import (
    activity_page_key,
    apply_sync_change,
    decide,
    denormalised_email_fields,
    encode_page_token,
    matched_window_keys,
    merge_captured_email,
    proposal_window_keys,
    time_id_page_key,
)
from shared.errors import BadRequestError, ConflictError
from shared.ports import SyncStateChange


class TestSyncState:
    def test_history_id_only_increases(self) -> None:
        state = SyncState(history_id=900)
        assert apply_sync_change(state, SyncStateChange(history_id=500)).history_id == 900
        assert apply_sync_change(state, SyncStateChange(history_id=901)).history_id == 901

    def test_a_reset_may_lower_it(self) -> None:
        state = SyncState(history_id=900)
        changed = apply_sync_change(state, SyncStateChange(history_id=0, reset_history=True))
        assert changed.history_id == 0

    def test_unset_fields_are_kept(self) -> None:
        state = SyncState(status=SyncStatus.OK, last_error="", messages_done=7)
        changed = apply_sync_change(state, SyncStateChange(last_error="boom"))
        assert (changed.status, changed.messages_done, changed.last_error) == (
            SyncStatus.OK,
            7,
            "boom",
        )


class TestEmailDenormalisation:
    def test_matched_at_is_set_once_and_cleared_when_unlinked(self) -> None:
        email = Email(id="e1")
        first = denormalised_email_fields(email, ["a2", "a1", "a1"], ["i1"])
        assert first["matched"] is True
        assert first["live_account_ids"] == ["a1", "a2"]
        kept = denormalised_email_fields(email.model_copy(update=first), [], ["i1", "i2"])
        assert kept["matched_at"] == first["matched_at"]
        gone = denormalised_email_fields(email.model_copy(update=kept), [], [])
        assert (gone["matched"], gone["matched_at"], gone["investor_ids"]) == (False, None, [])

    def test_callers_cannot_set_denormalised_fields(self) -> None:
        forged = Email(id="e1", matched=True, investor_ids=["i1"], live_account_ids=["a1"])
        assert merge_captured_email(None, forged).matched is False
        stored = Email(id="e1", matched=False, first_seen_at=datetime(2026, 1, 1, tzinfo=UTC))
        merged = merge_captured_email(stored, forged.model_copy(update={"subject": "new"}))
        assert merged.matched is False
        assert merged.investor_ids == []
        assert merged.subject == "new"
        assert merged.first_seen_at == datetime(2026, 1, 1, tzinfo=UTC)


class TestDecide:
    def test_approval_creates_one_activity_keyed_by_the_proposal(self) -> None:
        proposal = Proposal.new("e1", "i1")
        outcome = decide(
            proposal,
            ProposalStatus.APPROVED,
            "alice@fund.example",
            email=None,
            existing_activity=None,
        )
        assert outcome.changed
        assert outcome.activity is not None and outcome.activity.id == proposal.id
        assert outcome.proposal.decided_by == "alice@fund.example"

    def test_the_same_decision_twice_changes_nothing(self) -> None:
        proposal = Proposal.new("e1", "i1", status=ProposalStatus.APPROVED)
        activity = Activity(
            id=proposal.id, proposal_id=proposal.id, email_id="e1", investor_id="i1", created_by="x"
        )
        outcome = decide(
            proposal, ProposalStatus.APPROVED, "bob", email=None, existing_activity=activity
        )
        assert not outcome.changed
        assert outcome.activity == activity

    def test_a_different_decision_once_decided_is_a_conflict_naming_the_state(self) -> None:
        proposal = Proposal.new("e1", "i1", status=ProposalStatus.REJECTED)
        with pytest.raises(ConflictError, match="already rejected") as caught:
            decide(proposal, ProposalStatus.APPROVED, "bob", email=None, existing_activity=None)
        assert caught.value.details["state"] == "rejected"

    def test_a_decided_proposal_cannot_be_reopened(self) -> None:
        approved = Proposal.new("e1", "i1", status=ProposalStatus.APPROVED)
        with pytest.raises(ConflictError, match="already approved"):
            decide(approved, ProposalStatus.PROPOSED, "rematch", email=None, existing_activity=None)

    def test_a_withdrawn_proposal_is_reopened_when_its_match_returns(self) -> None:
        withdrawn = Proposal.new("e1", "i1", status=ProposalStatus.WITHDRAWN, decided_by="rematch")
        outcome = decide(
            withdrawn, ProposalStatus.PROPOSED, "rematch", email=None, existing_activity=None
        )
        assert outcome.changed
        assert outcome.proposal.status is ProposalStatus.PROPOSED
        assert outcome.proposal.decided_by == ""
        open_one = Proposal.new("e1", "i1")
        assert not decide(
            open_one, ProposalStatus.PROPOSED, "rematch", email=None, existing_activity=None
        ).changed


T0 = datetime(2024, 6, 3, tzinfo=UTC)


class TestPageTokens:
    """A page token is the caller's input: only what a listing wrote is read as a position."""

    KEY = "2024-06-03T10:00:00.000000Z|e1"

    def test_a_token_a_listing_wrote_reads_back(self) -> None:
        token = encode_page_token(self.KEY)
        assert time_id_page_key(token) == self.KEY
        assert activity_page_key(token) == self.KEY

    @pytest.mark.parametrize(
        "forged",
        [
            "%%%not-base64%%%",
            "aGVsbG8=",  # "hello": base64, but no key of any listing
            base64.urlsafe_b64encode(b"0000|").decode(),  # the shape of nothing stored
            base64.urlsafe_b64encode(b"2024-06-03T10:00:00.000000Z|").decode(),  # no id
            base64.urlsafe_b64encode(b"2024-06-03T10:00:00.000000Z|a/b").decode(),  # not an id
            base64.urlsafe_b64encode(b"2024-06-03T10:00:00Z|e1").decode(),  # not fixed-width
            base64.urlsafe_b64encode(b'["zeta", "inv-1"]').decode(),  # another listing's token
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
            encode_page_token("2024-06-03T10:00:00.000000Z|e12").rstrip("="),  # padding cut
            "MjAyNC0wNi0wM1QxMDowMDowMC4wMDAwMDBafGUx" + "=" * 4,  # padding added
            "MjAyNC0wNi0wM1QxMDowMDowMC4w MDAwMDBafGUx",  # a space inside
            "A" * 5000,  # far longer than any key
        ],
    )
    def test_a_token_no_listing_wrote_is_a_bad_request(self, forged: str) -> None:
        for read in (
            time_id_page_key,
            activity_page_key,
            lambda t: proposal_window_keys(None, None, t),
            lambda t: matched_window_keys(T0, T0, t),
        ):
            with pytest.raises(BadRequestError):
                read(forged)
