"""The GmailClient adapter: real google-api-python-client and google-auth against the sandbox.

The sandbox (``sandbox/gmail``) speaks Gmail v1 over HTTP on a loopback port, mints delegated
tokens at its ``/token`` and answers ``/batch/gmail/v1``: nothing here is mocked, so discovery,
URL building, batch (de)serialisation, the token exchange and the retry policy all run as in
production. Only ``sleep`` is replaced, so backoff costs no wall time (its calls are recorded).
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
from shared.adapters.gmail.api import BATCH_PATH, GmailApiClient, RetryPolicy
from shared.adapters.gmail.credentials import SCOPE_READONLY, delegated_credentials
from shared.errors import ConfigurationError, RetryableError
from shared.ports import GmailClient, HistoryChangeKind, HistoryExpiredError, HistoryRecord

pytestmark = pytest.mark.usefixtures("loopback_bypasses_proxies")

MAILBOX = "partner@fund.example"
OTHER = "associate@fund.example"


class RecordingSleep:
    """Stands in for ``time.sleep``: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)


def raw_message(number: int, *, sender: str = "lp@investor.example") -> bytes:
    message = EmailMessage()
    message["From"] = f"Limited Partner <{sender}>"
    message["To"] = MAILBOX
    message["Subject"] = f"Update {number}"
    message["Message-ID"] = f"<update-{number}@investor.example>"
    message["Date"] = "Tue, 04 Nov 2025 10:00:00 +0000"
    message.set_content(f"Quarterly numbers, part {number}.\n")
    return message.as_bytes()


@pytest.fixture
def sandbox() -> GmailSandbox:
    sandbox = GmailSandbox(seed=0)
    sandbox.add_mailbox(MAILBOX)
    sandbox.add_mailbox(OTHER)
    info = sandbox.service_account_info()
    sandbox.grant_scopes(info["client_id"], [SCOPE_READONLY])
    return sandbox


@pytest.fixture
def server(sandbox: GmailSandbox) -> Iterator[Any]:
    with serve_gmail_sandbox(sandbox) as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def make_client(
    sandbox: GmailSandbox,
    server: Any,
    sleep: RecordingSleep,
    *,
    mailbox: str = MAILBOX,
    retry: RetryPolicy | None = None,
) -> GmailApiClient:
    credentials = delegated_credentials(
        mailbox,
        [SCOPE_READONLY],
        key_info=sandbox.service_account_info(),
        token_uri=server.token_uri,
    )
    return GmailApiClient(
        credentials,
        endpoint=server.base_url,
        sleep=sleep,
        rng=random.Random(7),
        retry=retry,
    )


@pytest.fixture
def client(sandbox: GmailSandbox, server: Any, sleep: RecordingSleep) -> Iterator[GmailApiClient]:
    gmail = make_client(sandbox, server, sleep)
    yield gmail
    gmail.close()


def seed(sandbox: GmailSandbox, count: int, *, mailbox: str = MAILBOX) -> list[str]:
    return [sandbox.add_message(mailbox, raw_message(n)) for n in range(count)]


def test_the_adapter_satisfies_the_port(client: GmailApiClient) -> None:
    port: GmailClient = client
    assert port is client
    assert client.batch_uri.endswith("/" + BATCH_PATH)


def test_profile_is_the_delegated_mailbox(client: GmailApiClient, sandbox: GmailSandbox) -> None:
    seed(sandbox, 3)

    profile = client.get_profile()

    assert profile.email_address == MAILBOX
    assert profile.messages_total == 3
    assert isinstance(profile.history_id, int)
    assert profile.history_id > 0


def test_list_message_ids_pages_newest_first_with_estimate(
    client: GmailApiClient, sandbox: GmailSandbox
) -> None:
    ids = seed(sandbox, 7)

    first = client.list_message_ids(max_results=4)
    second = client.list_message_ids(max_results=4, page_token=first.next_page_token)

    assert len(first.ids) == 4
    assert first.next_page_token
    assert first.result_size_estimate >= 4
    assert len(second.ids) == 3
    assert second.next_page_token == ""
    assert set(first.ids) | set(second.ids) == set(ids)
    assert first.ids + second.ids == list(reversed(ids))


def test_list_message_ids_of_an_empty_mailbox(client: GmailApiClient) -> None:
    page = client.list_message_ids()

    assert page.ids == []
    assert page.next_page_token == ""
    assert page.result_size_estimate == 0


def test_sixty_metadata_gets_go_in_three_batches_and_a_deleted_id_is_missing(
    sandbox: GmailSandbox, server: Any, sleep: RecordingSleep
) -> None:
    sandbox.concurrency_limit = 25  # every part of a full batch is admitted at once
    gmail = make_client(sandbox, server, sleep)
    ids = seed(sandbox, 60)
    gone = ids[17]
    sandbox.delete_message(MAILBOX, gone)

    result = gmail.get_messages(ids, format="metadata", metadata_headers=["From", "Subject"])

    assert result.missing == [gone]
    assert result.failed == {}
    assert set(result.messages) == set(ids) - {gone}
    message = result.messages[ids[0]]
    assert message.id == ids[0]
    names = {name for name, _ in message.headers}
    assert names == {"From", "Subject"}
    assert message.mime == b""
    assert gmail.stats() == {"calls": 0, "batches": 3, "batch_parts": 60, "retries": 0}
    assert sandbox.calls(MAILBOX)["messages.get"] == 60
    assert sleep.waits == []


def test_messages_arrive_typed_in_every_format(
    client: GmailApiClient, sandbox: GmailSandbox
) -> None:
    """Gmail's JSON stops here: ids, labels, the internal date, size, snippet text and the
    message's bytes come typed, whatever the format."""
    raw = raw_message(1)
    gmail_id = sandbox.add_message(MAILBOX, raw)

    minimal = client.get_messages([gmail_id], format="minimal").messages[gmail_id]
    raw_format = client.get_messages([gmail_id], format="raw").messages[gmail_id]
    full = client.get_messages([gmail_id], format="full").messages[gmail_id]
    metadata = client.get_messages(
        [gmail_id], format="metadata", metadata_headers=["From", "Subject"]
    ).messages[gmail_id]

    assert minimal.thread_id and "INBOX" in minimal.label_ids
    assert minimal.internal_date is not None and minimal.internal_date.tzinfo is not None
    assert minimal.size_estimate == len(raw)
    assert minimal.snippet.startswith("Quarterly numbers, part 1.")
    assert minimal.mime == b"" and minimal.headers == ()
    assert raw_format.mime == raw
    assert b"Quarterly numbers, part 1." in full.mime
    assert full.mime.startswith(b"From: Limited Partner <lp@investor.example>")
    assert metadata.header("subject") == "Update 1"
    assert metadata.header_block.startswith(b"From: Limited Partner <lp@investor.example>\r\n")
    assert metadata.header_notes == ()


def test_parts_beyond_the_concurrency_limit_are_retried_in_smaller_batches(
    client: GmailApiClient, sandbox: GmailSandbox, sleep: RecordingSleep
) -> None:
    assert sandbox.concurrency_limit == 10
    ids = seed(sandbox, 60)

    result = client.get_messages(ids, format="minimal")

    assert result.failed == {}
    assert set(result.messages) == set(ids)
    stats = client.stats()
    # Round one: 25+25+10 parts, 10 admitted per batch; then batches of at most 10.
    assert stats["batch_parts"] == 60 + stats["retries"]
    assert stats["batches"] == 3 + 3
    assert len(sleep.waits) == 1


def test_a_burst_of_503_and_429_on_batch_parts_still_completes(
    client: GmailApiClient, sandbox: GmailSandbox, sleep: RecordingSleep
) -> None:
    ids = seed(sandbox, 30)
    sandbox.inject_fault("messages.get", status=503, count=4)
    sandbox.inject_fault("messages.get", status=429, count=3)

    result = client.get_messages(ids, format="minimal")

    assert result.failed == {}
    assert result.missing == []
    assert set(result.messages) == set(ids)
    assert sleep.waits, "the failed parts were retried after a backoff"
    # The injected 429 says Retry-After: 1; the wait honours it.
    assert max(sleep.waits) >= 1.0


def test_a_failing_whole_batch_is_retried(
    client: GmailApiClient, sandbox: GmailSandbox, sleep: RecordingSleep
) -> None:
    ids = seed(sandbox, 5)
    sandbox.inject_fault("batch", status=503, count=2)

    result = client.get_messages(ids, format="minimal")

    assert set(result.messages) == set(ids)
    assert len(sleep.waits) == 2


def test_a_part_answered_401_is_sent_again_once_after_a_token_refresh(
    client: GmailApiClient, sandbox: GmailSandbox, sleep: RecordingSleep
) -> None:
    """What ``BatchHttpRequest.execute`` does: refresh, re-send the 401 parts, no backoff."""
    ids = seed(sandbox, 5)
    client.get_messages(ids[:1], format="minimal")  # a token, minted once
    token_before = client._credentials.token
    sandbox.inject_fault("messages.get", status=401, count=2)

    result = client.get_messages(ids, format="minimal")

    assert set(result.messages) == set(ids)
    assert result.failed == {}
    assert sleep.waits == []
    assert client.stats()["batches"] == 1 + 2
    assert client._credentials.token != token_before


def test_a_part_still_answered_401_after_the_refresh_is_a_configuration_error(
    client: GmailApiClient, sandbox: GmailSandbox
) -> None:
    ids = seed(sandbox, 3)
    sandbox.inject_fault("messages.get", status=401, count=2)

    with pytest.raises(ConfigurationError, match=r"messages\.get"):
        client.get_messages(ids[:1], format="minimal")


def test_a_whole_batch_answered_403_is_a_configuration_error(
    client: GmailApiClient, sandbox: GmailSandbox
) -> None:
    ids = seed(sandbox, 3)
    sandbox.inject_fault("batch", status=403, count=1)

    with pytest.raises(ConfigurationError, match="batch"):
        client.get_messages(ids, format="minimal")


def test_a_persistent_500_on_one_message_fails_that_id_only(
    sandbox: GmailSandbox, server: Any
) -> None:
    ids = seed(sandbox, 10)
    bad = ids[0]

    # The sandbox's faults hit the next matching requests, not a given id, and it runs a
    # batch's parts in order. So: fail the first part (``bad``) now, and re-arm the fault
    # during every backoff wait; each retry round sends only ``bad``, which fails again.
    class RearmingSleep(RecordingSleep):
        def __call__(self, seconds: float) -> None:
            super().__call__(seconds)
            sandbox.inject_fault("messages.get", status=500, count=1)

    sleep = RearmingSleep()
    gmail = make_client(sandbox, server, sleep, retry=RetryPolicy(max_attempts=4))
    sandbox.inject_fault("messages.get", status=500, count=1)

    result = gmail.get_messages(ids, format="minimal")

    assert set(result.failed) == {bad}
    assert "HTTP 500" in result.failed[bad]
    assert result.missing == []
    assert set(result.messages) == set(ids) - {bad}
    assert len(sleep.waits) == 3  # four attempts in all
    assert gmail.stats()["batch_parts"] == 10 + 3
    sandbox.clear_faults()


def test_history_pages_then_expires(client: GmailApiClient, sandbox: GmailSandbox) -> None:
    start = client.get_profile().history_id
    added = seed(sandbox, 3)
    sandbox.modify_labels(MAILBOX, added[0], add=["STARRED"])
    sandbox.delete_message(MAILBOX, added[1])

    records: list[HistoryRecord] = []
    page = client.list_history(start_history_id=start)
    records.extend(page.records)
    while page.next_page_token:
        page = client.list_history(start_history_id=start, page_token=page.next_page_token)
        records.extend(page.records)

    def ids_of(kind: HistoryChangeKind) -> list[str]:
        return [c.message_id for r in records for c in r.changes if c.kind is kind]

    assert ids_of(HistoryChangeKind.MESSAGE_ADDED) == added
    assert ids_of(HistoryChangeKind.LABELS_ADDED)
    assert ids_of(HistoryChangeKind.MESSAGE_DELETED) == [added[1]]
    assert page.history_id >= start

    sandbox.expire_history(MAILBOX, keep_after=page.history_id)
    with pytest.raises(HistoryExpiredError):
        client.list_history(start_history_id=start)


def test_watch_and_stop(client: GmailApiClient) -> None:
    topic = "projects/crm-test/topics/gmail-push"

    response = client.watch(topic=topic, label_ids=["INBOX"])

    assert isinstance(response.history_id, int)
    assert response.expiration.timestamp() > 0
    client.stop()


def test_a_single_call_retries_a_rate_limit_then_succeeds(
    client: GmailApiClient, sandbox: GmailSandbox, sleep: RecordingSleep
) -> None:
    seed(sandbox, 2)
    sandbox.inject_fault("messages.list", status=429, count=2)

    page = client.list_message_ids()

    assert len(page.ids) == 2
    assert len(sleep.waits) == 2
    assert all(wait >= 1.0 for wait in sleep.waits)  # Retry-After: 1 honoured


def test_a_single_call_still_failing_is_retryable(
    sandbox: GmailSandbox, server: Any, sleep: RecordingSleep
) -> None:
    gmail = make_client(sandbox, server, sleep, retry=RetryPolicy(max_attempts=3))
    sandbox.inject_fault("getProfile", status=503, count=10)

    with pytest.raises(RetryableError, match="503"):
        gmail.get_profile()
    assert len(sleep.waits) == 2


def test_a_dropped_connection_is_retried(
    client: GmailApiClient, sandbox: GmailSandbox, sleep: RecordingSleep
) -> None:
    seed(sandbox, 1)
    sandbox.inject_fault("messages.list", drop_connection=True, count=1)

    assert len(client.list_message_ids().ids) == 1


def test_two_threads_share_one_client(client: GmailApiClient, sandbox: GmailSandbox) -> None:
    ids = seed(sandbox, 40)
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(name: str, chunk: list[str]) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(3):
                results[name] = client.get_messages(chunk, format="minimal")
                client.get_profile()
                client.list_message_ids(max_results=10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=("a", ids[:20])),
        threading.Thread(target=work, args=("b", ids[20:])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert set(results["a"].messages) == set(ids[:20])
    assert set(results["b"].messages) == set(ids[20:])


def test_a_token_without_the_scope_is_a_configuration_error(
    sandbox: GmailSandbox, server: Any, sleep: RecordingSleep
) -> None:
    info = sandbox.service_account_info()
    compose = "https://www.googleapis.com/auth/gmail.compose"
    sandbox.grant_scopes(info["client_id"], [SCOPE_READONLY, compose])
    credentials = delegated_credentials(
        MAILBOX, [compose], key_info=info, token_uri=server.token_uri
    )
    gmail = GmailApiClient(credentials, endpoint=server.base_url, sleep=sleep)

    with pytest.raises(ConfigurationError, match=r"gmail\.compose"):
        gmail.list_message_ids()


def test_a_retry_after_beyond_the_policy_gives_up_at_once(
    sandbox: GmailSandbox, server: Any, sleep: RecordingSleep
) -> None:
    gmail = make_client(sandbox, server, sleep, retry=RetryPolicy(max_retry_after=0.5))
    sandbox.inject_fault("history.list", status=429, count=1)  # Retry-After: 1

    with pytest.raises(RetryableError) as caught:
        gmail.list_history(start_history_id=sandbox.history_id(MAILBOX))

    assert caught.value.details["retry_after"] == 1.0
    assert sleep.waits == []


def test_importing_the_adapter_is_cheap() -> None:
    """Cold start: the module imports no Google client, transport or auth code."""
    probe = (
        "import sys, shared.adapters.gmail.api; "
        "print([m for m in ('googleapiclient', 'httplib2', 'google_auth_httplib2', "
        "'google.auth', 'requests') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("message_id", ["m1", "18c/+ é"])
def test_a_batch_part_is_written_exactly_as_the_library_writes_it(message_id: str) -> None:
    """The hand-written batch (no ``email`` generator, no discovery call per part) changes the
    CPU, not the bytes of a part."""
    from datetime import UTC, datetime, timedelta

    from google.oauth2.credentials import Credentials
    from googleapiclient.http import BatchHttpRequest

    from shared.adapters.gmail.api import build_gmail_service
    from shared.adapters.gmail.batch import ID_SLOT, BatchWire

    expiry = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None)
    credentials = Credentials(token="t0ken", expiry=expiry)
    service = build_gmail_service(credentials, "http://127.0.0.1:9/")
    messages = service.users().messages()
    params: dict[str, Any] = {"userId": "me", "format": "metadata", "metadataHeaders": ["From"]}
    template = messages.get(id=ID_SLOT, **params)
    template.http = None  # the template carries no token: each batch adds the current one
    auth: dict[str, str] = {}
    credentials.apply(auth)

    ours = BatchWire.from_request(template, "metadata").part(message_id, auth)
    theirs = BatchHttpRequest(batch_uri="http://127.0.0.1:9/batch")._serialize_request(
        messages.get(id=message_id, **params)
    )
    assert ours == theirs
    assert "authorization: Bearer t0ken" in ours


def test_a_batch_reply_is_read_in_any_of_its_legal_shapes() -> None:
    """Quoted or bare boundary, CRLF or LF lines, a preamble, an error part with Retry-After,
    a part with no body, a part that is not HTTP, and an epilogue."""
    from shared.adapters.gmail.batch import BatchWire

    reply = (
        b"preamble to ignore\r\n"
        b"--b0\r\nContent-Type: application/http\r\nContent-ID: <response-x + 0>\r\n\r\n"
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"id": "a"}\r\n'
        b"--b0\nContent-Type: application/http\ncontent-id: <response-x + 1>\n\n"
        b"HTTP/1.1 429 Too Many Requests\nRetry-After: 3\n\n"
        b'{"error": {"errors": [{"reason": "rateLimitExceeded"}]}}\n'
        b"--b0\r\nContent-ID: <response-x + 2>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n"
        b"--b0\r\nContent-ID: <response-x + 3>\r\n\r\nnot an http response\r\n"
        b"--b0--\r\nepilogue --b0\r\n"
    )
    for content_type in ('multipart/mixed; boundary="b0"', "multipart/mixed; boundary=b0"):
        parts = list(BatchWire.parts(content_type, reply))
        assert [(key, status) for key, status, _, _ in parts] == [
            ("x + 0", 200),
            ("x + 1", 429),
            ("x + 2", 204),
        ]
        assert parts[0][3] == b'{"id": "a"}'
        assert parts[1][2]["retry-after"] == "3"
        assert b"rateLimitExceeded" in parts[1][3]
        assert parts[2][3] == b""
    assert list(BatchWire.parts("application/json", reply)) == []
