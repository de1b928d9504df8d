"""A loopback stand-in for the Pub/Sub REST API calls the one machine and ``doctor`` make.

Google's Pub/Sub emulator speaks gRPC for pulls and needs Java; the service pulls over REST, so
this serves that REST surface on ``127.0.0.1``: ``subscriptions.pull`` and ``acknowledge`` with
Pub/Sub's semantics that matter here (a pulled message is leased for the ack deadline and handed
out again if not acknowledged; acknowledging removes it), plus ``topics.get``,
``subscriptions.get`` and ``topics.getIamPolicy`` for ``doctor``'s checks. Errors use Google's
JSON error envelope.

    with PubSubRestStandIn(project="p") as pubsub:
        pubsub.add_topic("gmail-watch", publishers=[GMAIL_PUSH_PUBLISHER])
        pubsub.add_subscription("gmail-watch-pull", topic="gmail-watch")
        pubsub.publish("gmail-watch", {"emailAddress": "a@fund.test", "historyId": "1"})
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from werkzeug.wrappers import Request, Response

from sandbox.loopback import LoopbackServer

GMAIL_PUSH_PUBLISHER = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/(?P<kind>topics|subscriptions)/(?P<name>[^/:]+)"
    r"(?::(?P<verb>[A-Za-z]+))?$"
)
Encoding = Literal["base64", "base64url"]


@dataclass
class _Message:
    data: str
    message_id: str
    published: float
    ack_id: str = ""
    leased_until: float = 0.0
    deliveries: int = 0


@dataclass
class _Subscription:
    topic: str
    ack_deadline_s: float
    messages: list[_Message] = field(default_factory=list)


class PubSubRestStandIn(LoopbackServer):
    """One project's topics and subscriptions, in memory; every request is recorded."""

    thread_name = "pubsub-rest-stand-in"

    def __init__(self, *, project: str = "sandbox-project", host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.project = project
        self._lock = threading.Lock()
        self._topics: dict[str, set[str]] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._failures: dict[str, int] = {}
        self.requests: list[tuple[str, str, int]] = []

    # -- state -------------------------------------------------------------------------------
    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    def add_topic(self, topic: str, *, publishers: Iterable[str] = ()) -> str:
        with self._lock:
            self._topics[topic] = set(publishers)
        return self.topic_path(topic)

    def add_subscription(
        self, subscription: str, *, topic: str, ack_deadline_s: float = 10.0
    ) -> str:
        with self._lock:
            self._subscriptions[subscription] = _Subscription(topic, ack_deadline_s)
        return self.subscription_path(subscription)

    def publish(
        self, topic: str, data: Mapping[str, Any] | bytes, *, encoding: Encoding = "base64"
    ) -> str:
        """Put a message on every subscription of ``topic``; ``data`` encoded as Gmail's
        publisher would (base64), or base64url, which Google's documents also show."""
        raw = data if isinstance(data, bytes) else json.dumps(dict(data)).encode("utf-8")
        text = (base64.b64encode if encoding == "base64" else base64.urlsafe_b64encode)(raw)
        message_id = uuid.uuid4().hex
        with self._lock:
            for subscription in self._subscriptions.values():
                if subscription.topic == topic:
                    subscription.messages.append(
                        _Message(text.decode("ascii"), message_id, time.time())
                    )
        return message_id

    def fail_next(self, verb: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``verb`` (``pull``, ``acknowledge``) with a 503."""
        with self._lock:
            self._failures[verb] = times

    def outstanding(self, subscription: str) -> int:
        """Messages not yet acknowledged (leased or not)."""
        with self._lock:
            return len(self._subscriptions[subscription].messages)

    def expire_leases(self, subscription: str) -> None:
        """Let every lease run out now, as if the ack deadline had passed."""
        with self._lock:
            for message in self._subscriptions[subscription].messages:
                message.leased_until = 0.0

    # -- HTTP --------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        match = _PATH.match(request.path)
        if match is None:
            response = _error(404, "NOT_FOUND", f"Method not found: {request.path}")
        else:
            response = self._route(request, **match.groupdict())
        with self._lock:
            self.requests.append((request.method, request.path, response.status_code))
        return response(environ, start_response)

    def _route(
        self, request: Request, *, project: str, kind: str, name: str, verb: str | None
    ) -> Response:
        resource = f"projects/{project}/{kind}/{name}"
        if project != self.project:
            return _error(403, "PERMISSION_DENIED", f"User not authorized on '{resource}'.")
        with self._lock:
            if verb and self._failures.get(verb, 0) > 0:
                self._failures[verb] -= 1
                return _error(503, "UNAVAILABLE", "The service is currently unavailable.")
            if kind == "topics":
                publishers = self._topics.get(name)
                if publishers is None:
                    return _error(404, "NOT_FOUND", f"Resource not found (resource={name}).")
                if verb is None and request.method == "GET":
                    return _json({"name": resource})
                if verb == "getIamPolicy" and request.method == "GET":
                    bindings = (
                        [{"role": "roles/pubsub.publisher", "members": sorted(publishers)}]
                        if publishers
                        else []
                    )
                    return _json({"version": 1, "etag": "BwX=", "bindings": bindings})
                return _error(404, "NOT_FOUND", f"Method not found: {request.path}")
            subscription = self._subscriptions.get(name)
            if subscription is None:
                return _error(404, "NOT_FOUND", f"Resource not found (resource={name}).")
            if verb is None and request.method == "GET":
                return _json(
                    {
                        "name": resource,
                        "topic": self.topic_path(subscription.topic),
                        "ackDeadlineSeconds": int(subscription.ack_deadline_s),
                    }
                )
            if request.method != "POST":
                return _error(404, "NOT_FOUND", f"Method not found: {request.path}")
            body = request.get_json(silent=True) or {}
            if verb == "pull":
                return self._pull(subscription, int(body.get("maxMessages") or 0))
            if verb == "acknowledge":
                ack_ids = set(body.get("ackIds") or [])
                if not ack_ids:
                    return _error(400, "INVALID_ARGUMENT", "No ack ids specified.")
                subscription.messages = [
                    m for m in subscription.messages if not (m.ack_id and m.ack_id in ack_ids)
                ]
                return _json({})
        return _error(404, "NOT_FOUND", f"Method not found: {request.path}")

    def _pull(self, subscription: _Subscription, max_messages: int) -> Response:
        if max_messages <= 0:
            return _error(400, "INVALID_ARGUMENT", "maxMessages must be positive.")
        now = time.time()
        received: list[dict[str, Any]] = []
        for message in subscription.messages:
            if len(received) >= max_messages:
                break
            if message.leased_until > now:
                continue
            # A new ack id per delivery: an ack id of an expired lease acknowledges nothing.
            message.ack_id = uuid.uuid4().hex
            message.leased_until = now + subscription.ack_deadline_s
            message.deliveries += 1
            received.append(
                {
                    "ackId": message.ack_id,
                    "message": {
                        "data": message.data,
                        "messageId": message.message_id,
                        "publishTime": time.strftime(
                            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(message.published)
                        ),
                        "attributes": {},
                    },
                    "deliveryAttempt": message.deliveries,
                }
            )
        return _json({"receivedMessages": received} if received else {})


def _json(body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), status=200, mimetype="application/json")


def _error(code: int, status: str, message: str) -> Response:
    body = {"error": {"code": code, "message": message, "status": status}}
    return Response(json.dumps(body), status=code, mimetype="application/json")
