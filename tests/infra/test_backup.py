"""``make backup``: a consistent copy of the live SQLite store, and putting one back."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from embedded import backup
from shared.adapters.sqlite import SqliteStore
from shared.domain.models import User


def count_users(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def add_users(store: SqliteStore, prefix: str, count: int) -> None:
    for index in range(count):
        store.add_user(User.new(f"{prefix}{index}@fund.example"))


class TestBackup:
    def test_a_backup_taken_while_a_writer_runs_is_a_whole_snapshot(self, tmp_path: Path) -> None:
        live = tmp_path / "crm.sqlite3"
        store = SqliteStore(live)
        add_users(store, "before", 50)
        stop = threading.Event()
        written: list[int] = []

        def writer() -> None:
            writing = SqliteStore(live)
            index = 0
            while not stop.is_set():
                writing.add_user(User.new(f"during{index}@fund.example"))
                index += 1
                written.append(index)
            writing.close()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while len(written) < 20:
                stop.wait(0.01)
            result = backup.backup(live, tmp_path / "backups" / "copy.sqlite3")
        finally:
            stop.set()
            thread.join(timeout=30)

        copy = result.path
        with closing(sqlite3.connect(copy)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert not copy.with_name(copy.name + "-wal").exists()
        users = count_users(copy)
        assert 50 + 20 <= users <= 50 + len(written)
        assert result.schema_version == store.schema_version() > 0
        assert len(SqliteStore(copy).list_users()) == users

    def test_an_existing_backup_is_never_overwritten(self, tmp_path: Path) -> None:
        live = tmp_path / "crm.sqlite3"
        add_users(SqliteStore(live), "a", 1)
        target = tmp_path / "copy.sqlite3"
        backup.backup(live, target)
        with pytest.raises(FileExistsError):
            backup.backup(live, target)
        assert not (tmp_path / "copy.sqlite3.partial").exists()

    def test_the_command_backs_up_and_restores(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        live = tmp_path / "crm.sqlite3"
        store = SqliteStore(live)
        add_users(store, "kept", 3)
        target = tmp_path / "copy.sqlite3"

        assert backup.main(["--from", str(live), "--to", str(target)]) == 0
        assert str(target) in capsys.readouterr().out

        add_users(store, "later", 5)  # after the backup, in WAL mode
        assert count_users(live) == 8
        assert backup.main(["--from", str(live), "--restore", str(target)]) == 0

        reopened = SqliteStore(live)
        assert sorted(u.email for u in reopened.list_users()) == [
            f"kept{i}@fund.example" for i in range(3)
        ]

    def test_a_missing_database_is_an_error_not_an_empty_backup(self, tmp_path: Path) -> None:
        status = backup.main(
            ["--from", str(tmp_path / "none.sqlite3"), "--to", str(tmp_path / "b")]
        )
        assert status == 1
        assert not (tmp_path / "b").exists()
