"""When the digest goes out: policy precedence, the once-per-local-day guard under concurrent
ticks, failed-day retries, a rolled-over missed day, DST days, send-now and the test-email
recipient check. Delivery is real: SMTP with AUTH to an aiosmtpd sink on loopback."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sandbox.smtp_sink import SmtpSink
from shared.adapters.smtp import SmtpSender
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import Caller, DigestPolicy, Guard, Role, User
from shared.domain.tenancy import SOURCE_SETTING, TeamDomains
from shared.errors import BadRequestError
from shared.services import digest_schedule

ADMINS = ("ada@fund.example", "zed@fund.example")
ON = DigestPolicy(enabled=True, send_hour=18)
FUND = TeamDomains(frozenset({"fund.example"}), SOURCE_SETTING)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        running.allow_send_to(ADMINS)
        yield running


@pytest.fixture
def team_store(tmp_path: Path) -> SqliteStore:
    team_store = SqliteStore(tmp_path / "crm.sqlite3")
    for email in ADMINS:
        team_store.add_user(User.new(email, email.split("@")[0].title(), Role.ADMIN))
    team_store.add_user(User.new("mem@fund.example", "Mem"))
    return team_store


def runtime(
    team_store: SqliteStore, sink: SmtpSink, *, password: str | None = None
) -> digest_schedule.DigestRuntime:
    smtp = SmtpSender(sink.host, sink.port, "none", sink.user, password or sink.password, timeout=5)
    return digest_schedule.DigestRuntime(
        store=team_store,
        narrator=None,
        gmail_sender_for=None,
        smtp=smtp,
        smtp_from=sink.user,
        team_domains=lambda: FUND,
    )


def tick(
    team_store: SqliteStore,
    sink: SmtpSink,
    now: datetime,
    *,
    policy: DigestPolicy = ON,
    zone: str = "UTC",
    password: str | None = None,
) -> digest_schedule.TickOutcome:
    return digest_schedule.tick(
        runtime(team_store, sink, password=password),
        now=now,
        time_zone=zone,
        policy=policy,
        run_id=uuid.uuid4().hex,
    )


class TestPolicy:
    def test_the_stored_policy_wins_over_the_environment_seed(
        self, team_store: SqliteStore
    ) -> None:
        assert digest_schedule.load_policy(team_store) == DigestPolicy(enabled=False, send_hour=18)
        seeded = digest_schedule.load_policy(team_store, env_enabled=True, env_send_hour=7)
        assert seeded == DigestPolicy(enabled=True, send_hour=7)
        admin = Caller(email=ADMINS[0], role=Role.ADMIN)
        digest_schedule.save_policy(team_store, admin, DigestPolicy(enabled=False, send_hour=9))
        assert digest_schedule.load_policy(team_store, env_enabled=True, env_send_hour=7) == (
            DigestPolicy(enabled=False, send_hour=9)
        )
        assert team_store.list_audit()[0].action == "digest.policy"


class TestTick:
    def test_sends_once_per_day_at_or_after_the_send_hour(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        day = datetime(2026, 11, 25, tzinfo=UTC)
        assert tick(team_store, sink, day + timedelta(hours=18), policy=DigestPolicy()).reason == (
            "disabled"
        )
        assert tick(team_store, sink, day + timedelta(hours=17, minutes=45)).reason == (
            "before send hour"
        )
        sent = tick(team_store, sink, day + timedelta(hours=18))
        assert sent.sent
        assert sent.transport == "smtp"
        assert not tick(team_store, sink, day + timedelta(hours=18, minutes=15)).sent
        assert len(sink.messages) == 1
        (message,) = sink.messages
        assert sorted(message.recipients) == sorted(ADMINS)  # admins only: never the member
        assert team_store.get_setting(digest_schedule.CURSOR_SETTING) == (
            (day + timedelta(hours=18)).isoformat()
        )

    def test_two_ticks_at_once_send_one_digest(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        now = datetime(2026, 11, 25, 18, 5, tzinfo=UTC)
        barrier = threading.Barrier(4)
        outcomes: list[digest_schedule.TickOutcome] = []

        def run() -> None:
            barrier.wait()
            outcomes.append(tick(team_store, sink, now))

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(o.sent for o in outcomes) == 1
        assert len(sink.messages) == 1

    def test_a_failed_day_is_retried_three_times_and_the_cursor_waits(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        day = datetime(2026, 11, 25, 18, tzinfo=UTC)
        for attempt in range(3):
            outcome = tick(
                team_store, sink, day + timedelta(minutes=15 * attempt), password="wrong"
            )
            assert outcome.reason == "failed"
        guard = team_store.get_guard(digest_schedule.guard_id("2026-11-25"))
        assert guard is not None
        assert (guard.state, guard.attempts) == ("failed", 3)
        assert (
            tick(team_store, sink, day + timedelta(hours=1)).reason == "already sent or being sent"
        )
        assert team_store.get_setting(digest_schedule.CURSOR_SETTING) is None
        assert sink.messages == []

    def test_a_missed_day_rolls_into_the_next_digest(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        first = datetime(2026, 11, 23, 18, tzinfo=UTC)
        assert tick(team_store, sink, first).sent
        for attempt in range(3):  # the 24th fails all day
            tick(
                team_store, sink, first + timedelta(days=1, minutes=15 * attempt), password="wrong"
            )
        third = first + timedelta(days=2)
        assert tick(team_store, sink, third).sent
        audit = [a for a in team_store.list_audit() if a.action == "digest.sent"]
        assert audit[0].details["since"] == first.isoformat()  # two days in one window
        assert audit[0].details["until"] == third.isoformat()

    def test_a_day_stuck_sending_is_taken_over_after_30_minutes(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
        team_store.create_guard(
            Guard(
                id=digest_schedule.guard_id("2026-11-25"),
                owner="crashed",
                state="sending",
                attempts=1,
                data={"started_at": now.isoformat()},
            )
        )
        assert not tick(team_store, sink, now + timedelta(minutes=15)).sent
        assert tick(team_store, sink, now + timedelta(minutes=45)).sent

    @pytest.mark.parametrize(
        ("day", "hours"), [("2026-03-29", 23), ("2026-10-25", 25)], ids=["spring", "autumn"]
    )
    def test_dst_days_send_exactly_once(
        self, team_store: SqliteStore, sink: SmtpSink, day: str, hours: int
    ) -> None:
        zone = ZoneInfo("Europe/Berlin")
        start = datetime.fromisoformat(day).replace(tzinfo=zone)
        end = start + timedelta(days=1)
        assert (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=hours)
        moment = start.astimezone(UTC)
        sent_at = []
        while moment < end.astimezone(UTC):
            if tick(team_store, sink, moment, zone="Europe/Berlin").sent:
                sent_at.append(moment.astimezone(zone))
            moment += timedelta(minutes=15)
        assert len(sent_at) == 1
        assert sent_at[0].hour == 18

    def test_a_send_hour_skipped_by_the_clock_change_sends_at_the_next_hour(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        zone = ZoneInfo("Europe/Berlin")
        policy = DigestPolicy(enabled=True, send_hour=2)  # 02:00-03:00 does not exist that day
        moment = datetime(2026, 3, 29, tzinfo=zone).astimezone(UTC)
        sent_at = []
        for _ in range(24):
            if tick(team_store, sink, moment, zone="Europe/Berlin", policy=policy).sent:
                sent_at.append(moment.astimezone(zone))
            moment += timedelta(minutes=15)
        assert [t.hour for t in sent_at] == [3]


class TestSendNowAndTestEmail:
    def test_send_now_leaves_the_cursor_and_the_guard_alone(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        now = datetime(2026, 11, 25, 19, tzinfo=UTC)
        admin = Caller(email=ADMINS[0], role=Role.ADMIN)
        assert digest_schedule.send_now(runtime(team_store, sink), admin, now=now) == "smtp"
        assert team_store.get_setting(digest_schedule.CURSOR_SETTING) is None
        assert team_store.get_guard(digest_schedule.guard_id("2026-11-25")) is None
        assert tick(team_store, sink, now).sent  # the scheduled send still goes out
        assert len(sink.messages) == 2

    def test_a_test_email_goes_to_active_admins_only(self, team_store: SqliteStore) -> None:
        assert digest_schedule.check_test_recipients(
            team_store, [" ADA@fund.example"], team=FUND
        ) == ["ada@fund.example"]
        with pytest.raises(BadRequestError) as refused:
            digest_schedule.check_test_recipients(
                team_store, [ADMINS[0], "mem@fund.example"], team=FUND
            )
        assert refused.value.details["refused"] == ["mem@fund.example"]
        with pytest.raises(BadRequestError):
            digest_schedule.check_test_recipients(team_store, [], team=FUND)


class TestGoingCold:
    def test_the_first_tick_of_a_day_rescores_and_the_digest_lists_who_goes_cold(
        self, team_store: SqliteStore, sink: SmtpSink
    ) -> None:
        from email import message_from_bytes
        from email.policy import default

        from shared.domain.models import (
            Email,
            EmailAccount,
            Investor,
            InvestorLink,
            Mailbox,
            MatchHeader,
            Sighting,
            email_id_for,
        )
        from shared.services import relationships

        day = datetime(2026, 11, 25, tzinfo=UTC)
        account = EmailAccount.new(ADMINS[0], User.new(ADMINS[0]).id)
        team_store.add_email_account(account)
        team_store.upsert_investor(Investor(id="acme", name="Acme <b>LP</b>"))
        for n, (sent, days_ago) in enumerate([(False, 120), (True, 118)]):
            email = Email(
                id=email_id_for(f"<{n}@acme.example>"),
                message_id=f"<{n}@acme.example>",
                references=["<0@acme.example>"] if n else [],
                sender=Mailbox(address=ADMINS[0] if sent else "jane@acme.example"),
                date=day - timedelta(days=days_ago),
            )
            team_store.upsert_email(email)
            team_store.link_email_to_investor(
                InvestorLink.new(email.id, "acme", None, "jane@acme.example", MatchHeader.TO)
            )
            team_store.record_sighting(Sighting.new(account.id, f"g{n}", email.id, is_sent=sent))

        assert not tick(team_store, sink, day + timedelta(hours=1)).sent  # before send hour
        assert team_store.get_guard(relationships.rescore_guard_id(day)) is not None
        scored = team_store.get_relationship_scores(["acme"])["acme"]
        assert scored.scored_at == day + timedelta(hours=1)
        assert tick(team_store, sink, day + timedelta(hours=18)).sent
        assert team_store.get_relationship_scores(["acme"])["acme"] == scored  # once a day
        (message,) = sink.messages
        parsed = message_from_bytes(message.data, policy=default)
        text = parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        html = parsed.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        assert "Going cold" in text
        assert "Acme <b>LP</b> (strength" in text and "no two-way exchange for 118 days" in text
        assert "Acme &lt;b&gt;LP&lt;/b&gt;" in html and "<b>LP</b>" not in html
