"""Gmail watch notifications pulled from Pub/Sub -> sync requests (one machine's ``gmail_push``).

The rule that makes a pull safe: a message is acknowledged only after its sync request is on the
queue. If queueing fails (the store or queue is down), the message is left unacknowledged and
Pub/Sub hands it out again after its ack deadline. A message no retry can fix (undecodable,
hostile, not naming a mailbox, an unknown or paused mailbox) is acknowledged and logged, exactly
as ``gmail_push`` answers such a push with a 2xx. Polling stays on beside this (Gmail may drop
notifications), so a lost notification costs minutes, not mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.domain.pubsub import decode_push_envelope
from shared.errors import BadRequestError, TooLargeError
from shared.ports import MailboxStore, Queue
from shared.ports.notifications import NotificationSource
from shared.services.sync import request_sync_of_address

logger = logging.getLogger(__name__)

MAX_MESSAGES_PER_PULL = 50


@dataclass(frozen=True)
class DrainResult:
    pulled: int = 0
    queued: int = 0
    dropped: int = 0
    # Left unacknowledged for Pub/Sub to hand out again.
    kept: int = 0


def drain_notifications(
    source: NotificationSource,
    store: MailboxStore,
    queue: Queue,
    *,
    max_messages: int = MAX_MESSAGES_PER_PULL,
) -> DrainResult:
    """One pull: ask for a sync of each mailbox named, then acknowledge what was handled."""
    pulled = source.pull(max_messages)
    done: list[str] = []
    queued = dropped = kept = 0
    for item in pulled:
        try:
            notification = decode_push_envelope({"message": item.message})
            address = notification.get("emailAddress")
            if not isinstance(address, str) or "@" not in address:
                raise BadRequestError("notification without emailAddress")
        except (BadRequestError, TooLargeError) as exc:
            logger.warning(
                "gmail notification dropped",
                extra={"fields": {"event": "pull_dropped", "reason": exc.message}},
            )
            dropped += 1
            done.append(item.ack_id)
            continue
        try:
            account_id = request_sync_of_address(store, queue, address)
        except Exception:
            # Not acknowledged: Pub/Sub redelivers it after the ack deadline.
            logger.exception(
                "gmail notification not queued; left for redelivery",
                extra={"fields": {"event": "pull_kept"}},
            )
            kept += 1
            continue
        if account_id is None:
            logger.warning(
                "gmail notification for an unknown or paused mailbox",
                extra={"fields": {"event": "pull_dropped", "mailbox": address.lower()}},
            )
            dropped += 1
        else:
            queued += 1
        done.append(item.ack_id)
    source.acknowledge(done)
    return DrainResult(pulled=len(pulled), queued=queued, dropped=dropped, kept=kept)
