"""What the one-machine server refuses before it serves, and the pieces of its graceful stop:
settings, folder modes, the lock, the mode a database remembers, the backup schedule, the
middleware, the stop flag and the Makefile's installs."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from embedded import instance
from embedded.backup_schedule import BackupSchedule
from embedded.serve import _ModeAndStop, _token_minter
from sandbox.issuer import DEFAULT_ISSUER
from shared import lifecycle, wiring
from shared.adapters.sqlite import SqliteStore
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """``prepare`` sets the process's umask to 077 (for good, in the server); not in pytest."""
    saved = os.umask(0o022)
    os.umask(saved)
    try:
        yield
    finally:
        os.umask(saved)


def settings(**values: Any) -> Settings:
    return Settings(**values)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({}, "CRM_MODE is 'cloud'"),
        ({"mode": "sandbox", "store_backend": "firestore"}, "keeps its data in SQLite"),
        ({"mode": "sandbox", "queue_backend": "pubsub"}, "queues in process"),
        ({"mode": "sandbox", "host": "0.0.0.0"}, "sandbox mode serves loopback only"),  # noqa: S104
        ({"mode": "sandbox", "host": "10.0.0.5"}, "sandbox mode serves loopback only"),
        ({"mode": "real", "host": "10.0.0.5"}, "needs CRM_PUBLIC_URL=https://"),
        (
            {"mode": "real", "host": "10.0.0.5", "public_url": "http://crm.fund.example"},
            "needs CRM_PUBLIC_URL=https://",
        ),
        ({"mode": "real", "token_issuers": [DEFAULT_ISSUER]}, "trusts no sandbox"),
        ({"mode": "real", "google_auth_redirect": "http://127.0.0.1:1"}, "trusts no sandbox"),
    ],
)
def test_refused_settings_say_why(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(instance.StartRefused, match=re.escape(reason)):
        instance.check_settings(settings(**values))


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "sandbox"},
        {"mode": "sandbox", "host": "::1"},
        {"mode": "sandbox", "host": "localhost"},
        {"mode": "real"},
        {"mode": "real", "host": "10.0.0.5", "public_url": "https://crm.fund.example"},
    ],
)
def test_accepted_settings(values: dict[str, Any]) -> None:
    instance.check_settings(settings(**values))


def test_the_environment_sets_the_mode_and_the_server_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_MODE", "real")
    monkeypatch.setenv("CRM_PORT", "9090")
    monkeypatch.setenv("CRM_BACKUP_DIR", "/mnt/other-disk/crm")
    loaded = Settings()
    assert (loaded.mode, loaded.host, loaded.port, loaded.backup_keep) == (
        "real",
        "127.0.0.1",
        9090,
        14,
    )
    assert loaded.backup_dir == Path("/mnt/other-disk/crm")
    monkeypatch.setenv("CRM_MODE", "production")
    with pytest.raises(ValueError, match="mode"):
        Settings()


def test_sandbox_mode_has_its_own_database_unless_one_is_named() -> None:
    assert instance.database_path(settings(mode="sandbox")) == Path("var/sandbox/crm.sqlite3")
    assert instance.database_path(settings(mode="real")) == Path("var/crm.sqlite3")
    named = settings(mode="sandbox", sqlite_path=Path("/data/x.sqlite3"))
    assert instance.database_path(named) == Path("/data/x.sqlite3")


def test_prepare_makes_var_private_and_locks_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir(mode=0o755)
    (tmp_path / "var").chmod(0o755)
    first = instance.prepare(settings(mode="sandbox"))
    try:
        for folder in ("var", "var/sandbox", "var/sandbox/backups"):
            assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder
        lock = tmp_path / "var/sandbox/crm.sqlite3.lock"
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        with pytest.raises(instance.StartRefused, match="another server is already running"):
            instance.prepare(settings(mode="sandbox"))
    finally:
        first.release()
    instance.prepare(settings(mode="sandbox")).release()  # released: the next start may lock


def test_prepare_narrows_an_existing_database_to_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "var" / "crm.sqlite3"
    database.parent.mkdir()
    database.touch(mode=0o644)
    database.chmod(0o644)
    instance.prepare(settings(mode="real")).release()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_a_database_remembers_its_mode(tmp_path: Path) -> None:
    database = tmp_path / "crm.sqlite3"
    store = SqliteStore(database)
    instance.claim_mode(store, "sandbox", database)
    instance.claim_mode(store, "sandbox", database)  # its own mode: fine, every start
    with pytest.raises(instance.StartRefused, match="belongs to a sandbox server"):
        instance.claim_mode(store, "real", database)
    assert store.get_setting(instance.MODE_SETTING) == "sandbox"


def test_backups_keep_the_newest_and_a_failure_is_an_error_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import UTC, datetime, timedelta

    database = tmp_path / "crm.sqlite3"
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
    moments = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(10))
    schedule = BackupSchedule(database, tmp_path / "backups", keep=3, now=lambda: next(moments))
    written = [schedule.run_once() for _ in range(5)]
    assert all(written)
    assert schedule.backups() == written[-3:]
    for path in schedule.backups():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with closing(sqlite3.connect(path)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    database.write_bytes(b"not a database at all" * 100)
    with caplog.at_level(logging.ERROR):
        assert schedule.run_once() is None
    failed = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "backup_failed"]
    assert failed and failed[0].levelno == logging.ERROR
    assert schedule.backups() == written[-3:]  # a failed backup removes none of the good ones


def test_a_backup_is_due_at_start_only_when_the_newest_is_old(tmp_path: Path) -> None:
    database = tmp_path / "crm.sqlite3"
    sqlite3.connect(database).close()
    schedule = BackupSchedule(database, tmp_path / "backups", keep=2, interval_s=3600)
    assert schedule._due_at_start()
    schedule.run_once()
    assert not schedule._due_at_start()


def test_replies_name_the_mode_and_a_stopping_server_takes_no_request() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return Response("fine")(environ, start_response)

    client = Client(_ModeAndStop(app, "sandbox"))
    answered = client.get("/healthz")
    assert (answered.status_code, answered.headers["X-CRM-Mode"]) == (200, "sandbox")
    lifecycle.begin_stopping()
    try:
        refused = client.get("/healthz")
        assert refused.status_code == 503
        assert refused.headers["X-CRM-Mode"] == "sandbox"
        assert refused.headers["Retry-After"]
    finally:
        lifecycle.reset()


def test_a_stopping_process_has_passed_every_deadline() -> None:
    assert lifecycle.run_clock() < float("inf")
    lifecycle.begin_stopping()
    try:
        assert lifecycle.run_clock() == float("inf")
    finally:
        lifecycle.reset()


@pytest.mark.parametrize("mode", ["sandbox", "real"])
def test_local_modes_sign_with_the_local_key_and_pull_notifications(
    mode: str, tmp_path: Path
) -> None:
    """Never with the sandbox issuer: only the runtime's own key may vouch for the ticker and
    the queue (shared.adapters.auth), in both local modes."""

    from google.auth import jwt

    os.environ["CRM_SQLITE_PATH"] = str(tmp_path / "crm.sqlite3")
    minter, background = _token_minter(settings(mode=mode), None)
    token = minter("ticker@crm-local.invalid", "https://crm.fund.example/sync_poll")
    claims = jwt.decode(token, verify=False)
    assert claims["iss"].startswith("crm-local:")
    assert (claims["email"], claims["aud"]) == (
        "ticker@crm-local.invalid",
        "https://crm.fund.example/sync_poll",
    )
    assert background is wiring.run_gmail_pull_loop


def make_prerequisites(makefile: str) -> dict[str, list[str]]:
    rules: dict[str, list[str]] = {}
    for target, needs in re.findall(r"^([\w$().-]+):(?!=)([^\n]*)$", makefile, re.MULTILINE):
        rules.setdefault(target, []).extend(needs.split())
    return rules


def reaches(rules: dict[str, list[str]], target: str, wanted: str) -> bool:
    seen: set[str] = set()
    pending = [target]
    while pending:
        current = pending.pop()
        if current == wanted:
            return True
        if current not in seen:
            seen.add(current)
            pending.extend(rules.get(current, []))
    return False


def test_only_the_targets_that_run_the_emulator_install_node() -> None:
    rules = make_prerequisites((ROOT / "Makefile").read_text())
    for target in ("serve", "demo", "test-unit", "test-e2e", "test-sandbox", "test-infra"):
        assert not reaches(rules, target, "$(NODE_STAMP)"), target
        assert reaches(rules, target, "$(VENV_STAMP)"), target
    for target in ("test", "test-contract", "test-integration", "bench"):
        assert reaches(rules, target, "$(NODE_STAMP)"), target
