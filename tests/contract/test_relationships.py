"""Relationship intelligence on both stores: the rows capture keeps equal those stored mail calls
for, whatever happened, and the figures, rankings and going cold read the same on both."""

from __future__ import annotations

import os
import random
from datetime import timedelta
from pathlib import Path

import pytest

from shared.adapters.sqlite import SqliteStore
from shared.domain.listing_keys import InvestorSort
from shared.domain.models import (
    Contact,
    Email,
    EmailAccount,
    Investor,
    InvestorLink,
    Mailbox,
    MatchHeader,
    Sighting,
    User,
    email_id_for,
)
from shared.domain.relationships import (
    ColdReason,
    RelationshipSort,
    TeammateStatus,
)
from shared.ports import Store
from shared.services import relationships
from tests.support.relationship_events import NOW, expected_rows, run_events, stored_rows

# Events drawn per store: about 200 on SQLite; fewer on the emulator, which is slow.
EVENTS = {"sqlite": 200, "firestore": 80}


def _seed() -> int:
    return int(os.environ.get("RELATIONSHIP_SEED") or random.SystemRandom().randrange(1 << 30))


def _store_kind(store: Store) -> str:
    return "sqlite" if isinstance(store, SqliteStore) else "firestore"


def _setup(store: Store) -> tuple[str, str, str]:
    """One owned mailbox, one ownerless; one investor with one contact."""
    zoe = User.new("zoe@fund.example", "Zoe")
    store.add_user(zoe)
    store.add_email_account(EmailAccount.new("zoe@fund.example", zoe.id))
    store.add_email_account(EmailAccount.new("deals@fund.example"))
    store.upsert_investor(Investor(id="acme", name="Acme LP"))
    store.upsert_contact(
        Contact(id="jane", name="Jane", investor_id="acme", emails=["jane@acme.example"])
    )
    return (
        zoe.id,
        EmailAccount.new("zoe@fund.example").id,
        EmailAccount.new("deals@fund.example").id,
    )


def _capture(
    store: Store,
    n: int,
    *,
    account: str,
    sent: bool,
    days_ago: float,
    root: str = "<root@x>",
) -> str:
    message_id = f"<m{n}@x>"
    sender = "zoe@fund.example" if sent else "jane@acme.example"
    email = Email(
        id=email_id_for(message_id),
        message_id=message_id,
        references=[root] if root != message_id else [],
        sender=Mailbox(address=sender),
        date=NOW - timedelta(days=days_ago),
        first_seen_at=NOW,
        participant_addresses=["jane@acme.example", "zoe@fund.example"],
        participant_domains=["acme.example", "fund.example"],
    )
    store.upsert_email(email)
    store.link_email_to_investor(
        InvestorLink.new(email.id, "acme", "jane", "jane@acme.example", MatchHeader.TO)
    )
    store.record_sighting(Sighting.new(account, f"g{n}", email.id, is_sent=sent))
    return email.id


class TestFigures:
    def test_a_thread_answered_within_30_days_is_one_two_way_exchange(self, store: Store) -> None:
        zoe, zoe_box, deals_box = _setup(store)
        _capture(store, 1, account=zoe_box, sent=False, days_ago=40, root="<m1@x>")
        _capture(store, 2, account=zoe_box, sent=True, days_ago=35, root="<m1@x>")
        _capture(store, 3, account=zoe_box, sent=False, days_ago=20, root="<m1@x>")
        # One-way: a newsletter-like message nobody answered, in its own thread.
        _capture(store, 4, account=deals_box, sent=False, days_ago=5, root="<m4@x>")

        found = relationships.investor_relationship(store, "acme", now=NOW).figures
        assert found.messages == 4
        assert (found.inbound, found.outbound) == (3, 1)
        assert found.two_way_exchanges == 1
        assert (found.one_way_inbound, found.one_way_outbound) == (1, 0)
        assert found.first_contact is not None and found.last_contact is not None
        assert found.first_contact.at == NOW - timedelta(days=40)
        assert found.last_contact.email_id == email_id_for("<m4@x>")
        assert found.last_contact.teammates[0].status == TeammateStatus.OWNERLESS
        assert found.last_two_way_at == NOW - timedelta(days=20)
        assert [(w.days, w.inbound, w.outbound, w.two_way_exchanges) for w in found.windows] == [
            (30, 2, 0, 1),
            (90, 3, 1, 1),
            (365, 3, 1, 1),
        ]
        assert [t.teammate.key for t in found.teammates] == [f"user:{zoe}", f"mailbox:{deals_box}"]
        assert found.teammates[0].two_way_exchanges == 1
        inputs = found.strength_inputs
        assert inputs.days_since_last_contact == 5
        assert found.strength == round(
            inputs.recency_points + inputs.frequency_points + inputs.reciprocity_points
        )
        contact = relationships.contact_relationship(store, "jane", now=NOW).figures
        assert contact.model_dump() == found.model_dump()

    def test_messages_a_month_apart_are_no_exchange(self, store: Store) -> None:
        _, zoe_box, _ = _setup(store)
        _capture(store, 1, account=zoe_box, sent=False, days_ago=100)
        _capture(store, 2, account=zoe_box, sent=True, days_ago=60)
        found = relationships.investor_relationship(store, "acme", now=NOW).figures
        assert found.two_way_exchanges == 0
        assert (found.one_way_inbound, found.one_way_outbound) == (1, 1)

    def test_inbound_mail_seen_by_two_mailboxes_counts_for_each_owner(self, store: Store) -> None:
        zoe, zoe_box, deals_box = _setup(store)
        email_id = _capture(store, 1, account=zoe_box, sent=False, days_ago=3)
        store.record_sighting(Sighting.new(deals_box, "other", email_id))
        found = relationships.investor_relationship(store, "acme", now=NOW).figures
        assert found.messages == 1
        assert {t.teammate.key: t.messages for t in found.teammates} == {
            f"user:{zoe}": 1,
            f"mailbox:{deals_box}": 1,
        }
        store.change_user(zoe, is_active=False)
        found = relationships.investor_relationship(store, "acme", now=NOW).figures
        statuses = {t.teammate.key: t.teammate.status for t in found.teammates}
        assert statuses[f"user:{zoe}"] == TeammateStatus.DEACTIVATED

    def test_redelivery_writes_no_row_and_trash_takes_the_mail_out(self, store: Store) -> None:
        _, zoe_box, _ = _setup(store)
        _capture(store, 1, account=zoe_box, sent=False, days_ago=3)
        before = stored_rows(store)
        _capture(store, 1, account=zoe_box, sent=False, days_ago=3)
        assert stored_rows(store) == before and len(before) == 1
        store.set_sighting_deleted(zoe_box, "g1", True)
        assert stored_rows(store) == {}
        store.set_sighting_deleted(zoe_box, "g1", False)
        assert stored_rows(store) == before

    def test_unknown_investor_is_not_found(self, store: Store) -> None:
        from shared.errors import NotFoundError

        with pytest.raises(NotFoundError):
            relationships.investor_relationship(store, "nobody", now=NOW)


class TestScores:
    def test_ranked_by_strength_and_last_contact_graveyard_left_out(self, store: Store) -> None:
        _, zoe_box, _ = _setup(store)
        _capture(store, 1, account=zoe_box, sent=False, days_ago=10)
        store.upsert_investor(Investor(id="quiet", name="Quiet LP"))
        store.upsert_investor(Investor(id="gone", name="Gone LP", graveyard=True))
        result = relationships.rescore_all(store, now=NOW)
        assert (result.investors, result.scores_written) == (3, 3)

        by_strength = relationships.ranked_investors(store, RelationshipSort.STRENGTH, limit=1)
        assert [i.investor_id for i in by_strength.items] == ["acme"]
        second = relationships.ranked_investors(
            store, RelationshipSort.STRENGTH, limit=1, page_token=by_strength.next_page_token
        )
        assert [i.investor_id for i in second.items] == ["quiet"]
        assert second.next_page_token == ""
        by_contact = relationships.ranked_investors(store, RelationshipSort.LAST_CONTACT)
        assert [i.investor_id for i in by_contact.items] == ["acme", "quiet"]
        assert by_contact.items[0].last_contact_at == NOW - timedelta(days=10)

    def test_going_cold_after_the_threshold_and_on_a_strength_drop(self, store: Store) -> None:
        _, zoe_box, _ = _setup(store)
        _capture(store, 1, account=zoe_box, sent=False, days_ago=100, root="<t@x>")
        _capture(store, 2, account=zoe_box, sent=True, days_ago=99, root="<t@x>")
        relationships.rescore_all(store, now=NOW - timedelta(days=30))
        relationships.rescore_all(store, now=NOW)
        cold = relationships.going_cold(store, now=NOW, cold_days=90, cold_drop=20)
        assert [(c.investor_id, c.reasons) for c in cold] == [("acme", [ColdReason.NO_EXCHANGE])]
        assert relationships.going_cold(store, now=NOW, cold_days=120, cold_drop=20) == []
        found = relationships.going_cold(store, now=NOW, cold_days=120, cold_drop=1)
        assert [c.reasons for c in found] == [[ColdReason.STRENGTH_DROP]]
        assert found[0].drop_30d > 1

    def test_the_daily_rescore_runs_once_a_utc_day(self, store: Store) -> None:
        _setup(store)
        assert relationships.rescore_once_today(store, now=NOW) is not None
        assert relationships.rescore_once_today(store, now=NOW + timedelta(hours=3)) is None
        assert relationships.rescore_once_today(store, now=NOW + timedelta(days=1)) is not None
        score = store.get_relationship_scores(["acme"])["acme"]
        assert sorted(score.snapshots) == ["2026-06-01", "2026-06-02"]

    def test_the_rescore_keeps_the_admin_lists_last_contact_sort(self, store: Store) -> None:
        """GET /investors?sort=last_contact follows the figures: the daily re-score sets each
        investor's last-contact key (capture does not write investors per message)."""
        _, zoe_box, _ = _setup(store)
        store.upsert_investor(Investor(id="quiet", name="Quiet LP"))
        _capture(store, 1, account=zoe_box, sent=False, days_ago=3)
        relationships.rescore_all(store, now=NOW)
        page = store.list_investor_page(sort=InvestorSort.LAST_CONTACT)
        assert [i.id for i in page.items] == ["acme", "quiet"]


class TestRandomisedEvents:
    def test_figures_equal_the_recompute_from_stored_mail(
        self, store: Store, tmp_path: Path
    ) -> None:
        seed = _seed()
        kind = _store_kind(store)
        print(f"relationship events seed={seed} store={kind} (RELATIONSHIP_SEED={seed} to redo)")
        world = run_events(store, seed, EVENTS[kind])
        assert len(world.log) == EVENTS[kind]
        stored = stored_rows(store)
        assert len(stored) >= 10, f"seed={seed}: too few rows to prove anything"
        assert stored == expected_rows(store), f"seed={seed}"
        figures = {
            i: relationships.investor_relationship(store, i, now=NOW).model_dump()
            for i in world.investors
        }
        result = relationships.recompute(store, now=NOW)
        assert result.rows_changed == 0, f"seed={seed}"
        assert stored_rows(store) == stored
        assert {
            i: relationships.investor_relationship(store, i, now=NOW).model_dump()
            for i in world.investors
        } == figures
        if kind == "firestore":
            # The same seed on SQLite ends with the same figures and the same ranking.
            twin = SqliteStore(tmp_path / "twin.sqlite3")
            try:
                run_events(twin, seed, EVENTS[kind])
                relationships.rescore_all(twin, now=NOW)
                assert {
                    i: relationships.investor_relationship(twin, i, now=NOW).model_dump()
                    for i in world.investors
                } == figures, f"seed={seed}"
                for sort in RelationshipSort:
                    ours = relationships.ranked_investors(store, sort, limit=100)
                    theirs = relationships.ranked_investors(twin, sort, limit=100)
                    assert ours == theirs, f"seed={seed}"
            finally:
                twin.close()
