"""The digest's transports against the real Gmail sandbox and an aiosmtpd sink with AUTH.

Gmail-DWD ``messages.send`` first (read back from ``sandbox.sends`` and parsed), SMTP as the
fallback when Gmail refuses (a revoked ``gmail.compose`` grant, an injected 500), and the rule
that every recipient (To, Cc, Bcc, and the SMTP envelope) is an active admin, enforced inside
both send-capable modules: a refusal sends nothing on either transport. Credentials never reach
an error message or a log line.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from sandbox.smtp_sink import SmtpSink
from shared.adapters.gmail.credentials import SCOPE_COMPOSE, delegated_credentials
from shared.adapters.gmail.send import (
    GmailSender,
    NotAnAdminError,
    header_recipients,
    require_admin_recipients,
)
from shared.adapters.smtp import SmtpSender, SmtpSendError
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import Role, User
from shared.domain.tenancy import SOURCE_SETTING, OutsideTeamError, TeamDomains
from shared.errors import ConfigurationError
from shared.logging import StdoutJsonHandler
from shared.services.mail_transport import (
    DigestNotSentError,
    SendResult,
    active_admin_addresses,
    build_digest_message,
    send_digest,
)
from shared.web import status_for
from tests.support import send_guard
from tests.support.gmail import GmailWorld, gmail_world

ADA = "ada@fund.example"  # the first active admin by address: the default sender
BOB = "bob@fund.example"
AARON = "aaron@fund.example"  # an admin, but inactive (and first by address)
CAROL = "carol@fund.example"  # an active member, not an admin
OUTSIDER = "lp@zeta.vc"
SMTP_USER = "digest-smtp@fund.example"
SMTP_PASSWORD = "S3cret-smtp-Passw0rd!"
SUBJECT = "Daily digest — Zürich ✓ 25 Nov"
TEXT = "Ada: 3 emails with Zeta Ventures.\nBob: nothing today.\n"
FUND = TeamDomains(frozenset({"fund.example"}), SOURCE_SETTING)
HTML = "<p>Ada: 3 emails with <b>Zeta Ventures</b>.</p><p>Bob: nothing today.</p>"


@dataclass
class Rig:
    store: SqliteStore
    world: GmailWorld
    sink: SmtpSink

    def gmail_sender_for(self, address: str) -> GmailSender:
        credentials = delegated_credentials(address, [SCOPE_COMPOSE], key_info=self.world.key_info)
        return GmailSender(credentials, self.world.base_url)

    def smtp(self, password: str = SMTP_PASSWORD) -> SmtpSender:
        return SmtpSender(self.sink.host, self.sink.port, "none", SMTP_USER, password, timeout=10)

    def admins(self) -> list[str]:
        return active_admin_addresses(self.store)

    def nothing_sent(self) -> bool:
        return not self.world.sandbox.sends and not self.sink.messages


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = SqliteStore(tmp_path / "crm.sqlite3")
    for email, role in ((ADA, Role.ADMIN), (BOB, Role.ADMIN), (AARON, Role.ADMIN)):
        store.add_user(User.new(email, email.split("@")[0].title(), role))
    store.add_user(User.new(CAROL, "Carol", Role.MEMBER))
    aaron = store.get_user_by_email(AARON)
    assert aaron is not None
    store.change_user(aaron.id, is_active=False)
    with gmail_world() as world, SmtpSink(SMTP_USER, SMTP_PASSWORD) as sink:
        for mailbox in (ADA, BOB, AARON, "digest@fund.example"):
            world.sandbox.add_mailbox(mailbox)
        # The session guard's notion of "admin": only the active admins.
        world.sandbox.allow_send_to([ADA, BOB])
        sink.allow_send_to([ADA, BOB])
        yield Rig(store, world, sink)


def _send(
    rig: Rig,
    to: list[str],
    *,
    smtp: SmtpSender | None = None,
    digest_sender: str = "",
    smtp_from: str = "",
) -> SendResult:
    return send_digest(
        rig.store,
        to,
        SUBJECT,
        TEXT,
        HTML,
        gmail_sender_for=rig.gmail_sender_for,
        smtp=smtp or rig.smtp(),
        team_domains=lambda: FUND,
        digest_sender=digest_sender,
        smtp_from=smtp_from,
    )


def _assert_digest(raw: bytes, sender: str, to: list[str]) -> None:
    assert b"=?utf-8?" in raw.lower()  # the subject is RFC 2047-encoded on the wire
    message = message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message["From"].addresses[0].addr_spec == sender
    assert [a.addr_spec for a in message["To"].addresses] == to
    assert message["Subject"] == SUBJECT
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content_charset() == "utf-8"
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert HTML in html.get_content()


# --------------------------------------------------------------------------- Gmail path


def test_gmail_delivers_the_digest_to_the_admins(rig: Rig) -> None:
    result = _send(rig, [ADA, BOB])
    sends = rig.world.sandbox.sends
    assert len(sends) == 1
    assert result == SendResult("gmail", sends[0].id)
    sent = sends[0]
    assert sent.mailbox == ADA  # impersonates the first *active* admin (Aaron is inactive)
    assert sent.subject == SUBJECT
    assert sorted(sent.recipients) == [ADA, BOB]
    _assert_digest(sent.raw, ADA, [ADA, BOB])
    assert rig.sink.messages == []


def test_the_digest_sender_setting_is_the_gmail_mailbox_and_from(rig: Rig) -> None:
    _send(rig, [BOB], digest_sender="Digest@Fund.example")
    (sent,) = rig.world.sandbox.sends
    assert sent.mailbox == "digest@fund.example"
    _assert_digest(sent.raw, "digest@fund.example", [BOB])


# --------------------------------------------------------------------------- recipients


@pytest.mark.parametrize("to", [[ADA, OUTSIDER], [CAROL], [ADA, AARON], [OUTSIDER.upper()]])
def test_a_recipient_who_is_not_an_active_admin_sends_nothing(rig: Rig, to: list[str]) -> None:
    with pytest.raises(NotAnAdminError) as refused:
        _send(rig, to)
    assert status_for(refused.value) == 400
    assert rig.nothing_sent()


@pytest.mark.parametrize("header", ["To", "Cc", "Bcc", "Resent-To"])
@pytest.mark.parametrize("outsider", [OUTSIDER, CAROL, AARON])
def test_both_transports_refuse_a_non_admin_in_any_recipient_header(
    rig: Rig, header: str, outsider: str
) -> None:
    raw = build_digest_message(ADA, [ADA], SUBJECT, TEXT, HTML)
    if header == "To":
        raw = raw.replace(b"To: ada@fund.example", f"To: ada@fund.example, {outsider}".encode())
    else:
        raw = f"{header}: Someone <{outsider}>\r\n".encode() + raw
    with pytest.raises(NotAnAdminError):
        rig.gmail_sender_for(ADA).deliver(raw, admins=rig.admins(), team=FUND)
    with pytest.raises(NotAnAdminError):
        rig.smtp().deliver(raw, ADA, [ADA], admins=rig.admins(), team=FUND)
    assert rig.nothing_sent()


@pytest.mark.parametrize(
    "stranger", ["ops@sub.fund.example", "ops@fund.example.evil", "ops@notfund.example"]
)
def test_both_transports_refuse_an_admin_outside_the_team_domains(rig: Rig, stranger: str) -> None:
    """An admin added at another domain (a subdomain or a look-alike is another domain) is an
    admin, but the digest does not leave the fund: each transport refuses right before sending,
    in a header or only in the SMTP envelope, and so does send_digest."""
    rig.store.add_user(User.new(stranger, "Ops", Role.ADMIN))
    assert stranger in rig.admins()
    both = build_digest_message(ADA, [ADA, stranger], SUBJECT, TEXT, HTML)
    with pytest.raises(OutsideTeamError, match=re.escape(stranger)):
        rig.gmail_sender_for(ADA).deliver(both, admins=rig.admins(), team=FUND)
    with pytest.raises(OutsideTeamError, match=re.escape(stranger)):
        rig.smtp().deliver(both, ADA, [ADA, stranger], admins=rig.admins(), team=FUND)
    only_ada = build_digest_message(ADA, [ADA], SUBJECT, TEXT, HTML)
    with pytest.raises(OutsideTeamError, match=re.escape(stranger)):
        rig.smtp().deliver(only_ada, ADA, [ADA, stranger], admins=rig.admins(), team=FUND)
    with pytest.raises(OutsideTeamError) as refused:
        _send(rig, [ADA, stranger])
    assert status_for(refused.value) == 400
    assert refused.value.details["refused"] == [stranger]
    assert rig.nothing_sent()


def test_smtp_refuses_an_envelope_recipient_the_headers_do_not_show(rig: Rig) -> None:
    raw = build_digest_message(ADA, [ADA], SUBJECT, TEXT, HTML)
    with pytest.raises(NotAnAdminError, match=re.escape(OUTSIDER)):
        rig.smtp().deliver(raw, ADA, [ADA, OUTSIDER], admins=rig.admins(), team=FUND)
    assert rig.nothing_sent()


def test_the_guard_reads_group_syntax_and_refuses_what_is_not_an_address() -> None:
    raw = (
        b"From: ada@fund.example\r\nTo: admins: Ada <ada@fund.example>, bob@fund.example;\r\n"
        b"Cc: undisclosed-recipients:;\r\nSubject: x\r\n\r\nbody\r\n"
    )
    assert header_recipients(raw) == [ADA, BOB]
    assert require_admin_recipients(raw, [ADA, BOB]) == [ADA, BOB]
    with pytest.raises(NotAnAdminError):
        require_admin_recipients(raw, [ADA])
    with pytest.raises(NotAnAdminError):
        require_admin_recipients(b"To: undisclosed\r\n\r\nx", [ADA])
    with pytest.raises(NotAnAdminError, match="no recipient"):
        require_admin_recipients(b"Subject: x\r\n\r\nx", [ADA])
    with pytest.raises(NotAnAdminError):
        require_admin_recipients(raw, [])  # no admin at all: nobody may be mailed


def test_an_inactive_admin_is_not_an_admin(rig: Rig) -> None:
    assert rig.admins() == [ADA, BOB]
    raw = build_digest_message(ADA, [AARON], SUBJECT, TEXT, HTML)
    with pytest.raises(NotAnAdminError, match=re.escape(AARON)):
        rig.gmail_sender_for(ADA).deliver(raw, admins=rig.admins(), team=FUND)
    with pytest.raises(NotAnAdminError, match=re.escape(AARON)):
        rig.smtp().deliver(raw, ADA, [AARON], admins=rig.admins(), team=FUND)
    assert rig.nothing_sent()


# --------------------------------------------------------------------------- SMTP fallback


def _revoke_compose(rig: Rig) -> None:
    client_id = rig.world.key_info["client_id"]
    rig.world.sandbox.revoke_scopes(client_id, [SCOPE_COMPOSE])


@pytest.mark.parametrize(
    "refuse",
    [
        pytest.param(_revoke_compose, id="compose-revoked"),
        pytest.param(
            lambda rig: rig.world.sandbox.inject_fault("messages.send", status=500), id="gmail-500"
        ),
        pytest.param(
            lambda rig: rig.world.sandbox.inject_fault("messages.send", status=403), id="gmail-403"
        ),
    ],
)
def test_smtp_delivers_when_gmail_refuses(
    rig: Rig, refuse: Callable[[Rig], None], caplog: pytest.LogCaptureFixture
) -> None:
    refuse(rig)
    with caplog.at_level(logging.INFO, logger="shared.services.mail_transport"):
        result = _send(rig, [ADA, BOB], smtp_from="digest-smtp@fund.example")
    assert rig.world.sandbox.sends == []
    (message,) = rig.sink.messages
    assert result == SendResult("smtp", message_from_bytes(message.data)["Message-ID"])
    assert message.auth_user == SMTP_USER  # the sink only accepts mail after AUTH
    assert message.mail_from == "digest-smtp@fund.example"
    assert sorted(message.rcpt_tos) == [ADA, BOB]
    _assert_digest(message.data, "digest-smtp@fund.example", [ADA, BOB])
    failure = next(r for r in caplog.records if r.getMessage() == "digest transport failed")
    assert failure.fields["transport"] == "gmail"  # type: ignore[attr-defined]


def test_the_sink_refuses_mail_without_auth(rig: Rig) -> None:
    raw = build_digest_message(ADA, [ADA], SUBJECT, TEXT, HTML)
    sender = SmtpSender(rig.sink.host, rig.sink.port, "none", timeout=10)
    with pytest.raises(SmtpSendError, match="530"):
        sender.deliver(raw, ADA, [ADA], admins=rig.admins(), team=FUND)
    assert rig.nothing_sent()


def test_a_wrong_smtp_password_never_shows_in_errors_or_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "Wr0ng-but-still-SECRET-9f2c"
    _revoke_compose(rig)
    root = logging.getLogger()
    ours = not any(isinstance(h, StdoutJsonHandler) for h in root.handlers)
    handler = StdoutJsonHandler()
    if ours:
        root.addHandler(handler)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(DigestNotSentError) as failed:
            _send(rig, [ADA], smtp=rig.smtp(password=wrong))
    finally:
        if ours:
            root.removeHandler(handler)
    assert rig.nothing_sent()
    assert rig.sink.auth_failures >= 1
    said = f"{failed.value} {failed.value.to_json()} {failed.value.__cause__!r}"
    assert "gmail" in said
    assert "smtp" in said
    printed = capsys.readouterr().out
    logged = caplog.text + " ".join(repr(getattr(r, "fields", "")) for r in caplog.records)
    for text in (said, printed, logged):
        assert wrong not in text
        assert SMTP_PASSWORD not in text
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    failures = [line for line in lines if line.get("event") == "digest_transport_failed"]
    assert [f["transport"] for f in failures] == ["gmail", "smtp"]
    assert failures[1]["smtp_code"] == 535
    # The SMTP adapter's own error names the code, not the password or the server's reply.
    with pytest.raises(SmtpSendError) as direct:
        rig.smtp(password=wrong).deliver(
            build_digest_message(ADA, [ADA], SUBJECT, TEXT, HTML),
            ADA,
            [ADA],
            admins=[ADA],
            team=FUND,
        )
    assert wrong not in str(direct.value)
    assert direct.value.__cause__ is None
    assert direct.value.__suppress_context__


def test_no_transport_or_no_sender_is_a_configuration_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "empty.sqlite3")
    with pytest.raises(NotAnAdminError):
        send_digest(
            store, [ADA], "s", "t", "h", gmail_sender_for=None, smtp=None, team_domains=lambda: FUND
        )
    store.add_user(User.new(ADA, "Ada", Role.ADMIN))
    with pytest.raises(ConfigurationError):
        send_digest(
            store, [ADA], "s", "t", "h", gmail_sender_for=None, smtp=None, team_domains=lambda: FUND
        )
    with pytest.raises(ConfigurationError, match="loopback"):
        SmtpSender("smtp.example.com", 25, "none", "u", "p")


def test_the_session_guard_catches_an_smtp_send_to_a_non_admin(rig: Rig) -> None:
    """Breaks the rule on purpose through the sink (the product code cannot), checks the guard
    reports it, then takes the sink off the session's list."""
    assert rig.sink in send_guard.tracked()
    try:
        with smtplib.SMTP(rig.sink.host, rig.sink.port, timeout=10) as client:
            client.login(SMTP_USER, SMTP_PASSWORD)
            client.sendmail(ADA, [OUTSIDER], b"To: ada@fund.example\r\nSubject: x\r\n\r\nx\r\n")
        problems = send_guard.send_problems([rig.sink])
        assert len(problems) == 1
        assert OUTSIDER in problems[0]
    finally:
        send_guard.untrack(rig.sink)


def test_the_admins_are_read_again_right_before_the_fallback(rig: Rig) -> None:
    """Bob stops being an admin while Gmail is failing: the SMTP fallback refuses him."""
    store = rig.store
    calls = 0

    class DemotingStore:
        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        def list_active_admins(self) -> list[User]:
            nonlocal calls
            calls += 1
            if calls == 3:  # after the up-front check and the Gmail attempt's check
                bob = store.get_user_by_email(BOB)
                assert bob is not None
                store.change_user(bob.id, role=Role.MEMBER)
            return store.list_active_admins()

    rig.world.sandbox.inject_fault("messages.send", status=500)
    with pytest.raises(NotAnAdminError, match=re.escape(BOB)):
        send_digest(
            DemotingStore(),  # type: ignore[arg-type]
            [ADA, BOB],
            SUBJECT,
            TEXT,
            HTML,
            gmail_sender_for=rig.gmail_sender_for,
            smtp=rig.smtp(),
            team_domains=lambda: FUND,
        )
    assert rig.nothing_sent()
