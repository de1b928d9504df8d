"""Drive every Store method once, through every query branch, on a small data set.

The index coverage test runs this against the Firestore adapter with a recorder attached, so the
set of recorded query shapes is complete whatever other tests ran (or were deselected) in the
session. :class:`CallLog` proves the exercise itself stays complete: it fails if the Store
protocol gains a method the exercise does not call.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.activity import ActivityQuery
from shared.domain.listing_keys import InvestorSort
from shared.domain.models import (
    AuditEntry,
    CaptureProblem,
    Contact,
    Correction,
    Direction,
    Email,
    EmailAccount,
    Guard,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Organization,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    Sighting,
    User,
    email_id_for,
    time_key,
)
from shared.domain.relationships import RelationshipScore, RelationshipSort
from shared.ports import Store, SyncStateChange

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def store_method_names() -> set[str]:
    """Every method the Store protocol declares."""
    return {
        name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")
    }


class CallLog:
    """Wraps a store and remembers which methods were called."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.called: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if callable(attribute):
            self.called.add(name)
        return attribute


def far_future_key() -> str:
    return base64.urlsafe_b64encode(b"9999-12-31T00:00:00.000000Z|zzzz").decode()


def exercise_every_method(store: Store) -> None:
    """Call each Store method, with arguments that reach each of its query variants."""
    # users
    admin = User.new("admin@fund.example", "Admin")
    member = User.new("member@fund.example")
    store.bootstrap_admin(admin.email, admin.name)
    store.add_user(member)
    store.get_user(member.id)
    store.get_user_by_email("MEMBER@fund.example")
    store.list_users()
    store.list_users(active_only=True)
    store.list_active_admins()
    store.change_user(member.id, role=Role.ADMIN)

    # mailboxes
    account = EmailAccount.new("team@fund.example").model_copy(
        update={"aliases": ["hi@fund.example"]}
    )
    store.add_email_account(account)
    store.get_email_account(account.id)
    store.get_email_account_by_address(account.address)
    store.list_email_accounts()
    store.list_email_accounts(include_deleted=True)
    store.set_email_account_paused(account.id, True)
    store.set_email_account_paused(account.id, False, reason=PauseReason.OWNER_INACTIVE)
    store.set_email_account_owner(account.id, member.email)
    store.update_sync_state(account.id, SyncStateChange(history_id=10))
    store.own_addresses()

    # CRM records
    org = Organization(name="Acme", domains=["acme.example"])
    investor = Investor(name="Jane", emails=["jane@acme.example"], domains=["acme.example"])
    contact = Contact(name="Jane", investor_id=investor.id, emails=["jane@acme.example"])
    store.upsert_organization(org)
    store.upsert_investor(investor)
    store.upsert_contact(contact)
    store.get_organization(org.id)
    store.list_crm_updated_since(datetime(2000, 1, 1, tzinfo=UTC))
    store.get_investor(investor.id)
    store.get_contact(contact.id)
    store.find_contacts_by_addresses(["jane@acme.example"])
    store.find_investors_by_addresses(["jane@acme.example"])
    store.find_organizations_by_domains(["acme.example"])
    store.find_investors_by_domains(["acme.example"])
    store.find_investors_by_organizations([org.id])
    store.find_contacts_by_investors([investor.id])
    for include_graveyard in (True, False):
        for include_deleted in (True, False):
            store.list_investors(
                include_graveyard=include_graveyard, include_deleted=include_deleted
            )

    # emails, sightings, links
    email = Email(
        id=email_id_for("<exercise@mail.example>"),
        subject="Intro",
        sender=Mailbox(address="jane@acme.example"),
        date=T0,
        participant_addresses=["jane@acme.example", "team@fund.example"],
        participant_domains=["acme.example", "fund.example"],
    )
    store.upsert_email(email)
    store.get_email(email.id)
    store.list_emails(limit=1)
    store.list_emails(after_id=email.id)
    store.update_email(email.id, lambda e: e.model_copy(update={"snippet_plain": True}))
    store.list_emails_matched_between(T0, T0 + timedelta(days=1), limit=1)
    store.list_emails_matched_between(T0, T0 + timedelta(days=1), page_token=far_future_key())
    store.record_sighting(Sighting.new(account.id, "m1", email.id))
    store.set_sighting_deleted(account.id, "m1", True)
    store.get_sighting(account.id, "m1")
    store.list_sightings(email.id)
    store.sighted_message_ids(account.id, ["m1", "m2"])
    store.record_capture_problem(CaptureProblem.new(account.id, "m2", "unreadable"))
    store.list_capture_problems(account.id)
    store.clear_capture_problem(account.id, "m2")
    store.link_email_to_investor(
        InvestorLink.new(email.id, investor.id, contact.id, "jane@acme.example", MatchHeader.FROM)
    )
    store.list_links(email.id)
    store.find_emails_by_participants(addresses=["jane@acme.example"], domains=["acme.example"])
    store.find_emails_by_participants(addresses=["jane@acme.example"], after_id=email.id)
    store.unlink_email_from_investor(email.id, investor.id)
    correction = Correction(investor_id="inv-x", by="admin@fund.example", at=T0)
    store.set_email_correction(email.id, "inv-x", correction)
    store.set_email_correction(email.id, "inv-x", None)
    store.list_thread_sightings(account.id, "thread-1")
    leaving = EmailAccount.new("leaver@fund.example")
    store.add_email_account(leaving)
    store.record_sighting(Sighting.new(leaving.id, "m3", email.id))
    store.offboard_email_account(leaving.id)
    store.soft_delete_account_sightings(leaving.id, limit=1)

    # proposals and activities
    proposal = Proposal.new(email.id, investor.id, created_at=T0)
    store.create_proposal(proposal)
    store.create_proposal(Proposal.new(email.id, "inv-2", created_at=T0 + timedelta(seconds=1)))
    store.get_proposal(proposal.id)
    store.decide_proposal(proposal.id, ProposalStatus.APPROVED, admin.email)
    store.get_activity(proposal.id)
    store.set_activity_corrected(proposal.id, admin.email, T0)
    far_future = base64.urlsafe_b64encode(b"9999-12-31T00:00:00.000000Z|zzzz").decode()
    for status in (None, ProposalStatus.APPROVED):
        for investor_id in (None, investor.id):
            for account_id in (None, account.id):
                for token in ("", far_future):
                    store.list_proposals(
                        status=status,
                        investor_id=investor_id,
                        account_id=account_id,
                        limit=1,
                        page_token=token,
                    )
    # The creation window is a range on the listing key itself: the same indexes serve it.
    store.list_proposals(
        account_id=account.id, created_from=T0, created_to=T0 + timedelta(days=1), limit=1
    )
    store.list_proposals(created_from=T0, limit=1)

    # settings, guards, audit
    store.set_setting("digest_policy", {"enabled": True, "send_hour": 18})
    store.get_setting("digest_policy")
    store.update_setting("digest_cursor", lambda value: (value or 0) + 1)
    store.create_guard(Guard(id="lease:exercise"))
    store.get_guard("lease:exercise")
    store.update_guard("lease:exercise", lambda guard: guard.model_copy(update={"state": "done"}))
    store.append_audit(AuditEntry(actor=admin.email, action="approve", target=proposal.id))
    store.list_audit()
    store.list_audit(target=proposal.id)

    # the email-activity panel: every token (facets, words; with and without an investor,
    # where the words are checked in memory) with and without a page token
    store.get_investors([investor.id, "no-such-investor"])
    store.refresh_activity_direction([account.address, "hi@fund.example"])
    resume = base64.urlsafe_b64encode(f"{time_key(T0)}|{email.id}".encode()).decode()
    for words in ((), ("intro",)):
        for investor_id in (None, investor.id):
            for token in ("", resume):
                store.query_activity(
                    ActivityQuery(
                        investor_id=investor_id,
                        direction=Direction.INBOUND,
                        words=words,
                        limit=1,
                        page_token=token,
                    )
                )

    # the admin lists (shared/ports/listings.py): every filter, with and without deleted
    # records and a page token
    name_token = base64.urlsafe_b64encode(f"a\x01{org.id}".encode()).decode()
    for include_deleted in (True, False):
        for token in ("", name_token):
            for prefix in ("", "ac"):
                store.list_organization_page(
                    name_prefix=prefix, include_deleted=include_deleted, page_token=token
                )
                store.list_organization_page(
                    name_prefix=prefix,
                    domain="acme.example",
                    include_deleted=include_deleted,
                    page_token=token,
                )
                store.list_contact_page(
                    name_prefix=prefix, include_deleted=include_deleted, page_token=token
                )
                store.list_contact_page(
                    address="jane@acme.example", include_deleted=include_deleted, page_token=token
                )
                store.list_contact_page(
                    domain="acme.example", include_deleted=include_deleted, page_token=token
                )
                for include_graveyard in (True, False):
                    store.list_investor_page(
                        name_prefix=prefix,
                        include_graveyard=include_graveyard,
                        include_deleted=include_deleted,
                        page_token=token,
                    )
        contact_token = base64.urlsafe_b64encode(f"0|{investor.id}".encode()).decode()
        for token in ("", contact_token):
            for include_graveyard in (True, False):
                store.list_investor_page(
                    sort=InvestorSort.LAST_CONTACT,
                    include_graveyard=include_graveyard,
                    include_deleted=include_deleted,
                    page_token=token,
                )
    activity_filters: list[dict[str, Any]] = [
        {},
        {"investor_id": investor.id},
        {"contact_id": contact.id},
        {"account_id": account.id},
    ]
    for filters in activity_filters:
        for token in ("", far_future):
            store.list_activity_page(**filters, page_token=token)
            store.list_activity_page(**filters, occurred_from=T0, occurred_to=T0, page_token=token)
    audit_filters: list[dict[str, Any]] = [
        {},
        {"actor": admin.email},
        {"action": "approve"},
        {"target": "x"},
    ]
    for audit_filter in audit_filters:
        for token in ("", far_future):
            store.list_audit_page(**audit_filter, page_token=token)
            store.list_audit_page(**audit_filter, at_from=T0, at_to=T0, page_token=token)
    store.set_last_contact(investor.id, T0)
    store.refresh_listing_keys()
    store.refresh_listing_keys([investor.id])
    # relationships: the rows (written by the mail calls above), the scores and their listings
    store.link_email_to_investor(
        InvestorLink.new(email.id, investor.id, contact.id, "jane@acme.example", MatchHeader.FROM)
    )
    store.list_investor_contributions(investor.id)
    store.list_contact_contributions(contact.id)
    store.list_contributions(limit=1)
    store.list_contributions(after_id=email.id)
    store.recompute_email_contributions(email.id)
    score = RelationshipScore(
        id=investor.id,
        strength=10,
        scored_at=T0,
        strength_sort=f"010|{investor.id}",
        last_contact_sort=f"{time_key(T0)}|{investor.id}",
        last_two_way_sort=f"0|{investor.id}",
    )
    store.put_relationship_scores([score])
    store.get_relationship_scores([investor.id, "no-such-investor"])
    resume_at = {
        RelationshipSort.STRENGTH: b"100|zzzz",
        RelationshipSort.LAST_CONTACT: b"9999-12-31T00:00:00.000000Z|zzzz",
    }
    for sort in RelationshipSort:
        for token in ("", base64.urlsafe_b64encode(resume_at[sort]).decode()):
            store.list_relationship_scores(sort, limit=1, page_token=token)
    store.list_cold_scores(cutoff_key=time_key(T0), cold_drop=20, limit=1)
