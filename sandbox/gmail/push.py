"""Pub/Sub-shaped push deliveries of Gmail notifications, from one background thread.

Gmail publishes ``{"emailAddress", "historyId"}`` to the watch's topic and Pub/Sub pushes it to
the subscription's endpoint with an OIDC token. Here the two hops are one: the simulator posts the
push envelope straight to the configured URL with a token minted by a :class:`SandboxIssuer`,
retries non-2xx answers with backoff (as Pub/Sub does) and records every attempt.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

DEFAULT_SUBSCRIPTION = "projects/sandbox/subscriptions/gmail-push"


class PushSigner(Protocol):
    """Who signs the push's OIDC token: the sandbox issuer (cloud-like stacks) or the local
    runtime's own key (sandbox and real modes, where only it may vouch for the push identity)."""

    def mint(self, email: str, audience: str) -> str: ...


@dataclass(frozen=True)
class PushTarget:
    url: str
    identity_email: str
    audience: str
    issuer: PushSigner
    subscription: str = DEFAULT_SUBSCRIPTION
    retry_delays_s: tuple[float, ...] = (0.05, 0.2, 0.5)


@dataclass
class PushDelivery:
    """One notification and every attempt to deliver it (HTTP statuses; 0 = no answer)."""

    email_address: str
    history_id: int
    message_id: str
    url: str
    statuses: list[int] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False

    @property
    def done(self) -> bool:
        return self.delivered or self.gave_up


class PushWorker:
    """A daemon thread with a due-time heap: first attempts at once, retries after a delay."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, PushDelivery, PushTarget]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._stopping = False

    def submit(self, delivery: PushDelivery, target: PushTarget, delay_s: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(
                self._heap, (time.monotonic() + delay_s, next(self._seq), delivery, target)
            )
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="gmail-sandbox-push", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        _, _, delivery, target = heapq.heappop(self._heap)
                        self._busy += 1
                        break
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
            try:
                status = _post(delivery, target)
            finally:
                with self._cond:
                    self._busy -= 1
                    delivery.statuses.append(status)
                    if 200 <= status < 300:
                        delivery.delivered = True
                    else:
                        attempt = len(delivery.statuses)
                        if attempt <= len(target.retry_delays_s):
                            heapq.heappush(
                                self._heap,
                                (
                                    time.monotonic() + target.retry_delays_s[attempt - 1],
                                    next(self._seq),
                                    delivery,
                                    target,
                                ),
                            )
                        else:
                            delivery.gave_up = True
                    self._cond.notify_all()


def envelope(delivery: PushDelivery, subscription: str) -> dict[str, object]:
    data = json.dumps(
        {"emailAddress": delivery.email_address, "historyId": delivery.history_id}
    ).encode("utf-8")
    now = datetime.now(UTC)
    publish_time = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return {
        "message": {
            "data": base64.b64encode(data).decode("ascii"),
            "messageId": delivery.message_id,
            "message_id": delivery.message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
            "attributes": {},
        },
        "subscription": subscription,
    }


def _post(delivery: PushDelivery, target: PushTarget) -> int:
    body = json.dumps(envelope(delivery, target.subscription)).encode("utf-8")
    token = target.issuer.mint(target.identity_email, target.audience)
    request = urllib.request.Request(  # noqa: S310 - the URL is the test's own push endpoint
        target.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return 0
