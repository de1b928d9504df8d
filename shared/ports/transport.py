"""The digest's transports: Gmail ``messages.send`` as one mailbox, and SMTP as the fallback.

Both check, right before sending, that every recipient is an active admin at one of the fund's
domains (``admins``, ``team`` read again by the caller), so the check cannot be skipped by a
caller that built the message wrongly.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from shared.domain.tenancy import TeamDomains


class GmailTransport(Protocol):
    """``users.messages.send`` as one mailbox (``shared.adapters.gmail.send.GmailSender``)."""

    def deliver(self, raw: bytes, *, admins: Collection[str], team: TeamDomains) -> str:
        """Send ``raw`` (RFC 5322 bytes) to its header recipients; Gmail's message id."""
        ...


class SmtpTransport(Protocol):
    """An SMTP relay (``shared.adapters.smtp.SmtpSender``)."""

    def deliver(
        self,
        raw: bytes,
        sender: str,
        recipients: list[str],
        *,
        admins: Collection[str],
        team: TeamDomains,
    ) -> str:
        """Send ``raw`` from ``sender`` to ``recipients`` (the envelope); the Message-ID."""
        ...
