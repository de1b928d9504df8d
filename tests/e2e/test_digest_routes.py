"""The digest over HTTP with real tokens: policy read and change, send-now through Gmail and
through the SMTP fallback, the test email's recipient check, and the scheduler's digest_tick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, seed_crm, seed_mail
from shared import wiring
from shared.adapters.gmail.credentials import SCOPE_COMPOSE
from shared.domain.models import Role, User
from tests.support.admin_api import call

ADMIN = TEAM[0]


@pytest.fixture
def digest_stack(tmp_path: Path) -> Iterator[Stack]:
    with local_stack(
        sqlite_path=tmp_path / "crm.sqlite3", bootstrap_admin=ADMIN, start_ticker=False
    ) as running:
        scenario = seed_crm(wiring.store())
        seed_mail(running.gmail, scenario)
        running.gmail.allow_send_to([ADMIN])
        running.smtp.allow_send_to([ADMIN])
        running.server.ticker.fire_now("sync_poll")
        assert wiring.local_queue().wait_idle(30)
        yield running


def test_policy_defaults_then_changes_and_rejects_a_bad_hour(digest_stack: Stack) -> None:
    assert call(digest_stack, "GET", "/digest/policy", ADMIN).json() == {
        "enabled": False,
        "send_hour": 18,
    }
    changed = call(digest_stack, "PATCH", "/digest/policy", ADMIN, json={"enabled": True})
    assert changed.json() == {"enabled": True, "send_hour": 18}
    bad = call(digest_stack, "PATCH", "/digest/policy", ADMIN, json={"send_hour": 24})
    assert bad.status_code == 400
    assert "send_hour" in bad.json()["reason"]
    assert call(digest_stack, "GET", "/digest/policy", TEAM[1]).status_code == 403  # a member


def test_send_now_goes_through_gmail_to_the_admins(digest_stack: Stack) -> None:
    response = call(digest_stack, "POST", "/digest/send-now", ADMIN)
    assert response.status_code == 200
    assert response.json()["transport"] == "gmail"
    (sent,) = digest_stack.gmail.sends
    assert sent.mailbox == ADMIN
    assert list(sent.recipients) == [ADMIN]
    assert "Zeta Capital" in sent.raw.decode("utf-8", "replace")


def test_send_now_falls_back_to_smtp_when_gmail_refuses(digest_stack: Stack) -> None:
    digest_stack.gmail.revoke_scopes(digest_stack.gmail.client_id, [SCOPE_COMPOSE])
    response = call(digest_stack, "POST", "/digest/send-now", ADMIN)
    assert response.json()["transport"] == "smtp"
    assert digest_stack.gmail.sends == []
    (delivered,) = digest_stack.smtp.messages
    assert list(delivered.recipients) == [ADMIN]


def test_the_test_email_refuses_non_admins_and_hides_transport_errors(digest_stack: Stack) -> None:
    refused = call(
        digest_stack, "POST", "/digest/test-email", ADMIN, json={"recipients": ["lp@zeta.vc"]}
    )
    assert refused.status_code == 400
    assert digest_stack.gmail.sends == []
    assert digest_stack.smtp.messages == []
    ok = call(digest_stack, "POST", "/digest/test-email", ADMIN, json={"recipients": [ADMIN]})
    assert ok.status_code == 200
    # Gmail now fails (its access token is cached, so a fault rather than a revoked grant), and
    # the SMTP server no longer takes our password: both transports fail.
    digest_stack.gmail.inject_fault("messages.send", status=500, count=10)
    digest_stack.smtp.password = "rotated-elsewhere"
    failed = call(digest_stack, "POST", "/digest/test-email", ADMIN, json={"recipients": [ADMIN]})
    assert failed.status_code == 502
    assert failed.json() == {"error": "send_failed", "reason": "the test email could not be sent"}


def test_the_test_email_names_each_admin_once(digest_stack: Stack) -> None:
    """One admin named 50 times, in any case, is one recipient (and one audit entry naming
    them once); the header of the message sent says so too."""
    named = [ADMIN, ADMIN.upper(), f"  {ADMIN.title()} "] * 17  # 51 spellings of one address
    response = call(digest_stack, "POST", "/digest/test-email", ADMIN, json={"recipients": named})
    assert response.status_code == 200, response.text
    (sent,) = digest_stack.gmail.sends
    assert list(sent.recipients) == [ADMIN]
    assert sent.raw.decode("ascii", "replace").count(ADMIN) <= 3  # From, To, Message-ID at most
    (audit,) = [a for a in wiring.store().list_audit() if a.action == "digest.test_email"]
    assert audit.details["to"] == [ADMIN]


def test_an_admin_outside_the_team_domains_gets_no_digest(digest_stack: Stack) -> None:
    """An admin stored at another domain (before CRM_TEAM_DOMAINS) is left out of send-now,
    which still reaches the fund's admins, and naming them for the test email is a 400."""
    outsider = User.new("lp@partner.example", "LP", Role.ADMIN)
    wiring.store().add_user(outsider)
    sent = call(digest_stack, "POST", "/digest/send-now", ADMIN)
    assert sent.status_code == 200, sent.text
    (message,) = digest_stack.gmail.sends
    assert list(message.recipients) == [ADMIN]
    refused = call(
        digest_stack,
        "POST",
        "/digest/test-email",
        ADMIN,
        json={"recipients": [ADMIN, outsider.email]},
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "outside_team_domains"
    assert len(digest_stack.gmail.sends) == 1 and digest_stack.smtp.messages == []


def test_digest_tick_sends_once_when_enabled_and_due(digest_stack: Stack) -> None:
    call(digest_stack, "PATCH", "/digest/policy", ADMIN, json={"enabled": True, "send_hour": 0})
    assert digest_stack.server.ticker.fire_now("digest_tick") == 200
    assert digest_stack.server.ticker.fire_now("digest_tick") == 200
    assert len(digest_stack.gmail.sends) == 1
