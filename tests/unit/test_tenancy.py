"""The fund's own domains: exact matching, and the one decision of which domains hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.domain.models import Role, User
from shared.domain.tenancy import (
    SOURCE_BOOTSTRAP,
    SOURCE_FIRST_ADMIN,
    SOURCE_SETTING,
    UNDECIDED,
    OutsideTeamError,
    TeamDomains,
    effective_team_domains,
)
from shared.web import status_for

FUND = TeamDomains(frozenset({"fund.example", "fund.co.uk"}), SOURCE_SETTING)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def admin(email: str, minutes: int) -> User:
    user = User.new(email, "", Role.ADMIN)
    return user.model_copy(update={"created_at": T0 + timedelta(minutes=minutes)})


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("ada@fund.example", True),
        (" ADA@Fund.Example ", True),
        ("ada@fund.co.uk", True),
        ("ada@sub.fund.example", False),  # a subdomain is another domain
        ("ada@evilfund.example", False),  # no suffix match
        ("ada@fund.example.evil", False),
        ("ada@fund.example@evil.example", False),
        ("fund.example", False),
        ("@fund.example", False),
        ("", False),
    ],
)
def test_domains_match_exactly(address: str, admitted: bool) -> None:
    assert FUND.admits(address) is admitted


def test_a_refusal_says_which_domains_hold_and_what_set_them() -> None:
    with pytest.raises(OutsideTeamError) as refused:
        FUND.require("Eve@Evil.example", what="user")
    assert status_for(refused.value) == 400
    assert "fund.co.uk, fund.example" in refused.value.message
    assert "CRM_TEAM_DOMAINS" in refused.value.message
    assert refused.value.details["address"] == "eve@evil.example"


@pytest.mark.parametrize(
    ("claim", "admitted"),
    [
        ("fund.example", True),
        ("FUND.example", True),
        (None, False),
        ("", False),
        ("mail.fund.example", False),
        (["fund.example"], False),
        (True, False),
    ],
)
def test_the_hosted_domain_claim_must_name_a_team_domain(claim: object, admitted: bool) -> None:
    assert FUND.admits_hosted_domain(claim) is admitted


def test_the_setting_wins_then_the_bootstrap_admin_then_the_first_admin() -> None:
    def no_store() -> list[User]:
        raise AssertionError("the store is read only when no setting decides")

    configured = effective_team_domains(
        ["fund.example"], bootstrap_admin="ada@other.example", admins=no_store
    )
    assert (configured.domains, configured.source) == ({"fund.example"}, SOURCE_SETTING)
    bootstrap = effective_team_domains([], bootstrap_admin="ada@fund.example", admins=no_store)
    assert (bootstrap.domains, bootstrap.source) == ({"fund.example"}, SOURCE_BOOTSTRAP)
    admins = [admin("zed@later.example", 5), admin("bob@first.example", 1)]
    first = effective_team_domains([], bootstrap_admin="", admins=lambda: admins)
    assert (first.domains, first.source) == ({"first.example"}, SOURCE_FIRST_ADMIN)
    undecided = effective_team_domains([], bootstrap_admin="", admins=list)
    assert (undecided.domains, undecided.source, undecided.decided) == (set(), UNDECIDED, False)
    assert undecided.admits("anyone@anywhere.example")
    assert "undecided" in undecided.describe()


def test_the_setting_is_a_comma_list_of_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TEAM_DOMAINS", " Fund.Example, @fund.co.uk ,fund.example")
    assert Settings().team_domains == ["fund.example", "fund.co.uk"]
    monkeypatch.setenv("CRM_TEAM_DOMAINS", "ada@fund.example")
    with pytest.raises(ValidationError, match="CRM_TEAM_DOMAINS: not a domain"):
        Settings()
