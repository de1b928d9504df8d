"""The Firestore Store's mailboxes and their sync state (``shared.ports.mailboxes``)."""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import firestore

from shared.adapters.firestore.base import FirestoreBase
from shared.adapters.firestore.documents import (
    _OWN_ADDRESSES,
    APP_SETTINGS,
    EMAIL_ACCOUNTS,
    EMAILS,
    SIGHTINGS,
    USERS,
    _document,
    _Query,
    _valid_document_id,
    email_document,
)
from shared.domain.activity_keys import (
    is_listed,
)
from shared.domain.models import (
    Email,
    EmailAccount,
    InvestorLink,
    PauseReason,
    Sighting,
    SyncState,
    User,
    normalize_address,
    user_id_for,
    utcnow,
)
from shared.domain.paging import (
    check_purge_limit,
)
from shared.domain.relationships import contribution_changes, contributions_of
from shared.errors import NotFoundError
from shared.ports import SyncStateChange

# Writes one purge commit may make (Firestore allows 500), with room to spare.
_MAX_PURGE_WRITES = 480


class MailboxesMixin(FirestoreBase):
    """The mailboxes and their sync state, over the client of :class:`FirestoreBase`."""

    def add_email_account(self, account: EmailAccount) -> bool:
        ref = self._ref(EMAIL_ACCOUNTS, account.id)
        by_address = _Query(EMAIL_ACCOUNTS, equals=(("address", account.address),), limit=1)

        def body(transaction: firestore.Transaction) -> bool:
            exists = self._exists(ref, transaction)
            same_address = self._query(by_address, transaction)
            owner = None
            if account.user_id is None and not account.deleted:
                # A point read of the user at its address: see _claim_mailbox for the race.
                owner = self._get(User, USERS, user_id_for(account.address), transaction)
            if exists or same_address:
                return False
            transaction.create(ref, _document(account.owned_by(owner) if owner else account))
            return True

        created = self._transact_create(body)
        if created:
            # Its own commit: a create goes alone (a failed create's commit is not atomic on
            # the emulator). Mail written meanwhile is re-derived by refresh_activity_direction.
            self._rebuild_own_addresses()
        return created

    def get_email_account(self, account_id: str) -> EmailAccount | None:
        return self._get(EmailAccount, EMAIL_ACCOUNTS, account_id)

    def get_email_account_by_address(self, address: str) -> EmailAccount | None:
        spec = _Query(EMAIL_ACCOUNTS, equals=(("address", address.strip().lower()),), limit=1)
        found = self._query_models(EmailAccount, spec)
        return found[0] if found else None

    def list_email_accounts(self, *, include_deleted: bool = False) -> list[EmailAccount]:
        spec = _Query(EMAIL_ACCOUNTS, equals=() if include_deleted else (("deleted", False),))
        return sorted(self._query_models(EmailAccount, spec), key=lambda a: (a.address, a.id))

    def _modify_account(
        self, account_id: str, change: Callable[[EmailAccount], EmailAccount]
    ) -> EmailAccount:
        if not _valid_document_id(account_id):
            raise NotFoundError("no such mailbox", account_id=account_id)
        ref = self._ref(EMAIL_ACCOUNTS, account_id)

        def body(transaction: firestore.Transaction) -> EmailAccount:
            account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_id, transaction)
            if account is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            changed = change(account)
            own = None
            if (changed.addresses(), changed.deleted) != (account.addresses(), account.deleted):
                own = self._team_addresses(transaction, changed)
            transaction.set(ref, _document(changed))
            if own is not None:
                transaction.set(self._ref(APP_SETTINGS, _OWN_ADDRESSES), {"addresses": own})
            return changed

        return self._transact(body)

    def set_email_account_paused(
        self, account_id: str, paused: bool, *, reason: PauseReason = PauseReason.ADMIN
    ) -> EmailAccount:
        return self._modify_account(account_id, lambda a: a.with_pause(paused, reason))

    def set_email_account_owner(self, account_id: str, owner_email: str = "") -> EmailAccount:
        if not _valid_document_id(account_id):
            raise NotFoundError("no such mailbox", account_id=account_id)
        ref = self._ref(EMAIL_ACCOUNTS, account_id)
        named = normalize_address(owner_email) if owner_email.strip() else ""

        def set_owner(transaction: firestore.Transaction) -> EmailAccount:
            account = self._get(EmailAccount, EMAIL_ACCOUNTS, account_id, transaction)
            if account is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            owner = self._get(User, USERS, user_id_for(named or account.address), transaction)
            if owner is None and named:
                raise NotFoundError("no user with this address", email=named)
            changed = account.owned_by(owner)
            transaction.set(ref, _document(changed))
            return changed

        return self._transact(set_owner)

    def offboard_email_account(self, account_id: str) -> EmailAccount:
        return self._modify_account(account_id, lambda a: a.offboarded(utcnow()))

    def soft_delete_account_sightings(self, account_id: str, *, limit: int = 100) -> int:
        """One transaction per page: the page's live sightings, then each affected email and
        its sightings and links (every read before the first write), then the writes of as
        many whole emails (sightings, email, relationship rows) as fit under Firestore's 500
        writes per commit: a page may stop short, and the caller's loop continues."""
        check_purge_limit(limit)
        spec = _Query(
            SIGHTINGS, equals=(("account_id", account_id), ("deleted", False)), limit=limit
        )

        def body(transaction: firestore.Transaction) -> int:
            sightings = self._query_models(Sighting, spec, transaction)
            emails: dict[str, tuple[Email, list[Sighting], list[InvestorLink]]] = {}
            for email_id in sorted({s.email_id for s in sightings}):
                email = self._get(Email, EMAILS, email_id, transaction)
                if email is not None:
                    emails[email_id] = (email, *self._email_sources(email_id, transaction))
            now = utcnow()
            gone: dict[str, Sighting] = {}
            refreshed_emails = []
            followed = []
            writes = 0
            # Take whole emails while the commit stays under Firestore's 500 writes: each
            # costs its gone sightings, its document and its relationship rows' changes.
            for email_id in sorted({s.email_id for s in sightings}):
                its_gone = {
                    s.id: s.model_copy(update={"deleted": True, "deleted_at": now})
                    for s in sightings
                    if s.email_id == email_id
                }
                cost = len(its_gone)
                step = None
                if email_id in emails:
                    email, its_sightings, links = emails[email_id]
                    current = [its_gone.get(s.id, s) for s in its_sightings]
                    refreshed = self._denormalised(email, current, links)
                    changed = self._denormalised_changed(email, refreshed)
                    rows = contribution_changes(
                        contributions_of(email, its_sightings, links),
                        contributions_of(refreshed, current, links),
                    )
                    cost += int(changed) + len(rows[0]) + len(rows[1])
                    step = (
                        refreshed if changed else None,
                        (email, its_sightings, links),
                        (refreshed, current, links),
                    )
                if gone and writes + cost > _MAX_PURGE_WRITES:
                    break
                writes += cost
                gone.update(its_gone)
                if step is not None:
                    if step[0] is not None:
                        refreshed_emails.append(step[0])
                    followed.append((step[1], step[2]))
            # The panel's fields need the team's addresses for mail still listed: one read,
            # before the first write.
            listed = any(is_listed(e) for e in refreshed_emails)
            own = self._own_addresses(transaction) if listed else frozenset()
            for sighting in gone.values():
                transaction.set(self._ref(SIGHTINGS, sighting.id), _document(sighting))
            for refreshed in refreshed_emails:
                transaction.set(self._ref(EMAILS, refreshed.id), email_document(refreshed, own))
            for before, after in followed:
                self._follow_contributions(transaction, before, after)
            return len(gone)

        return self._transact(body)

    def update_sync_state(self, account_id: str, change: SyncStateChange) -> SyncState:
        """The history id is ``max(stored, given)`` computed from the value read in the same
        transaction, so a slow run finishing late can never move the cursor back."""
        account = self._modify_account(account_id, lambda a: a.with_sync_change(change))
        return account.sync

    def own_addresses(self) -> set[str]:
        return {
            address for account in self.list_email_accounts() for address in account.addresses()
        }
