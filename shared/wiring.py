"""The composition root: the one module that reads settings to choose and build adapters.

Everything is built lazily, on first use, and once per instance (``functools.cache``): a cold
start pays only for what the called function touches (``admin_api`` never imports the Gmail
client), and tests can set the environment before anything connects. ``reset()`` forgets every
built adapter (tests, and the local server when it reconfigures).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.adapters.firestore_admin import FirestoreAdmin
    from shared.adapters.gmail.drafts import GmailDraftsClient
    from shared.adapters.gmail.send import GmailSender
    from shared.adapters.local_identity import LocalKey
    from shared.adapters.narrator import ChatNarrator
    from shared.adapters.pubsub_pull import PubSubInspector, PubSubPuller
    from shared.adapters.queue import LocalQueue
    from shared.adapters.smtp import SmtpSender
    from shared.config import Settings
    from shared.domain.models import ServiceRole
    from shared.domain.tenancy import TeamDomains
    from shared.ports import Clock, GmailClient, Queue, Secrets, Store, TokenVerifier
    from shared.services.digest_schedule import DigestRuntime
    from shared.services.directory import CaptureStarted

logger = logging.getLogger(__name__)


def get_settings() -> Settings:
    """The settings, imported on first use: pydantic-settings costs ~25 ms on the cold path."""
    from shared.config import get_settings as cached_settings

    return cached_settings()


@functools.cache
def store() -> Store:
    from shared.config import StoreBackend

    settings = get_settings()
    if settings.store_backend is StoreBackend.FIRESTORE:
        from google.cloud import firestore

        from shared.adapters.firestore import FirestoreStore

        client = firestore.Client(
            project=settings.gcp_project or None, database=settings.firestore_database
        )
        return FirestoreStore(client)
    from shared.adapters.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


@functools.cache
def secrets() -> Secrets:
    from shared.config import SecretsBackend

    settings = get_settings()
    if settings.secrets_backend is SecretsBackend.SECRET_MANAGER:
        from shared.adapters.secrets import SecretManagerSecrets

        return SecretManagerSecrets(settings.gcp_project, endpoint=settings.secret_manager_endpoint)
    from shared.adapters.secrets import EnvFileSecrets

    return EnvFileSecrets(settings.secrets_dir)


@functools.cache
def local_queue() -> LocalQueue:
    """The process-wide in-process queue (one machine); the local server attaches delivery."""
    from shared.adapters.queue import LocalQueue

    return LocalQueue()


@functools.cache
def queue() -> Queue:
    from shared.config import QueueBackend

    settings = get_settings()
    if settings.queue_backend is QueueBackend.PUBSUB:
        from shared.adapters.queue import PubSubQueue

        return PubSubQueue(settings.gcp_project, endpoint=settings.pubsub_endpoint)
    return local_queue()


@functools.cache
def verifier() -> TokenVerifier:
    from shared.adapters.auth import GoogleTokenVerifier

    ensure_bootstrap_admin()
    settings = get_settings()
    return GoogleTokenVerifier(
        settings,
        store().get_user_by_email,
        team_domains=team_domains,
        local_key=local_key() if settings.mode != "cloud" else None,
    )


@functools.cache
def local_key() -> LocalKey:
    """The one-machine runtime's signing key, in the database's folder (``var/`` or
    ``var/sandbox/``), generated there on first start: each database has its own issuer."""
    from shared.adapters.local_identity import load_or_create_local_key

    return load_or_create_local_key(get_settings().sqlite_path.parent)


def local_token_minter(identity: str, audience: str) -> str:
    """A token the local ticker or queue presents as ``identity`` to the function at
    ``audience``, signed by the local key (``embedded.server.TokenMinter``'s shape)."""
    return local_key().mint(audience, identity)


def local_service_identity(role: ServiceRole) -> str:
    """Who the local ticker (``SCHEDULER``) or queue (``PUBSUB_PUSH``) calls as: the configured
    identity, else a fixed local one that no Google account can hold."""
    from shared.adapters.auth import local_service_identity as identity_for

    return identity_for(get_settings(), role)


def team_domains() -> TeamDomains:
    """The fund's own domains as this instance sees them: the one call of
    ``tenancy.effective_team_domains`` (``CRM_TEAM_DOMAINS``, else the bootstrap admin's
    domain, else the first admin's). Not cached: the store is read only when neither setting
    decides (one machine, SQLite), and then a new first admin counts at once."""
    from shared.domain.tenancy import effective_team_domains

    settings = get_settings()
    return effective_team_domains(
        settings.team_domains,
        bootstrap_admin=settings.bootstrap_admin,
        admins=lambda: store().list_active_admins(),
    )


def _delegated_credentials(address: str, scope: str) -> Any:
    """Domain-wide-delegated credentials acting as ``address`` with exactly ``scope``: the
    key from the secret named in settings, else keyless (IAM signs for the service account)."""
    from shared.adapters.gmail.credentials import (
        RedirectingRequest,
        delegated_credentials,
        parse_key_secret,
    )

    settings = get_settings()
    key_info = None
    if settings.gmail_key_secret:
        name = settings.gmail_key_secret
        key_info = parse_key_secret(secrets().get(name), secret=name)
    transport: Any = None
    if settings.google_auth_redirect:
        transport = RedirectingRequest.to_sandbox(settings.google_auth_redirect)
    return delegated_credentials(
        address,
        [scope],
        key_info=key_info,
        service_account_email=settings.gmail_service_account or None,
        token_uri=settings.gmail_token_uri or None,
        transport=transport,
    )


@functools.cache
def gmail_for(address: str) -> GmailClient:
    """The read-only (``gmail.readonly``) Gmail client of one team mailbox, once per instance."""
    from shared.adapters.gmail.api import GmailApiClient, QuotaPacer
    from shared.adapters.gmail.credentials import SCOPE_READONLY

    settings = get_settings()
    return GmailApiClient(
        _delegated_credentials(address, SCOPE_READONLY),
        endpoint=settings.gmail_api_endpoint,
        batch_size=settings.gmail_batch_size,
        pacer=QuotaPacer(settings.gmail_units_per_second),
    )


@functools.cache
def gmail_drafts_for(address: str) -> GmailDraftsClient:
    """The ``gmail.compose`` client of one team mailbox: it can only create drafts."""
    from shared.adapters.gmail.credentials import SCOPE_COMPOSE
    from shared.adapters.gmail.drafts import GmailDraftsClient

    return GmailDraftsClient(
        _delegated_credentials(address, SCOPE_COMPOSE),
        endpoint=get_settings().gmail_api_endpoint,
    )


@functools.cache
def gmail_sender_for(address: str) -> GmailSender:
    """The digest's Gmail transport, acting as ``address`` with ``gmail.compose``."""
    from shared.adapters.gmail.credentials import SCOPE_COMPOSE
    from shared.adapters.gmail.send import GmailSender

    return GmailSender(
        _delegated_credentials(address, SCOPE_COMPOSE), endpoint=get_settings().gmail_api_endpoint
    )


@functools.cache
def smtp_sender() -> SmtpSender | None:
    """The digest's SMTP fallback, or None when CRM_SMTP_HOST is empty."""
    settings = get_settings()
    if not settings.smtp_host:
        return None
    from shared.adapters.smtp import SmtpSender

    password = secrets().get(settings.smtp_password_secret) if settings.smtp_password_secret else ""
    return SmtpSender(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_security,
        settings.smtp_user,
        password,
        settings.smtp_timeout_seconds,
    )


@functools.cache
def narrator() -> ChatNarrator:
    """The fund's narrator for the digest (unconfigured: every paragraph is count-only)."""
    from shared.adapters.narrator import ChatNarrator

    settings = get_settings()
    key = (
        secrets().get_optional(settings.narrator_key_secret)
        if settings.narrator_key_secret
        else None
    )
    return ChatNarrator(
        settings.narrator_url,
        settings.narrator_model,
        key,
        timeout=settings.narrator_timeout_seconds,
    )


def start_capture(account_id: str, *, request_sync: bool = True) -> CaptureStarted:
    """A new or resumed mailbox's capture started now (its sync asked for unless the caller
    already did, its Gmail watch started when a topic is configured), with this instance's
    queue, Gmail and settings."""
    from shared.services.directory import start_capture as start

    return start(
        store(),
        account_id,
        queue=queue() if request_sync else None,
        gmail_for=gmail_for,
        watch_topic=get_settings().gmail_watch_topic,
        request_sync=request_sync,
    )


def digest_runtime() -> DigestRuntime:
    """What the digest is built and delivered with: this instance's store, narrator and
    transports (built here, the composition root, and handed to ``digest_schedule``)."""
    from shared.services.digest_schedule import DigestRuntime

    settings = get_settings()
    return DigestRuntime(
        store=store(),
        narrator=narrator(),
        gmail_sender_for=gmail_sender_for,
        smtp=smtp_sender(),
        team_domains=team_domains,
        digest_sender=settings.digest_sender,
        smtp_from=settings.smtp_from,
        cold_days=settings.relationship_cold_days,
        cold_drop=settings.relationship_cold_drop,
    )


@functools.cache
def clock() -> Clock:
    from shared.adapters.clock import SystemClock

    return SystemClock()


@functools.cache
def ensure_bootstrap_admin() -> bool:
    """Create ``CRM_BOOTSTRAP_ADMIN`` as the first admin, once per instance, only while no active
    admin exists (the store enforces that atomically)."""
    email = get_settings().bootstrap_admin
    if not email:
        return False
    team = team_domains()
    if not team.admits(email):
        logger.error(
            "bootstrap admin refused: outside the team domains",
            extra={"fields": {"event": "bootstrap_admin_refused", "user": email}},
        )
        return False
    created = store().bootstrap_admin(email)
    if created:
        logger.warning(
            "bootstrap admin created", extra={"fields": {"event": "bootstrap_admin", "user": email}}
        )
    return created


@functools.cache
def gmail_watch_puller() -> PubSubPuller:
    """The pull client of ``CRM_GMAIL_WATCH_SUBSCRIPTION`` (one machine: Gmail cannot push)."""
    from shared.adapters.pubsub_pull import PubSubPuller

    settings = get_settings()
    return PubSubPuller(
        _pubsub_credentials(),
        settings.gmail_watch_subscription,
        endpoint=settings.pubsub_rest_endpoint,
    )


def _pubsub_credentials() -> Any:
    """Pub/Sub REST calls act as the delegation key's service account, else as ADC."""
    from shared.adapters.gmail.credentials import parse_key_secret
    from shared.adapters.pubsub_pull import pull_credentials

    settings = get_settings()
    key_info = None
    if settings.gmail_key_secret:
        name = settings.gmail_key_secret
        key_info = parse_key_secret(secrets().get(name), secret=name)
    return pull_credentials(key_info=key_info, endpoint=settings.pubsub_rest_endpoint)


def pubsub_inspector() -> PubSubInspector:
    """Reads the watch topic, its IAM policy and the subscription (``doctor``)."""
    from shared.adapters.pubsub_pull import PubSubInspector

    return PubSubInspector(_pubsub_credentials(), endpoint=get_settings().pubsub_rest_endpoint)


def firestore_admin() -> FirestoreAdmin:
    """Firestore's admin API for this database (``doctor``): ADC, or nothing for a loopback
    stand-in."""
    from shared.adapters.firestore_admin import FirestoreAdmin
    from shared.adapters.pubsub_pull import anonymous_for_loopback

    settings = get_settings()
    endpoint = settings.firestore_admin_endpoint
    credentials = anonymous_for_loopback(endpoint)
    if credentials is None:
        import google.auth

        from shared.adapters.firestore_admin import SCOPE_DATASTORE

        credentials, _ = google.auth.default(scopes=[SCOPE_DATASTORE])
    return FirestoreAdmin(
        credentials, settings.gcp_project, settings.firestore_database, endpoint=endpoint
    )


def delegated_credentials(address: str, scope: str) -> Any:
    """Gmail delegation credentials for ``address`` with exactly ``scope`` (``doctor`` mints
    one token per mailbox and scope to prove the grant)."""
    return _delegated_credentials(address, scope)


def run_gmail_pull_loop(stop_event: threading.Event, *, idle_seconds: float = 1.0) -> None:
    """Pull Gmail's watch notifications until ``stop_event`` is set (the local server runs this
    in a thread). Returns at once when no subscription is configured (the poll does the work).
    A failed pull is logged and retried with backoff; it never ends the loop, and the poll keeps
    running beside it whatever happens here."""
    from shared.services.notifications import drain_notifications

    if not get_settings().gmail_watch_subscription:
        return
    backoff = idle_seconds
    while not stop_event.is_set():
        try:
            result = drain_notifications(gmail_watch_puller(), store(), queue())
        except Exception as exc:
            logger.warning(
                "gmail notification pull failed",
                extra={"fields": {"event": "pull_failed", "error": type(exc).__name__}},
            )
            stop_event.wait(backoff)
            backoff = min(backoff * 2, 60.0)
            continue
        backoff = idle_seconds
        if result.pulled == 0:
            stop_event.wait(idle_seconds)


def reset() -> None:
    """Forget every built adapter and the settings (tests; reconfiguration)."""
    for cached in (
        store,
        secrets,
        queue,
        verifier,
        clock,
        gmail_for,
        gmail_drafts_for,
        gmail_sender_for,
        smtp_sender,
        narrator,
        ensure_bootstrap_admin,
        local_key,
        gmail_watch_puller,
    ):
        cached.cache_clear()
    if local_queue.cache_info().currsize:
        local_queue().close()
    local_queue.cache_clear()
    from shared.config import get_settings as cached_settings

    cached_settings.cache_clear()
