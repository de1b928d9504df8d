"""Users and team mailboxes: the small use cases the admin API and the demo need first.

Every change is audited with who made it; the store enforces the invariants (one user per
address, one mailbox per address, never zero active admins).
"""

from __future__ import annotations

from shared.domain.models import AuditEntry, Caller, EmailAccount, Role, User
from shared.errors import ConflictError, NotFoundError
from shared.ports import Store


def add_user(store: Store, caller: Caller, *, email: str, name: str, role: Role) -> User:
    user = User.new(email, name, role)
    if not store.add_user(user):
        raise ConflictError("a user with this address exists", email=user.email)
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action="user.add",
            target=user.id,
            details={"email": user.email, "role": role.value},
        )
    )
    return user


def add_mailbox(
    store: Store, caller: Caller, *, address: str, owner_email: str = ""
) -> EmailAccount:
    """Register a team mailbox for capture; its owner, if given, must be a known user."""
    owner_id = None
    if owner_email:
        owner = store.get_user_by_email(owner_email)
        if owner is None:
            raise NotFoundError("no user with this address", email=owner_email.strip().lower())
        owner_id = owner.id
    account = EmailAccount.new(address, owner_id)
    if not store.add_email_account(account):
        raise ConflictError("this mailbox is already registered", address=account.address)
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action="mailbox.add",
            target=account.id,
            details={"address": account.address},
        )
    )
    return account
