"""CRM writes as pure rules: merging an input into a record, and which addresses and domains a
change re-matches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.crm import (
    ContactInput,
    InvestorInput,
    OrganizationInput,
    changed_fields,
    changed_keys,
    contact_keys,
    exclusion_keys,
    investor_keys,
    merged,
    organization_keys,
    split_exclusions,
)
from shared.domain.models import Contact, Investor, Organization

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ORG = Organization(id="org-zeta", name="Zeta", domains=["zeta.vc"])


def test_fields_left_out_keep_their_values_and_given_ones_replace() -> None:
    stored = Investor(
        id="inv-1", name="Zeta I", emails=["a@zeta.vc"], domains=["zeta.vc"], graveyard=True
    )
    record = merged(Investor, stored, InvestorInput(emails=["B@Zeta.vc"]), at=NOW)
    assert (record.name, record.domains, record.graveyard) == ("Zeta I", ["zeta.vc"], True)
    assert record.emails == ["b@zeta.vc"]
    assert record.email_keys == ["b@zeta.vc"]
    assert changed_fields(stored, record) == ["emails"]
    cleared = merged(Investor, stored, InvestorInput(domains=[], organization_id=None), at=NOW)
    assert cleared.domains == []
    assert changed_fields(stored, merged(Investor, stored, InvestorInput(), at=NOW)) == []


def test_a_new_record_needs_a_name_and_gets_an_id() -> None:
    with pytest.raises(ValueError, match="name: required"):
        merged(Organization, None, OrganizationInput(domains=["x.example"]), at=NOW)
    created = merged(Organization, None, OrganizationInput(name="X"), at=NOW)
    assert created.id
    assert merged(Contact, None, ContactInput(emails=["p@x.example"]), at=NOW).name == ""
    assert merged(Investor, None, InvestorInput(id="inv-9", name="N"), at=NOW).id == "inv-9"
    assert merged(Investor, None, InvestorInput(name="N"), record_id="inv-p", at=NOW).id == "inv-p"


def test_deleting_stamps_the_time_once_and_restoring_clears_it() -> None:
    stored = Contact(id="c1", name="P")
    deleted = merged(Contact, stored, ContactInput(deleted=True), at=NOW)
    assert deleted.deleted
    assert deleted.deleted_at is not None
    again = merged(Contact, deleted, ContactInput(deleted=True), at=NOW)
    assert again.deleted_at == deleted.deleted_at
    restored = merged(Contact, deleted, ContactInput(deleted=False), at=NOW)
    assert (restored.deleted, restored.deleted_at) == (False, None)


def test_an_investor_change_rematches_old_and_new_addresses_not_the_kept_ones() -> None:
    before = Investor(id="i", name="I", emails=["keep@x.example", "old@x.example"])
    after = before.model_copy(update={"emails": ["keep@x.example", "New@x.example"]})
    keys = changed_keys(
        investor_keys(before, organization=None), investor_keys(after, organization=None)
    )
    assert keys.addresses == {"old@x.example", "new@x.example"}
    assert keys.domains == frozenset()


def test_gmail_addresses_are_compared_canonically() -> None:
    before = Investor(id="i", name="I", emails=["j.smith@gmail.com"])
    after = before.model_copy(update={"emails": ["jsmith+vc@googlemail.com"]})
    assert not changed_keys(
        investor_keys(before, organization=None), investor_keys(after, organization=None)
    )


def test_graveyard_never_rematches_and_deletion_takes_every_route_with_it() -> None:
    live = Investor(id="i", name="I", emails=["a@x.example"], domains=["x.example", "gmail.com"])
    graveyard = live.model_copy(update={"graveyard": True})
    people = ["zoe@zeta.vc"]

    def keys_of(investor: Investor) -> set[tuple[str, str, str]]:
        return investor_keys(investor, organization=ORG, contact_addresses=people)

    assert not changed_keys(keys_of(live), keys_of(graveyard))
    deleted = live.model_copy(update={"deleted": True})
    keys = changed_keys(keys_of(live), keys_of(deleted))
    assert keys.addresses == {"a@x.example", "zoe@zeta.vc"}
    assert keys.domains == {"x.example", "zeta.vc"}  # a public domain never matches


def test_moving_an_investor_to_another_organisation_rematches_both_domains() -> None:
    other = Organization(id="org-other", name="Other", domains=["other.example", "zeta.vc"])
    investor = Investor(id="i", name="I", organization_id=ORG.id)
    moved = investor.model_copy(update={"organization_id": other.id})
    keys = changed_keys(
        investor_keys(investor, organization=ORG), investor_keys(moved, organization=other)
    )
    assert keys.domains == {"other.example"}  # zeta.vc reaches it either way
    gone = ORG.model_copy(update={"deleted": True})
    assert changed_keys(
        investor_keys(investor, organization=ORG), investor_keys(investor, organization=gone)
    ).domains == {"zeta.vc"}


def test_an_organisation_links_only_through_live_investors() -> None:
    changed = ORG.model_copy(update={"domains": ["zeta.vc", "zeta.com"]})
    with_members = changed_keys(
        organization_keys(ORG, has_live_investors=True),
        organization_keys(changed, has_live_investors=True),
    )
    assert with_members.domains == {"zeta.com"}
    assert not changed_keys(
        organization_keys(ORG, has_live_investors=False),
        organization_keys(changed, has_live_investors=False),
    )


def test_a_contact_links_only_through_a_live_investor_and_a_move_rematches_it() -> None:
    contact = Contact(id="c", investor_id="i1", emails=["p@x.example"])
    assert contact_keys(contact, investor_is_live=False) == set()
    assert contact_keys(
        contact.model_copy(update={"investor_id": None}), investor_is_live=True
    ) == (set())
    moved = contact.model_copy(update={"investor_id": "i2"})
    keys = changed_keys(
        contact_keys(contact, investor_is_live=True), contact_keys(moved, investor_is_live=True)
    )
    assert keys.addresses == {"p@x.example"}  # unlinked from i1, linked to i2
    renamed = contact.model_copy(update={"name": "P"})
    assert not changed_keys(
        contact_keys(contact, investor_is_live=True), contact_keys(renamed, investor_is_live=True)
    )


def test_exclusion_changes_rematch_what_entered_or_left_the_list() -> None:
    keys = exclusion_keys(
        ["keep@x.example", "@old.example", "J.Smith@gmail.com"],
        ["keep@x.example", "@new.example", "jsmith@gmail.com", "@googlemail.com"],
    )
    assert keys.addresses == frozenset()  # the same Gmail mailbox, spelled two ways
    # Excluding googlemail.com excludes gmail.com too.
    assert keys.domains == {"old.example", "new.example", "gmail.com", "googlemail.com"}
    assert split_exclusions(["@A.example", "b.example", " ", "x@Y.example"]) == (
        ["x@y.example"],
        ["a.example", "b.example"],
    )
