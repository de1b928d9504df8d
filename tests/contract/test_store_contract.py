"""The Store contract (shared/ports/), run against every adapter: ``[sqlite]``, ``[firestore]``.

Each test states one promise of the port and checks it through the port only, so the two stores
cannot drift. Data is tiny on purpose: the Firestore emulator slows down as collections grow, and
none of these promises needs volume (paging is proven with equal timestamps, chunking with 35
addresses).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.models import (
    AuditEntry,
    CaptureProblem,
    Contact,
    Correction,
    Email,
    EmailAccount,
    Guard,
    Investor,
    InvestorLink,
    LinkedInvestor,
    LinkNames,
    Mailbox,
    MatchHeader,
    Organization,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    Sighting,
    SyncStatus,
    User,
    email_id_for,
    utcnow,
)
from shared.errors import BadRequestError, ConflictError, NotFoundError
from shared.ports import Store, SyncStateChange

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def make_email(*addresses: str, subject: str = "Hello", **fields: Any) -> Email:
    addresses = addresses or ("someone@example.com",)
    return Email(
        id=email_id_for(f"<{uid()}@mail.example.com>"),
        subject=subject,
        sender=Mailbox(name="Sender", address=addresses[0]),
        to=[Mailbox(address=a) for a in addresses[1:]],
        date=T0,
        participant_addresses=list(addresses),
        participant_domains=sorted({a.split("@")[1] for a in addresses}),
        **fields,
    )


def make_link(email_id: str, investor_id: str, contact_id: str | None = None) -> InvestorLink:
    return InvestorLink.new(email_id, investor_id, contact_id, "lp@fund.example", MatchHeader.FROM)


def drain(store: Store, **filters: object) -> tuple[list[str], int]:
    """Every proposal across pages of 2 (ids in order) and the number of pages."""
    ids: list[str] = []
    token = ""
    pages = 0
    while True:
        page = store.list_proposals(limit=2, page_token=token, **filters)  # type: ignore[arg-type]
        pages += 1
        ids += [p.id for p in page.items]
        if not page.next_token:
            return ids, pages
        token = page.next_token
        assert pages < 50, "paging does not terminate"


# -- users and roles ---------------------------------------------------------------------------


class TestUsers:
    def test_adding_the_same_user_twice_keeps_one(self, store: Store) -> None:
        user = User.new("ann@fund.example", "Ann")
        assert store.add_user(user) is True
        assert store.add_user(user) is False
        # Another spelling of the address is the same person: the id is derived from it.
        twin = User.new("ANN@fund.example ", "Ann again")
        assert twin.id == user.id
        assert store.add_user(twin) is False
        assert [u.id for u in store.list_users()] == [user.id]
        assert store.get_user(user.id) == user

    def test_lookup_by_email_ignores_case_and_spaces(self, store: Store) -> None:
        user = User.new("Bob.Smith@Fund.example", "Bob")
        store.add_user(user)
        found = store.get_user_by_email("  BOB.smith@fund.EXAMPLE ")
        assert found is not None
        assert found.id == user.id
        assert found.email == "bob.smith@fund.example"
        assert store.get_user_by_email("nobody@fund.example") is None

    def test_list_users_sorted_by_email_and_active_filter(self, store: Store) -> None:
        store.add_user(User.new("carol@fund.example"))
        store.add_user(User.new("alice@fund.example"))
        inactive = User.new("bert@fund.example").model_copy(update={"is_active": False})
        store.add_user(inactive)
        assert [u.email for u in store.list_users()] == [
            "alice@fund.example",
            "bert@fund.example",
            "carol@fund.example",
        ]
        assert [u.email for u in store.list_users(active_only=True)] == [
            "alice@fund.example",
            "carol@fund.example",
        ]

    def test_change_user_changes_role_and_activity(self, store: Store) -> None:
        admin = User.new("admin@fund.example", role=Role.ADMIN)
        member = User.new("member@fund.example")
        store.add_user(admin)
        store.add_user(member)

        promoted = store.change_user(member.id, role=Role.ADMIN)
        assert promoted.role is Role.ADMIN
        assert promoted.updated_at >= member.updated_at
        assert [u.id for u in store.list_active_admins()] == [admin.id, member.id]

        deactivated = store.change_user(admin.id, is_active=False)
        assert deactivated.is_active is False
        assert deactivated.role is Role.ADMIN  # untouched: None means "leave as it is"
        stored = store.get_user(admin.id)
        assert stored is not None
        assert stored.is_active is False
        assert [u.id for u in store.list_active_admins()] == [member.id]

    def test_last_active_admin_cannot_be_demoted_or_deactivated(self, store: Store) -> None:
        admin = User.new("only@fund.example", role=Role.ADMIN)
        retired = User.new("retired@fund.example", role=Role.ADMIN).model_copy(
            update={"is_active": False}
        )
        store.add_user(admin)
        store.add_user(retired)
        store.add_user(User.new("member@fund.example"))

        with pytest.raises(ConflictError):
            store.change_user(admin.id, role=Role.MEMBER)
        with pytest.raises(ConflictError):
            store.change_user(admin.id, is_active=False)
        assert store.get_user(admin.id) == admin  # nothing was written
        # Changing someone who is not an active admin is always fine.
        assert store.change_user(retired.id, role=Role.MEMBER).role is Role.MEMBER

    def test_change_unknown_user_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.change_user("u_missing", role=Role.ADMIN)

    def test_bootstrap_admin_only_while_no_active_admin_exists(self, store: Store) -> None:
        assert store.list_active_admins() == []
        assert store.bootstrap_admin("Root@Fund.example", "Root") is True
        admins = store.list_active_admins()
        assert [(u.email, u.name, u.role) for u in admins] == [
            ("root@fund.example", "Root", Role.ADMIN)
        ]
        assert store.bootstrap_admin("other@fund.example", "Other") is False
        assert store.bootstrap_admin("root@fund.example") is False
        assert store.get_user_by_email("other@fund.example") is None

    def test_bootstrap_promotes_and_reactivates_an_existing_user(self, store: Store) -> None:
        existing = User.new("lead@fund.example", "Lead").model_copy(update={"is_active": False})
        store.add_user(existing)
        # An inactive admin does not count: nobody can act as admin.
        store.add_user(
            User.new("gone@fund.example", role=Role.ADMIN).model_copy(update={"is_active": False})
        )
        assert store.bootstrap_admin("LEAD@fund.example") is True
        lead = store.get_user(existing.id)
        assert lead is not None
        assert (lead.role, lead.is_active, lead.name) == (Role.ADMIN, True, "Lead")
        assert len(store.list_users()) == 2  # promoted in place, not duplicated


# -- mailboxes and sync state ------------------------------------------------------------------


class TestMailboxes:
    def test_adding_a_mailbox_twice_keeps_one_and_lookup_ignores_case(self, store: Store) -> None:
        account = EmailAccount.new("Deals@Fund.example")
        assert store.add_email_account(account) is True
        assert store.add_email_account(account) is False
        assert store.add_email_account(EmailAccount.new(" deals@FUND.example")) is False
        assert store.get_email_account(account.id) == account
        found = store.get_email_account_by_address(" DEALS@fund.example")
        assert found is not None
        assert found.id == account.id
        assert store.get_email_account_by_address("none@fund.example") is None
        assert store.get_email_account("a_missing") is None

    def test_list_excludes_deleted_unless_asked(self, store: Store) -> None:
        store.add_email_account(EmailAccount.new("zed@fund.example"))
        store.add_email_account(EmailAccount.new("amy@fund.example"))
        gone = EmailAccount.new("gone@fund.example").model_copy(
            update={"deleted": True, "deleted_at": T0}
        )
        store.add_email_account(gone)
        assert [a.address for a in store.list_email_accounts()] == [
            "amy@fund.example",
            "zed@fund.example",
        ]
        assert [a.address for a in store.list_email_accounts(include_deleted=True)] == [
            "amy@fund.example",
            "gone@fund.example",
            "zed@fund.example",
        ]

    def test_pause_and_resume(self, store: Store) -> None:
        account = EmailAccount.new("ops@fund.example")
        store.add_email_account(account)
        assert store.set_email_account_paused(account.id, True).paused is True
        stored = store.get_email_account(account.id)
        assert stored is not None
        assert stored.paused is True
        assert store.set_email_account_paused(account.id, False).paused is False
        with pytest.raises(NotFoundError):
            store.set_email_account_paused("a_missing", True)

    def test_history_id_never_decreases_unless_reset(self, store: Store) -> None:
        account = EmailAccount.new("sync@fund.example")
        store.add_email_account(account)
        state = store.update_sync_state(
            account.id, SyncStateChange(history_id=100, status=SyncStatus.OK, last_error="boom")
        )
        assert (state.history_id, state.status, state.last_error) == (100, SyncStatus.OK, "boom")
        assert store.update_sync_state(account.id, SyncStateChange(history_id=50)).history_id == 100
        later = store.update_sync_state(account.id, SyncStateChange(history_id=150))
        assert later.history_id == 150
        assert later.last_error == "boom"  # None in the change means "leave as it is"
        reset = store.update_sync_state(
            account.id, SyncStateChange(history_id=20, reset_history=True, last_error="")
        )
        assert (reset.history_id, reset.last_error) == (20, "")
        stored = store.get_email_account(account.id)
        assert stored is not None
        assert stored.sync == reset
        with pytest.raises(NotFoundError):
            store.update_sync_state("a_missing", SyncStateChange(history_id=1))

    def test_sync_state_keeps_times_and_counters(self, store: Store) -> None:
        account = EmailAccount.new("times@fund.example")
        store.add_email_account(account)
        when = T0 + timedelta(microseconds=123456)
        store.update_sync_state(
            account.id,
            SyncStateChange(
                last_success_at=when, watch_expiration=when, messages_done=7, backfill_done=True
            ),
        )
        stored = store.get_email_account(account.id)
        assert stored is not None
        assert stored.sync.last_success_at == when
        assert stored.sync.watch_expiration == when
        assert (stored.sync.messages_done, stored.sync.backfill_done) == (7, True)

    def test_own_addresses_include_aliases_and_exclude_deleted(self, store: Store) -> None:
        main = EmailAccount.new("team@fund.example").model_copy(
            update={"aliases": ["hello@fund.example", "team@fund.io"]}
        )
        deleted = EmailAccount.new("old@fund.example").model_copy(
            update={"aliases": ["older@fund.example"], "deleted": True}
        )
        store.add_email_account(main)
        store.add_email_account(deleted)
        assert store.own_addresses() == {
            "team@fund.example",
            "hello@fund.example",
            "team@fund.io",
        }


# -- CRM records -------------------------------------------------------------------------------


class TestMailboxOwner:
    """A mailbox's owner is the user with its address, in either order of creation, unless an
    admin names another (``set_email_account_owner``)."""

    def test_a_user_added_after_their_mailbox_becomes_its_owner(self, store: Store) -> None:
        store.add_email_account(EmailAccount.new("ann@fund.example"))
        chosen = User.new("boss@fund.example")
        store.add_user(chosen)
        store.add_email_account(EmailAccount.new("deals@fund.example", chosen.id))
        gone = EmailAccount.new("old@fund.example").model_copy(
            update={"deleted": True, "deleted_at": T0}
        )
        store.add_email_account(gone)
        ann, deals_user, old_user = (
            User.new("ANN@fund.example", "Ann"),
            User.new("deals@fund.example"),
            User.new("old@fund.example"),
        )
        for user in (ann, deals_user, old_user):
            assert store.add_user(user) is True
        owned = store.get_email_account_by_address("ann@fund.example")
        assert owned is not None and owned.user_id == ann.id and not owned.paused
        # An owner an admin chose is kept; an offboarded mailbox is left as it was.
        deals = store.get_email_account_by_address("deals@fund.example")
        assert deals is not None and deals.user_id == chosen.id
        assert store.get_email_account(gone.id) == gone

    def test_a_mailbox_added_after_its_user_gets_them_as_owner(self, store: Store) -> None:
        ann = User.new("ann@fund.example")
        store.add_user(ann)
        former = User.new("fay@fund.example").model_copy(update={"is_active": False})
        store.add_user(former)
        assert store.add_email_account(EmailAccount.new(" Ann@Fund.example")) is True
        assert store.add_email_account(EmailAccount.new("fay@fund.example")) is True
        assert store.add_email_account(EmailAccount.new("team@fund.example")) is True
        mine = store.get_email_account_by_address("ann@fund.example")
        assert mine is not None and (mine.user_id, mine.paused) == (ann.id, False)
        # An inactive owner's mailbox starts paused for that reason, as when named.
        fays = store.get_email_account_by_address("fay@fund.example")
        assert fays is not None and fays.user_id == former.id
        assert (fays.paused, fays.pause_reasons) == (True, [PauseReason.OWNER_INACTIVE])
        team = store.get_email_account_by_address("team@fund.example")
        assert team is not None and team.user_id is None

    def test_an_admin_names_another_owner_and_the_pause_follows(self, store: Store) -> None:
        ann, fay = User.new("ann@fund.example"), User.new("fay@fund.example")
        store.add_user(ann)
        store.add_user(fay.model_copy(update={"is_active": False}))
        account = EmailAccount.new("ann@fund.example")
        store.add_email_account(account)
        store.set_email_account_paused(account.id, True)  # an admin's own pause
        to_fay = store.set_email_account_owner(account.id, " FAY@fund.example")
        assert to_fay.user_id == fay.id
        assert to_fay.pause_reasons == [PauseReason.ADMIN, PauseReason.OWNER_INACTIVE]
        # Empty: back to the user with the mailbox's address; the admin's pause stays.
        back = store.set_email_account_owner(account.id, "")
        assert (back.user_id, back.pause_reasons) == (ann.id, [PauseReason.ADMIN])
        assert store.get_email_account(account.id) == back
        with pytest.raises(NotFoundError):
            store.set_email_account_owner(account.id, "nobody@fund.example")
        with pytest.raises(NotFoundError):
            store.set_email_account_owner("a_missing", "ann@fund.example")
        team = EmailAccount.new("team@fund.example")
        store.add_email_account(team)
        assert store.set_email_account_owner(team.id).user_id is None
        store.offboard_email_account(team.id)
        with pytest.raises(ConflictError):
            store.set_email_account_owner(team.id, "ann@fund.example")
        assert store.get_email_account(account.id) == back


class TestMailboxLifecycle:
    """Pause reasons, offboarding and the purge of an offboarded mailbox's sightings."""

    def test_a_mailbox_stays_paused_until_every_reason_is_lifted(self, store: Store) -> None:
        account = EmailAccount.new("ops@fund.example")
        store.add_email_account(account)
        store.set_email_account_paused(account.id, True)
        both = store.set_email_account_paused(account.id, True, reason=PauseReason.OWNER_INACTIVE)
        assert both.paused is True
        assert both.pause_reasons == [PauseReason.ADMIN, PauseReason.OWNER_INACTIVE]
        # The owner comes back: the admin's own pause stays.
        kept = store.set_email_account_paused(account.id, False, reason=PauseReason.OWNER_INACTIVE)
        assert (kept.paused, kept.pause_reasons) == (True, [PauseReason.ADMIN])
        resumed = store.set_email_account_paused(account.id, False)
        assert (resumed.paused, resumed.pause_reasons) == (False, [])
        assert store.get_email_account(account.id) == resumed

    def test_a_pause_without_reasons_counts_as_an_admins(self, store: Store) -> None:
        legacy = EmailAccount.new("old@fund.example").model_copy(update={"paused": True})
        store.add_email_account(legacy)
        lifted = store.set_email_account_paused(legacy.id, False, reason=PauseReason.OWNER_INACTIVE)
        assert (lifted.paused, lifted.pause_reasons) == (True, [PauseReason.ADMIN])

    def test_offboarding_ends_sync_writes_and_is_idempotent(self, store: Store) -> None:
        account = EmailAccount.new("leaver@fund.example")
        store.add_email_account(account)
        email = make_email("lp@fund.example")
        store.upsert_email(email)
        store.record_sighting(Sighting.new(account.id, "m1", email.id, deleted=True))

        gone = store.offboard_email_account(account.id)
        assert gone.deleted is True
        assert gone.deleted_at is not None
        again = store.offboard_email_account(account.id)
        assert again.deleted_at == gone.deleted_at
        assert [a.id for a in store.list_email_accounts()] == []
        assert [a.id for a in store.list_email_accounts(include_deleted=True)] == [account.id]
        assert store.own_addresses() == set()

        # A run still going stops at its next write; nothing resurrects its mail.
        with pytest.raises(NotFoundError):
            store.update_sync_state(account.id, SyncStateChange(history_id=5))
        with pytest.raises(NotFoundError):
            store.record_sighting(Sighting.new(account.id, "m2", email.id))
        with pytest.raises(NotFoundError):
            store.set_sighting_deleted(account.id, "m1", False)
        assert store.set_sighting_deleted(account.id, "m1", True) is True
        with pytest.raises(ConflictError):
            store.set_email_account_paused(account.id, True)
        assert store.get_sighting(account.id, "m2") is None
        with pytest.raises(NotFoundError):
            store.offboard_email_account("a_missing")

    def test_purge_soft_deletes_in_pages_and_recomputes_each_email(self, store: Store) -> None:
        leaving, staying = EmailAccount.new("leaver@fund.example"), EmailAccount.new("stay@f.ex")
        for account in (leaving, staying):
            store.add_email_account(account)
        shared, only_there, third = (make_email("lp@fund.example") for _ in range(3))
        for email in (shared, only_there, third):
            store.upsert_email(email)
            store.link_email_to_investor(make_link(email.id, "inv-1"))
            store.record_sighting(Sighting.new(leaving.id, f"g-{email.id[:8]}", email.id))
        store.record_sighting(Sighting.new(staying.id, "s1", shared.id))
        store.offboard_email_account(leaving.id)

        with pytest.raises(BadRequestError):
            store.soft_delete_account_sightings(leaving.id, limit=201)
        assert store.soft_delete_account_sightings(leaving.id, limit=2) == 2
        assert store.soft_delete_account_sightings(leaving.id, limit=2) == 1
        assert store.soft_delete_account_sightings(leaving.id, limit=2) == 0

        for email in (shared, only_there, third):
            stored = store.get_email(email.id)
            assert stored is not None
            assert stored.matched is True  # links are the email's, untouched
            assert stored.live_account_ids == ([staying.id] if email is shared else [])
            (sighting,) = [s for s in store.list_sightings(email.id) if s.account_id == leaving.id]
            assert sighting.deleted is True
            assert sighting.deleted_at is not None
        kept = store.get_sighting(staying.id, "s1")
        assert kept is not None
        assert kept.deleted is False


class TestCrmRecords:
    def test_upsert_and_get_round_trip(self, store: Store) -> None:
        org = Organization(name="Acme Capital", domains=["Acme.example"])
        investor = Investor(name="Jane LP", organization_id=org.id, emails=["Jane@Acme.example"])
        contact = Contact(name="Jane", investor_id=investor.id, emails=["jane@acme.example"])
        store.upsert_organization(org)
        store.upsert_investor(investor)
        store.upsert_contact(contact)
        # Everything as written but ``updated_at``, which the store stamps (the next test).
        for written, stored in (
            (org, store.get_organization(org.id)),
            (investor, store.get_investor(investor.id)),
            (contact, store.get_contact(contact.id)),
        ):
            assert stored is not None
            assert stored == written.model_copy(update={"updated_at": stored.updated_at})
        assert store.get_investor("missing") is None
        assert store.get_contact("missing") is None
        assert store.get_organization("missing") is None

    def test_every_write_is_stamped_and_the_records_changed_since_are_listed(
        self, store: Store
    ) -> None:
        # The caller's updated_at is not kept: the store stamps its own clock at each write,
        # so the digest can ask which records changed since it took their names.
        org = Organization(id="org-1", name="Acme", updated_at=T0)
        investor = Investor(id="inv-1", name="Jane LP", organization_id=org.id, updated_at=T0)
        contact = Contact(id="con-1", name="Jane", investor_id=investor.id, updated_at=T0)
        quiet = Contact(id="con-0", name="Quiet", updated_at=T0)
        before = datetime.now(UTC)
        store.upsert_organization(org)
        store.upsert_investor(investor)
        store.upsert_contact(contact)
        store.upsert_contact(quiet)
        stamps = [
            r.updated_at
            for r in (
                store.get_organization(org.id),
                store.get_investor(investor.id),
                store.get_contact(contact.id),
            )
            if r is not None
        ]
        assert len(stamps) == 3 and all(stamp >= before for stamp in stamps)
        assert [[r.id for r in records] for records in store.list_crm_updated_since(before)] == [
            ["org-1"],
            ["inv-1"],
            ["con-0", "con-1"],
        ]

        mark = datetime.now(UTC)
        assert store.list_crm_updated_since(mark + timedelta(seconds=1)) == ([], [], [])
        # A rename, a soft delete and a graveyard move are all changes, listed with their
        # new state; the record left alone is not.
        store.upsert_organization(org.model_copy(update={"name": "Acme Capital"}))
        store.upsert_investor(investor.model_copy(update={"graveyard": True}))
        store.upsert_contact(contact.model_copy(update={"deleted": True}))
        organizations, investors, contacts = store.list_crm_updated_since(mark)
        assert [(o.id, o.name) for o in organizations] == [("org-1", "Acme Capital")]
        assert [(i.id, i.graveyard) for i in investors] == [("inv-1", True)]
        assert [(c.id, c.deleted) for c in contacts] == [("con-1", True)]
        stamps = [r.updated_at for r in organizations] + [r.updated_at for r in investors]
        assert all(stamp >= mark for stamp in [*stamps, *(r.updated_at for r in contacts)])

    def test_lookups_by_address_and_domain_skip_deleted_records(self, store: Store) -> None:
        org = Organization(name="Acme", domains=["acme.example"])
        dead_org = Organization(name="Old Acme", domains=["acme.example"], deleted=True)
        investor = Investor(name="Jane", emails=["jane@acme.example"], domains=["acme.example"])
        dead_investor = Investor(name="Old", emails=["jane@acme.example"], deleted=True)
        contact = Contact(name="Jane", emails=["jane@acme.example"])
        dead_contact = Contact(name="Old", emails=["jane@acme.example"], deleted=True)
        for record in (org, dead_org):
            store.upsert_organization(record)
        for inv in (investor, dead_investor):
            store.upsert_investor(inv)
        for person in (contact, dead_contact):
            store.upsert_contact(person)

        assert [c.id for c in store.find_contacts_by_addresses(["JANE@acme.example"])] == [
            contact.id
        ]
        assert [i.id for i in store.find_investors_by_addresses(["jane@acme.example"])] == [
            investor.id
        ]
        assert [o.id for o in store.find_organizations_by_domains(["ACME.example"])] == [org.id]
        assert [i.id for i in store.find_investors_by_domains(["acme.example"])] == [investor.id]
        assert store.find_contacts_by_addresses(["other@acme.example"]) == []
        assert store.find_contacts_by_addresses([]) == []
        assert store.find_organizations_by_domains(["other.example"]) == []

    def test_upsert_replaces_addresses(self, store: Store) -> None:
        contact = Contact(name="Moves", emails=["old@lp.example"])
        store.upsert_contact(contact)
        store.upsert_contact(contact.model_copy(update={"emails": ["new@lp.example"]}))
        assert store.find_contacts_by_addresses(["old@lp.example"]) == []
        assert [c.id for c in store.find_contacts_by_addresses(["new@lp.example"])] == [contact.id]

    def test_lookup_with_more_than_thirty_addresses(self, store: Store) -> None:
        # Firestore's array-contains-any takes 30 values: 40 addresses need two queries.
        contacts = [Contact(name=f"c{i}", emails=[f"p{i:02d}@lp.example"]) for i in range(35)]
        # One contact whose two addresses fall into different chunks must come back once.
        contacts[0] = contacts[0].model_copy(
            update={"emails": ["p00@lp.example", "p34b@lp.example"]}
        )
        for contact in contacts:
            store.upsert_contact(contact)
        wanted = [f"p{i:02d}@lp.example" for i in range(35)] + ["p34b@lp.example"]
        wanted += [f"unknown{i}@lp.example" for i in range(5)]
        found = store.find_contacts_by_addresses(wanted)
        assert [c.id for c in found] == sorted(c.id for c in contacts)

    def test_list_investors_sorted_by_name_then_id_with_filters(self, store: Store) -> None:
        beta = Investor(id="inv-b", name="beta")
        alpha_upper = Investor(id="inv-z", name="Alpha")
        alpha_lower = Investor(id="inv-a", name="alpha")
        buried = Investor(id="inv-g", name="Gamma", graveyard=True)
        deleted = Investor(id="inv-d", name="Delta", deleted=True)
        for investor in (beta, alpha_upper, alpha_lower, buried, deleted):
            store.upsert_investor(investor)
        assert [i.id for i in store.list_investors()] == ["inv-a", "inv-z", "inv-b", "inv-g"]
        assert [i.id for i in store.list_investors(include_graveyard=False)] == [
            "inv-a",
            "inv-z",
            "inv-b",
        ]
        assert [i.id for i in store.list_investors(include_deleted=True)] == [
            "inv-a",
            "inv-z",
            "inv-b",
            "inv-d",
            "inv-g",
        ]
        assert [
            i.id for i in store.list_investors(include_graveyard=False, include_deleted=True)
        ] == ["inv-a", "inv-z", "inv-b", "inv-d"]


# -- emails, sightings, links ------------------------------------------------------------------


class TestEmails:
    def test_upsert_is_idempotent_and_ignores_denormalised_input(self, store: Store) -> None:
        email = make_email(
            "lp@fund.example",
            matched=True,
            matched_at=T0,
            investor_ids=["inv-forged"],
            live_account_ids=["a_forged"],
        )
        assert store.upsert_email(email) is True
        assert store.upsert_email(email) is False
        stored = store.get_email(email.id)
        assert stored is not None
        assert (stored.matched, stored.matched_at) == (False, None)
        assert (stored.investor_ids, stored.live_account_ids) == ([], [])
        assert stored.sender == Mailbox(name="Sender", address="lp@fund.example")
        assert stored.date == T0
        assert [e.id for e in store.find_emails_by_participants(addresses=["lp@fund.example"])] == [
            email.id
        ]

    def test_get_emails_reads_many_at_once_and_leaves_out_the_unknown(self, store: Store) -> None:
        first, second = make_email("a@fund.example"), make_email("b@fund.example", subject="Two")
        investor = Investor(name="Fund I")
        store.upsert_investor(investor)
        for email in (first, second):
            store.upsert_email(email)
        store.link_email_to_investor(make_link(second.id, investor.id))
        many = [make_email().id for _ in range(600)]  # more than one batch of look-ups

        found = store.get_emails([second.id, first.id, first.id, "e_unknown", "", *many])

        assert set(found) == {first.id, second.id}
        assert found[first.id] == store.get_email(first.id)
        assert found[second.id].subject == "Two"
        assert found[second.id].matched  # as stored, denormalised fields included
        assert store.get_emails([]) == {}

    def test_upsert_refreshes_captured_fields_and_keeps_first_seen(self, store: Store) -> None:
        email = make_email("lp@fund.example", first_seen_at=T0)
        store.upsert_email(email)
        refreshed = email.model_copy(
            update={"subject": "Re: Hello", "first_seen_at": T0 + timedelta(days=1)}
        )
        assert store.upsert_email(refreshed) is False
        stored = store.get_email(email.id)
        assert stored is not None
        assert stored.subject == "Re: Hello"
        assert stored.first_seen_at == T0

    def test_sightings_are_idempotent_and_set_the_live_mailboxes(self, store: Store) -> None:
        email = make_email("lp@fund.example")
        store.upsert_email(email)
        first = Sighting.new("a_one", "m1", email.id, thread_id="t1", label_ids=["INBOX"])
        second = Sighting.new("a_two", "m9", email.id, is_sent=True)
        assert store.record_sighting(first) is True
        assert store.record_sighting(first) is False
        assert store.record_sighting(second) is True
        assert store.list_sightings(email.id) == [first, second]
        assert store.get_sighting("a_one", "m1") == first
        assert store.get_sighting("a_one", "nope") is None
        stored = store.get_email(email.id)
        assert stored is not None
        assert stored.live_account_ids == ["a_one", "a_two"]
        # A later capture of the email cannot overwrite the live set it was not told about.
        store.upsert_email(email.model_copy(update={"live_account_ids": []}))
        again = store.get_email(email.id)
        assert again is not None
        assert again.live_account_ids == ["a_one", "a_two"]

    def test_record_capture_is_upsert_then_sighting_in_one_write(self, store: Store) -> None:
        """The same email, sighting, denormalised fields and relationship rows as the two
        calls it replaces: for a new email, and for one stored with a link and another
        mailbox's sighting (whose live set and links it must keep)."""
        account = EmailAccount.new("partner@fund.example")
        store.add_email_account(account)
        fresh = make_email("lp@fund.example", subject="New")
        sighting = Sighting.new(account.id, "g1", fresh.id, thread_id="t1", is_sent=True)
        assert store.record_capture(fresh, sighting) is True
        assert store.list_sightings(fresh.id) == [sighting]
        stored = store.get_email(fresh.id)
        assert stored is not None
        assert (stored.live_account_ids, stored.sent_account_ids, stored.digest_ready) == (
            [account.id],
            [account.id],
            True,
        )

        known = make_email("lp@fund.example", subject="Known")
        store.upsert_email(known)
        store.record_sighting(Sighting.new("a_other", "o1", known.id))
        link = make_link(known.id, "inv-1")
        store.link_email_to_investor(link)
        again = Sighting.new(account.id, "g2", known.id, label_ids=["INBOX"])
        replied = known.model_copy(update={"subject": "Re: Known"})
        assert store.record_capture(replied, again) is False  # the email was stored
        assert store.record_capture(replied, again) is False
        after = store.get_email(known.id)
        assert after is not None
        assert after.subject == "Re: Known"
        assert after.live_account_ids == sorted(["a_other", account.id])
        assert after.links == [LinkedInvestor.of(link)]
        assert after.matched is True
        assert store.list_sightings(known.id) == sorted(
            [Sighting.new("a_other", "o1", known.id), again], key=lambda x: x.id
        )

    def test_record_capture_writes_the_links_but_not_a_corrected_pair(self, store: Store) -> None:
        account = EmailAccount.new("partner@fund.example")
        store.add_email_account(account)
        email = make_email("lp@fund.example")
        store.upsert_email(email)
        correction = Correction(investor_id="inv-2", by="ada@fund.example", at=utcnow())
        store.set_email_correction(email.id, "inv-2", correction)
        jane, corrected = make_link(email.id, "inv-1", "contact-jane"), make_link(email.id, "inv-2")
        sighting = Sighting.new(account.id, "g1", email.id)

        store.record_capture(email, sighting, [jane, corrected, jane])
        store.record_capture(email, sighting, [jane])  # a redelivery changes nothing

        assert store.list_links(email.id) == [jane]
        stored = store.get_email(email.id)
        assert stored is not None
        assert (stored.matched, stored.investor_ids, stored.links) == (
            True,
            ["inv-1"],
            [LinkedInvestor.of(jane)],
        )
        assert [r.email_id for r in store.list_investor_contributions("inv-1")] == [email.id]
        assert store.list_investor_contributions("inv-2") == []
        with pytest.raises(ValueError, match="another email"):
            store.record_capture(email, sighting, [make_link(email_id_for("<x@y>"), "inv-1")])

    def test_record_capture_names_a_link_written_before_names_and_keeps_given_ones(
        self, store: Store
    ) -> None:
        """As ``link_email_to_investor``: create-if-absent, except that a link stored without
        names gets the names of the same link captured again."""
        account = EmailAccount.new("partner@fund.example")
        store.add_email_account(account)
        first = LinkNames(at=T0, investor="Jane LP", organization_id="org-1", contact="Jane")
        later = first.model_copy(update={"at": T0 + timedelta(hours=1), "investor": "Jane II"})
        old = make_email("kim@lp.example")
        store.upsert_email(old)
        store.link_email_to_investor(make_link(old.id, "inv-1"))
        sighting = Sighting.new(account.id, "g1", old.id)

        store.record_capture(
            old, sighting, [make_link(old.id, "inv-1").model_copy(update={"names": first})]
        )
        store.record_capture(
            old, sighting, [make_link(old.id, "inv-1").model_copy(update={"names": later})]
        )

        assert [x.names for x in store.list_links(old.id)] == [first]
        stored = store.get_email(old.id)
        assert stored is not None
        assert [x.names for x in stored.links] == [first]

    def test_batched_writes_are_each_all_or_nothing_and_kept_when_the_block_raises(
        self, store: Store
    ) -> None:
        account = EmailAccount.new("partner@fund.example")
        store.add_email_account(account)
        gone = EmailAccount.new("leaver@fund.example")
        store.add_email_account(gone)
        store.offboard_email_account(gone.id)
        first, second, third = (make_email("lp@fund.example", subject=s) for s in "abc")

        def writes() -> None:
            with store.batched():
                store.record_capture(first, Sighting.new(account.id, "g1", first.id))
                with pytest.raises(NotFoundError):  # a failed write undoes only itself
                    store.record_capture(second, Sighting.new(gone.id, "g2", second.id))
                with store.batched():  # nested: the outer block commits
                    store.record_capture(third, Sighting.new(account.id, "g3", third.id))
                raise RuntimeError("stop")

        with pytest.raises(RuntimeError, match="stop"):
            writes()

        assert store.get_sighting(account.id, "g1") is not None
        assert store.get_email(second.id) is None
        assert store.get_sighting(account.id, "g2") is None
        assert store.get_sighting(account.id, "g3") is not None
        store.record_capture(second, Sighting.new(account.id, "g2", second.id))  # not locked
        assert store.get_sighting(account.id, "g2") is not None

    def test_record_capture_in_an_offboarded_mailbox_writes_nothing(self, store: Store) -> None:
        account = EmailAccount.new("leaver@fund.example")
        store.add_email_account(account)
        store.offboard_email_account(account.id)
        email = make_email("lp@fund.example")
        with pytest.raises(NotFoundError):
            store.record_capture(email, Sighting.new(account.id, "m1", email.id))
        assert store.get_email(email.id) is None
        assert store.get_sighting(account.id, "m1") is None
        with pytest.raises(ValueError, match="another email"):
            store.record_capture(email, Sighting.new(account.id, "m1", email_id_for("<x@y>")))

    def test_sighting_of_unknown_email_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.record_sighting(Sighting.new("a_one", "m1", email_id_for("<nope@x>")))

    def test_soft_delete_and_restore_of_a_sighting(self, store: Store) -> None:
        email = make_email("lp@fund.example")
        store.upsert_email(email)
        store.record_sighting(Sighting.new("a_one", "m1", email.id))
        store.record_sighting(Sighting.new("a_two", "m2", email.id))

        assert store.set_sighting_deleted("a_one", "m1", True) is True
        deleted = store.get_sighting("a_one", "m1")
        assert deleted is not None
        assert deleted.deleted is True
        assert deleted.deleted_at is not None
        stored = store.get_email(email.id)
        assert stored is not None
        assert stored.live_account_ids == ["a_two"]

        assert store.set_sighting_deleted("a_one", "m1", False) is True
        restored = store.get_sighting("a_one", "m1")
        assert restored is not None
        assert (restored.deleted, restored.deleted_at) == (False, None)
        stored = store.get_email(email.id)
        assert stored is not None
        assert stored.live_account_ids == ["a_one", "a_two"]

        assert store.set_sighting_deleted("a_one", "unknown", True) is False

    def test_links_mark_the_email_matched_and_unlinking_withdraws_it(self, store: Store) -> None:
        email = make_email("lp@fund.example")
        store.upsert_email(email)
        by_jane = make_link(email.id, "inv-1", "contact-jane")
        by_joe = make_link(email.id, "inv-1", "contact-joe")
        other = make_link(email.id, "inv-2")
        assert store.link_email_to_investor(by_jane) is True
        assert store.link_email_to_investor(by_jane) is False
        assert store.link_email_to_investor(by_joe) is True
        assert store.link_email_to_investor(other) is True
        assert store.list_links(email.id) == sorted([by_jane, by_joe, other], key=lambda x: x.id)

        matched = store.get_email(email.id)
        assert matched is not None
        assert (matched.matched, matched.investor_ids) == (True, ["inv-1", "inv-2"])
        assert matched.matched_at is not None

        assert store.unlink_email_from_investor(email.id, "inv-1") == 2
        partly = store.get_email(email.id)
        assert partly is not None
        assert (partly.matched, partly.investor_ids) == (True, ["inv-2"])
        assert partly.matched_at == matched.matched_at  # still the moment it first matched

        assert store.unlink_email_from_investor(email.id, "inv-2") == 1
        assert store.unlink_email_from_investor(email.id, "inv-2") == 0
        unmatched = store.get_email(email.id)
        assert unmatched is not None
        assert (unmatched.matched, unmatched.matched_at, unmatched.investor_ids) == (
            False,
            None,
            [],
        )
        assert store.list_links(email.id) == []

    def test_the_email_carries_what_the_digest_needs_through_every_write(
        self, store: Store
    ) -> None:
        """The mailboxes whose live copy is in Sent and the links, on the email itself, kept
        right by sightings, soft deletes, restores, links, unlinks and a mailbox's purge."""

        def digest_fields() -> tuple[bool, list[str], list[LinkedInvestor]]:
            stored = store.get_email(email.id)
            assert stored is not None
            return stored.digest_ready, stored.sent_account_ids, stored.links

        email = make_email(
            "lp@fund.example",
            sent_account_ids=["a_forged"],
            links=[LinkedInvestor.of(make_link(email_id_for("<f@x>"), "inv-forged"))],
            digest_ready=False,
        )
        store.upsert_email(email)
        assert digest_fields() == (True, [], [])
        store.record_sighting(Sighting.new("a_one", "m1", email.id, label_ids=["INBOX"]))
        store.record_sighting(Sighting.new("a_two", "m2", email.id, is_sent=True))
        by_jane = make_link(email.id, "inv-1", "contact-jane")
        other = make_link(email.id, "inv-2")
        store.link_email_to_investor(by_jane)
        store.link_email_to_investor(other)
        both = [LinkedInvestor.of(x) for x in sorted([by_jane, other], key=lambda x: x.id)]
        assert digest_fields() == (True, ["a_two"], both)

        store.set_sighting_deleted("a_two", "m2", True)
        assert digest_fields() == (True, [], both)
        store.set_sighting_deleted("a_two", "m2", False)
        assert digest_fields() == (True, ["a_two"], both)
        store.unlink_email_from_investor(email.id, "inv-2")
        assert digest_fields() == (True, ["a_two"], [LinkedInvestor.of(by_jane)])
        # A later capture of the email cannot overwrite them.
        store.upsert_email(email.model_copy(update={"subject": "Re: Hello"}))
        assert digest_fields() == (True, ["a_two"], [LinkedInvestor.of(by_jane)])
        store.soft_delete_account_sightings("a_two")
        assert digest_fields() == (True, [], [LinkedInvestor.of(by_jane)])

    def test_a_link_carries_its_names_and_an_old_link_gets_them_once(self, store: Store) -> None:
        """The names a link is made with reach the email's copy of it; made again with names,
        a link written without them gets them (the upgrade's path), and one that has names
        keeps them (a link is create-if-absent)."""

        def names_of(email_id: str) -> tuple[list[LinkNames | None], list[LinkNames | None]]:
            stored = store.get_email(email_id)
            assert stored is not None
            return [x.names for x in store.list_links(email_id)], [x.names for x in stored.links]

        first = LinkNames(at=T0, investor="Jane LP", organization_id="org-1", contact="Jane")
        later = first.model_copy(update={"at": T0 + timedelta(hours=1), "investor": "Jane II"})
        named = make_email("jane@lp.example")
        store.upsert_email(named)
        store.link_email_to_investor(
            make_link(named.id, "inv-1", "contact-jane").model_copy(update={"names": first})
        )
        assert names_of(named.id) == ([first], [first])
        link = make_link(named.id, "inv-1", "contact-jane").model_copy(update={"names": later})
        assert store.link_email_to_investor(link) is False
        assert names_of(named.id) == ([first], [first])

        old = make_email("kim@lp.example")
        store.upsert_email(old)
        assert store.link_email_to_investor(make_link(old.id, "inv-1")) is True
        assert names_of(old.id) == ([None], [None])
        assert (
            store.link_email_to_investor(
                make_link(old.id, "inv-1").model_copy(update={"names": later})
            )
            is False
        )
        assert names_of(old.id) == ([later], [later])

    def test_link_of_unknown_email_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.link_email_to_investor(make_link(email_id_for("<nope@x>"), "inv-1"))

    def test_find_emails_by_participants(self, store: Store) -> None:
        by_address = make_email("jane@acme.example", "me@fund.example")
        by_domain = make_email("bob@beta.example")
        unrelated = make_email("x@gamma.example")
        for email in (by_address, by_domain, unrelated):
            store.upsert_email(email)

        def ids(**kwargs: object) -> list[str]:
            return [e.id for e in store.find_emails_by_participants(**kwargs)]  # type: ignore[arg-type]

        assert ids(addresses=["JANE@acme.example"]) == [by_address.id]
        assert ids(domains=["beta.example"]) == [by_domain.id]
        both = sorted([by_address.id, by_domain.id])
        assert (
            ids(addresses=["jane@acme.example"], domains=["beta.example", "acme.example"]) == both
        )
        many = [f"nobody{i}@x.example" for i in range(40)] + ["bob@beta.example"]
        assert ids(addresses=many) == [by_domain.id]
        assert ids(addresses=["jane@acme.example"], domains=["beta.example"], limit=1) == both[:1]
        assert ids() == []
        # Paging by id: the second page starts after the first page's last id.
        first = ids(addresses=["jane@acme.example"], domains=["beta.example"], limit=1)
        rest = ids(
            addresses=["jane@acme.example"], domains=["beta.example"], limit=1, after_id=first[-1]
        )
        assert first + rest == both
        assert (
            ids(addresses=["jane@acme.example"], domains=["beta.example"], after_id=both[-1]) == []
        )

    def test_list_emails_pages_through_every_email_by_id(self, store: Store) -> None:
        emails = [make_email(f"p{i}@page.example") for i in range(5)]
        for email in emails:
            store.upsert_email(email)
        every = sorted(e.id for e in emails)
        assert [e.id for e in store.list_emails()] == every
        seen: list[str] = []
        after = ""
        while page := store.list_emails(limit=2, after_id=after):
            assert len(page) <= 2
            seen += [e.id for e in page]
            after = page[-1].id
        assert seen == every
        assert store.list_emails(after_id=every[-1]) == []
        with pytest.raises(BadRequestError):
            store.list_emails(limit=0)

    def test_update_email_changes_it_in_place_and_keeps_what_the_store_derives(
        self, store: Store
    ) -> None:
        account = EmailAccount.new(f"{uid('box')}@fund.example")
        store.add_email_account(account)
        email = make_email("jane@acme.example", subject="Hello", snippet="We&#39;d like")
        store.upsert_email(email)
        store.record_sighting(Sighting.new(account.id, "g1", email.id))
        store.link_email_to_investor(make_link(email.id, "inv-1"))
        linked = store.get_email(email.id)
        assert linked is not None and linked.matched

        updated = store.update_email(
            email.id,
            lambda e: e.model_copy(
                update={
                    "snippet": "We'd like",
                    "snippet_plain": True,
                    "sender": Mailbox(address="zoe@zeta.example"),
                    "participant_addresses": ["zoe@zeta.example"],
                    "participant_domains": ["zeta.example"],
                    # Denormalised: the store's, never the caller's.
                    "matched": False,
                    "investor_ids": [],
                    "live_account_ids": [],
                }
            ),
        )

        assert updated is not None
        again = store.get_email(email.id)
        assert again == updated
        assert (again.snippet, again.snippet_plain) == ("We'd like", True)
        assert again.matched and again.investor_ids == ["inv-1"]
        assert again.live_account_ids == [account.id]
        assert again.first_seen_at == linked.first_seen_at
        # The participant look-up follows the rewritten addresses.
        assert store.find_emails_by_participants(addresses=["jane@acme.example"]) == []
        found = store.find_emails_by_participants(addresses=["zoe@zeta.example"])
        assert [e.id for e in found] == [email.id]

    def test_update_email_without_a_change_or_of_an_unknown_email_writes_nothing(
        self, store: Store
    ) -> None:
        email = make_email("jane@acme.example")
        store.upsert_email(email)
        before = store.get_email(email.id)
        assert store.update_email(email.id, lambda e: None) == before
        assert store.get_email(email.id) == before
        assert store.update_email(email_id_for("<nope@x>"), lambda e: e) is None
        assert store.get_email(email_id_for("<nope@x>")) is None
        with pytest.raises(ValueError, match="id"):
            store.update_email(
                email.id, lambda e: e.model_copy(update={"id": email_id_for("<o@x>")})
            )


# -- proposals and activities ------------------------------------------------------------------


class TestProposals:
    def _proposal(self, store: Store, **fields: object) -> Proposal:
        email = make_email("lp@fund.example", subject="Term sheet")
        store.upsert_email(email)
        proposal = Proposal.new(email.id, str(fields.pop("investor_id", "inv-1")), **fields)
        assert store.create_proposal(proposal) is True
        return proposal

    def test_create_is_create_if_absent(self, store: Store) -> None:
        proposal = self._proposal(store)
        assert store.create_proposal(proposal) is False
        assert store.create_proposal(proposal.model_copy(update={"contact_id": "c"})) is False
        assert store.get_proposal(proposal.id) == proposal
        assert store.get_proposal("p_missing") is None

    def test_approval_creates_exactly_one_activity_and_is_idempotent(self, store: Store) -> None:
        proposal = self._proposal(store, contact_id="contact-1")
        first = store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "ann@fund.example")
        assert first.changed is True
        assert first.proposal.status is ProposalStatus.APPROVED
        assert first.proposal.decided_by == "ann@fund.example"
        assert first.activity is not None
        activity = store.get_activity(proposal.id)
        assert activity == first.activity
        assert (activity.summary, activity.occurred_at) == ("Term sheet", T0)
        assert (activity.contact_id, activity.created_by) == ("contact-1", "ann@fund.example")

        again = store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "bob@fund.example")
        assert again.changed is False
        assert again.activity == activity
        stored = store.get_proposal(proposal.id)
        assert stored is not None
        assert stored.decided_by == "ann@fund.example"  # the second call changed nothing
        assert stored == first.proposal

    def test_rejecting_an_approved_proposal_is_a_conflict_naming_the_state(
        self, store: Store
    ) -> None:
        proposal = self._proposal(store)
        store.decide_proposal(proposal.id, ProposalStatus.APPROVED, "ann@fund.example")
        with pytest.raises(ConflictError) as caught:
            store.decide_proposal(proposal.id, ProposalStatus.REJECTED, "bob@fund.example")
        assert "approved" in caught.value.message
        assert caught.value.details.get("state") == "approved"
        stored = store.get_proposal(proposal.id)
        assert stored is not None
        assert stored.status is ProposalStatus.APPROVED

    def test_rejection_creates_no_activity_and_cannot_be_reopened(self, store: Store) -> None:
        proposal = self._proposal(store)
        rejected = store.decide_proposal(proposal.id, ProposalStatus.REJECTED, "ann@fund.example")
        assert (rejected.changed, rejected.activity) == (True, None)
        assert store.get_activity(proposal.id) is None
        assert store.decide_proposal(proposal.id, ProposalStatus.REJECTED, "x").changed is False
        with pytest.raises(ConflictError):
            store.decide_proposal(proposal.id, ProposalStatus.WITHDRAWN, "rematch")
        with pytest.raises(ConflictError):
            store.decide_proposal(proposal.id, ProposalStatus.PROPOSED, "ann@fund.example")
        with pytest.raises(NotFoundError):
            store.decide_proposal("p_missing", ProposalStatus.APPROVED, "ann@fund.example")

    def test_list_filters_newest_first(self, store: Store) -> None:
        old = self._proposal(store, investor_id="inv-1", created_at=T0)
        new = self._proposal(store, investor_id="inv-1", created_at=T0 + timedelta(hours=1))
        other = self._proposal(store, investor_id="inv-2", created_at=T0 + timedelta(hours=2))
        store.decide_proposal(old.id, ProposalStatus.APPROVED, "ann@fund.example")

        assert [p.id for p in store.list_proposals().items] == [other.id, new.id, old.id]
        assert [p.id for p in store.list_proposals(investor_id="inv-1").items] == [new.id, old.id]
        assert [p.id for p in store.list_proposals(status=ProposalStatus.PROPOSED).items] == [
            other.id,
            new.id,
        ]
        both = store.list_proposals(status=ProposalStatus.APPROVED, investor_id="inv-1")
        assert ([p.id for p in both.items], both.next_token) == ([old.id], "")
        assert store.list_proposals(status=ProposalStatus.REJECTED).items == []

    def test_paging_returns_every_item_once_even_with_equal_timestamps(self, store: Store) -> None:
        same_time = [self._proposal(store, created_at=T0) for _ in range(4)]
        later = [
            self._proposal(store, created_at=T0 + timedelta(seconds=s), investor_id="inv-2")
            for s in (1, 2, 3)
        ]
        ids, pages = drain(store)
        assert len(ids) == len(set(ids)) == 7
        assert pages == 4
        expected = sorted(same_time + later, key=lambda p: p.sort_key, reverse=True)
        assert ids == [p.id for p in expected]

        inv1_ids, inv1_pages = drain(store, investor_id="inv-1")
        assert sorted(inv1_ids) == sorted(p.id for p in same_time)
        assert inv1_pages == 2

    def test_list_by_mailbox_and_creation_window(self, store: Store) -> None:
        hour = timedelta(hours=1)
        a1_old = self._proposal(store, account_id="a_one", created_at=T0)
        a1_mid = self._proposal(store, account_id="a_one", created_at=T0 + hour)
        a2_mid = self._proposal(store, account_id="a_two", created_at=T0 + hour)
        unowned = self._proposal(store, created_at=T0 + 2 * hour)
        a1_new = self._proposal(
            store, account_id="a_one", investor_id="inv-2", created_at=T0 + 3 * hour
        )
        store.decide_proposal(a1_mid.id, ProposalStatus.REJECTED, "ann@fund.example")

        def ids(**filters: Any) -> list[str]:
            return [p.id for p in store.list_proposals(**filters).items]

        assert ids(account_id="a_one") == [a1_new.id, a1_mid.id, a1_old.id]
        assert ids(account_id="a_two") == [a2_mid.id]
        assert ids(account_id="a_none") == []
        # From is inclusive, to exclusive.
        window = {"created_from": T0 + hour, "created_to": T0 + 3 * hour}
        expected_window = sorted([a1_mid, a2_mid, unowned], key=lambda p: p.sort_key)[::-1]
        assert ids(**window) == [p.id for p in expected_window]
        assert ids(created_from=T0 + 3 * hour) == [a1_new.id]
        assert ids(created_to=T0 + hour) == [a1_old.id]
        assert ids(account_id="a_one", **window) == [a1_mid.id]
        assert ids(account_id="a_one", status=ProposalStatus.PROPOSED) == [a1_new.id, a1_old.id]
        assert ids(account_id="a_one", investor_id="inv-2") == [a1_new.id]
        assert ids(account_id="a_one", investor_id="inv-1", status=ProposalStatus.REJECTED) == [
            a1_mid.id
        ]
        # Paging inside a window returns each item once and stays inside it.
        paged, pages = drain(store, created_from=T0, created_to=T0 + 3 * hour)
        assert paged == ids(created_from=T0, created_to=T0 + 3 * hour)
        assert (len(paged), pages) == (4, 2)
        with pytest.raises(BadRequestError):
            store.list_proposals(created_from=datetime(2024, 5, 1))  # no time zone

    def test_bad_page_token_is_a_bad_request(self, store: Store) -> None:
        with pytest.raises(BadRequestError):
            store.list_proposals(page_token="%%%not-base64%%%")
        # A well-formed token past the end simply yields nothing.
        token = base64.urlsafe_b64encode(b"0001-01-01T00:00:00.000000Z|p1").decode()
        assert store.list_proposals(page_token=token).items == []

    @pytest.mark.parametrize(
        "key", [b"0000|", b"zzz", b'["zeta", "inv-1"]', b"2024-06-03T10:00:00.000000Z|a/b"]
    )
    def test_a_forged_page_token_is_no_cursor(self, store: Store, key: bytes) -> None:
        """Base64 of a key no listing writes: refused, not read as a position."""
        token = base64.urlsafe_b64encode(key).decode()
        with pytest.raises(BadRequestError):
            store.list_proposals(page_token=token)
        with pytest.raises(BadRequestError):
            store.list_emails_matched_between(T0, T0 + timedelta(days=1), page_token=token)


# -- settings, guards, audit -------------------------------------------------------------------


class TestSettingsGuardsAudit:
    def test_settings_get_set_and_update(self, store: Store) -> None:
        assert store.get_setting("digest_policy") is None
        store.set_setting("digest_policy", {"enabled": True, "send_hour": 18})
        assert store.get_setting("digest_policy") == {"enabled": True, "send_hour": 18}
        store.set_setting("digest_policy", {"enabled": False, "send_hour": 7})
        assert store.get_setting("digest_policy") == {"enabled": False, "send_hour": 7}

        assert store.update_setting("counter", lambda v: (v or 0) + 1) == 1
        assert store.update_setting("counter", lambda v: (v or 0) + 1) == 2
        assert store.get_setting("counter") == 2

        # Keys are free text: one that cannot be a Firestore document id still works.
        store.set_setting("digest/sent 2024-05-01", ["2024-05-01"])
        assert store.get_setting("digest/sent 2024-05-01") == ["2024-05-01"]
        assert store.get_setting("digest") is None

    def test_guard_is_create_if_absent_and_updatable(self, store: Store) -> None:
        guard = Guard(id="lease:a_one:2024-05-01T09", owner="run-1", state="running")
        assert store.create_guard(guard) is True
        assert store.create_guard(guard.model_copy(update={"owner": "run-2"})) is False
        assert store.get_guard(guard.id) == guard

        done = store.update_guard(
            guard.id, lambda g: g.model_copy(update={"state": "done", "attempts": g.attempts + 1})
        )
        assert done is not None
        assert (done.state, done.attempts, done.owner) == ("done", 1, "run-1")
        assert store.get_guard(guard.id) == done
        assert store.update_guard(guard.id, lambda g: None) == done  # None keeps it

        calls: list[Guard] = []

        def record(current: Guard) -> Guard:
            calls.append(current)
            return current

        assert store.update_guard("missing", record) is None
        assert calls == []
        assert store.get_guard("missing") is None

    def test_guard_data_round_trips(self, store: Store) -> None:
        guard = Guard(id="digest:2024-05-01", data={"sent_to": ["a@fund.example"], "count": 2})
        store.create_guard(guard)
        assert store.get_guard(guard.id) == guard

    def test_audit_lists_newest_first_with_target_filter(self, store: Store) -> None:
        entries = [
            AuditEntry(id="e1", actor="ann", action="approve", target="p1", at=T0),
            AuditEntry(id="e3", actor="ann", action="reject", target="p2", at=T0),
            AuditEntry(id="e2", actor="bob", action="approve", target="p1", at=T0),
            AuditEntry(
                id="e0",
                actor="bob",
                action="draft",
                target="p1",
                at=T0 + timedelta(seconds=1),
                details={"thread_id": "t1"},
            ),
        ]
        for entry in entries:
            store.append_audit(entry)
        # Newest first; entries of the same instant by id, descending.
        assert [e.id for e in store.list_audit()] == ["e0", "e3", "e2", "e1"]
        assert [e.id for e in store.list_audit(target="p1")] == ["e0", "e2", "e1"]
        assert [e.id for e in store.list_audit(target="p1", limit=2)] == ["e0", "e2"]
        assert store.list_audit(target="nothing") == []
        assert store.list_audit(limit=1)[0] == entries[3]


class TestEdgesBothStoresAgreeOn:
    """Behaviour the port pins down so the two stores cannot drift at the edges."""

    @pytest.mark.parametrize("limit", [0, -1])
    def test_a_limit_below_one_is_a_bad_request(self, store: Store, limit: int) -> None:
        store.create_proposal(Proposal.new("e1", "i1"))
        store.append_audit(AuditEntry(actor="a@fund.example", action="x"))
        with pytest.raises(BadRequestError):
            store.list_proposals(limit=limit)
        with pytest.raises(BadRequestError):
            store.list_audit(limit=limit)
        with pytest.raises(BadRequestError):
            store.find_emails_by_participants(addresses=["a@x.example"], limit=limit)

    def test_an_audit_entry_is_recorded_once(self, store: Store) -> None:
        entry = AuditEntry(actor="a@fund.example", action="user.add", target="u1")
        store.append_audit(entry)
        with pytest.raises(ConflictError):
            store.append_audit(entry)
        assert store.list_audit() == [entry]

    def test_update_guard_cannot_rename_a_guard(self, store: Store) -> None:
        assert store.create_guard(Guard(id="g-1", state="sending"))
        with pytest.raises(ValueError, match="rename"):
            store.update_guard("g-1", lambda g: g.model_copy(update={"id": "g-2"}))
        assert store.get_guard("g-2") is None
        kept = store.get_guard("g-1")
        assert kept is not None
        assert kept.state == "sending"

    def test_a_sighting_or_link_of_an_unknown_email_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.record_sighting(Sighting.new("a1", "g1", email_id_for("<nobody@x>")))
        with pytest.raises(NotFoundError):
            store.link_email_to_investor(
                InvestorLink.new(email_id_for("<nobody@x>"), "i1", None, "a@x.io", MatchHeader.FROM)
            )


class TestCaptureLookups:
    """What capture asks of the store besides records: canonical lookups, known ids, problems."""

    def test_gmail_addresses_are_looked_up_canonically(self, store: Store) -> None:
        investor = Investor(name="Zeta", emails=["Z.Ventures+deals@googlemail.com"])
        contact = Contact(name="Jo", investor_id=investor.id, emails=["j.smith@gmail.com"])
        store.upsert_investor(investor)
        store.upsert_contact(contact)
        assert [c.id for c in store.find_contacts_by_addresses(["JSmith@googlemail.com"])] == [
            contact.id
        ]
        assert [i.id for i in store.find_investors_by_addresses(["zventures@gmail.com"])] == [
            investor.id
        ]
        # Other domains keep dots: j.smith@acme.example is not jsmith@acme.example.
        store.upsert_contact(Contact(name="A", emails=["j.smith@acme.example"]))
        assert store.find_contacts_by_addresses(["jsmith@acme.example"]) == []

    def test_investors_are_found_by_organisation(self, store: Store) -> None:
        org = Organization(name="Acme", domains=["acme.example"])
        live = Investor(name="Fund I", organization_id=org.id)
        gone = Investor(name="Fund 0", organization_id=org.id, deleted=True)
        other = Investor(name="Elsewhere")
        for investor in (live, gone, other):
            store.upsert_investor(investor)
        assert [i.id for i in store.find_investors_by_organizations([org.id, "nope"])] == [live.id]
        assert store.find_investors_by_organizations([]) == []
        many = [f"org{n}" for n in range(40)] + [org.id]  # more than one query's 30 values
        assert [i.id for i in store.find_investors_by_organizations(many)] == [live.id]

    def test_contacts_are_found_by_investor(self, store: Store) -> None:
        fund, angel = Investor(name="Fund I"), Investor(name="Angel")
        second = Contact(id="c2", name="B", investor_id=fund.id, emails=["b@acme.example"])
        first = Contact(id="c1", name="A", investor_id=fund.id)
        gone = Contact(id="c3", name="C", investor_id=fund.id, deleted=True)
        elsewhere = Contact(id="c4", name="D", investor_id=angel.id)
        unattached = Contact(id="c5", name="E")
        for contact in (second, first, gone, elsewhere, unattached):
            store.upsert_contact(contact)
        assert [c.id for c in store.find_contacts_by_investors([fund.id, "nope"])] == ["c1", "c2"]
        assert [c.id for c in store.find_contacts_by_investors([angel.id, fund.id])] == [
            "c1",
            "c2",
            "c4",
        ]
        assert store.find_contacts_by_investors([]) == []
        many = [f"inv{n}" for n in range(40)] + [angel.id]  # more than one query's 30 values
        assert [c.id for c in store.find_contacts_by_investors(many)] == ["c4"]
        # A contact moved to another investor is found under its new one only.
        store.upsert_contact(first.model_copy(update={"investor_id": angel.id}))
        assert [c.id for c in store.find_contacts_by_investors([fund.id])] == ["c2"]

    def test_sighted_ids_include_deleted_sightings(self, store: Store) -> None:
        account = EmailAccount.new("team@fund.example")
        store.add_email_account(account)
        email = Email(id=email_id_for("<s@x>"))
        store.upsert_email(email)
        store.record_sighting(Sighting.new(account.id, "g1", email.id))
        store.record_sighting(Sighting.new(account.id, "g2", email.id, deleted=True))
        assert store.sighted_message_ids(account.id, ["g1", "g2", "g3"]) == {"g1", "g2"}
        assert store.sighted_message_ids("a_other", ["g1"]) == set()

    def test_capture_problems_count_attempts_and_clear(self, store: Store) -> None:
        first = store.record_capture_problem(CaptureProblem.new("a1", "g9", "timeout"))
        again = store.record_capture_problem(CaptureProblem.new("a1", "g9", "500 from Gmail"))
        store.record_capture_problem(CaptureProblem.new("a1", "g1", "bad"))
        store.record_capture_problem(CaptureProblem.new("a2", "g5", "bad"))
        assert (first.attempts, again.attempts, again.reason) == (1, 2, "500 from Gmail")
        assert [p.gmail_message_id for p in store.list_capture_problems("a1")] == ["g1", "g9"]
        assert store.clear_capture_problem("a1", "g9") is True
        assert store.clear_capture_problem("a1", "g9") is False
        assert [p.gmail_message_id for p in store.list_capture_problems("a1")] == ["g1"]


class TestMatchedWindow:
    """The digest's query: mail that became investor mail in a window, paged by matched time."""

    def test_matched_mail_in_a_window_pages_once_each_in_matched_order(self, store: Store) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        linked = []
        for n in range(3):
            email = Email(id=email_id_for(f"<w{n}@x>"))
            store.upsert_email(email)
            store.link_email_to_investor(
                InvestorLink.new(email.id, "inv-1", None, "a@x.example", MatchHeader.FROM)
            )
            linked.append(email.id)
        store.upsert_email(Email(id=email_id_for("<unmatched@x>")))
        after = datetime.now(UTC) + timedelta(seconds=1)

        seen: list[str] = []
        token = ""
        while True:
            page = store.list_emails_matched_between(before, after, limit=1, page_token=token)
            seen.extend(e.id for e in page.items)
            token = page.next_token
            if not token:
                break
        assert sorted(seen) == sorted(linked)
        matched_at = [store.get_email(i).matched_at for i in seen]  # type: ignore[union-attr]
        assert matched_at == sorted(matched_at)  # type: ignore[type-var]
        assert store.list_emails_matched_between(after, after + timedelta(days=1)).items == []
        assert store.list_emails_matched_between(before - timedelta(days=1), before).items == []

        store.unlink_email_from_investor(linked[0], "inv-1")
        remaining = store.list_emails_matched_between(before, after).items
        assert sorted(e.id for e in remaining) == sorted(linked[1:])
