"""Say when a mailbox's Gmail watch has expired, so silence from push is never mistaken for quiet.

Gmail drops a watch seven days after the last ``users.watch`` call; ``watch_renew`` renews daily.
If renewals keep failing, push notifications stop and only the five-minute poll captures mail.
``sync_poll`` calls :func:`report_expired_watches` on every run, so an expired watch is an ERROR
line (event ``watch_expired``, alerted on) every five minutes until it is renewed. A mailbox
that was never watched (no expiration stored) is not reported: ``watch_renew`` has not run yet.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from shared import events

if TYPE_CHECKING:
    # Annotations only: entry points import this module at cold start, the ports at first use.
    from shared.ports import MailboxStore

logger = logging.getLogger(__name__)


def report_expired_watches(store: MailboxStore, now: datetime) -> list[str]:
    """Log each active mailbox whose stored watch expiration has passed; returns the addresses."""
    expired = []
    for account in store.list_email_accounts():
        expiration = account.sync.watch_expiration
        if account.paused or expiration is None or expiration > now:
            continue
        expired.append(account.address)
        logger.error(
            "gmail watch expired",
            extra={
                "fields": {
                    "event": events.WATCH_EXPIRED,
                    "mailbox": account.address,
                    "expired_at": expiration.isoformat(),
                }
            },
        )
    return expired
