"""The mail area of the store: captured emails, each mailbox's sightings of them, investor links,
and the messages capture could not read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from shared.domain.models import CaptureProblem, Correction, Email, InvestorLink, Sighting
from shared.ports.paging import Page


class MailStore(Protocol):
    """Emails, sightings, links and capture problems.

    The email's denormalised fields (``models.DENORMALISED_FIELDS``: ``matched``,
    ``investor_ids``, ``live_account_ids`` and the digest's ``sent_account_ids``, ``links``,
    ``digest_ready``) are the store's: recomputed by ``Email.denormalised`` from sightings and
    links, never taken from a caller. A sighting or link of an unknown email raises
    NotFoundError.
    """

    def upsert_email(self, email: Email) -> bool:
        """Insert or refresh an email's captured fields; True if it was new.

        The denormalised fields (``models.DENORMALISED_FIELDS``) are never taken from the
        argument: they are recomputed from sightings and links.
        """
        ...

    def get_email(self, email_id: str) -> Email | None: ...
    def get_emails(self, email_ids: Iterable[str]) -> dict[str, Email]:
        """The stored emails among these ids, by id, in one batched read (unknown ids are
        left out): capture reads a chunk of messages' emails at once, not one by one."""
        ...

    def list_emails_matched_between(
        self, since: datetime, until: datetime, *, limit: int = 500, page_token: str = ""
    ) -> Page[Email]:
        """Matched emails with ``since < matched_at <= until``, by (matched_at, id): the mail
        that became known as investor mail in a window (the digest's)."""
        ...

    def record_sighting(self, sighting: Sighting) -> bool:
        """Insert or refresh one mailbox's sighting; True if new. Updates the email's live set."""
        ...

    def batched(self) -> AbstractContextManager[None]:
        """Writes made in the block by this thread may share one commit (SQLite: one
        transaction, a savepoint per write); each write is still all or nothing, and a write
        that raised undoes only itself. What completed is committed when the block ends, even
        by an exception."""
        ...

    def record_capture(
        self, email: Email, sighting: Sighting, links: Sequence[InvestorLink] = ()
    ) -> bool:
        """``upsert_email``, ``link_email_to_investor`` for each link, then ``record_sighting``,
        as one transaction; True if the email is new. Capture's write of one message: one read
        of the email and one refresh of what the store derives from it, instead of one per
        call. Links to an investor the email was corrected away from are not written; an
        offboarded mailbox's capture writes nothing."""
        ...

    def set_sighting_deleted(self, account_id: str, gmail_message_id: str, deleted: bool) -> bool:
        """Soft-delete or restore a sighting; False if there is no such sighting."""
        ...

    def get_sighting(self, account_id: str, gmail_message_id: str) -> Sighting | None: ...
    def list_sightings(self, email_id: str) -> list[Sighting]: ...
    def sighted_message_ids(self, account_id: str, gmail_message_ids: Iterable[str]) -> set[str]:
        """Which of these Gmail ids already have a sighting in the mailbox (deleted or not)."""
        ...

    def record_capture_problem(self, problem: CaptureProblem) -> CaptureProblem:
        """Keep (or count one more attempt of) a message capture could not read."""
        ...

    def list_capture_problems(self, account_id: str, *, limit: int = 100) -> list[CaptureProblem]:
        """Oldest first by Gmail id."""
        ...

    def clear_capture_problem(self, account_id: str, gmail_message_id: str) -> bool: ...
    def link_email_to_investor(self, link: InvestorLink) -> bool:
        """Record why an email matched; True if new. Marks the email matched. A pair the email
        carries a correction for is refused (False, nothing written), decided in the link's
        own transaction, so a capture racing a correction cannot link it back."""
        ...

    def unlink_email_from_investor(self, email_id: str, investor_id: str) -> int:
        """Remove every link of the pair; returns how many. Unmatches the email if none remain,
        and then purges its snippet and body (``Email.without_text_if_unmatched``)."""
        ...

    def set_email_correction(
        self, email_id: str, investor_id: str, correction: Correction | None
    ) -> Email | None:
        """Set the email's correction for ``investor_id`` (None removes it) in one transaction;
        the stored email, None if unknown. Links are not touched: unlink separately."""
        ...

    def list_thread_sightings(
        self, account_id: str, thread_id: str, *, limit: int = 100
    ) -> list[Sighting]:
        """The mailbox's sightings in one Gmail thread (deleted ones too), by id, at most
        ``limit``."""
        ...

    def list_links(self, email_id: str) -> list[InvestorLink]: ...
    def find_emails_by_participants(
        self,
        *,
        addresses: Sequence[str] = (),
        domains: Sequence[str] = (),
        limit: int = 500,
        after_id: str = "",
    ) -> list[Email]:
        """Emails with any of the addresses or domains among their participants (re-match),
        by id; ``after_id`` continues from the last id of the previous page."""
        ...

    def list_emails(self, *, limit: int = 500, after_id: str = "") -> list[Email]:
        """Every stored email by id, ``limit`` at a time; ``after_id`` continues from the last
        id of the previous page (the repair commands' scan: no filter, so no extra index)."""
        ...

    def update_email(self, email_id: str, change: Callable[[Email], Email | None]) -> Email | None:
        """Read the email, apply ``change`` and write the result, in one transaction (``change``
        may run more than once; None from it writes nothing). The denormalised fields stay the
        store's and the search words are rebuilt. Returns the stored email, None if unknown."""
        ...
