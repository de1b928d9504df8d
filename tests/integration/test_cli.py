"""The one-line bootstrap command, run as an operator would (a subprocess, env settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox.scenario import TEAM, seed_crm
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import Email, Role, email_id_for
from tests.support.decoded_headers import ZOE_NUL, raw_message, write_old_row
from tests.support.gmail import gmail_world

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    db: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "CRM_SQLITE_PATH": str(db), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bootstrap_admin_creates_the_first_admin_only(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite3"
    first = run_cli(db, "bootstrap-admin", "Ada@Fund.example", "Ada")
    assert first.returncode == 0, first.stderr
    second = run_cli(db, "bootstrap-admin", "mallory@fund.example")
    assert second.returncode == 1
    assert "already exists" in second.stderr
    admins = SqliteStore(db).list_active_admins()
    assert [(u.email, u.name, u.role) for u in admins] == [("ada@fund.example", "Ada", Role.ADMIN)]


def test_bootstrap_admin_outside_the_team_domains_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite3"
    for outsider in ("eve@evil.example", "eve@sub.fund.example", "eve@fund.example.evil"):
        refused = run_cli(db, "bootstrap-admin", outsider, env={"CRM_TEAM_DOMAINS": "fund.example"})
        assert refused.returncode == 1
        assert "outside the fund's domains (fund.example, from CRM_TEAM_DOMAINS)" in refused.stderr
    assert SqliteStore(db).list_users() == []
    ok = run_cli(
        db, "bootstrap-admin", "ada@fund.example", env={"CRM_TEAM_DOMAINS": "fund.example"}
    )
    assert ok.returncode == 0, ok.stderr


def test_repair_snippets_unescapes_old_rows_once_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite3"
    store = SqliteStore(db)
    old = Email(id=email_id_for("<old.1@zeta.vc>"), snippet="We&#39;d &amp;amp; more")
    done = Email(id=email_id_for("<new.1@zeta.vc>"), snippet="Tom &amp; Jerry", snippet_plain=True)
    for email in (old, done):
        store.upsert_email(email)
    store.close()

    first = run_cli(db, "repair-snippets", "--max-pages", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("repair-snippets: ")  # continues or done, by page size
    rest = run_cli(db, "repair-snippets")
    assert rest.returncode == 0, rest.stderr
    assert "repair-snippets: done" in rest.stdout
    assert "marked 1" in rest.stdout  # in all: the old row only
    again = run_cli(db, "repair-snippets")
    assert "already done" in again.stdout
    snippets = {e.id: e.snippet for e in SqliteStore(db).list_emails()}
    assert snippets == {old.id: "We'd &amp; more", done.id: "Tom &amp; Jerry"}


def test_repair_participants_refetches_through_the_configured_gmail(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite3"
    store = SqliteStore(db)
    scenario = seed_crm(store)
    with gmail_world() as world:
        for address in TEAM:
            world.sandbox.add_mailbox(address)
        when = datetime.now(UTC) - timedelta(hours=1)
        raw = raw_message("<nul.5@zeta.vc>", sender=ZOE_NUL, to=TEAM[0], date=when)
        gmail_id = world.sandbox.add_message(TEAM[0], raw, internal_date=when)
        old = write_old_row(store, world.gmail_for(TEAM[0]), scenario.accounts[0].id, gmail_id)
        assert not old.matched
        store.close()
        env = {
            "CRM_GMAIL_API_ENDPOINT": world.base_url,
            "CRM_GMAIL_KEY_SECRET": "gmail-key",
            "CRM_SECRET_GMAIL_KEY": json.dumps(world.key_info),
        }

        result = run_cli(db, "repair-participants", env=env)

    assert result.returncode == 0, result.stderr
    assert "repair-participants: done" in result.stdout
    assert "refetched 1" in result.stdout and "repaired 1" in result.stdout
    email = SqliteStore(db).get_email(old.id)
    assert email is not None and email.matched
    # Re-parsed from the raw message: a name that held a NUL once decoded is nobody's name.
    assert email.sender is not None and email.sender.address == "zoe@zeta.vc"
    assert email.sender.name == ""


def test_recompute_relationships_rebuilds_rows_mail_stored_before_them_lacks(
    tmp_path: Path,
) -> None:
    import sqlite3

    from shared.domain.models import EmailAccount, InvestorLink, Mailbox, MatchHeader, Sighting

    db = tmp_path / "crm.sqlite3"
    store = SqliteStore(db)
    scenario = seed_crm(store)
    email = Email(
        id=email_id_for("<lp.1@zeta.vc>"),
        message_id="<lp.1@zeta.vc>",
        sender=Mailbox(address="zoe@zeta.vc"),
        date=datetime.now(UTC) - timedelta(days=2),
    )
    store.upsert_email(email)
    store.link_email_to_investor(
        InvestorLink.new(email.id, scenario.investor.id, None, "zoe@zeta.vc", MatchHeader.FROM)
    )
    store.record_sighting(Sighting.new(EmailAccount.new(TEAM[0]).id, "g1", email.id))
    assert len(store.list_investor_contributions(scenario.investor.id)) == 1
    store.close()
    # A database from before the rows existed: the mail is there, its row is not.
    with sqlite3.connect(db) as raw:
        raw.execute("DELETE FROM relationship_contributions")

    first = run_cli(db, "recompute-relationships")
    assert first.returncode == 0, first.stderr
    assert "1 rows changed" in first.stdout
    again = run_cli(db, "recompute-relationships")
    assert "0 rows changed" in again.stdout
    store = SqliteStore(db)
    assert len(store.list_investor_contributions(scenario.investor.id)) == 1
    assert store.get_relationship_scores([scenario.investor.id])[scenario.investor.id].strength > 0
