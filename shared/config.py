"""Settings: every knob of the service, read once from the environment (prefix ``CRM_``).

Values that are secret (SMTP password, narrator key, service-account key) are not here: settings
hold only their *names*, and ``shared.adapters.secrets`` resolves them (env/file locally, Secret
Manager in the cloud). Which adapters are built from these settings is decided in one place,
``shared.wiring``.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GOOGLE_ID_TOKEN_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ID_TOKEN_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


class StoreBackend(StrEnum):
    SQLITE = "sqlite"
    FIRESTORE = "firestore"


class SecretsBackend(StrEnum):
    ENV = "env"
    SECRET_MANAGER = "secret_manager"


class QueueBackend(StrEnum):
    """``local``: in-process queue of the one-machine server; ``pubsub``: Cloud Pub/Sub topics."""

    LOCAL = "local"
    PUBSUB = "pubsub"


def _split_csv(value: object) -> object:
    """Lists come from the environment as comma-separated text (``a@x.com,b@x.com``)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """The service's configuration. Defaults are the one-machine embedded default."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", frozen=True)

    # How this process runs, said explicitly and never inferred: ``cloud`` (Cloud Functions,
    # Google's anchor for every caller), ``sandbox`` (one machine, sandbox Gmail and sign-in),
    # ``real`` (one machine, real Gmail, Google sign-in). ``shared.adapters.auth`` derives the
    # trust anchors from it.
    mode: Literal["cloud", "sandbox", "real"] = "cloud"

    # --- state -----------------------------------------------------------------------------
    store_backend: StoreBackend = StoreBackend.SQLITE
    sqlite_path: Path = Path("var/crm.sqlite3")
    gcp_project: str = ""
    firestore_database: str = "(default)"

    # --- secrets ---------------------------------------------------------------------------
    secrets_backend: SecretsBackend = SecretsBackend.ENV
    # env/file adapter: a secret named ``smtp-password`` is read from ``CRM_SECRET_SMTP_PASSWORD``
    # or, failing that, from the file ``<secrets_dir>/smtp-password``.
    secrets_dir: Path | None = None
    # Secret Manager adapter: empty means Google's endpoint; tests point it at a loopback stand-in.
    secret_manager_endpoint: str = ""

    # --- fan-out ---------------------------------------------------------------------------
    queue_backend: QueueBackend = QueueBackend.LOCAL
    pubsub_endpoint: str = ""

    # --- Gmail ---------------------------------------------------------------------------
    gmail_api_endpoint: str = "https://gmail.googleapis.com/"
    # Parts per batch request (Gmail allows 100, advises <= 50). Every part holds one of the
    # user's concurrent-request slots at once, and Google does not publish that limit; public
    # code uses 10-25, and more than the limit only buys 429s for the extra parts.
    gmail_batch_size: int = Field(default=10, ge=1, le=25)
    # Quota units per second each mailbox's client paces itself to; Gmail allows 250 per user.
    gmail_units_per_second: float = Field(default=240.0, gt=0, le=250)
    # Domain-wide delegation: a key held in the secret named here, or (empty) keyless, where
    # IAM signs for ``gmail_service_account`` (Cloud Functions: no key file should exist).
    gmail_key_secret: str = ""
    gmail_service_account: str = ""
    gmail_token_uri: str = ""
    # Sandbox only: send google-auth's hard-coded Google hosts (IAM, OAuth) to this base URL.
    google_auth_redirect: str = ""
    # ``projects/<project>/topics/<topic>`` that users.watch publishes to.
    gmail_watch_topic: str = ""
    # ``projects/<project>/subscriptions/<name>`` on that topic, pulled by the one-machine server
    # (Gmail cannot push to a machine without a public address). Empty: poll only.
    gmail_watch_subscription: str = ""
    # Pub/Sub REST base URL for that pull (empty: Google's); tests point it at a loopback stand-in.
    pubsub_rest_endpoint: str = ""

    # --- outbound mail: the daily digest to the admins ------------------------------------
    # Gmail-DWD ``messages.send`` acts as this mailbox (empty: the first active admin by email).
    digest_sender: str = ""
    # SMTP fallback (empty host: no fallback). The password is in the secret named here.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password_secret: str = ""
    smtp_from: str = ""
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # First-boot seed of the digest policy; the stored policy (set by admins) always wins.
    digest_enabled: bool | None = None
    digest_send_hour: int | None = Field(default=None, ge=0, le=23)
    # The fund's own OpenAI-compatible narrator (empty URL: count-only paragraphs).
    narrator_url: str = ""
    narrator_model: str = ""
    narrator_key_secret: str = ""
    narrator_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    # --- who may call ----------------------------------------------------------------------
    # ID tokens are verified against these certs (Google's v1 format: {kid: PEM certificate}).
    token_certs_url: str = GOOGLE_ID_TOKEN_CERTS_URL
    token_issuers: CsvList = Field(default_factory=lambda: list(GOOGLE_ID_TOKEN_ISSUERS))
    # Audience of people's tokens: the admin console's OAuth client id.
    people_audience: str = ""
    # Audience of service callers' tokens is the called function's URL: ``<base>/<function>``.
    functions_base_url: str = "http://127.0.0.1:8080"
    scheduler_identity: str = ""
    push_identity: str = ""
    drafting_agent_identities: CsvList = Field(default_factory=list)
    cors_origins: CsvList = Field(default_factory=list)
    bootstrap_admin: str = ""
    # The fund's own mail domains (exact match; a subdomain is another domain): users and
    # mailboxes outside them are refused, the digest goes to no address outside them, and a
    # person's token must carry a hosted-domain (``hd``) claim among them. Empty: on one machine,
    # the bootstrap admin's domain (``shared.services.tenancy``); the cloud plan requires it.
    team_domains: CsvList = Field(default_factory=list)
    clock_skew_seconds: int = Field(default=10, ge=0, le=300)

    # --- operations ------------------------------------------------------------------------
    # Firestore Admin REST base URL for ``doctor``'s index check (empty: Google's).
    firestore_admin_endpoint: str = ""
    log_level: str = "INFO"
    fund_time_zone: str = "UTC"

    # --- relationship intelligence (shared.domain.relationships) ----------------------------
    # Going cold: no two-way exchange for this many days, or strength down by more than this
    # many points in 30 days.
    relationship_cold_days: int = Field(default=90, ge=1, le=3650)
    relationship_cold_drop: int = Field(default=20, ge=0, le=100)

    @field_validator("fund_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"CRM_FUND_TIME_ZONE: not an IANA time zone: {value!r}") from exc
        return value

    _split = field_validator(
        "token_issuers", "drafting_agent_identities", "cors_origins", mode="before"
    )(_split_csv)

    @field_validator(
        "scheduler_identity", "push_identity", "bootstrap_admin", "digest_sender", "smtp_from"
    )
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("drafting_agent_identities")
    @classmethod
    def _lower_all(cls, value: list[str]) -> list[str]:
        return [item.strip().lower() for item in value]

    @field_validator("team_domains", mode="before")
    @classmethod
    def _domains(cls, value: object) -> object:
        from shared.domain.addresses import normalize_domain

        value = _split_csv(value)
        if not isinstance(value, list):
            return value
        domains: list[str] = []
        for item in value:
            try:
                domains.append(normalize_domain(str(item)))
            except ValueError:
                raise ValueError(f"CRM_TEAM_DOMAINS: not a domain: {item!r}") from None
        return list(dict.fromkeys(domains))

    # --- the one-machine server (``make serve``; embedded/serve.py; ``mode`` is at the top) ------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The HTTPS address a reverse proxy serves this machine at; required off loopback in real mode.
    public_url: str = ""
    # The daily online backups while serving (empty: ``backups/`` beside the database).
    backup_dir: Path | None = None
    backup_keep: int = Field(default=14, ge=1, le=3650)
    # Sandbox only: extra investor messages in the demo fund's first mailbox, and a delay on each
    # Gmail list page (a backfill long enough to watch, or to interrupt in a test).
    sandbox_extra_messages: int = Field(default=0, ge=0, le=100_000)
    sandbox_list_delay_ms: int = Field(default=0, ge=0, le=60_000)

    def function_url(self, function_name: str) -> str:
        """The URL a function is reached at: the audience of service callers' tokens."""
        return f"{self.functions_base_url.rstrip('/')}/{function_name}"


@functools.cache
def get_settings() -> Settings:
    """Settings of this process, read once; tests call ``get_settings.cache_clear()``."""
    return Settings()
