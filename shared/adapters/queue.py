"""Queue adapters: fan-out of sync requests.

In the cloud a message goes to a Pub/Sub topic whose push subscription POSTs it, with an OIDC
token, to the subscribing function. On one machine ``LocalQueue`` does the same in-process: a
worker thread hands the same push envelope to a deliverer that the local server attaches (which
calls the function through its HTTP app with a real signed token), retrying failed deliveries with
backoff like Pub/Sub and keeping what still fails as dead letters.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# (topic, message, message_id) -> HTTP status of the delivery
Deliverer = Callable[[str, Mapping[str, Any], str], int]


@dataclass(frozen=True)
class QueuedMessage:
    topic: str
    message: Mapping[str, Any]
    message_id: str
    attempt: int = 1


class LocalQueue:
    """In-process stand-in for Pub/Sub topics with push subscriptions."""

    def __init__(self, *, max_attempts: int = 5, backoff_s: float = 0.2) -> None:
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.published: list[QueuedMessage] = []
        self.dead_letters: list[QueuedMessage] = []
        self._deliver: Deliverer | None = None
        self._pending: queue.Queue[QueuedMessage | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = False

    def attach(self, deliver: Deliverer) -> None:
        """Start delivering (the local server calls this once its functions are mounted)."""
        with self._lock:
            self._deliver = deliver
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="local-queue", daemon=True)
                self._worker.start()

    def close(self) -> None:
        if self._worker is not None:
            self._pending.put(None)
            self._worker.join(5)
            self._worker = None

    def stop_delivering(self, timeout: float) -> bool:
        """Take no more work: the delivery under way (if any) finishes, nothing else is
        delivered or retried. What is left is dropped: on one machine every request is
        re-derivable (the checkpoint is in the store, and the server polls again on start).
        True if the worker ended within ``timeout``."""
        self._stopping = True
        worker = self._worker
        if worker is None:
            return True
        self._pending.put(None)
        worker.join(timeout)
        return not worker.is_alive()

    def publish(self, topic: str, message: Mapping[str, Any]) -> str:
        item = QueuedMessage(topic=topic, message=dict(message), message_id=uuid.uuid4().hex)
        with self._lock:
            self.published.append(item)
            self._in_flight += 1
        self._pending.put(item)
        return item.message_id

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every published message was delivered or dead-lettered (tests, demo)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def _settle(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _run(self) -> None:
        while True:
            item = self._pending.get()
            if item is None or self._stopping:
                return
            deliver = self._deliver
            status = 0
            if deliver is not None:
                try:
                    status = deliver(item.topic, item.message, item.message_id)
                except Exception:
                    logger.exception(
                        "local queue delivery raised", extra={"fields": {"topic": item.topic}}
                    )
            if 200 <= status < 300:
                self._settle()
            elif self._stopping:
                return
            elif item.attempt < self.max_attempts:
                time.sleep(self.backoff_s * 2 ** (item.attempt - 1))
                self._pending.put(
                    QueuedMessage(item.topic, item.message, item.message_id, item.attempt + 1)
                )
            else:
                self.dead_letters.append(item)
                logger.error(
                    "message dead-lettered",
                    extra={
                        "fields": {"topic": item.topic, "status": status, "event": "dead_letter"}
                    },
                )
                self._settle()


class PubSubQueue:
    """Publishes to Cloud Pub/Sub over REST with the function's own credentials.

    REST through google-auth's ``AuthorizedSession`` rather than the gRPC client: publishing one
    small message per mailbox does not justify google-cloud-pubsub's import cost on cold start.
    """

    def __init__(self, project: str, *, endpoint: str = "", credentials: Any = None) -> None:
        self.project = project
        self.endpoint = (endpoint or "https://pubsub.googleapis.com").rstrip("/")
        self._credentials = credentials
        self._session: Any = None
        self._session_lock = threading.Lock()

    def _authorized_session(self) -> Any:
        with self._session_lock:
            if self._session is None:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials = self._credentials
                if credentials is None:
                    credentials, _ = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/pubsub"]
                    )
                self._session = AuthorizedSession(credentials)
            return self._session

    def publish(self, topic: str, message: Mapping[str, Any]) -> str:
        from shared.errors import RetryableError

        url = f"{self.endpoint}/v1/projects/{self.project}/topics/{topic}:publish"
        data = base64.b64encode(json.dumps(dict(message)).encode("utf-8")).decode("ascii")
        response = self._authorized_session().post(
            url, json={"messages": [{"data": data}]}, timeout=30
        )
        if response.status_code != 200:
            raise RetryableError(
                "publishing to Pub/Sub failed", topic=topic, status=response.status_code
            )
        return str(response.json()["messageIds"][0])
