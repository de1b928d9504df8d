"""The mailboxes area of the store: team mailboxes, their owners and pauses, and sync state."""

from __future__ import annotations

from typing import Protocol

from shared.domain.models import EmailAccount, PauseReason, SyncState, SyncStateChange


class MailboxStore(Protocol):
    """Team mailboxes (``EmailAccount``) with their owner, pause reasons and sync state."""

    def add_email_account(self, account: EmailAccount) -> bool:
        """Create-if-absent (False: the address is taken). A mailbox given without an owner
        gets, in the same transaction, the user with its address (paused ``owner_inactive``
        if that user is inactive); read it back for the stored owner."""
        ...

    def get_email_account(self, account_id: str) -> EmailAccount | None: ...
    def get_email_account_by_address(self, address: str) -> EmailAccount | None: ...
    def list_email_accounts(self, *, include_deleted: bool = False) -> list[EmailAccount]: ...
    def set_email_account_paused(
        self, account_id: str, paused: bool, *, reason: PauseReason = PauseReason.ADMIN
    ) -> EmailAccount:
        """Add (``paused``) or lift one pause reason; the mailbox stays paused while any reason
        remains. ConflictError for an offboarded mailbox, NotFoundError for an unknown one."""
        ...

    def set_email_account_owner(self, account_id: str, owner_email: str = "") -> EmailAccount:
        """Make the user at ``owner_email`` the mailbox's owner (empty: the user with the
        mailbox's own address, or none), reading user and mailbox in one transaction; the
        ``owner_inactive`` pause follows the new owner. NotFoundError for an unknown mailbox or
        a named user that does not exist, ConflictError for an offboarded mailbox."""
        ...

    def offboard_email_account(self, account_id: str) -> EmailAccount:
        """Mark the mailbox offboarded (``deleted``): its sync ends, and from then on its sync
        state, new sightings and restored sightings are refused (NotFoundError), so a run that
        is still going stops at its next write. Idempotent (``deleted_at`` kept)."""
        ...

    def soft_delete_account_sightings(self, account_id: str, *, limit: int = 100) -> int:
        """Soft-delete up to ``limit`` (at most 200) live sightings of the mailbox in one
        transaction, recomputing each email's denormalised fields in it; how many. Call again
        until it returns 0 (a purge of a large mailbox is many small commits)."""
        ...

    def update_sync_state(self, account_id: str, change: SyncStateChange) -> SyncState: ...
    def own_addresses(self) -> set[str]:
        """Every address (and alias) of every non-deleted team mailbox: decides direction."""
        ...
