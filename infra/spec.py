"""The deployment, declared once: what must exist in the Google Cloud project, as pydantic models.

Two inputs and nothing else:

* ``shared.catalog.FUNCTIONS`` says which functions exist, their triggers, schedules, topics,
  timeouts, memory, the secrets each reads, whether it acts as team mailboxes and the topics it
  publishes to. No function is named a second time here: every function, job, subscription and
  runtime identity below is derived from the catalog.
* The site file (``infra/deploy.yaml``, see ``deploy.example.yaml``) says what differs per fund:
  project, region, the service's settings (``CRM_*`` without the prefix), alert e-mails and
  optional per-function instance limits. It is validated here, settings included, so a typo
  fails at ``plan`` rather than at the first request.

:func:`build_spec` turns both into a :class:`DeploymentSpec`, which ``python -m infra plan``
compares with the live project and ``apply`` converges to (``infra.deploy``). Identities follow
least privilege: one runtime service account per function, holding Firestore access, accessor
on exactly the secrets it reads, publisher on exactly the topics it publishes to, and token
creator on the Gmail-delegating account only if it acts as team mailboxes. Scheduler and Pub/Sub
push each call as their own account, which the code's verifier tells apart (ARCHITECTURE.md,
TokenVerifier); every function's Cloud Run service has the invoker IAM check disabled and no
``allUsers`` binding, because the code verifies every token itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import events
from shared.catalog import FUNCTIONS, SECRET_SETTINGS, FunctionSpec, Secret, Topic, Trigger

INFRA_DIR = Path(__file__).resolve().parent
INDEX_FILE = INFRA_DIR / "firestore.indexes.json"
DEFAULT_SITE_FILE = INFRA_DIR / "deploy.yaml"
EXAMPLE_SITE_FILE = INFRA_DIR / "deploy.example.yaml"

RUNTIME = "python311"
# Cloud Functions gen2 serves one request per instance here: a sync run holds a mailbox's lease
# and a large share of the instance's memory, and the code keeps per-instance clients that are
# built for one request at a time (httplib2 is not thread-safe, FACTS.md).
CONCURRENCY = 1
SOURCE_HASH_LABEL = "crm-source-hash"
MANAGED_LABEL = "crm-managed"

# Google's identity that publishes Gmail watch notifications (FACTS.md, "Push notifications").
GMAIL_PUSH_PUBLISHER = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
DEAD_LETTER_TOPIC = "crm-dead-letters"
DEAD_LETTER_HOLD = "crm-dead-letters-hold"
MAX_DELIVERY_ATTEMPTS = 5
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

# The Workspace grant of the delegating account's client id (README, infra/README.md).
GMAIL_DELEGATION_SCOPES = (
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.compose",
)

ROLE_DATASTORE_USER = "roles/datastore.user"
ROLE_EXPORT_ADMIN = "roles/datastore.importExportAdmin"
ROLE_SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
ROLE_PUBLISHER = "roles/pubsub.publisher"
ROLE_SUBSCRIBER = "roles/pubsub.subscriber"
ROLE_TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"
ROLE_STORAGE_ADMIN = "roles/storage.admin"

# Settings the spec computes for every function; a site file may not set them.
COMPUTED_SETTINGS = frozenset(
    {
        "store_backend",
        "gcp_project",
        "firestore_database",
        "secrets_backend",
        "queue_backend",
        "functions_base_url",
        "scheduler_identity",
        "push_identity",
        "gmail_service_account",
        "gmail_watch_topic",
        "gmail_key_secret",
        *SECRET_SETTINGS.values(),
    }
)
# Settings for one machine or for tests against loopback stand-ins: never deployed.
LOCAL_ONLY_SETTINGS = frozenset(
    {
        "sqlite_path",
        "secrets_dir",
        "secret_manager_endpoint",
        "pubsub_endpoint",
        "gmail_api_endpoint",
        "gmail_token_uri",
        "google_auth_redirect",
        "token_certs_url",
        "token_issuers",
        # the one-machine server's (``make serve``): the cloud is always mode ``cloud``
        "mode",
        "host",
        "port",
        "public_url",
        "backup_dir",
        "backup_keep",
        "sandbox_extra_messages",
        "sandbox_list_delay_ms",
        "gmail_watch_subscription",
        "pubsub_rest_endpoint",
        "firestore_admin_endpoint",
    }
)

# Cloud Scheduler's retries per scheduled function. Jobs that run every few minutes do not
# retry (the next run does the same work); the daily watch renewal does.
SCHEDULER_RETRIES: dict[str, int] = {"watch_renew": 3}
DEFAULT_MAX_INSTANCES: dict[Trigger, int] = {
    Trigger.HTTP: 10,
    Trigger.PUSH: 10,
    Trigger.SCHEDULE: 2,
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the site file -------------------------------------------------------------------------


class FunctionOverrides(_Model):
    min_instances: int = Field(default=0, ge=0, le=100)
    max_instances: int | None = Field(default=None, ge=1, le=1000)


class BackupSite(_Model):
    """The scheduled Firestore export (point-in-time recovery is always on)."""

    bucket: str = ""  # default: <project>-crm-exports
    location: str = ""  # default: the region
    schedule: str = "0 2 * * *"
    time_zone: str = "UTC"
    retention_days: int = Field(default=30, ge=1, le=3650)


class SiteConfig(_Model):
    """What differs per fund: read from ``infra/deploy.yaml``."""

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    region: str = Field(default="europe-west1", pattern=r"^[a-z]+-[a-z]+[0-9]$")
    firestore_location: str = "eur3"
    # The service's settings (``Settings`` field names, i.e. ``CRM_*`` without the prefix).
    settings: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)
    functions: dict[str, FunctionOverrides] = Field(default_factory=dict)
    alert_emails: list[str] = Field(default_factory=list)
    backups: BackupSite = Field(default_factory=BackupSite)
    # Cloud Build's identity for function builds; empty: the project's default.
    build_service_account: str = ""

    @field_validator("functions")
    @classmethod
    def _known_functions(cls, value: dict[str, FunctionOverrides]) -> dict[str, FunctionOverrides]:
        unknown = sorted(set(value) - {spec.name for spec in FUNCTIONS})
        if unknown:
            raise ValueError(f"no such function in shared/catalog.py: {', '.join(unknown)}")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
                raise ValueError(f"not an e-mail address: {email!r}")
        return [email.lower() for email in value]


def load_site(path: Path) -> SiteConfig:
    """Read and validate a site file (YAML); errors name the file and the field."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SpecError(
            f"{path} does not exist: copy infra/deploy.example.yaml and fill it in"
        ) from None
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: {exc}") from None


class SpecError(ValueError):
    """The site file or the catalog cannot make a valid deployment."""


# --- the spec ------------------------------------------------------------------------------


class ServiceAccount(_Model):
    account_id: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    display_name: str
    description: str
    project: str
    # Members granted roles/iam.serviceAccountTokenCreator on this account.
    token_creators: tuple[str, ...] = ()

    @property
    def email(self) -> str:
        return f"{self.account_id}@{self.project}.iam.gserviceaccount.com"

    @property
    def member(self) -> str:
        return f"serviceAccount:{self.email}"


class FunctionDeploy(_Model):
    name: str
    entry_point: str
    trigger: Trigger
    description: str
    runtime: str = RUNTIME
    memory_mb: int
    timeout_s: int
    min_instances: int
    max_instances: int
    concurrency: int = CONCURRENCY
    service_account: str
    secrets: tuple[str, ...]
    env: dict[str, str]
    url: str


class RetrySettings(_Model):
    retry_count: int = Field(default=0, ge=0, le=5)
    min_backoff_s: int = 5
    max_backoff_s: int = 3600
    max_doublings: int = 5
    max_retry_duration_s: int = 0


class SchedulerJob(_Model):
    name: str
    description: str
    schedule: str
    time_zone: str
    uri: str
    body: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    # Exactly one of: an OIDC token (our functions) or an OAuth token (a Google API).
    oidc_service_account: str = ""
    oidc_audience: str = ""
    oauth_service_account: str = ""
    oauth_scope: str = ""
    retry: RetrySettings = Field(default_factory=RetrySettings)
    attempt_deadline_s: int = Field(default=180, ge=15, le=1800)


class TopicDeploy(_Model):
    name: str
    publishers: tuple[str, ...] = ()


class SubscriptionDeploy(_Model):
    name: str
    topic: str
    # Empty for a pull subscription (the dead-letter hold).
    push_endpoint: str = ""
    oidc_service_account: str = ""
    audience: str = ""
    ack_deadline_s: int = Field(default=10, ge=10, le=600)
    min_backoff_s: int = 10
    max_backoff_s: int = 600
    dead_letter_topic: str = ""
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS
    retention_s: int = 7 * 24 * 3600
    subscribers: tuple[str, ...] = ()


class SecretDeploy(_Model):
    secret_id: str
    setting: str
    accessors: tuple[str, ...]


class FieldOverride(_Model):
    collection_group: str
    field_path: str
    indexes: tuple[dict[str, Any], ...]


class CompositeIndex(_Model):
    collection_group: str
    query_scope: str
    fields: tuple[tuple[str, str], ...]  # (fieldPath, "ASCENDING"|"DESCENDING"|"CONTAINS")


class FirestoreDeploy(_Model):
    database: str = "(default)"
    location: str
    point_in_time_recovery: bool = True
    delete_protection: bool = True
    indexes: tuple[CompositeIndex, ...]
    field_overrides: tuple[FieldOverride, ...]


class BucketDeploy(_Model):
    name: str
    location: str
    retention_days: int
    admins: tuple[str, ...]


class AlertPolicyDeploy(_Model):
    event: str
    display_name: str
    filter: str
    documentation: str
    notification_emails: tuple[str, ...]
    rate_limit_s: int = 3600
    auto_close_s: int = 7 * 24 * 3600


class DeploymentSpec(_Model):
    project: str
    region: str
    functions_base_url: str
    service_accounts: tuple[ServiceAccount, ...]
    project_roles: dict[str, tuple[str, ...]]
    secrets: tuple[SecretDeploy, ...]
    functions: tuple[FunctionDeploy, ...]
    topics: tuple[TopicDeploy, ...]
    subscriptions: tuple[SubscriptionDeploy, ...]
    scheduler_jobs: tuple[SchedulerJob, ...]
    firestore: FirestoreDeploy
    bucket: BucketDeploy
    alert_emails: tuple[str, ...]
    alerts: tuple[AlertPolicyDeploy, ...]
    build_service_account: str = ""

    def function(self, name: str) -> FunctionDeploy:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)

    def service_account(self, account_id: str) -> ServiceAccount:
        for account in self.service_accounts:
            if account.account_id == account_id:
                return account
        raise KeyError(account_id)


# --- building it ---------------------------------------------------------------------------


def runtime_account_id(function_name: str) -> str:
    """The runtime service account of a function: ``crm-`` and its name with hyphens."""
    return "crm-" + function_name.replace("_", "-")


SCHEDULER_ACCOUNT = "crm-scheduler"
PUSH_ACCOUNT = "crm-push"
GMAIL_ACCOUNT = "crm-gmail"
BACKUP_ACCOUNT = "crm-backup"


def service_agent(project_number: str, service: str) -> str:
    """A Google-managed service agent of the project (``pubsub``, ``cloudscheduler``)."""
    return f"serviceAccount:service-{project_number}@gcp-sa-{service}.iam.gserviceaccount.com"


def functions_base_url(project: str, region: str) -> str:
    """Where Cloud Functions serves ``<base>/<name>``: the audience of service callers' tokens."""
    return f"https://{region}-{project}.cloudfunctions.net"


def build_spec(site: SiteConfig, *, project_number: str) -> DeploymentSpec:
    """The whole deployment for ``site``; ``project_number`` names the Google service agents.

    The project number is read from the live project (``plan``/``apply``); the spec depends on
    it only for the Pub/Sub and Cloud Scheduler service agents' grants.
    """
    project = site.project
    base_url = functions_base_url(project, site.region)
    pubsub_agent = service_agent(project_number, "pubsub")
    scheduler_agent = service_agent(project_number, "cloudscheduler")

    def sa(account_id: str) -> str:
        return f"{account_id}@{project}.iam.gserviceaccount.com"

    def member(account_id: str) -> str:
        return f"serviceAccount:{sa(account_id)}"

    enabled_secrets = _enabled_secrets(site)
    common_env = _common_env(site, base_url, sa)

    accounts: list[ServiceAccount] = []
    functions: list[FunctionDeploy] = []
    for spec in FUNCTIONS:
        account_id = runtime_account_id(spec.name)
        accounts.append(
            ServiceAccount(
                account_id=account_id,
                display_name=f"CRM {spec.name} runtime",
                description=f"Runtime identity of the {spec.name} function",
                project=project,
            )
        )
        functions.append(
            _function(spec, site, base_url, sa(account_id), common_env, enabled_secrets)
        )
    gmail_users = tuple(member(runtime_account_id(spec.name)) for spec in FUNCTIONS if spec.gmail)
    accounts += [
        ServiceAccount(
            account_id=SCHEDULER_ACCOUNT,
            display_name="CRM Cloud Scheduler caller",
            description="Identity of the Cloud Scheduler jobs' OIDC tokens",
            project=project,
            token_creators=(scheduler_agent,),
        ),
        ServiceAccount(
            account_id=PUSH_ACCOUNT,
            display_name="CRM Pub/Sub push caller",
            description="Identity of the push subscriptions' OIDC tokens",
            project=project,
            token_creators=(pubsub_agent,),
        ),
        ServiceAccount(
            account_id=GMAIL_ACCOUNT,
            display_name="CRM Gmail delegation",
            description="Keyless domain-wide delegation: IAM signs its assertions; no key",
            project=project,
            token_creators=gmail_users,
        ),
        ServiceAccount(
            account_id=BACKUP_ACCOUNT,
            display_name="CRM Firestore export",
            description="Identity of the scheduled Firestore export job",
            project=project,
            token_creators=(scheduler_agent,),
        ),
    ]

    project_roles = {
        ROLE_DATASTORE_USER: tuple(member(runtime_account_id(s.name)) for s in FUNCTIONS),
        ROLE_EXPORT_ADMIN: (member(BACKUP_ACCOUNT),),
    }
    secrets = tuple(
        SecretDeploy(
            secret_id=secret.value,
            setting=SECRET_SETTINGS[secret],
            accessors=tuple(
                member(runtime_account_id(s.name)) for s in FUNCTIONS if secret in s.secrets
            ),
        )
        for secret in Secret
        if secret in enabled_secrets
    )
    topics = _topics(member, pubsub_agent)
    subscriptions = _subscriptions(project, base_url, sa(PUSH_ACCOUNT), pubsub_agent)
    bucket_name = site.backups.bucket or f"{project}-crm-exports"
    jobs = _scheduler_jobs(site, base_url, sa(SCHEDULER_ACCOUNT), sa(BACKUP_ACCOUNT), bucket_name)
    return DeploymentSpec(
        project=project,
        region=site.region,
        functions_base_url=base_url,
        service_accounts=tuple(accounts),
        project_roles=project_roles,
        secrets=secrets,
        functions=tuple(functions),
        topics=topics,
        subscriptions=subscriptions,
        scheduler_jobs=jobs,
        firestore=_firestore(site.firestore_location),
        bucket=BucketDeploy(
            name=bucket_name,
            location=site.backups.location or site.region,
            retention_days=site.backups.retention_days,
            admins=(member(BACKUP_ACCOUNT),),
        ),
        alert_emails=tuple(site.alert_emails),
        alerts=_alerts(tuple(site.alert_emails)),
        build_service_account=site.build_service_account,
    )


def _enabled_secrets(site: SiteConfig) -> set[Secret]:
    """A secret is deployed when its feature is configured: SMTP login, or a narrator URL."""
    enabled = set()
    if site.settings.get("smtp_host") and site.settings.get("smtp_user"):
        enabled.add(Secret.SMTP_PASSWORD)
    if site.settings.get("narrator_url"):
        enabled.add(Secret.NARRATOR_KEY)
    return enabled


def env_value(value: str | int | float | bool | list[str]) -> str:
    """A setting as its ``CRM_*`` variable spells it (lists comma-separated, booleans lower)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def env_name(setting: str) -> str:
    return "CRM_" + setting.upper()


def _common_env(site: SiteConfig, base_url: str, sa: Any) -> dict[str, str]:
    from shared.config import Settings

    known = set(Settings.model_fields)
    unknown = sorted(set(site.settings) - known)
    if unknown:
        raise SpecError(f"settings: not a setting of shared/config.py: {', '.join(unknown)}")
    refused = sorted(set(site.settings) & (COMPUTED_SETTINGS | LOCAL_ONLY_SETTINGS))
    if refused:
        raise SpecError(
            "settings: set by the deployment itself or local-only, remove: " + ", ".join(refused)
        )
    env = {env_name(key): env_value(value) for key, value in sorted(site.settings.items())}
    env.update(
        {
            "CRM_STORE_BACKEND": "firestore",
            "CRM_GCP_PROJECT": site.project,
            "CRM_FIRESTORE_DATABASE": "(default)",
            "CRM_SECRETS_BACKEND": "secret_manager",
            "CRM_QUEUE_BACKEND": "pubsub",
            "CRM_FUNCTIONS_BASE_URL": base_url,
            "CRM_SCHEDULER_IDENTITY": sa(SCHEDULER_ACCOUNT),
            "CRM_PUSH_IDENTITY": sa(PUSH_ACCOUNT),
            "CRM_GMAIL_WATCH_TOPIC": f"projects/{site.project}/topics/{Topic.GMAIL_WATCH.value}",
        }
    )
    _validate_settings(env)
    if not site.settings.get("team_domains"):
        # The cloud has no bootstrap-admin fallback worth trusting: the fund says it here.
        raise SpecError(
            "settings: team_domains is missing: set it to the fund's own mail domains"
            " (e.g. team_domains: [fund.example]) in the site file"
        )
    return env


def _validate_settings(env: dict[str, str]) -> None:
    """Parse the variables exactly as a function's ``Settings`` will, so bad values fail now."""
    from shared.config import Settings

    values = {name.removeprefix("CRM_").lower(): value for name, value in env.items()}
    try:
        Settings.model_validate(values)
    except ValidationError as exc:
        raise SpecError(f"settings: {exc}") from None


def _function(
    spec: FunctionSpec,
    site: SiteConfig,
    base_url: str,
    service_account: str,
    common_env: dict[str, str],
    enabled_secrets: set[Secret],
) -> FunctionDeploy:
    overrides = site.functions.get(spec.name, FunctionOverrides())
    env = dict(common_env)
    if spec.gmail:
        env["CRM_GMAIL_SERVICE_ACCOUNT"] = f"{GMAIL_ACCOUNT}@{site.project}.iam.gserviceaccount.com"
    secrets = tuple(secret.value for secret in spec.secrets if secret in enabled_secrets)
    for secret in spec.secrets:
        if secret in enabled_secrets:
            env[env_name(SECRET_SETTINGS[secret])] = secret.value
    _validate_settings(env)
    return FunctionDeploy(
        name=spec.name,
        entry_point=spec.name,
        trigger=spec.trigger,
        description=spec.summary,
        memory_mb=spec.memory_mb,
        timeout_s=spec.timeout_s,
        min_instances=overrides.min_instances,
        max_instances=overrides.max_instances or DEFAULT_MAX_INSTANCES[spec.trigger],
        service_account=service_account,
        secrets=secrets,
        env=dict(sorted(env.items())),
        url=f"{base_url}/{spec.name}",
    )


def _topics(member: Any, pubsub_agent: str) -> tuple[TopicDeploy, ...]:
    topics = []
    for topic in Topic:
        publishers = [member(runtime_account_id(s.name)) for s in FUNCTIONS if topic in s.publishes]
        if topic is Topic.GMAIL_WATCH:
            publishers.append(GMAIL_PUSH_PUBLISHER)
        topics.append(TopicDeploy(name=topic.value, publishers=tuple(publishers)))
    topics.append(TopicDeploy(name=DEAD_LETTER_TOPIC, publishers=(pubsub_agent,)))
    return tuple(topics)


def _subscriptions(
    project: str, base_url: str, push_account: str, pubsub_agent: str
) -> tuple[SubscriptionDeploy, ...]:
    subscriptions = []
    for spec in FUNCTIONS:
        if spec.trigger is not Trigger.PUSH or spec.topic is None:
            continue
        url = f"{base_url}/{spec.name}"
        subscriptions.append(
            SubscriptionDeploy(
                name=f"{spec.topic.value}-push",
                topic=spec.topic.value,
                push_endpoint=url,
                oidc_service_account=push_account,
                audience=url,
                # Pub/Sub waits this long for the push response: the function's whole timeout.
                ack_deadline_s=max(10, min(600, spec.timeout_s)),
                dead_letter_topic=DEAD_LETTER_TOPIC,
                subscribers=(pubsub_agent,),
            )
        )
    # Dead letters kept for a week for an operator to read (a topic alone keeps nothing).
    subscriptions.append(SubscriptionDeploy(name=DEAD_LETTER_HOLD, topic=DEAD_LETTER_TOPIC))
    return tuple(subscriptions)


def _scheduler_jobs(
    site: SiteConfig, base_url: str, scheduler: str, backup: str, bucket: str
) -> tuple[SchedulerJob, ...]:
    jobs = []
    for spec in FUNCTIONS:
        if spec.trigger is not Trigger.SCHEDULE:
            continue
        url = f"{base_url}/{spec.name}"
        retries = SCHEDULER_RETRIES.get(spec.name, 0)
        jobs.append(
            SchedulerJob(
                name=scheduler_job_id(spec.name),
                description=spec.summary,
                schedule=spec.schedule,
                time_zone=spec.time_zone,
                uri=url,
                body="{}",
                headers={"Content-Type": "application/json"},
                oidc_service_account=scheduler,
                oidc_audience=url,
                retry=RetrySettings(
                    retry_count=retries,
                    min_backoff_s=60 if retries else 5,
                    max_backoff_s=600 if retries else 3600,
                    max_doublings=3 if retries else 5,
                ),
                attempt_deadline_s=min(1800, spec.timeout_s + 30),
            )
        )
    database = f"projects/{site.project}/databases/(default)"
    jobs.append(
        SchedulerJob(
            name="crm-firestore-export",
            description="Daily Firestore export to Cloud Storage (kept retention_days days)",
            schedule=site.backups.schedule,
            time_zone=site.backups.time_zone,
            uri=f"https://firestore.googleapis.com/v1/{database}:exportDocuments",
            body=json.dumps({"outputUriPrefix": f"gs://{bucket}"}),
            headers={"Content-Type": "application/json"},
            oauth_service_account=backup,
            oauth_scope=CLOUD_PLATFORM_SCOPE,
            retry=RetrySettings(retry_count=2, min_backoff_s=300, max_backoff_s=1800),
        )
    )
    return tuple(jobs)


def scheduler_job_id(function_name: str) -> str:
    return "crm-" + function_name.replace("_", "-")


def _firestore(location: str) -> FirestoreDeploy:
    document = json.loads(INDEX_FILE.read_text(encoding="utf-8"))
    indexes = tuple(
        CompositeIndex(
            collection_group=entry["collectionGroup"],
            query_scope=entry.get("queryScope", "COLLECTION"),
            fields=tuple(
                (field["fieldPath"], field.get("order") or field.get("arrayConfig", ""))
                for field in entry["fields"]
            ),
        )
        for entry in document.get("indexes", [])
    )
    overrides = tuple(
        FieldOverride(
            collection_group=entry["collectionGroup"],
            field_path=entry["fieldPath"],
            indexes=tuple(entry.get("indexes", [])),
        )
        for entry in document.get("fieldOverrides", [])
    )
    return FirestoreDeploy(location=location, indexes=indexes, field_overrides=overrides)


def alert_filter(event: str) -> str:
    """The log filter of one alertable event: an ERROR line of a function with that event."""
    return f'resource.type="cloud_run_revision" AND severity>=ERROR AND jsonPayload.event="{event}"'


def _alerts(emails: tuple[str, ...]) -> tuple[AlertPolicyDeploy, ...]:
    return tuple(
        AlertPolicyDeploy(
            event=alert.event,
            display_name=f"CRM: {alert.title}",
            filter=alert_filter(alert.event),
            documentation=(
                f"{alert.runbook}\n\nEvent `{alert.event}`; see infra/README.md, "
                "'Reading the logs and alerts'."
            ),
            notification_emails=emails,
        )
        for alert in events.ALERTS
    )
