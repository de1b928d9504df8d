"""The one place that names each function: its trigger, schedule or topic, and who may call it.

The local server mounts from it, the local ticker schedules from it, the in-process queue routes
from it, and the deployment spec (infra/) deploys from it, so the four cannot disagree. Kept free
of heavy imports: ``functions/main.py`` reads it on the cold-start path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.domain.models import Role, ServiceRole

if TYPE_CHECKING:
    from shared.config import Settings


class Trigger(StrEnum):
    # Called by people (admin console) or agents with a Google ID token.
    HTTP = "http"
    # Called by Cloud Scheduler (OIDC token, audience = the function URL) on ``schedule``.
    SCHEDULE = "schedule"
    # Called by a Pub/Sub push subscription on ``topic`` (OIDC token, audience = function URL).
    PUSH = "push"


class Topic(StrEnum):
    SYNC_REQUESTS = "sync-requests"
    # Gmail's users.watch publishes here (gmail-api-push@system.gserviceaccount.com).
    GMAIL_WATCH = "gmail-watch"
    # CRM changes that affect which mail matches: worked through by rematch_job.
    REMATCH = "rematch-jobs"


class Secret(StrEnum):
    """A secret a function reads at run time (Secret Manager in the cloud, env/file locally).

    The value is the secret's id in the deployment; :data:`SECRET_SETTINGS` names the setting
    that tells the code that id. The Gmail delegation key is not here: in the cloud delegation
    is keyless (IAM signs), so no function reads a key (``infra`` never sets
    ``CRM_GMAIL_KEY_SECRET``, and a test holds it to that).
    """

    SMTP_PASSWORD = "smtp-password"
    NARRATOR_KEY = "narrator-key"


# The ``Settings`` field holding each secret's id (``CRM_SMTP_PASSWORD_SECRET=smtp-password``).
SECRET_SETTINGS: dict[Secret, str] = {
    Secret.SMTP_PASSWORD: "smtp_password_secret",
    Secret.NARRATOR_KEY: "narrator_key_secret",
}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    trigger: Trigger
    callers: frozenset[Role | ServiceRole]
    summary: str
    schedule: str = ""  # unix cron, in ``time_zone``
    time_zone: str = "UTC"
    topic: Topic | None = None
    timeout_s: int = 60
    memory_mb: int = 256
    # What the function's runtime identity needs, and nothing more (tests/infra derives each
    # from the code and compares): the secrets it reads, whether it acts as team mailboxes
    # through Gmail delegation, and the topics it publishes to.
    secrets: tuple[Secret, ...] = field(default=())
    gmail: bool = False
    publishes: tuple[Topic, ...] = field(default=())


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="admin_api",
        trigger=Trigger.HTTP,
        # Each route narrows this further (most routes are admin-only).
        callers=frozenset({Role.ADMIN, Role.MEMBER, ServiceRole.DRAFTING_AGENT}),
        summary="The admin console's API: who am I, users, mailboxes.",
        # Drafts (gmail.compose) and the digest's send-now and test email (Gmail, then SMTP,
        # with the narrator's paragraphs).
        secrets=(Secret.SMTP_PASSWORD, Secret.NARRATOR_KEY),
        gmail=True,
        # CRM record changes queue re-match jobs; offboarding a mailbox asks for its sync.
        publishes=(Topic.SYNC_REQUESTS, Topic.REMATCH),
    ),
    FunctionSpec(
        name="sync_poll",
        trigger=Trigger.SCHEDULE,
        callers=frozenset({ServiceRole.SCHEDULER}),
        summary="Asks for a sync of every active mailbox (one message each on the sync topic).",
        schedule="*/5 * * * *",
        publishes=(Topic.SYNC_REQUESTS,),
    ),
    FunctionSpec(
        name="rematch_job",
        trigger=Trigger.PUSH,
        callers=frozenset({ServiceRole.PUBSUB_PUSH}),
        summary="Re-matches mail affected by a CRM change: links, unlinks, bodies, proposals.",
        topic=Topic.REMATCH,
        timeout_s=540,
        memory_mb=512,
        gmail=True,
        publishes=(Topic.REMATCH,),
    ),
    FunctionSpec(
        name="gmail_push",
        trigger=Trigger.PUSH,
        callers=frozenset({ServiceRole.PUBSUB_PUSH}),
        summary="A Gmail watch notification: asks for a sync of the mailbox it names.",
        topic=Topic.GMAIL_WATCH,
        publishes=(Topic.SYNC_REQUESTS,),
    ),
    FunctionSpec(
        name="watch_renew",
        trigger=Trigger.SCHEDULE,
        callers=frozenset({ServiceRole.SCHEDULER}),
        summary="Renews users.watch for every active mailbox (Gmail wants it at least weekly).",
        schedule="17 3 * * *",
        timeout_s=300,
        gmail=True,
    ),
    FunctionSpec(
        name="digest_tick",
        trigger=Trigger.SCHEDULE,
        callers=frozenset({ServiceRole.SCHEDULER}),
        summary="Sends the daily digest to the admins once per local day, when the policy says.",
        schedule="*/15 * * * *",
        timeout_s=300,
        secrets=(Secret.SMTP_PASSWORD, Secret.NARRATOR_KEY),
        gmail=True,
    ),
    FunctionSpec(
        name="sync_mailbox",
        trigger=Trigger.PUSH,
        callers=frozenset({ServiceRole.PUBSUB_PUSH}),
        summary="One bounded sync run of one mailbox, at most one at a time per mailbox.",
        topic=Topic.SYNC_REQUESTS,
        timeout_s=540,
        memory_mb=512,
        gmail=True,
        publishes=(Topic.SYNC_REQUESTS,),
    ),
)


def function_spec(name: str) -> FunctionSpec:
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def subscriber_of(topic: Topic) -> FunctionSpec:
    """The function a topic's push subscription delivers to (exactly one per topic)."""
    matches = [spec for spec in FUNCTIONS if spec.topic is topic]
    if len(matches) != 1:
        raise LookupError(f"topic {topic} must have exactly one push subscriber")
    return matches[0]


# The one machine's poll: every 5 minutes when a pulled subscription brings Gmail's notifications,
# every minute when nothing else does. It never stops: Gmail may drop notifications.
LOCAL_POLL_WITH_NOTIFICATIONS = "*/5 * * * *"
LOCAL_POLL_WITHOUT_NOTIFICATIONS = "* * * * *"


def local_schedules(settings: Settings) -> tuple[FunctionSpec, ...]:
    """The scheduled functions the one machine's ticker runs, on its schedules: ``sync_poll``
    faster without a subscription, ``watch_renew`` only when a watch topic is configured (no
    topic, no watch to renew)."""
    poll = (
        LOCAL_POLL_WITH_NOTIFICATIONS
        if settings.gmail_watch_subscription
        else LOCAL_POLL_WITHOUT_NOTIFICATIONS
    )
    schedules: list[FunctionSpec] = []
    for spec in FUNCTIONS:
        if spec.trigger is not Trigger.SCHEDULE:
            continue
        if spec.name == "watch_renew" and not settings.gmail_watch_topic:
            continue
        schedules.append(replace(spec, schedule=poll) if spec.name == "sync_poll" else spec)
    return tuple(schedules)
