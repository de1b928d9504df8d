"""Gmail notifications by Pub/Sub pull: the real discovery client against the loopback stand-in.

A message is acknowledged only once its sync request is queued; base64 and base64url data are
both read; what no retry can fix is acknowledged and dropped; a failed pull never ends the loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials

from sandbox.pubsub_rest import GMAIL_PUSH_PUBLISHER, PubSubRestStandIn
from shared import wiring
from shared.adapters.pubsub_pull import PubSubPuller
from shared.adapters.queue import LocalQueue
from shared.adapters.sqlite import SqliteStore
from shared.catalog import local_schedules
from shared.config import Settings
from shared.domain.models import EmailAccount
from shared.services.notifications import drain_notifications

MAILBOX = "ada@fund.test"
TOPIC = "gmail-watch"
SUBSCRIPTION = "gmail-watch-pull"

pytestmark = pytest.mark.usefixtures("loopback_bypasses_proxies")


@pytest.fixture
def pubsub() -> Iterator[PubSubRestStandIn]:
    with PubSubRestStandIn(project="fund-prod") as running:
        running.add_topic(TOPIC, publishers=[GMAIL_PUSH_PUBLISHER])
        running.add_subscription(SUBSCRIPTION, topic=TOPIC)
        yield running


@pytest.fixture
def puller(pubsub: PubSubRestStandIn) -> PubSubPuller:
    return PubSubPuller(
        AnonymousCredentials(), pubsub.subscription_path(SUBSCRIPTION), endpoint=pubsub.endpoint
    )


@pytest.fixture
def mailbox_store(sqlite_store: SqliteStore) -> SqliteStore:
    sqlite_store.add_email_account(EmailAccount.new(MAILBOX))
    return sqlite_store


def synced_accounts(queue: LocalQueue) -> list[object]:
    return [item.message["account_id"] for item in queue.published]


@pytest.mark.parametrize("encoding", ["base64", "base64url"])
def test_a_notification_queues_a_sync_then_is_acknowledged(
    encoding: str, pubsub: PubSubRestStandIn, puller: PubSubPuller, mailbox_store: SqliteStore
) -> None:
    queue = LocalQueue()
    # "?>" in the JSON makes base64 and base64url differ ("/" vs "_").
    pubsub.publish(
        TOPIC,
        {"emailAddress": MAILBOX, "historyId": "12345", "note": "??>>??>>"},
        encoding=encoding,  # type: ignore[arg-type]
    )
    result = drain_notifications(puller, mailbox_store, queue)
    account = mailbox_store.get_email_account_by_address(MAILBOX)
    assert account is not None
    assert (result.pulled, result.queued, result.kept) == (1, 1, 0)
    assert synced_accounts(queue) == [account.id]
    assert pubsub.outstanding(SUBSCRIPTION) == 0


def test_a_notification_not_queued_is_left_for_redelivery(
    pubsub: PubSubRestStandIn, puller: PubSubPuller, tmp_path: Path
) -> None:
    queue = LocalQueue()
    broken = SqliteStore(tmp_path / "closed.sqlite3")
    broken.add_email_account(EmailAccount.new(MAILBOX))
    broken.close()
    # The database is damaged: the mailbox cannot be read, so no sync request can be queued.
    for path in tmp_path.glob("closed.sqlite3*"):
        path.write_bytes(b"not a database" * 512)
    pubsub.publish(TOPIC, {"emailAddress": MAILBOX, "historyId": "1"})
    result = drain_notifications(puller, broken, queue)
    assert (result.pulled, result.kept) == (1, 1)
    assert queue.published == []
    assert pubsub.outstanding(SUBSCRIPTION) == 1
    # Within the ack deadline nobody gets it again; after it, it is handed out again.
    assert drain_notifications(puller, broken, queue).pulled == 0
    pubsub.expire_leases(SUBSCRIPTION)
    healthy = SqliteStore(tmp_path / "healthy.sqlite3")
    healthy.add_email_account(EmailAccount.new(MAILBOX))
    try:
        again = drain_notifications(puller, healthy, queue)
    finally:
        healthy.close()
    assert (again.pulled, again.queued) == (1, 1)
    assert pubsub.outstanding(SUBSCRIPTION) == 0


def test_what_no_retry_can_fix_is_acknowledged_and_dropped(
    pubsub: PubSubRestStandIn, puller: PubSubPuller, mailbox_store: SqliteStore
) -> None:
    queue = LocalQueue()
    pubsub.publish(TOPIC, b"\xff not json")
    pubsub.publish(TOPIC, b'{"emailAddress": "\\ud800@fund.test"}')
    pubsub.publish(TOPIC, {"historyId": "1"})
    pubsub.publish(TOPIC, {"emailAddress": "nobody@fund.test", "historyId": "1"})
    result = drain_notifications(puller, mailbox_store, queue)
    assert (result.pulled, result.dropped, result.queued) == (4, 4, 0)
    assert queue.published == []
    assert pubsub.outstanding(SUBSCRIPTION) == 0


def _configure(pubsub: PubSubRestStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CRM_SQLITE_PATH": str(tmp_path / "crm.sqlite3"),
        "CRM_GMAIL_WATCH_TOPIC": pubsub.topic_path(TOPIC),
        "CRM_GMAIL_WATCH_SUBSCRIPTION": pubsub.subscription_path(SUBSCRIPTION),
        "CRM_PUBSUB_REST_ENDPOINT": pubsub.endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    wiring.store().add_email_account(EmailAccount.new(MAILBOX))


def _wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


def test_the_pull_loop_survives_a_failing_pull_and_stops_when_told(
    pubsub: PubSubRestStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(pubsub, tmp_path, monkeypatch)
    pubsub.fail_next("pull", times=2)
    pubsub.publish(TOPIC, {"emailAddress": MAILBOX, "historyId": "7"}, encoding="base64url")
    stop = threading.Event()
    loop = threading.Thread(
        target=wiring.run_gmail_pull_loop, args=(stop,), kwargs={"idle_seconds": 0.05}
    )
    loop.start()
    try:
        assert _wait_for(lambda: len(wiring.local_queue().published) == 1)
        assert _wait_for(lambda: pubsub.outstanding(SUBSCRIPTION) == 0)
    finally:
        stop.set()
        loop.join(5)
    assert not loop.is_alive()
    pulls = [status for _, path, status in pubsub.requests if path.endswith(":pull")]
    assert pulls[:2] == [503, 503] and 200 in pulls


def test_without_a_subscription_the_loop_returns_at_once(tmp_path: Path) -> None:
    stop = threading.Event()
    started = time.monotonic()
    wiring.run_gmail_pull_loop(stop)
    assert time.monotonic() - started < 1.0


def test_polling_never_stops_and_watches_are_renewed_only_with_a_topic() -> None:
    def schedules(**settings: str) -> dict[str, str]:
        return {spec.name: spec.schedule for spec in local_schedules(Settings(**settings))}  # type: ignore[arg-type]

    bare = schedules()
    assert bare["sync_poll"] == "* * * * *"
    assert "watch_renew" not in bare
    assert "digest_tick" in bare
    pulled = schedules(
        gmail_watch_topic="projects/p/topics/t",
        gmail_watch_subscription="projects/p/subscriptions/s",
    )
    assert pulled["sync_poll"] == "*/5 * * * *"
    assert "watch_renew" in pulled
    topic_only = schedules(gmail_watch_topic="projects/p/topics/t")
    assert topic_only["sync_poll"] == "* * * * *"
    assert "watch_renew" in topic_only
