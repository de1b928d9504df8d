"""The listings area (``shared/ports/listings.py``) on both stores: the admin lists' filters,
orders and paging, and the listing keys they sort on, give the same answers on SQLite and
Firestore (``[sqlite]``/``[firestore]``; on Firestore each query is checked against the
declared indexes when the test ends)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.domain.listing_keys import InvestorSort
from shared.domain.models import (
    Activity,
    AuditEntry,
    Contact,
    Email,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Organization,
    Proposal,
    ProposalStatus,
    Sighting,
    email_id_for,
)
from shared.errors import BadRequestError
from shared.ports import Page, Store

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def drain(list_page: Callable[..., Page[Any]], **filters: Any) -> list[Any]:
    """Every item across pages of 2, checking that paging ends and repeats nothing."""
    items: list[Any] = []
    token = ""
    for _ in range(50):
        page = list_page(limit=2, page_token=token, **filters)
        assert len(page.items) <= 2
        items += page.items
        if not page.next_token:
            ids = [item.id for item in items]
            assert len(ids) == len(set(ids))
            return items
        token = page.next_token
    raise AssertionError("paging does not terminate")


def names(items: list[Any]) -> list[str]:
    return [item.name for item in items]


class TestOrganizations:
    def test_name_order_prefix_domain_and_deleted(self, store: Store) -> None:
        for name, domains, deleted in [
            ("beta Capital", ["beta.example"], False),
            ("Alpha Partners", ["alpha.example"], False),
            ("alpine Fund", ["alpha.example"], False),
            ("Alps Gone", [], True),
            ("Zeta", [], False),
        ]:
            store.upsert_organization(Organization(name=name, domains=domains, deleted=deleted))

        assert names(drain(store.list_organization_page)) == [
            "Alpha Partners",
            "alpine Fund",
            "beta Capital",
            "Zeta",
        ]
        assert names(drain(store.list_organization_page, name_prefix="ALP")) == [
            "Alpha Partners",
            "alpine Fund",
        ]
        assert names(
            drain(store.list_organization_page, name_prefix="alp", include_deleted=True)
        ) == [
            "Alpha Partners",
            "alpine Fund",
            "Alps Gone",
        ]
        assert names(drain(store.list_organization_page, domain="@Alpha.example")) == [
            "Alpha Partners",
            "alpine Fund",
        ]
        assert names(
            drain(store.list_organization_page, domain="alpha.example", name_prefix="alpi")
        ) == ["alpine Fund"]
        assert drain(store.list_organization_page, name_prefix="q") == []

    def test_a_renamed_record_moves_in_the_order(self, store: Store) -> None:
        first = Organization(name="Aardvark")
        store.upsert_organization(first)
        store.upsert_organization(Organization(name="Badger"))
        store.upsert_organization(first.model_copy(update={"name": "Cobra"}))
        assert names(drain(store.list_organization_page)) == ["Badger", "Cobra"]


class TestContacts:
    def test_address_is_compared_canonically_and_domain_by_any_address(self, store: Store) -> None:
        store.upsert_contact(Contact(name="Ann Lee", emails=["ann.lee@gmail.com"]))
        store.upsert_contact(Contact(name="bob Roe", emails=["bob@lp.example", "b@other.example"]))
        store.upsert_contact(Contact(name="Cy Old", emails=["cy@lp.example"], deleted=True))

        assert names(drain(store.list_contact_page, address="AnnLee+x@gmail.com")) == ["Ann Lee"]
        assert names(drain(store.list_contact_page, domain="LP.example")) == ["bob Roe"]
        assert names(drain(store.list_contact_page, domain="lp.example", include_deleted=True)) == [
            "bob Roe",
            "Cy Old",
        ]
        assert names(drain(store.list_contact_page, name_prefix="b")) == ["bob Roe"]
        assert names(drain(store.list_contact_page)) == ["Ann Lee", "bob Roe"]

    def test_address_and_domain_together_or_malformed_are_refused(self, store: Store) -> None:
        with pytest.raises(BadRequestError):
            store.list_contact_page(address="a@b.example", domain="b.example")
        for address in ("not an address", "\x00"):
            with pytest.raises(BadRequestError):
                store.list_contact_page(address=address)
        for domain in ("not a domain", "x\x00.example"):
            with pytest.raises(BadRequestError):
                store.list_contact_page(domain=domain)
            with pytest.raises(BadRequestError):
                store.list_organization_page(domain=domain)

    def test_an_edit_that_removes_an_address_removes_its_domain(self, store: Store) -> None:
        contact = Contact(name="Dee", emails=["dee@one.example"])
        store.upsert_contact(contact)
        store.upsert_contact(contact.model_copy(update={"emails": ["dee@two.example"]}))
        assert drain(store.list_contact_page, domain="one.example") == []
        assert names(drain(store.list_contact_page, domain="two.example")) == ["Dee"]


class TestInvestors:
    def test_name_order_with_equal_names_pages_by_id(self, store: Store) -> None:
        same = [Investor(name="Same Name") for _ in range(3)]
        for investor in [*same, Investor(name="another"), Investor(name="Zed", deleted=True)]:
            store.upsert_investor(investor)
        listed = drain(store.list_investor_page)
        assert names(listed) == ["another", "Same Name", "Same Name", "Same Name"]
        assert [i.id for i in listed[1:]] == sorted(i.id for i in same)

    def test_last_contact_newest_first_never_contacted_last_and_kept_on_edit(
        self, store: Store
    ) -> None:
        old, new, never = Investor(name="Old"), Investor(name="New"), Investor(name="Never")
        for investor in (old, new, never):
            store.upsert_investor(investor)
        store.set_last_contact(old.id, T0)
        store.set_last_contact(new.id, T0 + timedelta(days=3))
        store.upsert_investor(old.model_copy(update={"name": "Old renamed"}))
        store.set_last_contact("missing-investor", T0)  # no-op

        listed = drain(store.list_investor_page, sort=InvestorSort.LAST_CONTACT)
        assert names(listed) == ["New", "Old renamed", "Never"]
        store.upsert_investor(new.model_copy(update={"graveyard": True}))
        for sort in InvestorSort:
            kept = drain(store.list_investor_page, sort=sort, include_graveyard=False)
            assert sorted(names(kept)) == ["Never", "Old renamed"]
        assert names(drain(store.list_investor_page, name_prefix="n", include_graveyard=False)) == [
            "Never"
        ]

    def test_name_prefix_with_another_sort_is_refused(self, store: Store) -> None:
        with pytest.raises(BadRequestError):
            store.list_investor_page(sort=InvestorSort.LAST_CONTACT, name_prefix="a")

    def test_refresh_derives_last_contact_from_listed_mail(self, store: Store) -> None:
        talked, quiet = Investor(name="Talked"), Investor(name="Quiet")
        store.upsert_investor(talked)
        store.upsert_investor(quiet)
        for days in (1, 5):
            email = Email(
                id=email_id_for(f"<{uid()}@mail.example>"),
                subject="Hi",
                sender=Mailbox(address="lp@lp.example"),
                date=T0 + timedelta(days=days),
                participant_addresses=["lp@lp.example"],
                participant_domains=["lp.example"],
            )
            store.upsert_email(email)
            store.record_sighting(Sighting.new("acct-1", uid("g"), email.id))
            store.link_email_to_investor(
                InvestorLink.new(email.id, talked.id, None, "lp@lp.example", MatchHeader.FROM)
            )

        assert store.refresh_listing_keys() >= 1
        listed = drain(store.list_investor_page, sort=InvestorSort.LAST_CONTACT)
        assert names(listed) == ["Talked", "Quiet"]
        assert store.refresh_listing_keys([talked.id]) == 0  # already right
        store.set_last_contact(quiet.id, T0 + timedelta(days=9))
        assert store.refresh_listing_keys([quiet.id]) == 1  # no mail: back to never
        assert names(drain(store.list_investor_page, sort=InvestorSort.LAST_CONTACT)) == [
            "Talked",
            "Quiet",
        ]


class TestActivities:
    def _approve(self, store: Store, day: int, **fields: Any) -> str:
        email = Email(
            id=email_id_for(f"<{uid()}@mail.example>"),
            subject=f"day {day}",
            date=T0 + timedelta(days=day),
        )
        store.upsert_email(email)
        proposal = Proposal.new(email.id, fields.pop("investor_id", "inv-a"), **fields)
        store.create_proposal(proposal)
        decision = store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "ann@fund.example")
        assert decision.activity is not None
        return decision.activity.id

    def test_filters_window_and_newest_first(self, store: Store) -> None:
        a1 = self._approve(store, 1, investor_id="inv-a", contact_id="c-1", account_id="acct-1")
        a2 = self._approve(store, 2, investor_id="inv-b", contact_id="c-1", account_id="acct-2")
        a3 = self._approve(store, 3, investor_id="inv-a", account_id="acct-2")
        a4 = self._approve(store, 3, investor_id="inv-a", account_id="acct-1")

        def ids(**filters: Any) -> list[str]:
            return [a.id for a in drain(store.list_activity_page, **filters)]

        same_day = sorted([a3, a4], reverse=True)
        assert ids() == [*same_day, a2, a1]
        assert ids(investor_id="inv-a") == [*same_day, a1]
        assert ids(contact_id="c-1") == [a2, a1]
        assert ids(account_id="acct-1") == [a4, a1]
        window = {"occurred_from": T0 + timedelta(days=2), "occurred_to": T0 + timedelta(days=3)}
        assert ids(**window) == [a2]
        assert ids(investor_id="inv-a", occurred_from=T0 + timedelta(days=2)) == same_day
        activity = store.get_activity(a4)
        assert activity is not None and activity.account_id == "acct-1"

    def test_two_filters_and_bad_paging_are_refused(self, store: Store) -> None:
        with pytest.raises(BadRequestError):
            store.list_activity_page(investor_id="a", account_id="b")
        with pytest.raises(BadRequestError):
            store.list_activity_page(page_token="bm90LWEta2V5")
        with pytest.raises(BadRequestError):
            store.list_activity_page(limit=0)
        with pytest.raises(BadRequestError):
            store.list_activity_page(limit=501)


class TestAudit:
    def test_by_actor_kind_target_and_window_newest_first(self, store: Store) -> None:
        entries = [
            AuditEntry(actor="ann@f.example", action="proposal.approve", target="p1", at=T0),
            AuditEntry(actor="bob@f.example", action="proposal.reject", target="p2", at=T0),
            AuditEntry(
                actor="ann@f.example",
                action="export",
                target="contacts",
                at=T0 + timedelta(hours=1),
            ),
        ]
        for entry in entries:
            store.append_audit(entry)
        first, second, third = entries
        same_time = sorted([first, second], key=lambda e: e.id, reverse=True)

        def ids(**filters: Any) -> list[str]:
            return [e.id for e in drain(store.list_audit_page, **filters)]

        assert ids() == [third.id, *(e.id for e in same_time)]
        assert ids(actor="ann@f.example") == [third.id, first.id]
        assert ids(action="proposal.reject") == [second.id]
        assert ids(target="contacts") == [third.id]
        assert ids(at_from=T0 + timedelta(minutes=1)) == [third.id]
        assert ids(at_to=T0 + timedelta(minutes=1), actor="bob@f.example") == [second.id]
        with pytest.raises(BadRequestError):
            store.list_audit_page(actor="a", target="b")


def test_a_sqlite_file_from_before_the_lists_gets_its_keys_on_upgrade(tmp_path: Path) -> None:
    """The lists' schema version fills the keys of rows stored before it (its data step): a
    version-5 file holding records, an approved activity and an audit entry is opened."""
    from shared.adapters.sqlite import SqliteStore
    from shared.adapters.sqlite.schema import MIGRATIONS

    old = sqlite3.connect(tmp_path / "old.sqlite3")
    for script in MIGRATIONS[:5]:
        for statement in script.split(";"):
            if statement.strip():
                old.execute(statement)
    old.execute("PRAGMA user_version = 5")
    org = Organization(name="Old Org", domains=["old.example"])
    investor = Investor(name="Old Investor")
    contact = Contact(name="Old Contact", emails=["c@old.example"])
    proposal = Proposal.new("e1", investor.id, account_id="acct-1")
    activity = (
        Proposal.new("e1", investor.id)
        .decide(ProposalStatus.APPROVED, "ann@f.example", email=None, existing_activity=None, at=T0)
        .activity
    )
    assert activity is not None
    entry = AuditEntry(actor="ann@f.example", action="export", target="contacts", at=T0)
    old.execute("INSERT INTO organizations VALUES (?,0,?)", (org.id, org.model_dump_json()))
    old.execute(
        "INSERT INTO investors (id, name_key, graveyard, deleted, doc) VALUES (?,?,0,0,?)",
        (investor.id, investor.name_key, investor.model_dump_json()),
    )
    old.execute("INSERT INTO contacts VALUES (?,0,?)", (contact.id, contact.model_dump_json()))
    old.execute(
        "INSERT INTO proposals (id, status, investor_id, sort_key, doc, account_id)"
        " VALUES (?,?,?,?,?,?)",
        (
            proposal.id,
            "approved",
            investor.id,
            proposal.sort_key,
            proposal.model_dump_json(),
            "acct-1",
        ),
    )
    old.execute("INSERT INTO activities VALUES (?,?)", (activity.id, activity.model_dump_json()))
    old.execute(
        "INSERT INTO audit VALUES (?,?,?,?)",
        (entry.id, entry.target, entry.sort_key.split("|")[0], entry.model_dump_json()),
    )
    old.commit()
    old.close()

    upgraded = SqliteStore(tmp_path / "old.sqlite3")
    try:
        assert upgraded.schema_version() == len(MIGRATIONS)
        assert names(drain(upgraded.list_organization_page, name_prefix="old")) == ["Old Org"]
        assert names(drain(upgraded.list_contact_page, domain="old.example")) == ["Old Contact"]
        assert names(drain(upgraded.list_investor_page, sort=InvestorSort.LAST_CONTACT)) == [
            "Old Investor"
        ]
        listed = drain(upgraded.list_activity_page, account_id="acct-1")
        assert [a.id for a in listed] == [activity.id]
        assert [e.id for e in drain(upgraded.list_audit_page, actor="ann@f.example")] == [entry.id]
    finally:
        upgraded.close()


@pytest.mark.firestore
def test_firestore_documents_from_before_the_lists_get_their_keys_on_refresh(
    firestore_store: Any,
) -> None:
    """Documents written before the listing keys lack them (Firestore leaves a document out
    of a query ordered on a field it lacks); ``refresh_listing_keys`` fills them in."""
    from shared.adapters.firestore.documents import _document

    client = firestore_store._client
    org = Organization(name="Legacy Org")
    investor = Investor(name="Legacy Investor")
    contact = Contact(name="Legacy Contact", emails=["l@legacy.example"])
    activity = (
        Proposal.new("e-legacy", investor.id)
        .decide(ProposalStatus.APPROVED, "ann@f.example", email=None, existing_activity=None, at=T0)
        .activity
    )
    assert activity is not None
    proposal = Proposal.new("e-legacy", investor.id, account_id="acct-9")
    firestore_store.create_proposal(proposal)
    legacy: list[tuple[str, Organization | Investor | Contact | Activity]] = [
        ("organizations", org),
        ("investors", investor),
        ("contacts", contact),
        ("activities", activity),
    ]
    for collection, model in legacy:
        client.collection(collection).document(model.id).set(_document(model))

    # (The emulator, unlike production, still returns documents lacking the ordered field.)
    assert "listing_name" not in client.collection("organizations").document(org.id).get().to_dict()
    assert firestore_store.refresh_listing_keys() == 4
    stored = client.collection("organizations").document(org.id).get().to_dict()
    assert stored["listing_name"].startswith("legacy org")
    assert names(firestore_store.list_organization_page().items) == ["Legacy Org"]
    assert names(firestore_store.list_contact_page(domain="legacy.example").items) == [
        "Legacy Contact"
    ]
    assert names(firestore_store.list_investor_page(sort=InvestorSort.LAST_CONTACT).items) == [
        "Legacy Investor"
    ]
    [listed] = firestore_store.list_activity_page(account_id="acct-9").items
    assert listed.id == activity.id
    assert firestore_store.refresh_listing_keys() == 0  # idempotent


def test_the_cli_refreshes_listing_keys(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from shared.adapters.sqlite import SqliteStore

    db = tmp_path / "crm.sqlite3"
    store = SqliteStore(db)
    investor = Investor(name="Cli")
    store.upsert_investor(investor)
    store.set_last_contact(investor.id, T0)
    store.close()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CRM_SQLITE_PATH": str(db), "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "refresh-listing-keys", investor.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 record(s) changed" in done.stdout  # no mail: back to never contacted
