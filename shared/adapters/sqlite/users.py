"""The SQLite Store, users: the team, their roles, the first admin."""

from __future__ import annotations

import sqlite3

from shared.adapters.sqlite.base import _dump, _load, _SqliteBase
from shared.domain.models import (
    EmailAccount,
    Role,
    User,
    normalize_address,
    utcnow,
)
from shared.errors import NotFoundError


class SqliteUsers(_SqliteBase):
    """Users: the team, their roles, the first admin."""

    @staticmethod
    def _put_user(conn: sqlite3.Connection, user: User) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO users (id, email, role, is_active, doc) VALUES (?,?,?,?,?)",
            (user.id, user.email, user.role.value, int(user.is_active), _dump(user)),
        )

    def add_user(self, user: User) -> bool:
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM users WHERE id = ? OR email = ?", (user.id, user.email)
            ).fetchone()
            if exists:
                return False
            self._put_user(conn, user)
            row = conn.execute(
                "SELECT doc FROM email_accounts WHERE address = ?", (user.email,)
            ).fetchone()
            account = _load(EmailAccount, row[0]) if row else None
            self._after_read("add_user")
            if account is not None and account.is_claimable():
                self._put_account(conn, account.owned_by(user))
            return True

    def get_user(self, user_id: str) -> User | None:
        return self._one(User, "SELECT doc FROM users WHERE id = ?", (user_id,))

    def get_user_by_email(self, email: str) -> User | None:
        return self._one(User, "SELECT doc FROM users WHERE email = ?", (email.strip().lower(),))

    def list_users(self, *, active_only: bool = False) -> list[User]:
        where = "WHERE is_active = 1" if active_only else ""
        return self._many(User, f"SELECT doc FROM users {where} ORDER BY email")  # noqa: S608

    def list_active_admins(self) -> list[User]:
        return self._many(
            User,
            "SELECT doc FROM users WHERE is_active = 1 AND role = ? ORDER BY email",
            (Role.ADMIN.value,),
        )

    def change_user(
        self, user_id: str, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFoundError("no such user", user_id=user_id)
            user = _load(User, row[0])
            other_admins = conn.execute(
                "SELECT COUNT(*) FROM users WHERE is_active = 1 AND role = ? AND id != ?",
                (Role.ADMIN.value, user_id),
            ).fetchone()[0]
            self._after_read("change_user")
            changed = user.with_role(
                role=role, is_active=is_active, other_active_admins=other_admins, at=utcnow()
            )
            self._put_user(conn, changed)
            return changed

    def bootstrap_admin(self, email: str, name: str = "") -> bool:
        address = normalize_address(email)
        with self._write() as conn:
            admins = conn.execute(
                "SELECT COUNT(*) FROM users WHERE is_active = 1 AND role = ?", (Role.ADMIN.value,)
            ).fetchone()[0]
            row = conn.execute("SELECT doc FROM users WHERE email = ?", (address,)).fetchone()
            self._after_read("bootstrap_admin")
            if admins:
                return False
            if row is None:
                user = User.new(address, name, Role.ADMIN)
            else:
                user = _load(User, row[0]).model_copy(
                    update={"role": Role.ADMIN, "is_active": True, "updated_at": utcnow()}
                )
            self._put_user(conn, user)
            return True
