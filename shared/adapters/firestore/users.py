"""The Firestore Store's users (``shared.ports.users``)."""

from __future__ import annotations

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    _ACTIVE_ADMINS,
    _BOOTSTRAP_SENTINEL,
    APP_SETTINGS,
    EMAIL_ACCOUNTS,
    USERS,
    _by_email,
    _document,
    _Query,
    _valid_document_id,
)
from shared.domain.models import (
    EmailAccount,
    Role,
    User,
    account_id_for,
    normalize_address,
    utcnow,
)
from shared.errors import NotFoundError


class UsersMixin(FirestoreBase):
    """The users, over the client of :class:`FirestoreBase`."""

    def add_user(self, user: User) -> bool:
        """Create-if-absent by id *and* by address (ids derive from the address via
        ``User.new``; the query covers a user created under some other id)."""
        ref = self._ref(USERS, user.id)

        def body(transaction: firestore.Transaction) -> bool:
            exists = self._exists(ref, transaction)
            same_address = self._query(_by_email(user.email), transaction)
            if exists or same_address:
                return False
            transaction.create(ref, _document(user))
            return True

        created = self._transact_create(body)
        if created:
            self._claim_mailbox(user.id, user.email)
        return created

    def _claim_mailbox(self, user_id: str, address: str) -> None:
        """The new user becomes the owner of the ownerless mailbox at their address.

        Its own transaction, after the user's create commits (a create goes alone, as in
        ``add_email_account``). No mailbox is left ownerless by a race: ``add_email_account``
        point-reads the user's document, so it is ordered either before the user's create (and
        this transaction then finds its mailbox) or after it (and it sets the owner itself)."""
        account_ref = self._ref(EMAIL_ACCOUNTS, account_id_for(address))

        def claim_mailbox(transaction: firestore.Transaction) -> None:
            account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_ref.id, transaction)
            user = self._get(User, USERS, user_id, transaction)
            if user is not None and account is not None and account.is_claimable():
                transaction.set(account_ref, _document(account.owned_by(user)))

        self._transact(claim_mailbox)

    def get_user(self, user_id: str) -> User | None:
        return self._get(User, USERS, user_id)

    def get_user_by_email(self, email: str) -> User | None:
        found = self._query_models(User, _by_email(email.strip().lower()))
        return found[0] if found else None

    def list_users(self, *, active_only: bool = False) -> list[User]:
        spec = _Query(USERS, equals=(("is_active", True),) if active_only else ())
        # A team's users: few enough to sort here rather than pay for an index.
        return sorted(self._query_models(User, spec), key=lambda u: (u.email, u.id))

    def list_active_admins(self) -> list[User]:
        return sorted(self._query_models(User, _ACTIVE_ADMINS), key=lambda u: (u.email, u.id))

    def change_user(
        self, user_id: str, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        """Reads the user and every active admin in the transaction: production locks all of
        them, so two admins demoting each other at once cannot both succeed."""
        if not _valid_document_id(user_id):
            raise NotFoundError("no such user", user_id=user_id)
        ref = self._ref(USERS, user_id)

        def body(transaction: firestore.Transaction) -> User:
            user = self._get(User, USERS, user_id, transaction)
            if user is None:
                raise NotFoundError("no such user", user_id=user_id)
            admins = self._query_models(User, _ACTIVE_ADMINS, transaction)
            others = sum(1 for admin in admins if admin.id != user_id)
            changed = user.with_role(
                role=role, is_active=is_active, other_active_admins=others, at=utcnow()
            )
            transaction.set(ref, _document(changed))
            return changed

        return self._transact(body)

    def bootstrap_admin(self, email: str, name: str = "") -> bool:
        """Create or promote an admin while none is active.

        "No active admin" is the absence of documents, and locking what a query did *not*
        return is not something to rely on; so every bootstrap also reads and writes one
        sentinel document, on which two concurrent bootstraps conflict in production.
        """
        address = normalize_address(email)
        sentinel = self._ref(APP_SETTINGS, _BOOTSTRAP_SENTINEL)

        def body(transaction: firestore.Transaction) -> bool:
            sentinel.get(transaction=transaction)
            admins = self._query(_ACTIVE_ADMINS, transaction)
            existing = self._query_models(User, _by_email(address), transaction)
            if admins:
                return False
            if existing:
                user = existing[0].model_copy(
                    update={"role": Role.ADMIN, "is_active": True, "updated_at": utcnow()}
                )
            else:
                user = User.new(address, name, Role.ADMIN)
            transaction.set(self._ref(USERS, user.id), _document(user))
            transaction.set(
                sentinel, {"user_id": user.id, "email": address, "bootstrapped_at": utcnow()}
            )
            return True

        return self._transact(body)
