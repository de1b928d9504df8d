"""The matcher: which investors an email involves (pure rules, no store)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shared.domain.addresses import PUBLIC_MAIL_DOMAINS, canonical_address, is_public_mail_domain
from shared.domain.matching import (
    Exclusions,
    Match,
    lookup_keys,
    match_email,
    match_participants,
)
from shared.domain.models import Contact, Investor, Mailbox, MatchHeader, Organization

FROM, REPLY_TO, TO, CC, BCC = (
    MatchHeader.FROM,
    MatchHeader.REPLY_TO,
    MatchHeader.TO,
    MatchHeader.CC,
    MatchHeader.BCC,
)
OWN = {"alice@fund.vc"}


def people(*entries: tuple[MatchHeader, str]) -> list[tuple[MatchHeader, Mailbox]]:
    return [(header, Mailbox(address=address)) for header, address in entries]


def match(
    participants: Sequence[tuple[MatchHeader, Mailbox]],
    *,
    contacts: Sequence[Contact] = (),
    investors: Sequence[Investor] = (),
    organizations: Sequence[Organization] = (),
    own: set[str] | None = None,
    exclusions: Exclusions | None = None,
    is_bulk: bool = False,
) -> list[Match]:
    return match_participants(
        participants,
        contacts=contacts,
        investors=investors,
        organizations=organizations,
        own_addresses=OWN if own is None else own,
        exclusions=exclusions or Exclusions(),
        is_bulk=is_bulk,
    )


ACME = Investor(id="inv_acme", name="Acme Capital", organization_id="org_acme")
BETA = Investor(id="inv_beta", name="Beta Partners", organization_id="org_acme")
JANE = Contact(id="c_jane", name="Jane", investor_id="inv_acme", emails=["jane.doe@gmail.com"])
BOB = Contact(id="c_bob", name="Bob", investor_id="inv_beta", emails=["bob@acme.com"])
ACME_ORG = Organization(id="org_acme", name="Acme", domains=["acme.com"])


class TestCanonicalAddress:
    def test_lower_cases(self) -> None:
        assert canonical_address("  Jane.Doe@Example.COM ") == "jane.doe@example.com"

    def test_gmail_ignores_dots_and_plus_tag(self) -> None:
        assert canonical_address("Jane.Doe+vc@gmail.com") == "janedoe@gmail.com"

    def test_googlemail_is_gmail(self) -> None:
        assert canonical_address("j.a.n.e.doe+x+y@GoogleMail.com") == "janedoe@gmail.com"

    def test_other_domains_keep_dots_and_plus_tag(self) -> None:
        assert canonical_address("jane.doe+vc@acme.com") == "jane.doe+vc@acme.com"
        assert canonical_address("jane.doe@acme.com") != canonical_address("janedoe@acme.com")

    def test_degenerate_gmail_local_part_is_kept_whole(self) -> None:
        assert canonical_address("+tag@gmail.com") == "+tag@gmail.com"

    def test_refuses_a_non_address(self) -> None:
        with pytest.raises(ValueError, match="not an e-mail address"):
            canonical_address("jane at acme.com")


class TestPublicMailDomains:
    @pytest.mark.parametrize(
        "domain",
        [
            *("gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com"),
            *("yahoo.com", "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com"),
            "gmx.de",
        ],
    )
    def test_listed(self, domain: str) -> None:
        assert domain in PUBLIC_MAIL_DOMAINS
        assert is_public_mail_domain(domain)

    def test_gmx_family_under_any_country_domain(self) -> None:
        assert "gmx.es" not in PUBLIC_MAIL_DOMAINS
        assert is_public_mail_domain("GMX.es")
        assert is_public_mail_domain("@yahoo.co.nz")

    def test_company_domains_are_not_public(self) -> None:
        assert not is_public_mail_domain("acme.com")
        assert not is_public_mail_domain("gmx.acme.com")
        assert not is_public_mail_domain("yahoo.example.org")


class TestExclusions:
    def test_address_entry_excludes_that_mailbox_only(self) -> None:
        exclusions = Exclusions.parse(["Lawyer@Firm.com"])
        assert exclusions.excludes("lawyer@firm.com")
        assert not exclusions.excludes("partner@firm.com")

    def test_address_entry_is_canonical_on_gmail(self) -> None:
        exclusions = Exclusions.parse(["mum.smith@gmail.com"])
        assert exclusions.excludes("MumSmith+news@googlemail.com")
        assert not exclusions.excludes("mum.smith@example.com")

    def test_domain_entry_excludes_the_domain_and_its_subdomains(self) -> None:
        exclusions = Exclusions.parse(["@bank.com", "  ", "lawfirm.com"])
        assert exclusions.domains == {"bank.com", "lawfirm.com"}
        assert exclusions.excludes("anyone@bank.com")
        assert exclusions.excludes("ops@eu.bank.com")
        assert exclusions.excludes("x@lawfirm.com")
        assert not exclusions.excludes("x@notbank.com")

    def test_googlemail_domain_entry_covers_gmail(self) -> None:
        assert Exclusions.parse(["@googlemail.com"]).excludes("someone@gmail.com")

    def test_refuses_garbage(self) -> None:
        with pytest.raises(ValueError, match="not a domain"):
            Exclusions.parse(["@not a domain"])


class TestMatching:
    def test_contact_address_matches_contact_and_its_investor(self) -> None:
        result = match(people((FROM, "bob@acme.com")), contacts=[BOB], investors=[ACME, BETA])
        assert result == [Match("inv_beta", "c_bob", "bob@acme.com", FROM)]

    def test_dotted_gmail_address_matches_contact(self) -> None:
        result = match(people((TO, "janedoe@gmail.com")), contacts=[JANE], investors=[ACME])
        assert result == [Match("inv_acme", "c_jane", "janedoe@gmail.com", TO)]

    def test_googlemail_with_dots_and_tag_matches_gmail_contact(self) -> None:
        result = match(
            people((CC, "Jane.D.o.e+deals@googlemail.com")), contacts=[JANE], investors=[ACME]
        )
        # The address is reported as it appeared in the mail, not in canonical form.
        assert result == [Match("inv_acme", "c_jane", "jane.d.o.e+deals@googlemail.com", CC)]

    def test_plus_tag_on_other_domain_does_not_match(self) -> None:
        result = match(people((FROM, "bob+x@acme.com")), contacts=[BOB], investors=[BETA])
        assert result == []

    def test_contact_without_investor_does_not_match_but_is_reported(self) -> None:
        loner = Contact(id="c_loner", emails=["loner@acme.com"])
        participants = people((FROM, "loner@acme.com"))
        assert match(participants, contacts=[loner], investors=[ACME]) == []
        result = match_email(
            participants,
            contacts=[loner],
            investors=[ACME],
            organizations=[],
            own_addresses=OWN,
            exclusions=Exclusions(),
            is_bulk=False,
        )
        assert result.matches == []
        assert result.unlinked_contact_ids == ["c_loner"]

    def test_investor_own_email_matches_directly(self) -> None:
        investor = Investor(id="inv_x", name="X", emails=["deals@x.vc"])
        result = match(people((TO, "Deals@X.vc")), investors=[investor])
        assert result == [Match("inv_x", None, "deals@x.vc", TO)]

    def test_organisation_domain_matches_every_live_investor_of_it(self) -> None:
        gone = Investor(id="inv_gone", name="Gone", organization_id="org_acme", deleted=True)
        other = Investor(id="inv_other", name="Other", organization_id="org_other")
        result = match(
            people((FROM, "stranger@acme.com")),
            investors=[ACME, BETA, gone, other],
            organizations=[ACME_ORG],
        )
        assert result == [
            Match("inv_acme", None, "stranger@acme.com", FROM),
            Match("inv_beta", None, "stranger@acme.com", FROM),
        ]

    def test_investor_own_domain_matches(self) -> None:
        investor = Investor(id="inv_x", name="X", domains=["x.vc"])
        result = match(people((CC, "anyone@x.vc")), investors=[investor])
        assert result == [Match("inv_x", None, "anyone@x.vc", CC)]

    def test_domain_match_is_exact_not_by_subdomain(self) -> None:
        result = match(people((FROM, "a@eu.acme.com")), investors=[ACME], organizations=[ACME_ORG])
        assert result == []

    def test_contact_at_gmail_does_not_make_gmail_an_org_domain(self) -> None:
        result = match(
            people((FROM, "someone.else@gmail.com")),
            contacts=[JANE],
            investors=[ACME],
            organizations=[ACME_ORG],
        )
        assert result == []

    def test_public_domain_configured_on_org_or_investor_never_matches(self) -> None:
        org = Organization(id="org_acme", name="Acme", domains=["gmail.com", "acme.com"])
        investor = Investor(id="inv_x", name="X", domains=["googlemail.com", "gmx.fr"])
        result = match(
            people((FROM, "a@gmail.com"), (TO, "b@googlemail.com"), (CC, "c@gmx.fr")),
            investors=[ACME, investor],
            organizations=[org],
        )
        assert result == []

    def test_own_address_with_different_case_never_matches(self) -> None:
        investor = Investor(id="inv_x", name="X", emails=["alice@fund.vc"])
        result = match(people((FROM, "ALICE@Fund.VC")), investors=[investor], own={"Alice@fund.vc"})
        assert result == []

    def test_own_gmail_address_is_compared_canonically(self) -> None:
        result = match(
            people((FROM, "jane.doe+me@googlemail.com")),
            contacts=[JANE],
            investors=[ACME],
            own={"janedoe@gmail.com"},
        )
        assert result == []

    def test_exclusion_by_domain(self) -> None:
        result = match(
            people((FROM, "bob@acme.com"), (TO, "jane.doe@gmail.com")),
            contacts=[BOB, JANE],
            investors=[ACME, BETA],
            organizations=[ACME_ORG],
            exclusions=Exclusions.parse(["@acme.com"]),
        )
        assert result == [Match("inv_acme", "c_jane", "jane.doe@gmail.com", TO)]

    def test_exclusion_by_address(self) -> None:
        result = match(
            people((FROM, "JaneDoe@gmail.com")),
            contacts=[JANE],
            investors=[ACME],
            exclusions=Exclusions.parse(["jane.doe@gmail.com"]),
        )
        assert result == []

    def test_bulk_mail_never_matches(self) -> None:
        participants = people((FROM, "bob@acme.com"))
        assert match(participants, contacts=[BOB], investors=[BETA]) != []
        assert match(participants, contacts=[BOB], investors=[BETA], is_bulk=True) == []
        assert match(participants, investors=[ACME], organizations=[ACME_ORG], is_bulk=True) == []

    def test_deleted_contact_ignored(self) -> None:
        deleted = BOB.model_copy(update={"deleted": True})
        assert match(people((FROM, "bob@acme.com")), contacts=[deleted], investors=[BETA]) == []

    def test_contact_of_deleted_investor_ignored(self) -> None:
        deleted = BETA.model_copy(update={"deleted": True})
        assert match(people((FROM, "bob@acme.com")), contacts=[BOB], investors=[deleted]) == []

    def test_deleted_investor_own_email_ignored(self) -> None:
        investor = Investor(id="inv_x", name="X", emails=["deals@x.vc"], deleted=True)
        assert match(people((FROM, "deals@x.vc")), investors=[investor]) == []

    def test_deleted_organisation_ignored(self) -> None:
        org = ACME_ORG.model_copy(update={"deleted": True})
        assert match(people((FROM, "a@acme.com")), investors=[ACME], organizations=[org]) == []

    def test_graveyard_investor_matched(self) -> None:
        buried = BETA.model_copy(update={"graveyard": True})
        result = match(people((FROM, "bob@acme.com")), contacts=[BOB], investors=[buried])
        assert result == [Match("inv_beta", "c_bob", "bob@acme.com", FROM)]

    def test_dedup_across_headers_keeps_most_significant(self) -> None:
        participants = people(
            (BCC, "jane.doe@gmail.com"),
            (CC, "janedoe@gmail.com"),
            (REPLY_TO, "jane.doe+r@googlemail.com"),
            (TO, "jane.doe@gmail.com"),
        )
        result = match(participants, contacts=[JANE], investors=[ACME])
        assert result == [Match("inv_acme", "c_jane", "jane.doe+r@googlemail.com", REPLY_TO)]

    def test_same_header_twice_keeps_first_occurrence(self) -> None:
        two = Contact(id="c_two", investor_id="inv_beta", emails=["a@acme.com", "b@acme.com"])
        result = match(
            people((TO, "b@acme.com"), (TO, "a@acme.com")), contacts=[two], investors=[BETA]
        )
        assert result == [Match("inv_beta", "c_two", "b@acme.com", TO)]

    def test_contact_match_supersedes_domain_match_for_same_person(self) -> None:
        # Bob is a contact of Beta and at Acme's domain: Beta is matched through Bob only, while
        # Acme (no contact here) is matched by domain.
        result = match(
            people((FROM, "bob@acme.com")),
            contacts=[BOB],
            investors=[ACME, BETA],
            organizations=[ACME_ORG],
        )
        assert result == [
            Match("inv_acme", None, "bob@acme.com", FROM),
            Match("inv_beta", "c_bob", "bob@acme.com", FROM),
        ]

    def test_domain_and_contact_matches_from_different_people_are_both_kept(self) -> None:
        result = match(
            people((CC, "bob@acme.com"), (FROM, "ceo@acme.com")),
            contacts=[BOB],
            investors=[BETA],
            organizations=[ACME_ORG],
        )
        assert result == [
            Match("inv_beta", None, "ceo@acme.com", FROM),
            Match("inv_beta", "c_bob", "bob@acme.com", CC),
        ]

    def test_result_is_sorted_and_independent_of_input_order(self) -> None:
        zed = Investor(id="inv_zed", name="Zed", emails=["z@zed.vc"])
        participants = people((CC, "z@zed.vc"), (TO, "bob@acme.com"), (FROM, "jane.doe@gmail.com"))
        contacts, investors = [JANE, BOB], [zed, ACME, BETA]
        forward = match(participants, contacts=contacts, investors=investors)
        backward = match(participants[::-1], contacts=contacts[::-1], investors=investors[::-1])
        assert [m.investor_id for m in forward] == ["inv_acme", "inv_beta", "inv_zed"]
        assert forward == backward

    def test_match_becomes_investor_link(self) -> None:
        link = Match("inv_acme", "c_jane", "jane.doe@gmail.com", TO).to_link("e1")
        assert (link.id, link.header, link.matched_address) == (
            "e1:inv_acme:c_jane",
            TO,
            "jane.doe@gmail.com",
        )


class TestLookupKeys:
    def test_addresses_and_non_public_domains_without_own(self) -> None:
        addresses, domains = lookup_keys(
            people((FROM, "Bob@Acme.com"), (TO, "alice@fund.vc"), (CC, "x@yahoo.com")), OWN
        )
        assert addresses == ["bob@acme.com", "x@yahoo.com"]
        assert domains == ["acme.com"]

    def test_gmail_gives_both_spellings_and_canonical_form(self) -> None:
        addresses, domains = lookup_keys(people((FROM, "Jane.Doe+vc@googlemail.com")), set())
        assert addresses == [
            "jane.doe+vc@gmail.com",
            "jane.doe+vc@googlemail.com",
            "janedoe@gmail.com",
            "janedoe@googlemail.com",
        ]
        assert domains == []

    def test_own_address_is_compared_canonically(self) -> None:
        assert lookup_keys(people((FROM, "ALICE@fund.vc")), {"Alice@Fund.vc"}) == ([], [])
