"""The pure rules behind the email detail and corrections: how a link is explained, which
matches a correction removes, and what an email keeps once its last link goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.email_detail import explain_link, participants_with_matches
from shared.domain.matching import Match, without_corrected
from shared.domain.models import (
    Activity,
    Contact,
    Correction,
    Email,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    MatchVia,
    Organization,
    email_id_for,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EMAIL_ID = email_id_for("<a@x>")
ORG = Organization(id="org-z", name="Zeta", domains=["zeta.vc"])
ZETA = Investor(id="inv-z", name="Zeta Fund", organization_id="org-z", emails=["Deals@Zeta.vc"])


def link(address: str, contact_id: str | None = None) -> InvestorLink:
    return InvestorLink.new(EMAIL_ID, "inv-z", contact_id, address, MatchHeader.TO)


class TestExplainLink:
    def test_a_contact_match_names_the_contact(self) -> None:
        zoe = Contact(id="con-zoe", name="Zoe", investor_id="inv-z", emails=["zoe@zeta.vc"])
        why = explain_link(link("zoe@zeta.vc", "con-zoe"), ZETA, zoe, ORG)
        assert (why.via, why.contact_name, why.domain, why.organization_id) == (
            MatchVia.CONTACT,
            "Zoe",
            "",
            None,
        )

    def test_the_investors_own_address_is_compared_canonically(self) -> None:
        why = explain_link(link("deals@zeta.vc"), ZETA, None, ORG)
        assert (why.via, why.investor_name) == (MatchVia.INVESTOR_ADDRESS, "Zeta Fund")

    def test_a_domain_match_names_the_organisation_holding_the_domain(self) -> None:
        why = explain_link(link("kim@zeta.vc"), ZETA, None, ORG)
        assert (why.via, why.domain, why.organization_id, why.organization_name) == (
            MatchVia.DOMAIN,
            "zeta.vc",
            "org-z",
            "Zeta",
        )
        own_domain = ZETA.model_copy(update={"domains": ["zeta.vc"], "organization_id": None})
        alone = explain_link(link("kim@zeta.vc"), own_domain.revalidated(), None, None)
        assert (alone.via, alone.domain, alone.organization_id) == (
            MatchVia.DOMAIN,
            "zeta.vc",
            None,
        )

    def test_a_deleted_or_vanished_investor_is_named_by_the_address(self) -> None:
        gone = explain_link(link("kim@zeta.vc"), None, None, None)
        assert (gone.investor_name, gone.investor_deleted, gone.via) == ("kim@zeta.vc", True, None)
        deleted = ZETA.model_copy(update={"deleted": True})
        assert explain_link(link("kim@zeta.vc"), deleted, None, ORG).investor_name == "kim@zeta.vc"

    def test_participants_get_the_matches_of_their_address_in_every_header(self) -> None:
        why = explain_link(link("kim@zeta.vc"), ZETA, None, ORG)
        people = participants_with_matches(
            [
                (MatchHeader.FROM, Mailbox(address="Kim@Zeta.vc")),
                (MatchHeader.CC, Mailbox(address="kim@zeta.vc")),
                (MatchHeader.TO, Mailbox(address="ada@fund.example")),
            ],
            [why],
        )
        assert [len(p.matches) for p in people] == [1, 1, 0]


class TestCorrections:
    def email(self) -> Email:
        return Email(id=EMAIL_ID, snippet="hi", body="text", matched=False)

    def test_corrected_investors_are_dropped_from_matches(self) -> None:
        corrected = self.email().with_correction(
            "inv-z", Correction(investor_id="inv-z", by="ada@fund.example", at=T0)
        )
        found = [
            Match("inv-z", None, "kim@zeta.vc", MatchHeader.FROM),
            Match("inv-y", None, "kim@zeta.vc", MatchHeader.FROM),
        ]
        assert [m.investor_id for m in without_corrected(found, corrected)] == ["inv-y"]
        assert without_corrected(found, None) == found
        assert corrected.with_correction("inv-z", None).corrections == []

    def test_a_correction_names_the_investor_it_corrects(self) -> None:
        with pytest.raises(ValueError, match="names the investor"):
            self.email().with_correction("inv-z", Correction(investor_id="inv-y", by="a", at=T0))

    def test_unmatched_mail_keeps_no_text_and_matched_mail_keeps_it(self) -> None:
        purged = self.email().without_text_if_unmatched()
        assert (purged.snippet, purged.body, purged.body_truncated) == ("", "", False)
        matched = self.email().model_copy(update={"matched": True})
        assert matched.without_text_if_unmatched() is matched

    def test_an_activity_is_marked_and_unmarked(self) -> None:
        activity = Activity(
            id="p_1", proposal_id="p_1", email_id=EMAIL_ID, investor_id="inv-z", created_by="a"
        )
        marked = activity.marked_corrected("ben@fund.example", T0)
        assert (marked.corrected, marked.corrected_by, marked.corrected_at) == (
            True,
            "ben@fund.example",
            T0,
        )
        assert marked.marked_corrected("x", None) == activity
