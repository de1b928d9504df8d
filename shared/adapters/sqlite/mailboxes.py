"""The SQLite Store, mailboxes and their sync state: pause, owner, offboarding."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable

from shared.adapters.sqlite.base import _dump, _load, _SqliteBase
from shared.domain.models import (
    EmailAccount,
    PauseReason,
    Sighting,
    SyncState,
    User,
    normalize_address,
    utcnow,
)
from shared.domain.paging import (
    check_purge_limit,
)
from shared.errors import NotFoundError
from shared.ports import SyncStateChange


class SqliteMailboxes(_SqliteBase):
    """Mailboxes and their sync state: pause, owner, offboarding."""

    @staticmethod
    def _put_account(conn: sqlite3.Connection, account: EmailAccount) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO email_accounts (id, address, deleted, doc) VALUES (?,?,?,?)",
            (account.id, account.address, int(account.deleted), _dump(account)),
        )
        # The team's addresses (direction of mail): kept with the mailbox, in its transaction.
        conn.execute("DELETE FROM account_addresses WHERE account_id = ?", (account.id,))
        if not account.deleted:
            conn.executemany(
                "INSERT OR IGNORE INTO account_addresses (address, account_id) VALUES (?,?)",
                [(address, account.id) for address in account.addresses()],
            )

    def add_email_account(self, account: EmailAccount) -> bool:
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM email_accounts WHERE id = ? OR address = ?",
                (account.id, account.address),
            ).fetchone()
            if exists:
                return False
            if account.user_id is None and not account.deleted:
                row = conn.execute(
                    "SELECT doc FROM users WHERE email = ?", (account.address,)
                ).fetchone()
                self._after_read("add_email_account")
                if row is not None:
                    account = account.owned_by(_load(User, row[0]))
            self._put_account(conn, account)
            return True

    def get_email_account(self, account_id: str) -> EmailAccount | None:
        return self._one(EmailAccount, "SELECT doc FROM email_accounts WHERE id = ?", (account_id,))

    def get_email_account_by_address(self, address: str) -> EmailAccount | None:
        return self._one(
            EmailAccount,
            "SELECT doc FROM email_accounts WHERE address = ?",
            (address.strip().lower(),),
        )

    def list_email_accounts(self, *, include_deleted: bool = False) -> list[EmailAccount]:
        where = "" if include_deleted else "WHERE deleted = 0"
        return self._many(
            EmailAccount,
            f"SELECT doc FROM email_accounts {where} ORDER BY address",  # noqa: S608
        )

    def _modify_account(
        self, account_id: str, operation: str, change: Callable[[EmailAccount], EmailAccount]
    ) -> EmailAccount:
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM email_accounts WHERE id = ?", (account_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            self._after_read(operation)
            account = change(_load(EmailAccount, row[0]))
            self._put_account(conn, account)
            return account

    def set_email_account_paused(
        self, account_id: str, paused: bool, *, reason: PauseReason = PauseReason.ADMIN
    ) -> EmailAccount:
        return self._modify_account(
            account_id, "set_email_account_paused", lambda a: a.with_pause(paused, reason)
        )

    def set_email_account_owner(self, account_id: str, owner_email: str = "") -> EmailAccount:
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM email_accounts WHERE id = ?", (account_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            account = _load(EmailAccount, row[0])
            address = normalize_address(owner_email) if owner_email.strip() else account.address
            found = conn.execute("SELECT doc FROM users WHERE email = ?", (address,)).fetchone()
            self._after_read("set_email_account_owner")
            if found is None and owner_email.strip():
                raise NotFoundError("no user with this address", email=address)
            changed = account.owned_by(_load(User, found[0]) if found else None)
            self._put_account(conn, changed)
            return changed

    def offboard_email_account(self, account_id: str) -> EmailAccount:
        return self._modify_account(
            account_id, "offboard_email_account", lambda a: a.offboarded(utcnow())
        )

    def soft_delete_account_sightings(self, account_id: str, *, limit: int = 100) -> int:
        check_purge_limit(limit)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT doc FROM sightings WHERE account_id = ? AND deleted = 0 ORDER BY id"
                " LIMIT ?",
                (account_id, limit),
            ).fetchall()
            sightings = [_load(Sighting, row[0]) for row in rows]
            self._after_read("soft_delete_account_sightings")
            now = utcnow()
            for sighting in sightings:
                gone = sighting.model_copy(update={"deleted": True, "deleted_at": now})
                conn.execute(
                    "UPDATE sightings SET deleted = 1, doc = ? WHERE id = ?",
                    (_dump(gone), gone.id),
                )
            for email_id in sorted({s.email_id for s in sightings}):
                email = self._stored_email(conn, email_id)
                if email is not None:
                    self._refresh_email(conn, email)
            return len(sightings)

    def update_sync_state(self, account_id: str, change: SyncStateChange) -> SyncState:
        account = self._modify_account(
            account_id, "update_sync_state", lambda a: a.with_sync_change(change)
        )
        return account.sync

    @staticmethod
    def _refuse_offboarded(conn: sqlite3.Connection, account_id: str) -> None:
        """No sighting is written for, or restored in, an offboarded mailbox (inside the
        caller's transaction, so an offboarding that commits first is always seen)."""
        row = conn.execute("SELECT doc FROM email_accounts WHERE id = ?", (account_id,)).fetchone()
        if row is not None:
            _account_to_check(row[0]).refuse_offboarded()

    def own_addresses(self) -> set[str]:
        return {
            address for account in self.list_email_accounts() for address in account.addresses()
        }


@functools.lru_cache(maxsize=64)
def _account_to_check(doc: str) -> EmailAccount:
    """The mailbox as ``_refuse_offboarded`` reads it, parsed once per version of its row:
    capture checks it with every message, and the row changes only once per page. Only
    read here (never handed out), so sharing one parsed object is safe."""
    return _load(EmailAccount, doc)
