"""Domain models: normalisation, validation and deterministic ids (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.domain.models import (
    DigestPolicy,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    MatchHeader,
    Organization,
    Proposal,
    Role,
    Sighting,
    User,
    account_id_for,
    email_id_for,
    normalize_message_id,
    proposal_id_for,
    user_id_for,
)


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
