"""The one-line bootstrap command, run as an operator would (a subprocess, env settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.adapters.sqlite_store import SqliteStore
from shared.domain.models import Role

ROOT = Path(__file__).resolve().parents[2]


def run_cli(db: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRM_SQLITE_PATH": str(db), "PYTHONPATH": str(ROOT), **settings}
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
        refused = run_cli(db, "bootstrap-admin", outsider, CRM_TEAM_DOMAINS="fund.example")
        assert refused.returncode == 1
        assert "outside the fund's domains (fund.example, from CRM_TEAM_DOMAINS)" in refused.stderr
    assert SqliteStore(db).list_users() == []
    ok = run_cli(db, "bootstrap-admin", "ada@fund.example", CRM_TEAM_DOMAINS="fund.example")
    assert ok.returncode == 0, ok.stderr
