"""The composition root picks each adapter from settings, builds it once, and forgets on reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import wiring
from shared.adapters.queue import LocalQueue, PubSubQueue
from shared.adapters.secrets import EnvFileSecrets, SecretManagerSecrets
from shared.adapters.sqlite import SqliteStore


def test_embedded_default_is_sqlite_env_secrets_and_local_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "crm.sqlite3"))
    store = wiring.store()
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "crm.sqlite3"
    assert wiring.store() is store  # once per instance
    assert isinstance(wiring.secrets(), EnvFileSecrets)
    assert isinstance(wiring.queue(), LocalQueue)
    assert wiring.queue() is wiring.local_queue()


def test_cloud_settings_choose_firestore_secret_manager_and_pubsub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.adapters.firestore import FirestoreStore

    # With the emulator variable set the client uses anonymous credentials and connects lazily.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("CRM_STORE_BACKEND", "firestore")
    monkeypatch.setenv("CRM_GCP_PROJECT", "fund-crm")
    monkeypatch.setenv("CRM_SECRETS_BACKEND", "secret_manager")
    monkeypatch.setenv("CRM_QUEUE_BACKEND", "pubsub")
    assert isinstance(wiring.store(), FirestoreStore)
    assert isinstance(wiring.secrets(), SecretManagerSecrets)
    queue = wiring.queue()
    assert isinstance(queue, PubSubQueue)
    assert queue.project == "fund-crm"


def test_reset_forgets_settings_and_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "one.sqlite3"))
    first = wiring.store()
    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "two.sqlite3"))
    assert wiring.store() is first
    wiring.reset()
    second = wiring.store()
    assert isinstance(second, SqliteStore)
    assert second.path == tmp_path / "two.sqlite3"


def test_bootstrap_admin_runs_once_and_only_without_an_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "crm.sqlite3"))
    monkeypatch.setenv("CRM_BOOTSTRAP_ADMIN", "Ada@Fund.example")
    assert wiring.ensure_bootstrap_admin() is True
    assert [u.email for u in wiring.store().list_active_admins()] == ["ada@fund.example"]
    wiring.reset()
    monkeypatch.setenv("CRM_BOOTSTRAP_ADMIN", "mallory@fund.example")
    assert wiring.ensure_bootstrap_admin() is False
    assert [u.email for u in wiring.store().list_active_admins()] == ["ada@fund.example"]


def test_team_domains_come_from_the_setting_else_the_bootstrap_admin_else_the_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "crm.sqlite3"))
    assert not wiring.team_domains().decided  # no setting, no admin: the first admin decides
    assert wiring.store().bootstrap_admin("ada@fund.example")
    assert (wiring.team_domains().domains, wiring.team_domains().source) == (
        {"fund.example"},
        "first admin",
    )
    monkeypatch.setenv("CRM_BOOTSTRAP_ADMIN", "bob@bootstrap.example")
    wiring.reset()
    assert wiring.team_domains().domains == {"bootstrap.example"}
    monkeypatch.setenv("CRM_TEAM_DOMAINS", "fund.example,fund.co.uk")
    wiring.reset()
    assert wiring.team_domains().domains == {"fund.example", "fund.co.uk"}


def test_a_bootstrap_admin_outside_the_team_domains_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "crm.sqlite3"))
    monkeypatch.setenv("CRM_TEAM_DOMAINS", "fund.example")
    monkeypatch.setenv("CRM_BOOTSTRAP_ADMIN", "eve@sub.fund.example")
    assert wiring.ensure_bootstrap_admin() is False
    assert wiring.store().list_users() == []


def test_the_digest_runtime_is_built_here_from_this_instances_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The composition root builds what the digest runs with; no service hands wiring closures."""
    from shared.adapters.smtp import SmtpSender
    from shared.services.digest_schedule import DigestRuntime

    monkeypatch.setenv("CRM_SQLITE_PATH", str(tmp_path / "crm.sqlite3"))
    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_SECURITY", "none")
    monkeypatch.setenv("CRM_DIGEST_SENDER", "digest@fund.example")
    runtime = wiring.digest_runtime()
    assert isinstance(runtime, DigestRuntime)
    assert runtime.store is wiring.store()
    assert runtime.narrator is wiring.narrator()
    assert isinstance(runtime.smtp, SmtpSender)
    assert runtime.smtp is wiring.smtp_sender()
    assert runtime.gmail_sender_for is wiring.gmail_sender_for
    assert runtime.team_domains is wiring.team_domains
    assert runtime.digest_sender == "digest@fund.example"
