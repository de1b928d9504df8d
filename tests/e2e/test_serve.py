"""``python -m embedded.server`` as a real process: sandbox mode end to end, real mode's
refusals of everything sandbox, and the refusals that keep two servers (or two modes) off one
database, each with its reason."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from embedded.stack import PEOPLE_AUDIENCE
from sandbox.issuer import SandboxIssuer, serve_issuer
from tests.support.serve_process import ServeProcess

ADMIN = "ada@fund.example"


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(tmp_path, {"CRM_MODE": "sandbox"})
    try:
        server.wait_healthy()
        yield server
    finally:
        server.kill()


def sign_in(server: ServeProcess, email: str) -> requests.Response:
    return requests.post(f"{server.base_url}/sandbox/sign-in", json={"email": email}, timeout=10)


def test_sandbox_mode_serves_the_demo_fund_with_its_sign_in(sandbox_server: ServeProcess) -> None:
    health = requests.get(f"{sandbox_server.base_url}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.headers["X-CRM-Mode"] == "sandbox"
    assert health.headers["Server"] == "crm"  # waitress, not werkzeug's development server

    signed_in = sign_in(sandbox_server, ADMIN)
    assert signed_in.status_code == 200
    assert signed_in.headers["X-CRM-Mode"] == "sandbox"
    token = signed_in.json()["id_token"]
    me = requests.get(
        f"{sandbox_server.base_url}/admin_api/me",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "admin"
    assert me.headers["X-CRM-Mode"] == "sandbox"

    # The demo's mail is captured: the first poll runs at start.
    sandbox_server.wait_for_line(
        lambda line: line.get("event") == "sync_run" and line.get("mailbox") == ADMIN
    )
    assert sign_in(sandbox_server, "eve@evil.example").status_code == 403
    no_token = requests.get(f"{sandbox_server.base_url}/admin_api/me", timeout=5)
    assert no_token.status_code == 401
    assert no_token.headers["X-CRM-Mode"] == "sandbox"


def test_every_log_line_is_json_and_names_the_mode(sandbox_server: ServeProcess) -> None:
    sandbox_server.wait_for_line(lambda line: line.get("event") == "backup_done")
    code, _ = sandbox_server.terminate()
    assert code == 0
    assert sandbox_server.lines
    assert all(not line.get("unparsed") for line in sandbox_server.lines)
    assert {line.get("mode") for line in sandbox_server.lines} == {"sandbox"}
    assert sandbox_server.lines[-1]["event"] == "stopped"


def test_var_is_private_and_a_backup_is_taken_at_start(sandbox_server: ServeProcess) -> None:
    sandbox_server.wait_for_line(lambda line: line.get("event") == "backup_done")
    var = sandbox_server.folder / "var"
    for folder in (var, var / "sandbox", var / "sandbox" / "backups"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [p for p in var.rglob("*") if p.is_file()]
    assert any(p.name == "crm.sqlite3" for p in files)
    assert any(p.parent.name == "backups" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_second_server_on_the_same_database_refuses_and_says_why(
    sandbox_server: ServeProcess,
) -> None:
    second = ServeProcess(sandbox_server.folder, {"CRM_MODE": "sandbox"})
    try:
        assert second.wait_exit(60) == 2
    finally:
        second.kill()
    assert "another server is already running" in second.stderr
    assert str(sandbox_server.process.pid) in second.stderr
    # The first one is untouched.
    assert requests.get(f"{sandbox_server.base_url}/healthz", timeout=5).status_code == 200


def test_real_mode_refuses_the_sandbox_database(tmp_path: Path) -> None:
    first = ServeProcess(tmp_path, {"CRM_MODE": "sandbox"})
    try:
        first.wait_healthy()
        assert first.terminate()[0] == 0
    finally:
        first.kill()
    real = ServeProcess(
        tmp_path,
        {
            "CRM_MODE": "real",
            "CRM_SQLITE_PATH": "var/sandbox/crm.sqlite3",
            "CRM_PEOPLE_AUDIENCE": "fund.apps.googleusercontent.com",
        },
    )
    try:
        assert real.wait_exit(60) == 2
    finally:
        real.kill()
    assert "belongs to a sandbox server" in real.stderr
    refusal = next(line for line in real.lines if line.get("event") == "start_refused")
    assert refusal["mode"] == "real"


def test_real_mode_mounts_no_sandbox_and_refuses_a_sandbox_token(tmp_path: Path) -> None:
    # Google's certificates, as a loopback stand-in under Google's issuer string.
    google = SandboxIssuer("https://accounts.google.com")
    with serve_issuer(google) as certs:
        real = ServeProcess(
            tmp_path,
            {
                "CRM_MODE": "real",
                "CRM_TOKEN_CERTS_URL": certs.certs_url,
                "CRM_PEOPLE_AUDIENCE": PEOPLE_AUDIENCE,
                "CRM_BOOTSTRAP_ADMIN": ADMIN,
                "CRM_TEAM_DOMAINS": "fund.example",
            },
        )
        try:
            real.wait_healthy()
            health = requests.get(f"{real.base_url}/healthz", timeout=5)
            assert health.headers["X-CRM-Mode"] == "real"
            assert sign_in(real, ADMIN).status_code == 404

            def me(token: str) -> requests.Response:
                return requests.get(
                    f"{real.base_url}/admin_api/me",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )

            sandbox_minted = SandboxIssuer().mint(
                ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.example"
            )
            assert me(sandbox_minted).status_code == 401
            # The same claims signed by the trusted (Google) key pass: the refusal is the anchor.
            genuine = google.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.example")
            assert me(genuine).status_code == 200
            assert (tmp_path / "var" / "crm.sqlite3").exists()
            assert not (tmp_path / "var" / "sandbox").exists()
        finally:
            real.kill()


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({}, "CRM_MODE is 'cloud'"),
        ({"CRM_MODE": "sandbox", "CRM_HOST": "192.0.2.10"}, "sandbox mode serves loopback only"),
        ({"CRM_MODE": "real", "CRM_HOST": "192.0.2.10"}, "needs CRM_PUBLIC_URL=https://"),
    ],
    ids=["no-mode", "sandbox-off-loopback", "real-off-loopback-without-https"],
)
def test_refusals_before_anything_listens(tmp_path: Path, env: dict[str, str], reason: str) -> None:
    server = ServeProcess(tmp_path, env)
    try:
        assert server.wait_exit(60) == 2
    finally:
        server.kill()
    assert reason in server.stderr
    assert not (tmp_path / "var").exists()


def test_real_mode_captures_through_delegation_with_its_own_key(tmp_path: Path) -> None:
    """Real mode end to end against loopback stand-ins of Google: people's tokens from a
    Google-issuer stand-in, Gmail (and its token endpoint) from the Gmail sandbox through the
    delegation key, and the queue's calls to ``sync_mailbox`` signed by the server's own key
    (the only anchor real mode trusts for them). An admin enters the CRM records and adds a
    mailbox; the mail is captured and listed."""
    from embedded.demo import CRM_FIELDS
    from embedded.stack import sandbox_environment
    from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
    from sandbox.scenario import crm_records, seed_mail

    google = SandboxIssuer("https://accounts.google.com")
    gmail = GmailSandbox()
    seed_mail(gmail)
    with serve_issuer(google) as certs, serve_gmail_sandbox(gmail) as gmail_server:
        env = {
            **sandbox_environment(certs, gmail, gmail_server.base_url),
            "CRM_MODE": "real",
            "CRM_BOOTSTRAP_ADMIN": ADMIN,
            "CRM_TEAM_DOMAINS": "fund.example",
        }
        env.pop("CRM_GMAIL_WATCH_TOPIC")  # no topic: no watches, polling only
        for identity in ("CRM_SCHEDULER_IDENTITY", "CRM_PUSH_IDENTITY"):
            env.pop(identity)  # real mode's own local identities
        real = ServeProcess(tmp_path, env)
        try:
            real.wait_healthy()
            token = google.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.example")

            def call(method: str, path: str, body: object = None) -> requests.Response:
                return requests.request(
                    method,
                    f"{real.base_url}/admin_api{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )

            records = crm_records()
            for kind, record in (
                ("organizations", records.organization),
                ("investors", records.investor),
                ("contacts", records.contact),
            ):
                body = record.model_dump(mode="json", include=CRM_FIELDS)
                assert call("PUT", f"/{kind}/{record.id}", body).status_code in (200, 201, 202)
            added = call("POST", "/mailboxes", {"address": ADMIN})
            assert added.status_code == 201, added.text
            assert added.json()["sync_requested"] is True
            deadline = time.monotonic() + 60
            subjects: list[str] = []
            while time.monotonic() < deadline and "Intro: Zeta Capital x Fund" not in subjects:
                time.sleep(0.5)
                listed = call("GET", "/activity")
                assert listed.status_code == 200, listed.text
                subjects = [item["subject"] for item in listed.json()["items"]]
            assert "Intro: Zeta Capital x Fund" in subjects
            assert not [line for line in real.lines if line.get("severity") == "ERROR"]
        finally:
            real.kill()
