"""Capture end to end against the Gmail sandbox (real google-auth and google-api-python-client),
on SQLite: what is stored, match-only storage, partial sync, deletes, idempotency, faults,
crashes at every write, and two runs at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.gmail import GmailSandbox
from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import (
    ProposalStatus,
    SyncStatus,
    email_id_for,
)
from shared.errors import ConflictError
from shared.ports import Store
from shared.services import sync
from shared.services.capture import METADATA_HEADERS
from tests.support.gmail import (
    CountingStore,
    Crash,
    CrashingStore,
    GmailWorld,
    gmail_world,
    sqlite_snapshot,
)
from tests.support.sync import NOW, sync_all, sync_once


@pytest.fixture
def seeded(sqlite_store: SqliteStore, world: GmailWorld) -> Scenario:
    seeded = seed_crm(sqlite_store)
    seed_mail(world.sandbox, seeded, now=NOW)
    return seeded


def email_of(sqlite_store: Store, seeded: Scenario, key: str) -> Any:
    email = sqlite_store.get_email(email_id_for(seeded.message_ids[key]))
    assert email is not None, key
    return email


class TestFullSync:
    def test_the_seeded_mailboxes_are_captured_as_the_rules_say(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)

        intro = email_of(sqlite_store, seeded, "intro")
        assert intro.matched
        assert intro.investor_ids == [seeded.investor.id]
        assert len(sqlite_store.list_sightings(intro.id)) == 2  # one email, a sighting per mailbox
        assert "LP update" in intro.body
        reply = email_of(sqlite_store, seeded, "reply")
        assert reply.investor_ids == [seeded.angel.id]  # j.smith+vc@googlemail = j.smith@gmail
        (reply_sighting,) = sqlite_store.list_sightings(reply.id)
        assert reply_sighting.is_sent
        partner = email_of(sqlite_store, seeded, "partner")
        assert partner.investor_ids == [seeded.investor.id]  # by the organisation's domain

        snapshot = sqlite_snapshot(sqlite_store.path)
        subjects = {row[5]: row for row in snapshot["emails"]}
        assert set(subjects) == {
            "Intro: Zeta Capital x Fund",
            "Re: follow-on round",
            "Diligence questions",
            "Zeta Capital monthly",
            "Pitch: the next big thing",
        }  # no draft, no chat, nothing already in trash
        newsletter, cold = subjects["Zeta Capital monthly"], subjects["Pitch: the next big thing"]
        for unmatched in (newsletter, cold):
            assert unmatched[1] == 0  # not matched
            assert not unmatched[4]  # no body kept
        proposals = sqlite_store.list_proposals().items
        assert {(p.email_id, p.investor_id) for p in proposals} == {
            (intro.id, seeded.investor.id),
            (reply.id, seeded.angel.id),
            (partner.id, seeded.investor.id),
        }

    def test_bodies_are_fetched_for_matched_mail_only(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        ada = world.sandbox.calls(TEAM[0])
        # Ada has 4 capturable messages; 2 matched (intro, reply): one raw get each.
        assert ada.get("messages.get", 0) + ada.get("batch.messages.get", 0) >= 4
        stored_unmatched = sqlite_store.get_email(
            next(
                e[0]
                for e in sqlite_snapshot(sqlite_store.path)["emails"]
                if e[5].startswith("Pitch")
            )
        )
        assert stored_unmatched is not None
        assert (stored_unmatched.snippet, stored_unmatched.body) == ("", "")
        assert stored_unmatched.participant_addresses  # kept for a later re-match

    def test_sync_state_says_where_it_stands(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        account = sqlite_store.get_email_account_by_address(TEAM[0])
        assert account is not None
        state = account.sync
        assert state.status is SyncStatus.OK
        assert state.backfill_done
        assert state.history_id >= world.sandbox.history_id(TEAM[0]) - 1000
        assert state.history_id > 0
        assert state.last_success_at == NOW
        assert state.messages_done >= 4

    def test_metadata_fetch_asks_only_for_the_headers_matching_needs(self) -> None:
        assert "From" in METADATA_HEADERS
        assert "List-Id" in METADATA_HEADERS  # bulk detection
        assert not {"Received", "DKIM-Signature"} & set(METADATA_HEADERS)


class TestPartialSync:
    def test_new_trashed_restored_and_deleted_mail(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        ada = TEAM[0]
        mid, raw = message(
            sender="Zoe Zeta <zoe@zeta.vc>",
            to=[ada],
            subject="Term sheet",
            body="Here it is.",
            date=NOW,
        )
        gid = world.sandbox.add_message(ada, raw)
        assert sync_once(sqlite_store, world, ada).reason == "ran"
        email = sqlite_store.get_email(email_id_for(mid))
        assert email is not None
        assert email.matched
        account = sqlite_store.get_email_account_by_address(ada)
        assert account is not None

        world.sandbox.modify_labels(ada, gid, add=["TRASH"], remove=["INBOX"])
        sync_once(sqlite_store, world, ada)
        sighting = sqlite_store.get_sighting(account.id, gid)
        assert sighting is not None
        assert sighting.deleted
        assert sqlite_store.get_email(email.id).live_account_ids == []  # type: ignore[union-attr]

        world.sandbox.modify_labels(ada, gid, add=["INBOX"], remove=["TRASH"])
        sync_once(sqlite_store, world, ada)
        assert sqlite_store.get_sighting(account.id, gid).deleted is False  # type: ignore[union-attr]

        world.sandbox.delete_message(ada, gid)
        sync_once(sqlite_store, world, ada)
        assert sqlite_store.get_sighting(account.id, gid).deleted is True  # type: ignore[union-attr]

    def test_mail_in_trash_before_the_backfill_is_captured_when_moved_back(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        trashed = email_id_for(seeded.message_ids["trashed"])
        assert sqlite_store.get_email(trashed) is None
        ada = TEAM[0]
        gid = next(
            g for g in world.sandbox.message_ids(ada) if "TRASH" in world.sandbox.labels_of(ada, g)
        )
        world.sandbox.modify_labels(ada, gid, add=["INBOX"], remove=["TRASH"])
        sync_once(sqlite_store, world, ada)
        email = sqlite_store.get_email(trashed)
        assert email is not None
        assert email.matched

    def test_mail_arriving_in_trash_or_spam_waits_until_it_leaves(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        """The partial sync agrees with the backfill: an investor's message added straight to
        TRASH (or SPAM) is neither stored nor proposed until it is moved back to the inbox."""
        sync_all(sqlite_store, world)
        ada = TEAM[0]
        for label in ("TRASH", "SPAM"):
            mid, raw = message(
                sender="Zoe Zeta <zoe@zeta.vc>",
                to=[ada],
                subject=f"Straight to {label}",
                body="Old news.",
                date=NOW,
            )
            gid = world.sandbox.add_message(ada, raw, label_ids=(label,))
            proposals_before = len(sqlite_store.list_proposals(limit=500).items)
            sync_once(sqlite_store, world, ada)
            assert sqlite_store.get_email(email_id_for(mid)) is None
            assert len(sqlite_store.list_proposals(limit=500).items) == proposals_before
            world.sandbox.modify_labels(ada, gid, add=["INBOX"], remove=[label])
            sync_once(sqlite_store, world, ada)
            email = sqlite_store.get_email(email_id_for(mid))
            assert email is not None
            assert email.matched

    def test_the_history_id_only_moves_forward(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        account = sqlite_store.get_email_account_by_address(TEAM[0])
        assert account is not None
        before = account.sync.history_id
        world.sandbox.add_message(
            TEAM[0],
            message(sender="x@startup.example", to=[TEAM[0]], subject="n", body="b", date=NOW)[1],
        )
        sync_once(sqlite_store, world, TEAM[0])
        after = sqlite_store.get_email_account(account.id).sync.history_id  # type: ignore[union-attr]
        assert after > before
        assert after == world.sandbox.history_id(TEAM[0])


class TestRecovery:
    def test_expired_history_falls_back_to_a_full_sync_without_duplicates(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        before = sqlite_snapshot(sqlite_store.path)
        ada = TEAM[0]
        mid, raw = message(sender="zoe@zeta.vc", to=[ada], subject="late", body="x", date=NOW)
        world.sandbox.add_message(ada, raw)
        world.sandbox.expire_history(ada, keep_after=world.sandbox.history_id(ada))
        for _ in range(5):
            if sync_once(sqlite_store, world, ada).reason == "ran":
                break
        after = sqlite_snapshot(sqlite_store.path)
        assert sqlite_store.get_email(email_id_for(mid)) is not None
        assert len(after["emails"]) == len(before["emails"]) + 1
        assert len(after["sightings"]) == len(before["sightings"]) + 1
        assert len(after["proposals"]) == len(before["proposals"]) + 1

    def test_bursts_of_429_and_5xx_still_end_complete(
        self, sqlite_store: SqliteStore, tmp_path: Path, seeded: Scenario, world: GmailWorld
    ) -> None:
        reference = SqliteStore(tmp_path / "reference.sqlite3")
        seed_crm(reference)
        sync_all(reference, world)
        for status in (503, 429, 500, 503):
            world.sandbox.inject_fault("messages.get", status=status, count=3)
        world.sandbox.inject_fault("messages.list", status=503, count=2)
        world.sandbox.inject_fault("history.list", status=429, count=2)
        sync_all(sqlite_store, world)
        assert _comparable(sqlite_snapshot(sqlite_store.path)) == _comparable(
            sqlite_snapshot(reference.path)
        )

    def test_a_message_that_keeps_failing_is_recorded_and_the_rest_captured(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        ada = TEAM[0]
        world.sandbox.inject_fault("messages.get", status=500, count=10_000, mailbox=ada)
        outcome = sync_once(sqlite_store, world, ada)
        assert outcome.ran
        account = sqlite_store.get_email_account_by_address(ada)
        assert account is not None
        problems = sqlite_store.list_capture_problems(account.id)
        assert problems  # recorded, with a reason
        assert all("fetch failed" in p.reason for p in problems)
        assert account.sync.messages_failed == len(problems)
        # Ben's mailbox is not affected, and Ada's problems are retried once Gmail recovers.
        sync_once(sqlite_store, world, TEAM[1])
        world.sandbox.clear_faults()
        sync_once(sqlite_store, world, ada)
        assert sqlite_store.list_capture_problems(account.id) == []
        assert sqlite_store.get_email(email_id_for(seeded.message_ids["intro"])) is not None


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Account-level history ids differ between two runs only by when they read them."""
    return {key: value for key, value in snapshot.items() if key != "sync"}


class TestCrashes:
    def test_a_crash_after_every_kth_write_then_a_rerun_ends_as_an_undisturbed_run(
        self, tmp_path: Path
    ) -> None:
        shared_key = GmailSandbox().service_account_info()

        def fresh_world_and_store(name: str) -> tuple[Any, SqliteStore, Scenario]:
            sandbox = GmailSandbox(service_account=shared_key)
            sqlite_store = SqliteStore(tmp_path / f"{name}.sqlite3")
            seeded = seed_crm(sqlite_store)
            seed_mail(sandbox, seeded, now=NOW)
            return sandbox, sqlite_store, seeded

        sandbox, reference, _ = fresh_world_and_store("reference")
        with gmail_world(sandbox) as world:
            counting = CountingStore(reference)
            sync_all(counting, world)
            total_writes = counting.writes
        expected = _comparable(sqlite_snapshot(reference.path))
        assert total_writes > 20

        for k in range(total_writes):
            sandbox, sqlite_store, _ = fresh_world_and_store(f"crash{k}")
            with gmail_world(sandbox) as world:
                crashing = CrashingStore(sqlite_store, allowed=k)
                with pytest.raises(Crash):
                    sync_all(crashing, world)
                # The crashed run's lease expires; a later run takes over and finishes.
                sync_all(sqlite_store, world, now=NOW + timedelta(hours=1))
            assert _comparable(sqlite_snapshot(sqlite_store.path)) == expected, (
                f"crash at write {k}"
            )


class TestConcurrency:
    def test_two_syncs_of_one_mailbox_at_once_do_the_work_once(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        ada = TEAM[0]
        barrier = threading.Barrier(2)
        outcomes: list[sync.RunOutcome] = []

        def run() -> None:
            barrier.wait()
            outcomes.append(sync_once(sqlite_store, world, ada))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        reasons = sorted(o.reason for o in outcomes)
        assert "ran" in reasons
        captured = sum(o.result.report.captured for o in outcomes if o.result)
        assert captured == 4  # ada's capturable messages, captured once between both runs
        assert len(sqlite_snapshot(sqlite_store.path)["sightings"]) == 4

    def test_a_redelivered_request_does_no_work_twice(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        sync_all(sqlite_store, world)
        before = sqlite_snapshot(sqlite_store.path)
        gets_before = world.sandbox.calls(TEAM[0]).get("messages.get", 0)
        for _ in range(3):
            assert sync_once(sqlite_store, world, TEAM[0]).reason == "ran"
        assert sqlite_snapshot(sqlite_store.path) == before
        assert world.sandbox.calls(TEAM[0]).get("messages.get", 0) == gets_before


class TestProposalsFromCapture:
    def test_approval_creates_one_activity_and_rejection_closes(
        self, sqlite_store: SqliteStore, world: GmailWorld, seeded: Scenario
    ) -> None:
        from shared.domain.models import Caller, Role
        from shared.services import proposals

        sync_all(sqlite_store, world)
        admin = Caller(email=seeded.admin.email, role=Role.ADMIN, user_id=seeded.admin.id)
        items = sqlite_store.list_proposals(status=ProposalStatus.PROPOSED).items
        first, second = items[0], items[1]
        decided = proposals.decide(sqlite_store, admin, first.id, ProposalStatus.APPROVED)
        assert decided.activity is not None
        # Approving it again is a conflict naming its state (one activity, one audit entry).
        with pytest.raises(ConflictError) as again:
            proposals.decide(sqlite_store, admin, first.id, ProposalStatus.APPROVED)
        assert again.value.details["status"] == "approved"
        proposals.decide(sqlite_store, admin, second.id, ProposalStatus.REJECTED)
        assert sqlite_store.get_activity(second.id) is None
        assert [a.action for a in sqlite_store.list_audit()] == [
            "proposal.rejected",
            "proposal.approved",
        ]
