"""The two repair commands' services (``shared.services.repair``) on SQLite and on Firestore,
starting from rows written the way capture wrote them before its fixes: participants re-fetched
through the Gmail sandbox and re-matched; snippets unescaped exactly once and their search words
rebuilt. Both resume after an interruption and change nothing when run again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.scenario import TEAM, Scenario, seed_crm
from shared.domain import search
from shared.domain.activity import ActivityQuery
from shared.domain.models import (
    Email,
    InvestorLink,
    Mailbox,
    MatchHeader,
    ProposalStatus,
    Sighting,
    email_id_for,
    proposal_id_for,
)
from shared.ports import Store
from shared.services import repair
from tests.support.decoded_headers import (
    CONTACT,
    INVENTED,
    MAX_CRLF_CC,
    STAN_NUL,
    STRANGER,
    ZOE_CRLF_BCC,
    ZOE_NUL,
    raw_message,
    write_old_row,
)
from tests.support.gmail import Crash, CrashingStore, GmailWorld

NOW = datetime.now(UTC)
ADA = TEAM[0]
CRLF, STAN, ZOE, PLAIN = (
    "<crlf.9@zeta.vc>",
    "<nul.9@nowhere.example>",
    "<nul.9@zeta.vc>",
    "<plain.9@nowhere.example>",
)


@pytest.fixture
def scenario(store: Store, world: GmailWorld) -> Scenario:
    """Four messages in Ada's Gmail, stored as capture stored them before its fix."""
    seeded = seed_crm(store)
    for address in TEAM:
        world.sandbox.add_mailbox(address)
    senders = {
        CRLF: (ZOE_CRLF_BCC, MAX_CRLF_CC),
        STAN: (STAN_NUL, ""),
        ZOE: (ZOE_NUL, ""),
        PLAIN: ("Pat <pat@nowhere.example>", ""),
    }
    account_id = seeded.accounts[0].id
    for message_id, (sender, cc) in senders.items():
        raw = raw_message(message_id, sender=sender, to=ADA, cc=cc, date=NOW - timedelta(hours=2))
        gmail_id = world.sandbox.add_message(ADA, raw, internal_date=NOW - timedelta(hours=2))
        write_old_row(store, world.gmail_for(ADA), account_id, gmail_id)
    return seeded


def stored(store: Store, message_id: str) -> Email:
    email = store.get_email(email_id_for(message_id))
    assert email is not None, message_id
    return email


def rows(store: Store) -> list[dict[str, Any]]:
    """Every email as the repairs may change it (times aside)."""
    return [
        e.model_dump(exclude={"first_seen_at", "matched_at"}) for e in store.list_emails(limit=1000)
    ]


def run_participants(store: Store, world: GmailWorld, **options: Any) -> repair.RepairRun:
    return repair.repair_participants(store, gmail_for=world.gmail_for, **options)


class TestRepairParticipants:
    def test_the_old_rows_are_as_the_fault_left_them(
        self, store: Store, world: GmailWorld, scenario: Scenario
    ) -> None:
        crlf = stored(store, CRLF)
        assert crlf.sender is not None and crlf.sender.address == "evil@y"
        assert not crlf.matched
        assert "\x00" in (stored(store, STAN).sender or Mailbox(address="a@b.c")).name

    def test_rows_with_controls_are_refetched_rewritten_and_rematched(
        self, store: Store, world: GmailWorld, scenario: Scenario
    ) -> None:
        before_plain = stored(store, PLAIN)

        run = run_participants(store, world)

        assert run.state == "done"
        assert run.run["examined"] == 4
        assert run.run["refetched"] == 2  # the two rows holding a NUL
        assert run.run["repaired"] == 2
        assert run.run["linked"] == 1
        stan = stored(store, STAN)
        assert stan.sender == Mailbox(name="", address=STRANGER)
        assert stan.header_problems
        zoe = stored(store, ZOE)
        assert zoe.matched and zoe.investor_ids == [scenario.investor.id]
        assert zoe.sender is not None and zoe.sender.address == CONTACT
        assert "\x00" not in zoe.sender.name
        assert "We'd like" in zoe.body  # matched now: its body fetched, as capture would
        proposal = store.get_proposal(proposal_id_for(zoe.id, scenario.investor.id))
        assert proposal is not None and proposal.status is ProposalStatus.PROPOSED
        assert stored(store, PLAIN) == before_plain  # nothing wrong with it: not touched
        # A CR LF was stored as a space: that row shows nothing, only a full pass finds it.
        assert stored(store, CRLF).sender == Mailbox(address="evil@y")

        full = run_participants(store, world, everything=True)

        assert full.state == "done" and full.run["refetched"] == 4
        crlf = stored(store, CRLF)
        assert crlf.sender is not None and crlf.sender.address == CONTACT
        assert crlf.matched and crlf.investor_ids == [scenario.investor.id]
        assert not INVENTED & set(crlf.participant_addresses)
        assert [m.address for m in crlf.cc] == ["max@other.example"]
        assert crlf.bcc == []

    def test_an_interrupted_repair_continues_and_a_finished_one_changes_nothing(
        self, store: Store, world: GmailWorld, scenario: Scenario
    ) -> None:
        first = run_participants(store, world, page_size=1, max_pages=1)
        assert first.state == "continues"
        assert first.run["examined"] == 1
        # The process dies at its first write after starting (the guard is written first): the
        # cursor stays where the first run left it.
        with pytest.raises(Crash):
            run_participants(CrashingStore(store, 1), world, page_size=1)
        runs = [first]
        while runs[-1].state != "done":
            runs.append(run_participants(store, world, page_size=1, max_pages=1))
        assert sum(r.run["examined"] for r in runs) == 4  # each email once, none skipped
        assert runs[-1].total["repaired"] == 2
        assert stored(store, ZOE).matched
        after = rows(store)

        again = run_participants(store, world)
        assert again.state == "already done" and again.run == {}
        restarted = run_participants(store, world, restart=True)
        assert restarted.state == "done" and restarted.run["repaired"] == 0
        assert rows(store) == after


def listed_row(store: Store, scenario: Scenario, snippet: str, *, plain: bool = False) -> Email:
    """A matched, listed email with this snippet, stored directly (as an old capture did)."""
    email = Email(
        id=email_id_for(f"<{uuid.uuid4().hex}@zeta.vc>"),
        subject="Terms",
        sender=Mailbox(name="Zoe Zeta", address=CONTACT),
        to=[Mailbox(address=ADA)],
        date=NOW - timedelta(days=1),
        participant_addresses=[ADA, CONTACT],
        participant_domains=["fund.example", "zeta.vc"],
        snippet=snippet,
        snippet_plain=plain,
    )
    store.upsert_email(email)
    store.record_sighting(Sighting.new(scenario.accounts[0].id, email.id[:16], email.id))
    store.link_email_to_investor(
        InvestorLink.new(email.id, scenario.investor.id, "con-zoe", CONTACT, MatchHeader.FROM)
    )
    return email


def hits(store: Store, text: str) -> set[str]:
    query = ActivityQuery(q=text, words=tuple(search.query_words(text)))
    return {hit.email.id for hit in store.query_activity(query).hits}


class TestRepairSnippets:
    @pytest.fixture
    def crm_seeded(self, store: Store) -> Scenario:
        return seed_crm(store)

    def test_escaped_snippets_are_unescaped_once_and_no_longer_found_by_the_entity(
        self, store: Store, crm_seeded: Scenario
    ) -> None:
        old = listed_row(store, crm_seeded, "We&#39;d like the &amp;amp; sign")
        new = listed_row(store, crm_seeded, "Tom &amp; Jerry, as written", plain=True)
        assert hits(store, "39") == {old.id}  # the fault, on the old row

        run = repair.repair_snippets(store)

        assert run.state == "done"
        assert (run.run["examined"], run.run["marked"], run.run["unescaped"]) == (2, 1, 1)
        repaired = stored_by_id(store, old.id)
        assert repaired.snippet == "We'd like the &amp; sign"  # one level of escaping undone
        assert repaired.snippet_plain
        assert stored_by_id(store, new.id).snippet == "Tom &amp; Jerry, as written"
        assert hits(store, "39") == set()
        assert hits(store, "like") == {old.id}  # the search words were rebuilt

        assert repair.repair_snippets(store).state == "already done"
        again = repair.repair_snippets(store, restart=True)
        assert again.state == "done" and again.run["marked"] == 0
        assert stored_by_id(store, old.id).snippet == "We'd like the &amp; sign"

    def test_an_interrupted_snippet_repair_continues_where_it_stopped(
        self, store: Store, crm_seeded: Scenario
    ) -> None:
        rows_ = [
            listed_row(store, crm_seeded, f"Row {n} &lt;draft&gt; &amp;amp;") for n in range(3)
        ]
        first = repair.repair_snippets(store, page_size=1, max_pages=1)
        assert first.state == "continues" and first.run["marked"] == 1
        # Dies after unescaping the second row, before saving the cursor past it: the next run
        # reads that row again and, marked, leaves it alone.
        crashing = CrashingStore(store, 2)  # the guard, the second row's update, then the crash
        with pytest.raises(Crash):
            repair.repair_snippets(crashing, page_size=1)
        rest = repair.repair_snippets(store, page_size=1)
        assert rest.state == "done"
        assert rest.total["examined"] == 3
        assert rest.run["marked"] == 1  # the third row; the second was marked before the crash
        for row in rows_:
            assert stored_by_id(store, row.id).snippet.endswith("<draft> &amp;")


def stored_by_id(store: Store, email_id: str) -> Email:
    email = store.get_email(email_id)
    assert email is not None
    return email
