"""Pub/Sub pull over REST: how one machine receives Gmail's watch notifications.

Gmail publishes a notification to the watch topic; on the cloud a push subscription POSTs it to
``gmail_push``. One machine has no public address, so it pulls the topic's subscription through
the Pub/Sub REST API (``subscriptions.pull`` and ``acknowledge``) with google-api-python-client's
bundled ``pubsub v1`` discovery document: no network fetch of the document and no gRPC.

A pull may be held open by Pub/Sub until messages arrive; the HTTP timeout bounds it, so a
stopping server waits at most that long, and a timeout is an empty pull, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.errors import RetryableError
from shared.ports.notifications import PulledMessage

SCOPE_PUBSUB = "https://www.googleapis.com/auth/pubsub"
PULL_TIMEOUT_SECONDS = 10.0


def build_pubsub_service(credentials: Any, endpoint: str = "", *, timeout: float) -> Any:
    """The Pub/Sub discovery client from the bundled document, pointed at ``endpoint`` (empty:
    Google's), with a bounded HTTP timeout."""
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
    options = {"api_endpoint": endpoint} if endpoint else None
    return build(
        "pubsub",
        "v1",
        http=http,
        client_options=options,
        static_discovery=True,
        cache_discovery=False,
    )


class PubSubPuller:
    """Pulls and acknowledges one subscription (implements ``NotificationSource``)."""

    def __init__(
        self,
        credentials: Any,
        subscription: str,
        *,
        endpoint: str = "",
        timeout: float = PULL_TIMEOUT_SECONDS,
    ) -> None:
        self.subscription = subscription
        self._service = build_pubsub_service(credentials, endpoint, timeout=timeout)

    def pull(self, max_messages: int) -> Sequence[PulledMessage]:
        from googleapiclient.errors import HttpError

        request = (
            self._service.projects()
            .subscriptions()
            .pull(subscription=self.subscription, body={"maxMessages": max_messages})
        )
        try:
            answer = request.execute(num_retries=0)
        except TimeoutError:
            return []  # a long-poll that found nothing before the timeout
        except HttpError as exc:
            raise RetryableError(f"Pub/Sub pull failed: HTTP {exc.resp.status}") from None
        except OSError as exc:
            raise RetryableError(f"Pub/Sub pull failed: {type(exc).__name__}") from None
        received = answer.get("receivedMessages") or []
        return [
            PulledMessage(ack_id=str(item.get("ackId", "")), message=item.get("message") or {})
            for item in received
            if isinstance(item, dict) and item.get("ackId")
        ]

    def acknowledge(self, ack_ids: Sequence[str]) -> None:
        from googleapiclient.errors import HttpError

        if not ack_ids:
            return
        request = (
            self._service.projects()
            .subscriptions()
            .acknowledge(subscription=self.subscription, body={"ackIds": list(ack_ids)})
        )
        try:
            request.execute(num_retries=0)
        except HttpError as exc:
            raise RetryableError(f"Pub/Sub acknowledge failed: HTTP {exc.resp.status}") from None
        except OSError as exc:
            raise RetryableError(f"Pub/Sub acknowledge failed: {type(exc).__name__}") from None


def anonymous_for_loopback(endpoint: str) -> Any:
    """No credentials for a loopback stand-in (none are sent to it); None for anything else."""
    from urllib.parse import urlsplit

    if endpoint and urlsplit(endpoint).hostname in {"127.0.0.1", "::1", "localhost"}:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    return None


def pull_credentials(*, key_info: dict[str, Any] | None, endpoint: str) -> Any:
    """Who the pull acts as: the delegation key's service account itself (no subject), else
    Application Default Credentials; nobody, toward a loopback stand-in."""
    anonymous = anonymous_for_loopback(endpoint)
    if anonymous is not None:
        return anonymous
    if key_info is not None:
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(
            key_info, scopes=[SCOPE_PUBSUB]
        )
    import google.auth

    credentials, _ = google.auth.default(scopes=[SCOPE_PUBSUB])
    return credentials


class PubSubLookupError(Exception):
    """A topic/subscription lookup failed: ``status`` is the HTTP status (0: not reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PubSubInspector:
    """Reads what ``doctor`` checks about the watch topic and its subscription."""

    def __init__(self, credentials: Any, *, endpoint: str = "", timeout: float = 10.0) -> None:
        self._service = build_pubsub_service(credentials, endpoint, timeout=timeout)

    def topic(self, path: str) -> dict[str, Any]:
        return self._run(self._service.projects().topics().get(topic=path))

    def topic_policy(self, path: str) -> dict[str, Any]:
        return self._run(self._service.projects().topics().getIamPolicy(resource=path))

    def subscription(self, path: str) -> dict[str, Any]:
        return self._run(self._service.projects().subscriptions().get(subscription=path))

    @staticmethod
    def _run(request: Any) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        try:
            answer = request.execute(num_retries=0)
        except HttpError as exc:
            raise PubSubLookupError(exc.resp.status, f"HTTP {exc.resp.status}") from None
        except OSError as exc:
            raise PubSubLookupError(0, type(exc).__name__) from None
        return answer if isinstance(answer, dict) else {}
