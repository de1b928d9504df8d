"""The users area of the store: the team's people, their roles and whether they are active."""

from __future__ import annotations

from typing import Protocol

from shared.domain.models import Role, User


class UserStore(Protocol):
    """Users by id and by address; the store keeps at least one active admin."""

    def add_user(self, user: User) -> bool:
        """Create-if-absent (False: the address is taken). In the same transaction, an
        ownerless live mailbox at the user's address gets the new user as its owner."""
        ...

    def get_user(self, user_id: str) -> User | None: ...
    def get_user_by_email(self, email: str) -> User | None: ...
    def list_users(self, *, active_only: bool = False) -> list[User]: ...
    def list_active_admins(self) -> list[User]: ...
    def change_user(
        self, user_id: str, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        """Change role or activity; raises ConflictError if no active admin would remain."""
        ...

    def bootstrap_admin(self, email: str, name: str = "") -> bool:
        """Create (or promote and reactivate) an admin only while no active admin exists."""
        ...
