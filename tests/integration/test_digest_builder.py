"""The digest builder on real captured mail: the seeded fund's mailboxes are captured from the
Gmail sandbox into SQLite, then the digest is built over the window in which that mail became
investor mail. The narrator is the real HTTP client against a loopback stub that answers,
stalls, fails or answers garbage."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.narrator_stub import NarratorStub, RunningNarrator, serve_narrator_stub
from sandbox.scenario import TEAM, Scenario, message, seed_crm, seed_mail
from shared.adapters.narrator import ChatNarrator
from shared.adapters.queue import LocalQueue
from shared.adapters.sqlite import SqliteStore
from shared.domain.digest import Digest
from shared.domain.models import Email, SyncStatus, email_id_for
from shared.ports import SyncStateChange
from shared.services import sync
from shared.services.digest import Narrator, build_digest
from tests.support.gmail import GmailWorld, sqlite_snapshot

NOW = datetime.now(UTC)
TIMEOUT = 0.5
HOSTILE = "<script>alert('x')</script>"

ADA_FALLBACK = (
    "2 investor emails (1 received, 1 sent) with 2 investors: Jo Smith (angel), "
    "Zeta Capital Fund I."
)
BEN_FALLBACK = "2 investor emails (2 received, 0 sent) with 1 investor: Zeta Capital Fund I."


class Fund:
    """The seeded fund after a first capture: the store, the sandbox and the capture window."""

    def __init__(self, sqlite_store: SqliteStore, world: GmailWorld, scenario: Scenario) -> None:
        self.store, self.world, self.scenario = sqlite_store, world, scenario
        self.since = datetime.now(UTC)
        self.sync_all()
        self.until = datetime.now(UTC)

    def sync_all(self) -> None:
        for address in TEAM:
            account = self.store.get_email_account_by_address(address)
            assert account is not None
            for _ in range(10):
                outcome = sync.run_sync(
                    self.store,
                    sync.SyncRequest(account.id),
                    gmail_for=self.world.gmail_for,
                    queue=LocalQueue(),
                    now=NOW,
                    run_id=uuid.uuid4().hex,
                )
                assert outcome.ran, outcome.reason
                if outcome.reason == "ran":
                    break
            else:
                raise AssertionError(f"{address} never finished")

    def emails_in_window(self, since: datetime, until: datetime) -> Iterable[Email]:
        """Stands for the Store query the builder needs: every captured email, as stored."""
        for row in sqlite_snapshot(self.store.path)["emails"]:
            email = self.store.get_email(row[0])
            if email is not None:
                yield email

    def build(
        self,
        narrator: Narrator | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Digest:
        return build_digest(
            self.store,
            since or self.since,
            until or self.until,
            narrator,
            emails_in_window=self.emails_in_window,
        )

    def email(self, key: str) -> Email:
        email = self.store.get_email(email_id_for(self.scenario.message_ids[key]))
        assert email is not None
        return email

    def account_id(self, address: str) -> str:
        account = self.store.get_email_account_by_address(address)
        assert account is not None
        return account.id

    def add_mail(self, key: str, *, to: str, subject: str, age: timedelta) -> None:
        mid, raw = message(
            sender="Zoe Zeta <zoe@zeta.vc>",
            to=[to],
            subject=subject,
            body="Following up.",
            date=NOW - age,
            message_id=f"<{key}.{uuid.uuid4().hex[:8]}@zeta.vc>",
        )
        self.world.sandbox.add_message(to, raw, internal_date=NOW - age)
        self.scenario.message_ids[key] = mid


@pytest.fixture
def fund(sqlite_store: SqliteStore, world: GmailWorld) -> Fund:
    scenario = seed_crm(sqlite_store)
    seed_mail(world.sandbox, scenario, now=NOW)
    return Fund(sqlite_store, world, scenario)


@pytest.fixture
def narrator_server() -> Iterator[RunningNarrator]:
    with serve_narrator_stub(NarratorStub(stall_seconds=3.0)) as running:
        yield running


def narrator_for(running: RunningNarrator, **kwargs: Any) -> ChatNarrator:
    return ChatNarrator(running.base_url, "fund-llm", "sk-test-key", timeout=TIMEOUT, **kwargs)


def section(text: str, title: str) -> str:
    """The plain-text section under ``title`` (up to the next section)."""
    start = text.index(title)
    ends = [
        text.index(t, start + 1) for t in ("By investor", "Sync health") if t in text[start + 1 :]
    ]
    return text[start : min(ends, default=len(text))]


class TestSections:
    def test_per_user_and_per_investor_content(self, fund: Fund) -> None:
        digest = fund.build()

        assert digest.has_activity
        assert (digest.user_count, digest.email_count, digest.investor_count) == (2, 3, 2)
        assert digest.subject.endswith("3 emails, 2 investors")
        users = section(digest.text, "By team member")
        assert f"Ada Admin <ada@fund.example>\n{ADA_FALLBACK}" in users
        assert f"Ben Member <ben@fund.example>\n{BEN_FALLBACK}" in users
        investors = section(digest.text, "By investor")
        assert "Jo Smith (angel): 1 email (0 received, 1 sent)" in investors
        assert "Zeta Capital Fund I (Zeta Capital): 2 emails (2 received, 0 sent)" in investors
        assert "→ outbound · Jo Smith · Re: follow-on round" in investors
        assert "← inbound · Zoe Zeta · Intro: Zeta Capital x Fund" in investors
        # Matched by the organisation's domain: the organisation's name.
        assert "← inbound · Zeta Capital · Diligence questions" in investors
        for unmatched in ("Zeta Capital monthly", "Pitch: the next big thing", "Old thread"):
            assert unmatched not in digest.text

    def test_inbound_mail_seen_by_two_teammates_counts_once_per_investor(self, fund: Fund) -> None:
        intro = fund.email("intro")
        assert len(fund.store.list_sightings(intro.id)) == 2
        digest = fund.build()
        investors = section(digest.text, "By investor")
        assert investors.count("Intro: Zeta Capital x Fund") == 1
        assert digest.email_count == 3  # not 4: the intro is one email
        # ...while each teammate who saw it has it in their own paragraph.
        assert ADA_FALLBACK in digest.text
        assert BEN_FALLBACK in digest.text

    def test_soft_deleted_sightings_and_inactive_users_are_left_out(self, fund: Fund) -> None:
        intro = fund.email("intro")
        ben_id = fund.account_id(TEAM[1])
        (ben_sighting,) = [s for s in fund.store.list_sightings(intro.id) if s.account_id == ben_id]
        assert fund.store.set_sighting_deleted(ben_id, ben_sighting.gmail_message_id, True)

        digest = fund.build()
        assert "1 investor email (1 received, 0 sent)" in section(digest.text, "Ben Member")
        assert "Intro: Zeta Capital x Fund" in digest.text  # Ada's sighting is live
        assert digest.email_count == 3

        ada_id = fund.account_id(TEAM[0])
        (ada_sighting,) = [s for s in fund.store.list_sightings(intro.id) if s.account_id == ada_id]
        fund.store.set_sighting_deleted(ada_id, ada_sighting.gmail_message_id, True)
        digest = fund.build()
        assert "Intro: Zeta Capital x Fund" not in digest.text
        assert digest.email_count == 2

        fund.store.change_user(fund.scenario.member.id, is_active=False)
        digest = fund.build()
        assert "Ben Member" not in digest.text
        assert "Diligence questions" not in digest.text  # only Ben's mailbox saw it
        assert (digest.user_count, digest.email_count, digest.investor_count) == (1, 1, 1)

    def test_soft_deleted_contact_and_organisation_fall_back_to_the_matched_address(
        self, fund: Fund
    ) -> None:
        scenario = fund.scenario
        fund.store.upsert_contact(scenario.contact.model_copy(update={"deleted": True}))
        fund.store.upsert_organization(scenario.organization.model_copy(update={"deleted": True}))
        digest = fund.build()
        investors = section(digest.text, "By investor")
        assert "← inbound · zoe@zeta.vc · Intro: Zeta Capital x Fund" in investors
        assert "← inbound · kim@zeta.vc · Diligence questions" in investors
        assert "Zeta Capital Fund I: 2 emails" in investors  # no organisation name any more

    def test_two_sections_and_sync_health(self, fund: Fund) -> None:
        digest = fund.build()
        text = digest.text
        assert text.index("By team member") < text.index("By investor") < text.index("Sync health")
        assert "All 2 mailboxes are syncing normally." in text

        ada_id, ben_id = fund.account_id(TEAM[0]), fund.account_id(TEAM[1])
        fund.store.update_sync_state(
            ada_id, SyncStateChange(status=SyncStatus.ERROR, last_error="boom")
        )
        fund.store.update_sync_state(
            ben_id, SyncStateChange(last_success_at=fund.until - timedelta(hours=2), coverage_gap=3)
        )
        health = section(fund.build().text, "Sync health")
        assert "- ada@fund.example: in error" in health
        assert "- ben@fund.example: behind (120 min since last sync), coverage gap of 3" in health
        assert "boom" not in health

    def test_an_empty_window_still_gives_a_digest(
        self, fund: Fund, narrator_server: RunningNarrator
    ) -> None:
        later = fund.until + timedelta(hours=1)
        digest = fund.build(
            narrator_for(narrator_server), since=later, until=later + timedelta(days=1)
        )
        assert not digest.has_activity
        assert (digest.user_count, digest.email_count, digest.investor_count) == (0, 0, 0)
        assert digest.subject.endswith("no activity")
        assert "There was no investor email activity in this period." in digest.text
        assert "no investor email activity" in digest.html
        assert narrator_server.stub.requests == []  # nobody to narrate

    def test_the_store_window_query_lists_what_was_matched_in_the_window(self, fund: Fund) -> None:
        from_store = build_digest(fund.store, fund.since, fund.until, None)
        given = build_digest(
            fund.store, fund.since, fund.until, None, emails_in_window=fund.emails_in_window
        )
        assert from_store.email_count == given.email_count == 3
        assert from_store.text == given.text
        before = build_digest(fund.store, fund.since - timedelta(days=30), fund.since, None)
        assert before.email_count == 0


class TestLateAndBackfilledMail:
    def test_the_window_is_on_when_mail_became_investor_mail(self, fund: Fund) -> None:
        fund.add_mail("late", to=TEAM[0], subject="Late: signed docs", age=timedelta(days=5))
        fund.add_mail("old", to=TEAM[0], subject="Old: 2025 thread", age=timedelta(days=40))
        fund.add_mail("older", to=TEAM[1], subject="Old: kickoff", age=timedelta(days=60))
        since = datetime.now(UTC)
        fund.sync_all()
        until = datetime.now(UTC)

        digest = fund.build(since=since, until=until)
        investors = section(digest.text, "By investor")
        # Five days old when captured: inside seven days, listed in today's digest.
        assert "Late: signed docs" in investors
        # Forty and sixty days old when matched: counted, not listed.
        assert "Old:" not in digest.text
        assert "Zeta Capital Fund I (Zeta Capital): 1 email (1 received, 0 sent); " in investors
        assert "2 earlier messages newly linked" in investors
        assert (digest.email_count, digest.earlier_count, digest.investor_count) == (1, 2, 1)
        # The first capture's mail is outside this window.
        assert "Intro: Zeta Capital x Fund" not in digest.text
        assert "1 earlier message newly linked." in section(digest.text, "Ben Member")

        # ...and the late mail was in no earlier window.
        assert "Late: signed docs" not in fund.build().text


class TestNarrator:
    def test_one_call_per_user_with_only_that_users_mail(
        self, fund: Fund, narrator_server: RunningNarrator
    ) -> None:
        def reply(request: dict[str, Any]) -> str:
            prompt = request["messages"][-1]["content"]
            who = "Ada" if "Ada Admin" in prompt else "Ben"
            return f"  {who} kept\nthe Zeta relationship warm.  "

        narrator_server.stub.reply = reply
        digest = fund.build(narrator_for(narrator_server))

        requests = narrator_server.stub.requests
        assert len(requests) == 2
        prompts = {
            ("Ada" if "Ada Admin" in r["json"]["messages"][-1]["content"] else "Ben"): r
            for r in requests
        }
        ada_prompt = prompts["Ada"]["json"]["messages"][-1]["content"]
        ben_prompt = prompts["Ben"]["json"]["messages"][-1]["content"]
        assert "Re: follow-on round" in ada_prompt
        assert "Diligence questions" not in ada_prompt
        assert "Diligence questions" in ben_prompt
        assert "Re: follow-on round" not in ben_prompt
        assert "Ben Member" not in ada_prompt
        for r in requests:
            assert r["path"] == "/v1/chat/completions"
            assert r["authorization"] == "Bearer sk-test-key"
            assert r["json"]["model"] == "fund-llm"
        assert "Ada kept the Zeta relationship warm." in digest.text
        assert "Ben kept the Zeta relationship warm." in digest.text
        assert ADA_FALLBACK not in digest.text

    @pytest.mark.parametrize(
        "mode", ["unconfigured", "refused", "stall", "error", "garbage", "empty"]
    )
    def test_every_narrator_failure_falls_back_and_the_digest_is_built(
        self, fund: Fund, narrator_server: RunningNarrator, mode: str
    ) -> None:
        if mode == "unconfigured":
            narrator = ChatNarrator(None, None, None, timeout=TIMEOUT)
        elif mode == "refused":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            narrator = ChatNarrator(f"http://127.0.0.1:{port}", "fund-llm", timeout=TIMEOUT)
        else:
            narrator_server.stub.mode = mode
            narrator = narrator_for(narrator_server)

        started = time.monotonic()
        digest = fund.build(narrator)
        elapsed = time.monotonic() - started

        assert ADA_FALLBACK in digest.text
        assert BEN_FALLBACK in digest.text
        assert (digest.user_count, digest.email_count, digest.investor_count) == (2, 3, 2)
        # Two users, each call bounded by the timeout (a stalled stub waits 3 s).
        assert elapsed < 2 * TIMEOUT + 1.5
        if mode not in {"unconfigured", "refused"}:
            assert len(narrator_server.stub.requests) == 2

    def test_a_failure_for_one_user_leaves_the_others_paragraph(
        self, fund: Fund, narrator_server: RunningNarrator
    ) -> None:
        def reply(request: dict[str, Any]) -> str:
            return "" if "Ada Admin" in request["messages"][-1]["content"] else "Ben was busy."

        narrator_server.stub.reply = reply
        digest = fund.build(narrator_for(narrator_server))
        assert ADA_FALLBACK in digest.text
        assert "Ben was busy." in digest.text
        assert BEN_FALLBACK not in digest.text

    def test_a_narrator_that_raises_falls_back(self, fund: Fund) -> None:
        class Broken:
            def narrate(self, system: str, prompt: str) -> str | None:
                raise RuntimeError("bug")

        digest = fund.build(Broken())
        assert ADA_FALLBACK in digest.text


class TestEscaping:
    def test_hostile_subject_and_narrator_text_are_escaped_in_html(
        self, fund: Fund, narrator_server: RunningNarrator
    ) -> None:
        fund.add_mail("hostile", to=TEAM[0], subject=HOSTILE, age=timedelta(hours=1))
        since = datetime.now(UTC)
        fund.sync_all()
        narrator_server.stub.reply = '<img src=x onerror="alert(1)"> & <b>bold</b>'

        digest = fund.build(narrator_for(narrator_server), since=since, until=datetime.now(UTC))

        assert "<script" not in digest.html
        assert "<img" not in digest.html
        assert "<b>" not in digest.html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in digest.html
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in (
            digest.html
        )
        assert HOSTILE in digest.text  # plain text carries it as it is
        # The prompt carries the subject as data (the narrator sees it, the HTML never raw).
        assert "alert" in narrator_server.stub.requests[0]["json"]["messages"][-1]["content"]
