"""Gmail push subscriptions (``users.watch``): renewed daily for every active mailbox, and
started at once for a mailbox just added or resumed (``start_watch``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import events
from shared.domain.models import EmailAccount, SyncStateChange
from shared.errors import AppError, ConfigurationError

if TYPE_CHECKING:
    # Annotations only: entry points import this module at cold start, the ports at first use.
    from shared.ports import GmailClient, MailboxStore

logger = logging.getLogger(__name__)


def renew_watches(
    store: MailboxStore, gmail_for: Callable[[str], GmailClient], *, topic: str
) -> tuple[list[str], list[str]]:
    """Watch every active mailbox; returns (renewed, failed) addresses."""
    if not topic:
        raise ConfigurationError("CRM_GMAIL_WATCH_TOPIC is not set: Gmail has nowhere to push")
    renewed: list[str] = []
    failed: list[str] = []
    for account in store.list_email_accounts():
        if account.paused:
            continue
        try:
            answer = gmail_for(account.address).watch(topic=topic)
        except AppError as exc:
            failed.append(account.address)
            logger.error(
                "watch renewal failed",
                extra={
                    "fields": {
                        "event": events.WATCH_FAILED,
                        "mailbox": account.address,
                        "reason": exc.message,
                    }
                },
            )
            continue
        store.update_sync_state(account.id, SyncStateChange(watch_expiration=answer.expiration))
        renewed.append(account.address)
    return renewed, failed


def stop_watch(gmail_for: Callable[[str], GmailClient], address: str) -> str:
    """``users.stop`` for a mailbox being offboarded; "" when stopped, else why not.

    A failure is reported, not raised: the mailbox is already offboarded, so its pushes are
    dropped (``gmail_push`` skips it) and Gmail ends the watch itself within seven days.
    """
    try:
        gmail_for(address).stop()
    except AppError as exc:
        logger.warning(
            "gmail watch stop failed",
            extra={"fields": {"mailbox": address, "reason": exc.message}},
        )
        return exc.message
    return ""


@dataclass(frozen=True)
class WatchStart:
    """Whether ``start_watch`` watched the mailbox, and why not when it tried and failed."""

    started: bool
    error: str = ""


def start_watch(
    store: MailboxStore,
    gmail_for: Callable[[str], GmailClient],
    account: EmailAccount,
    *,
    topic: str,
) -> WatchStart:
    """Watch one mailbox now, so a new or resumed mailbox gets pushes before the next daily
    renewal. No topic: nothing is watched and the five-minute poll does the work (not an
    error). A failure is logged under ``watch_failed`` and returned, never raised: adding or
    resuming the mailbox stands, and the daily renewal tries again."""
    if not topic or account.paused or account.deleted:
        return WatchStart(started=False)
    try:
        answer = gmail_for(account.address).watch(topic=topic)
    except Exception as exc:  # a watch must never fail the add or resume that asked for it
        reason = exc.message if isinstance(exc, AppError) else type(exc).__name__
        logger.error(
            "watch start failed",
            extra={
                "fields": {
                    "event": events.WATCH_FAILED,
                    "mailbox": account.address,
                    "reason": reason,
                }
            },
        )
        return WatchStart(started=False, error=reason)
    store.update_sync_state(account.id, SyncStateChange(watch_expiration=answer.expiration))
    return WatchStart(started=True)
