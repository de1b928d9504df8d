"""Quota, concurrency, injected faults and push notifications of the Gmail sandbox."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import google.auth.transport.requests
import httplib2
import pytest
from google.oauth2 import id_token
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sandbox.gmail import ManualClock
from sandbox.issuer import SandboxIssuer, serve_issuer
from tests.support.gmail_sandbox import ADA, Env, make_mail

PUSH_IDENTITY = "gmail-push@sandbox-project.iam.gserviceaccount.com"


def _error(error: HttpError) -> dict[str, Any]:
    return json.loads(error.content)["error"]


def test_user_rate_limit_with_a_manual_clock(make_env: Callable[..., Env]) -> None:
    clock = ManualClock()
    env = make_env(clock=clock, units_per_second=10)
    messages = env.gmail().users().messages()
    messages.list(userId="me").execute()
    messages.list(userId="me").execute()
    with pytest.raises(HttpError) as limited:
        messages.list(userId="me").execute()
    error = _error(limited.value)
    assert limited.value.status_code == 429
    assert error["errors"][0] == {
        "message": error["message"],
        "domain": "usageLimits",
        "reason": "userRateLimitExceeded",
    }
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert limited.value.resp["retry-after"] == "1"
    assert env.sandbox.units_used(ADA) == 10
    clock.advance(0.5)
    messages.list(userId="me").execute()  # half a second refills 5 units
    assert env.sandbox.units_used(ADA) == 15


def test_batch_parts_beyond_the_concurrency_limit_get_429(env: Env) -> None:
    ids = [env.sandbox.add_message(ADA, make_mail(f"c{i}")) for i in range(12)]
    gmail = env.gmail()
    statuses: list[int] = []

    def collect(_: str, response: Any, exception: HttpError | None) -> None:
        statuses.append(200 if exception is None else exception.status_code)
        if exception is not None:
            assert _error(exception)["message"] == "Too many concurrent requests for user"
            assert _error(exception)["errors"][0]["reason"] == "rateLimitExceeded"

    batch = BatchHttpRequest(callback=collect, batch_uri=env.running.batch_uri)
    for message_id in ids:
        batch.add(gmail.users().messages().get(userId="me", id=message_id, format="minimal"))
    batch.execute()
    assert statuses == [200] * 10 + [429] * 2  # default limit: 10 in flight


def test_a_slow_request_holds_its_slot(make_env: Callable[..., Env]) -> None:
    env = make_env(concurrency_limit=1)
    env.sandbox.inject_fault("getProfile", status=None, delay_s=0.6)
    slow, fast = env.gmail(), env.gmail()
    started = threading.Event()
    results: list[Any] = []

    def call_slow() -> None:
        started.set()
        results.append(slow.users().getProfile(userId="me").execute())

    worker = threading.Thread(target=call_slow)
    worker.start()
    started.wait()
    for _ in range(200):  # the fault is taken once the slow call holds its slot
        if not env.sandbox.pending_faults():
            break
        threading.Event().wait(0.01)
    with pytest.raises(HttpError) as busy:
        fast.users().messages().list(userId="me").execute()
    assert busy.value.status_code == 429
    worker.join()
    assert results[0]["emailAddress"] == ADA
    fast.users().messages().list(userId="me").execute()


def test_injected_faults(env: Env) -> None:
    sandbox = env.sandbox
    message_id = sandbox.add_message(ADA, make_mail())
    gmail = env.gmail()
    sandbox.inject_fault("messages.get", status=503)
    with pytest.raises(HttpError) as unavailable:
        gmail.users().messages().get(userId="me", id=message_id).execute()
    assert unavailable.value.status_code == 503
    assert gmail.users().messages().get(userId="me", id=message_id).execute()["id"] == message_id

    # A fault hits one batch part; "batch" fails the whole batch request.
    sandbox.inject_fault("messages.get", status=500)
    statuses: list[int] = []
    batch = BatchHttpRequest(
        callback=lambda _, __, e: statuses.append(200 if e is None else e.status_code),
        batch_uri=env.running.batch_uri,
    )
    batch.add(gmail.users().getProfile(userId="me"))
    batch.add(gmail.users().messages().get(userId="me", id=message_id))
    batch.add(gmail.users().messages().get(userId="me", id=message_id))
    batch.execute()
    assert statuses == [200, 500, 200]
    sandbox.inject_fault("batch", status=503)
    retry = BatchHttpRequest(batch_uri=env.running.batch_uri)
    retry.add(gmail.users().getProfile(userId="me"))
    with pytest.raises(HttpError) as whole:
        retry.execute()
    assert whole.value.status_code == 503

    # A dropped connection reaches the client as a transport error (httplib2 retries once).
    sandbox.inject_fault("getProfile", drop_connection=True, count=3)
    with pytest.raises((ConnectionError, httplib2.HttpLib2Error)):
        gmail.users().getProfile(userId="me").execute()
    sandbox.clear_faults()
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == ADA


class _PushReceiver:
    """A push endpoint: records each request, answers the queued statuses, then 204."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.requests: list[tuple[dict[str, Any], str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.requests.append((request.get_json(), request.headers.get("Authorization", "")))
            status = self.answers.pop(0) if self.answers else 204
        return Response(status=status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[tuple[_PushReceiver, str]]:
    app = _PushReceiver([500])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.port}/gmail_push"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_watch_then_new_mail_pushes_a_verifiable_notification(
    env: Env, receiver: tuple[_PushReceiver, str]
) -> None:
    app, url = receiver
    sandbox = env.sandbox
    with serve_issuer(SandboxIssuer()) as issuer:
        sandbox.set_push_target(
            url, identity_email=PUSH_IDENTITY, audience=url, issuer=issuer.issuer
        )
        gmail = env.gmail()
        watch = (
            gmail.users()
            .watch(
                userId="me",
                body={"topicName": "projects/sandbox-project/topics/gmail", "labelIds": ["INBOX"]},
            )
            .execute()
        )
        assert int(watch["expiration"]) > int(sandbox.clock() * 1000) + 6 * 86400 * 1000
        assert sandbox.wait_for_pushes(5)  # a watch notifies once straight away
        sandbox.add_message(ADA, make_mail("Fresh"))
        sandbox.add_message(ADA, make_mail("Spam"), label_ids=["SPAM"])  # outside the filter
        assert sandbox.wait_for_pushes(5)

        first, second = sandbox.deliveries
        assert first.statuses == [500, 204] and first.delivered  # retried after a 500
        assert first.history_id == int(watch["historyId"])
        assert second.statuses == [204]
        assert second.history_id < sandbox.history_id(ADA)  # the SPAM arrival did not notify
        envelope, authorization = app.requests[-1]
        assert envelope["subscription"] == "projects/sandbox/subscriptions/gmail-push"
        data = json.loads(base64.b64decode(envelope["message"]["data"]))
        assert data == {"emailAddress": ADA, "historyId": second.history_id}
        assert envelope["message"]["messageId"] and envelope["message"]["publishTime"]
        claims = id_token.verify_token(
            authorization.removeprefix("Bearer "),
            google.auth.transport.requests.Request(),
            audience=url,
            certs_url=issuer.certs_url,
        )
        assert claims["email"] == PUSH_IDENTITY and claims["email_verified"] is True

        gmail.users().stop(userId="me").execute()
        sandbox.add_message(ADA, make_mail("After stop"))
        assert sandbox.wait_for_pushes(5)
        assert len(sandbox.deliveries) == 2
