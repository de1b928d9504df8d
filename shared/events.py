"""Names of the ERROR events an operator is alerted on: one place for the code and the alerts.

Each name is logged as the ``event`` field of an ERROR line (``jsonPayload.event`` in Cloud
Logging), and the deployment spec (``infra/spec.py``) builds one log-based alert policy per name
from :data:`ALERTS`. Renaming an event here renames it at the call site and in its alert at
once; a test fails if an alert names an event no code logs at ERROR.

Kept import-free: every entry point imports the modules that log these.
"""

from __future__ import annotations

from dataclasses import dataclass

# A mailbox with no successful sync for 30 minutes (``sync_poll``, every five minutes).
MAILBOX_BEHIND = "mailbox_behind"
# Google refused domain-wide delegation for a scope: the Workspace grant lacks it.
UNAUTHORIZED_CLIENT = "unauthorized_client"
# A mailbox's Gmail watch is past its expiration: push has stopped, only polling captures.
WATCH_EXPIRED = "watch_expired"
# ``users.watch`` failed for a mailbox: the daily renewal, or its start on add or resume.
WATCH_FAILED = "watch_failed"
# The daily digest could not be built or delivered (retried by later ticks).
DIGEST_FAILED = "digest_failed"


@dataclass(frozen=True)
class Alert:
    """An alertable event: its name and what the on-call person reads in the notification."""

    event: str
    title: str
    runbook: str


ALERTS: tuple[Alert, ...] = (
    Alert(
        MAILBOX_BEHIND,
        "A team mailbox is more than 30 minutes behind",
        "The log line names the mailbox, its lag, status and last error. Check the mailbox's "
        "sync status in the admin console (GET /admin_api/mailboxes) and sync_mailbox's logs.",
    ),
    Alert(
        UNAUTHORIZED_CLIENT,
        "Gmail domain-wide delegation refused (unauthorized_client)",
        "The Workspace grant of the delegating service account's client id lacks a scope. A "
        "super admin adds exactly the scopes named in the log line (infra/README.md, "
        "'Workspace delegation').",
    ),
    Alert(
        WATCH_EXPIRED,
        "A mailbox's Gmail watch has expired",
        "Push notifications have stopped for the mailbox (polling still captures every five "
        "minutes). Look for watch_failed lines of watch_renew; run the watch_renew job by hand "
        "from Cloud Scheduler once the cause is fixed.",
    ),
    Alert(
        WATCH_FAILED,
        "Renewing a mailbox's Gmail watch failed",
        "watch_renew could not call users.watch for the mailbox named in the log line; the "
        "reason is in the line. The gmail-watch topic must exist and allow "
        "gmail-api-push@system.gserviceaccount.com to publish.",
    ),
    Alert(
        DIGEST_FAILED,
        "The daily digest failed",
        "digest_tick retries the day up to three times. The log line names the error type; "
        "check Gmail delegation (gmail.compose) and the SMTP fallback's settings and password.",
    ),
)


def alert_events() -> tuple[str, ...]:
    """Every alertable event name, in :data:`ALERTS` order."""
    return tuple(alert.event for alert in ALERTS)
