"""``doctor`` against loopback stand-ins of everything it checks, with each fault injected.

Real mode, as a fund would run it: Google's certificates (a stand-in issuer that signs as
``https://accounts.google.com``), Gmail's token endpoint and delegation grant (the Gmail
sandbox), Pub/Sub (``sandbox.pubsub_rest``), Firestore's admin API (``sandbox.firestore_admin``),
an SMTP server with AUTH and the narrator stub. A healthy configuration passes; each fault makes
the check that owns it fail with words that say how to fix it; optional checks never change the
exit status; no secret value ever appears in the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.firestore_admin import FirestoreAdminStandIn
from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
from sandbox.issuer import RunningIssuer, SandboxIssuer, serve_issuer
from sandbox.narrator_stub import NarratorStub, RunningNarrator, serve_narrator_stub
from sandbox.pubsub_rest import GMAIL_PUSH_PUBLISHER, PubSubRestStandIn
from sandbox.smtp_sink import SmtpSink
from shared import doctor, wiring
from shared.adapters.gmail.credentials import SCOPE_COMPOSE, SCOPE_READONLY
from shared.cli import main as cli_main

pytestmark = pytest.mark.usefixtures("loopback_bypasses_proxies")

ADA = "ada@fund.test"
NARRATOR_KEY = "narrator-key-value-7731"
SMTP_PASSWORD = "smtp-password-value-9923"


@dataclass
class World:
    gmail: GmailSandbox
    gmail_url: str
    google: RunningIssuer
    pubsub: PubSubRestStandIn
    firestore: FirestoreAdminStandIn
    smtp: SmtpSink
    narrator: RunningNarrator
    env: dict[str, str]
    key_json: str

    def apply(self, monkeypatch: pytest.MonkeyPatch, **overrides: str | None) -> None:
        for name, value in {**self.env, **overrides}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        wiring.reset()


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    gmail = GmailSandbox()
    gmail.add_mailbox(ADA)
    var = tmp_path_factory.mktemp("doctor") / "var"
    with (
        serve_gmail_sandbox(gmail) as gmail_server,
        serve_issuer(SandboxIssuer("https://accounts.google.com")) as google,
        PubSubRestStandIn(project="sandbox-project") as pubsub,
        FirestoreAdminStandIn(project="sandbox-project") as firestore,
        SmtpSink(password=SMTP_PASSWORD) as smtp,
        serve_narrator_stub(NarratorStub()) as narrator,
    ):
        key_info = gmail.service_account_info()
        assert key_info["project_id"] == "sandbox-project"
        gmail.grant_scopes(key_info["client_id"], [SCOPE_READONLY, SCOPE_COMPOSE])
        topic = pubsub.add_topic("gmail-watch", publishers=[GMAIL_PUSH_PUBLISHER])
        subscription = pubsub.add_subscription("gmail-watch-pull", topic="gmail-watch")
        key_json = json.dumps(key_info)
        env = {
            "CRM_MODE": "real",
            "CRM_SQLITE_PATH": str(var / "crm.sqlite3"),
            "CRM_TOKEN_CERTS_URL": google.certs_url,
            "CRM_PEOPLE_AUDIENCE": "fund-console.apps.googleusercontent.com",
            "CRM_TEAM_DOMAINS": "fund.test",
            "CRM_GMAIL_API_ENDPOINT": gmail_server.base_url,
            "CRM_GMAIL_KEY_SECRET": "gmail-key",
            "CRM_SECRET_GMAIL_KEY": key_json,
            "CRM_GMAIL_WATCH_TOPIC": topic,
            "CRM_GMAIL_WATCH_SUBSCRIPTION": subscription,
            "CRM_PUBSUB_REST_ENDPOINT": pubsub.endpoint,
            "CRM_SMTP_HOST": smtp.host,
            "CRM_SMTP_PORT": str(smtp.port),
            "CRM_SMTP_SECURITY": "none",
            "CRM_SMTP_USER": smtp.user,
            "CRM_SMTP_PASSWORD_SECRET": "smtp-password",
            "CRM_SECRET_SMTP_PASSWORD": SMTP_PASSWORD,
            "CRM_NARRATOR_URL": narrator.base_url,
            "CRM_NARRATOR_MODEL": "fund-model",
            "CRM_NARRATOR_KEY_SECRET": "narrator-key",
            "CRM_SECRET_NARRATOR_KEY": NARRATOR_KEY,
            "CRM_FIRESTORE_ADMIN_ENDPOINT": firestore.endpoint,
            "CRM_GCP_PROJECT": "sandbox-project",
        }
        yield World(
            gmail, gmail_server.base_url, google, pubsub, firestore, smtp, narrator, env, key_json
        )


def run(*mailboxes: str) -> tuple[int, str]:
    lines: list[str] = []
    code = doctor.main(mailboxes, out=lines.append)
    text = "\n".join(lines)
    for secret in (NARRATOR_KEY, SMTP_PASSWORD, "PRIVATE KEY"):
        assert secret not in text
    return code, text


def line_of(text: str, check: str) -> str:
    """The report line of one check (and its fix line, if any)."""
    lines = text.splitlines()
    for position, line in enumerate(lines):
        if f"] {check}" in line:
            following = lines[position + 1] if position + 1 < len(lines) else ""
            return line + ("\n" + following if following.lstrip().startswith("fix:") else "")
    raise AssertionError(f"no line for {check!r} in:\n{text}")


def test_a_healthy_real_configuration_passes_every_check(
    stand_ins: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins.apply(monkeypatch)
    code, text = run(ADA)
    assert code == 0, text
    for check in (
        "settings",
        "trust anchors",
        "people audience",
        "google certificates",
        "team domains",
        "secret gmail-key",
        f"delegation {ADA} gmail.readonly",
        f"delegation {ADA} gmail.compose",
        "watch topic",
        "watch topic publisher",
        "watch subscription",
        "smtp (optional)",
        "narrator (optional)",
    ):
        assert line_of(text, check).startswith("[ok  ]"), line_of(text, check)
    assert "[FAIL]" not in text and "every required check passed" in text
    assert "local (local_service)" in line_of(text, "trust anchors")
    assert "sandbox" not in line_of(text, "trust anchors")


def test_the_cli_runs_doctor_and_returns_its_status(
    stand_ins: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_ins.apply(monkeypatch, CRM_PEOPLE_AUDIENCE="")
    assert cli_main(["doctor", "--mailbox", ADA]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] people audience: CRM_PEOPLE_AUDIENCE is empty" in out


@dataclass(frozen=True)
class Fault:
    """One thing wrong: how to inject it, which check must fail, and words it must say."""

    check: str
    says: tuple[str, ...]
    env: dict[str, str | None]
    inject: Callable[[World], Callable[[], None]] | None = None
    required: bool = True


def _revoke_compose(stand_ins: World) -> Callable[[], None]:
    client = stand_ins.gmail.service_account_info()["client_id"]
    stand_ins.gmail.revoke_scopes(client, [SCOPE_COMPOSE])
    return lambda: stand_ins.gmail.grant_scopes(client, [SCOPE_READONLY, SCOPE_COMPOSE])


def _drop_publisher(stand_ins: World) -> Callable[[], None]:
    stand_ins.pubsub.add_topic("gmail-watch")  # same topic, no publishers

    def restore() -> None:
        stand_ins.pubsub.add_topic("gmail-watch", publishers=[GMAIL_PUSH_PUBLISHER])

    return restore


def _drop_index(stand_ins: World) -> Callable[[], None]:
    index = stand_ins.firestore.drop("investors")

    def restore() -> None:
        stand_ins.firestore._indexes.append((index, "READY"))

    return restore


def _building_index(stand_ins: World) -> Callable[[], None]:
    stand_ins.firestore.set_state("organizations", "CREATING")

    def restore() -> None:
        stand_ins.firestore.set_state("organizations", "READY")

    return restore


def _no_database(stand_ins: World) -> Callable[[], None]:
    stand_ins.firestore.database_exists = False

    def restore() -> None:
        stand_ins.firestore.database_exists = True

    return restore


FIRESTORE: dict[str, str | None] = {"CRM_STORE_BACKEND": "firestore"}
FAULTS = {
    "invalid setting": Fault("settings", ("CRM_SMTP_PORT",), {"CRM_SMTP_PORT": "0"}),
    "sandbox issuer in real mode": Fault(
        "trust anchors",
        ("trusts Google's issuers only",),
        {"CRM_TOKEN_ISSUERS": "https://sandbox-issuer.local"},
    ),
    "people audience unset": Fault(
        "people audience", ("CRM_PEOPLE_AUDIENCE", "OAuth client id"), {"CRM_PEOPLE_AUDIENCE": ""}
    ),
    "certificates unreachable": Fault(
        "google certificates", ("not reachable",), {"CRM_TOKEN_CERTS_URL": "http://127.0.0.1:9/c"}
    ),
    "certificates not a certs document": Fault(
        "google certificates", ("HTTP 404",), {"CRM_TOKEN_CERTS_URL": "{google}/nothing-here"}
    ),
    "team domains unset": Fault("team domains", ("CRM_TEAM_DOMAINS",), {"CRM_TEAM_DOMAINS": None}),
    "gmail key secret missing": Fault(
        "secret gmail-key", ("CRM_SECRET_GMAIL_KEY",), {"CRM_SECRET_GMAIL_KEY": None}
    ),
    "gmail key secret not a key": Fault(
        "secret gmail-key",
        ("not a service-account key",),
        {"CRM_SECRET_GMAIL_KEY": "hunter2hunter2"},
    ),
    "no delegation configured": Fault(
        "gmail delegation",
        ("CRM_GMAIL_KEY_SECRET", "CRM_GMAIL_SERVICE_ACCOUNT"),
        {"CRM_GMAIL_KEY_SECRET": None},
    ),
    "compose scope not granted": Fault(
        f"delegation {ADA} gmail.compose",
        ("gmail.compose", "unauthorized_client", "Domain-wide delegation", "client ID"),
        {},
        _revoke_compose,
    ),
    "mailbox not in the domain": Fault(
        "delegation nobody@fund.test gmail.readonly", ("invalid_grant",), {}, None
    ),
    "topic missing": Fault(
        "watch topic",
        ("does not exist",),
        {"CRM_GMAIL_WATCH_TOPIC": "projects/sandbox-project/topics/nope"},
    ),
    "topic in another project": Fault(
        "watch topic project",
        ("same project", "other-project"),
        {"CRM_GMAIL_WATCH_TOPIC": "projects/other-project/topics/gmail-watch"},
    ),
    "gmail may not publish": Fault(
        "watch topic publisher",
        ("gmail-api-push@system.gserviceaccount.com", "organisation policy"),
        {},
        _drop_publisher,
    ),
    "subscription missing": Fault(
        "watch subscription",
        ("does not exist",),
        {"CRM_GMAIL_WATCH_SUBSCRIPTION": "projects/sandbox-project/subscriptions/nope"},
    ),
    "firestore index missing": Fault(
        "firestore indexes", ("missing: investors(",), FIRESTORE, _drop_index
    ),
    "firestore index building": Fault(
        "firestore indexes", ("not ready", "CREATING"), FIRESTORE, _building_index
    ),
    "firestore database missing": Fault(
        "firestore database", ("does not exist",), FIRESTORE, _no_database
    ),
    "smtp wrong password": Fault(
        "smtp (optional)",
        ("refused the login",),
        {"CRM_SECRET_SMTP_PASSWORD": "wrong-password-1234"},
        required=False,
    ),
    "smtp unreachable": Fault(
        "smtp (optional)", ("failed during connect",), {"CRM_SMTP_PORT": "9"}, required=False
    ),
    "narrator failing": Fault("narrator (optional)", ("http_status",), {}, None, required=False),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_doctor_finds_each_injected_fault(
    name: str, stand_ins: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = FAULTS[name]
    env = {
        key: value.format(google=stand_ins.google.base_url) if value else value
        for key, value in fault.env.items()
    }
    stand_ins.apply(monkeypatch, **env)
    restore = fault.inject(stand_ins) if fault.inject else None
    mailboxes = [ADA, "nobody@fund.test"] if name == "mailbox not in the domain" else [ADA]
    if name == "narrator failing":
        stand_ins.narrator.stub.mode = "error"
    try:
        code, text = run(*mailboxes)
    finally:
        if restore is not None:
            restore()
        stand_ins.narrator.stub.mode = "answer"
    found = line_of(text, fault.check)
    assert found.startswith("[FAIL]" if fault.required else "[fail]"), found
    for words in fault.says:
        assert words in found, found
    assert code == (1 if fault.required else 0), text
    if fault.required:
        assert "required check(s) failed" in text
    if "CRM_SECRET_SMTP_PASSWORD" in fault.env:
        assert "wrong-password-1234" not in text


def test_optional_checks_are_skipped_when_not_configured(
    stand_ins: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins.apply(
        monkeypatch,
        CRM_SMTP_HOST=None,
        CRM_NARRATOR_URL=None,
        CRM_GMAIL_WATCH_TOPIC=None,
        CRM_GMAIL_WATCH_SUBSCRIPTION=None,
    )
    code, text = run(ADA)
    assert code == 0, text
    assert line_of(text, "smtp (optional)").startswith("[skip]")
    assert line_of(text, "narrator (optional)").startswith("[skip]")
    assert "polled every minute" in line_of(text, "watch topic")


def test_without_a_subscription_one_machine_is_warned_it_polls_every_minute(
    stand_ins: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins.apply(monkeypatch, CRM_GMAIL_WATCH_SUBSCRIPTION=None)
    code, text = run(ADA)
    assert code == 0, text
    found = line_of(text, "watch subscription")
    assert found.startswith("[warn]") and "every minute" in found


def test_a_healthy_firestore_passes_and_the_sandbox_mode_has_no_google_anchor(
    stand_ins: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins.apply(monkeypatch, **FIRESTORE)
    code, text = run(ADA)
    assert code == 0, text
    assert line_of(text, "firestore indexes").startswith("[ok  ]")
    with serve_issuer() as sandbox:
        stand_ins.apply(
            monkeypatch,
            CRM_MODE="sandbox",
            CRM_TOKEN_CERTS_URL=sandbox.certs_url,
            CRM_TOKEN_ISSUERS=sandbox.issuer.issuer,
        )
        code, text = run(ADA)
    assert code == 0, text
    anchors = line_of(text, "trust anchors")
    assert "sandbox (drafting_agent, person)" in anchors and "google" not in anchors


def test_a_mailbox_stored_is_checked_without_naming_it(
    stand_ins: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from shared.domain.models import EmailAccount

    stand_ins.apply(monkeypatch, CRM_SQLITE_PATH=str(tmp_path / "crm.sqlite3"))
    wiring.store().add_email_account(EmailAccount.new(ADA))
    code, text = run()
    assert code == 0, text
    assert line_of(text, f"delegation {ADA} gmail.compose").startswith("[ok  ]")
    stand_ins.apply(monkeypatch, CRM_SQLITE_PATH=str(tmp_path / "empty.sqlite3"))
    code, text = run()
    assert line_of(text, "gmail delegation").startswith("[skip]")
    assert "--mailbox" in line_of(text, "gmail delegation")
