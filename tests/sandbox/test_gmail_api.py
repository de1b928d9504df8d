"""The Gmail sandbox's read paths, batch and history, through the real google-api-python-client."""

from __future__ import annotations

import base64
import email
import itertools
import json
import mailbox
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox.gmail import ManualClock
from tests.support.corpus import SHARED_CORPUS
from tests.support.gmail_sandbox import ADA, BOB, Env, make_mail


def _reason(error: HttpError) -> str:
    return json.loads(error.content)["error"]["errors"][0]["reason"]


def _list_all(service: Any, **params: Any) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = service.users().messages().list(userId="me", pageToken=token, **params).execute()
        ids += [m["id"] for m in page.get("messages", [])]
        token = page.get("nextPageToken")
        if not token:
            return ids


def test_profile_for_me_and_for_the_address(env: Env) -> None:
    env.sandbox.add_message(ADA, make_mail())
    gmail = env.gmail()
    profile = gmail.users().getProfile(userId="me").execute()
    assert profile == {
        "emailAddress": ADA,
        "messagesTotal": 1,
        "threadsTotal": 1,
        "historyId": str(env.sandbox.history_id(ADA)),
    }
    assert gmail.users().getProfile(userId=ADA).execute()["emailAddress"] == ADA
    with pytest.raises(HttpError) as refused:  # a token for Ada cannot act as Bob
        gmail.users().getProfile(userId=BOB).execute()
    assert refused.value.status_code == 403


def test_list_pages_newest_first_and_applies_q(env: Env) -> None:
    sandbox = env.sandbox
    base = datetime(2026, 3, 1, tzinfo=UTC)
    ids = [
        sandbox.add_message(ADA, make_mail(f"m{i}"), internal_date=base + timedelta(days=i))
        for i in range(7)
    ]
    chat = sandbox.add_message(
        ADA, make_mail("chat"), label_ids=["CHAT"], internal_date=base - timedelta(days=1)
    )
    trash = sandbox.add_message(ADA, make_mail("bin"), internal_date=base)
    sandbox.modify_labels(ADA, trash, add=["TRASH"], remove=["INBOX"])
    gmail = env.gmail()

    first = gmail.users().messages().list(userId="me", maxResults=3).execute()
    assert [m["id"] for m in first["messages"]] == ids[::-1][:3]
    assert first["resultSizeEstimate"] == 8  # TRASH left out
    assert set(first["messages"][0]) == {"id", "threadId"}
    everything = _list_all(gmail, maxResults=3)
    assert everything[:7] == ids[::-1] and set(everything) == {*ids, chat}
    assert trash not in everything
    assert trash in _list_all(gmail, includeSpamTrash=True)
    assert trash in _list_all(gmail, q="in:anywhere")

    after = int((base + timedelta(days=4)).timestamp())
    assert _list_all(gmail, q=f"after:{after} -in:chats") == ids[4:][::-1]
    assert _list_all(gmail, q="before:2026/03/03 -in:chats -in:drafts") == ids[:2][::-1]
    assert _list_all(gmail, q="-in:chats after:2026/03/06") == ids[5:][::-1]
    assert _list_all(gmail, labelIds=["CHAT"]) == [chat]
    assert len(_list_all(gmail, q="newer_than:3650d")) == 8
    assert _list_all(gmail, q="subject:m3") == [ids[3]]


def test_get_in_every_format(env: Env) -> None:
    raw = make_mail(
        "Deck", html="<p>Hi <b>there</b></p>", attachment=b"%PDF-1.4 fake", cc="carol@lp.example"
    )
    message_id = env.sandbox.add_message(ADA, raw, label_ids=["INBOX", "UNREAD"])
    messages = env.gmail().users().messages()

    minimal = messages.get(userId="me", id=message_id, format="minimal").execute()
    assert "payload" not in minimal and "raw" not in minimal
    assert minimal["labelIds"] == ["INBOX", "UNREAD"]
    assert minimal["internalDate"] == str(
        int(datetime(2026, 1, 5, 9, 30, tzinfo=UTC).timestamp()) * 1000
    )
    assert isinstance(minimal["historyId"], str) and minimal["sizeEstimate"] == len(raw)

    metadata = messages.get(
        userId="me", id=message_id, format="metadata", metadataHeaders=["From", "subject"]
    ).execute()
    assert [h["name"] for h in metadata["payload"]["headers"]] == ["From", "Subject"]
    assert metadata["payload"]["mimeType"] == "multipart/mixed"

    full = messages.get(userId="me", id=message_id, format="full").execute()
    payload = full["payload"]
    assert payload["partId"] == "" and payload["body"] == {"size": 0}
    alternative, attachment = payload["parts"]
    plain, html = alternative["parts"]
    assert (plain["partId"], plain["mimeType"], html["partId"]) == ("0.0", "text/plain", "0.1")
    text = base64.urlsafe_b64decode(plain["body"]["data"]).decode()
    assert text.startswith("Hi there") and plain["body"]["size"] == len(text.encode())
    assert attachment["filename"] == "deck.pdf"
    assert "data" not in attachment["body"] and attachment["body"]["attachmentId"]
    assert attachment["body"]["size"] == len(b"%PDF-1.4 fake")
    assert full["snippet"].startswith("Hi there, let&#39;s talk")

    raw_format = messages.get(userId="me", id=message_id, format="raw").execute()
    assert base64.urlsafe_b64decode(raw_format["raw"]) == raw
    assert "payload" not in raw_format

    with pytest.raises(HttpError) as missing:
        messages.get(userId="me", id="0123456789abcdef").execute()
    assert missing.value.status_code == 404 and _reason(missing.value) == "notFound"


def test_threads_follow_references_and_subject(env: Env) -> None:
    sandbox = env.sandbox
    first = sandbox.add_message(ADA, make_mail("Term sheet", message_id="<a@lp.example>"))
    reply = sandbox.add_message(
        ADA,
        make_mail("RE: Term sheet", message_id="<b@fund.example>", in_reply_to="<a@lp.example>"),
    )
    other = sandbox.add_message(ADA, make_mail("Different topic", in_reply_to="<a@lp.example>"))
    assert sandbox.thread_of(ADA, reply) == first != sandbox.thread_of(ADA, other)
    assert len(first) == 16 and int(first, 16) > 0
    thread = env.gmail().users().threads().get(userId="me", id=first, format="minimal").execute()
    assert [m["id"] for m in thread["messages"]] == [first, reply]
    assert thread["historyId"] == max(m["historyId"] for m in thread["messages"])


def test_batch_of_30_gets_with_one_unknown_id(make_env: Callable[..., Env]) -> None:
    # Gmail runs a batch's parts at once and each holds a concurrency slot: a 30-part batch
    # needs a limit of at least 30 (test_limits shows what the default of 10 does to it).
    env = make_env(concurrency_limit=30)
    ids = [env.sandbox.add_message(ADA, make_mail(f"s{i}")) for i in range(29)]
    gmail = env.gmail()
    results: dict[str, tuple[Any, HttpError | None]] = {}

    def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
        results[request_id] = (response, exception)

    batch = BatchHttpRequest(callback=collect, batch_uri=env.running.batch_uri)
    for message_id in [*ids, "ffffffffffffffff"]:
        batch.add(
            gmail.users().messages().get(userId="me", id=message_id, format="metadata"),
            request_id=message_id,
        )
    batch.execute()
    assert len(results) == 30
    for message_id in ids:
        response, error = results[message_id]
        assert error is None and response["id"] == message_id
    _, error = results["ffffffffffffffff"]
    assert error is not None and error.status_code == 404
    assert env.sandbox.units_used(ADA) == 30 * 5


def test_batch_over_100_parts_is_refused(env: Env) -> None:
    gmail = env.gmail()
    batch = BatchHttpRequest(batch_uri=env.running.batch_uri)
    for _ in range(101):
        batch.add(gmail.users().getProfile(userId="me"))
    with pytest.raises(HttpError) as refused:
        batch.execute()
    assert refused.value.status_code == 400


def test_history_pages_oldest_first_and_404_after_expiry(env: Env) -> None:
    sandbox = env.sandbox
    gmail = env.gmail()
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    ids = [sandbox.add_message(ADA, make_mail(f"h{i}")) for i in range(5)]
    sandbox.modify_labels(ADA, ids[0], add=["TRASH"], remove=["INBOX"])
    sandbox.delete_message(ADA, ids[1])

    records: list[dict[str, Any]] = []
    token = None
    while True:
        page = (
            gmail.users()
            .history()
            .list(userId="me", startHistoryId=start, maxResults=2, pageToken=token)
            .execute()
        )
        records += page.get("history", [])
        token = page.get("nextPageToken")
        if not token:
            break
    assert page["historyId"] == str(sandbox.history_id(ADA))
    history_ids = [int(r["id"]) for r in records]
    assert history_ids == sorted(history_ids) and len(history_ids) == 8
    assert any(b - a > 1 for a, b in itertools.pairwise(history_ids))
    added = [r["messagesAdded"][0]["message"]["id"] for r in records if "messagesAdded" in r]
    assert added == ids
    labels_added = [r for r in records if "labelsAdded" in r]
    assert labels_added[0]["labelsAdded"][0]["labelIds"] == ["TRASH"]
    assert labels_added[0]["labelsAdded"][0]["message"]["id"] == ids[0]
    assert [
        r["messagesDeleted"][0]["message"]["id"] for r in records if "messagesDeleted" in r
    ] == [ids[1]]

    only_labels = (
        gmail.users()
        .history()
        .list(userId="me", startHistoryId=start, historyTypes=["labelAdded"])
        .execute()
    )
    assert [list(r) for r in only_labels["history"]] == [["id", "messages", "labelsAdded"]]
    assert (
        "history"
        not in gmail.users().history().list(userId="me", startHistoryId=page["historyId"]).execute()
    )

    sandbox.expire_history(ADA, keep_after=history_ids[3])
    with pytest.raises(HttpError) as expired:
        gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert expired.value.status_code == 404 and _reason(expired.value) == "notFound"
    still = gmail.users().history().list(userId="me", startHistoryId=history_ids[3]).execute()
    assert [int(r["id"]) for r in still["history"]] == history_ids[4:]


def _history_since(gmail: Any, start: str) -> list[tuple[str, str, list[str]]]:
    """(kind, message id, labels named by the record) for every record after ``start``."""
    page = gmail.users().history().list(userId="me", startHistoryId=start).execute()
    shapes = []
    for record in page.get("history", []):
        for kind in ("messagesAdded", "messagesDeleted", "labelsAdded", "labelsRemoved"):
            for item in record.get(kind, []):
                labels = item.get("labelIds") or item["message"].get("labelIds", [])
                shapes.append((kind, item["message"]["id"], list(labels)))
    return shapes


def test_auto_saved_drafts_and_both_shapes_of_a_send_show_in_history(env: Env) -> None:
    sandbox = env.sandbox
    gmail = env.gmail()
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    raw = make_mail("Follow-up", sender=ADA, to="investor@lp.example")
    first = sandbox.save_draft(ADA, raw)
    second = sandbox.save_draft(ADA, raw, replaces=first)
    sent = sandbox.send_draft(ADA, second, as_new_message=True)
    assert len({first, second, sent}) == 3
    assert _history_since(gmail, start) == [
        ("messagesAdded", first, ["DRAFT"]),
        ("messagesAdded", second, ["DRAFT"]),
        ("messagesDeleted", first, ["DRAFT"]),
        ("messagesAdded", sent, ["SENT"]),
        ("messagesDeleted", second, ["DRAFT"]),
    ]
    assert sandbox.message_ids(ADA) == [sent]
    assert sandbox.thread_of(ADA, sent) == first  # the draft's thread, kept across saves
    assert sandbox.sends == []  # the user's send is not a messages.send by the product

    middle = gmail.users().getProfile(userId="me").execute()["historyId"]
    draft = sandbox.save_draft(ADA, make_mail("Second", sender=ADA))
    assert sandbox.send_draft(ADA, draft, as_new_message=False) == draft
    assert _history_since(gmail, middle) == [
        ("messagesAdded", draft, ["DRAFT"]),
        ("labelsAdded", draft, ["SENT"]),
        ("labelsRemoved", draft, ["DRAFT"]),
    ]
    assert sandbox.labels_of(ADA, draft) == ["SENT"]
    with pytest.raises(KeyError):
        sandbox.send_draft(ADA, draft, as_new_message=True)  # no longer a draft


def test_every_corpus_message_is_served_in_every_format(env: Env) -> None:
    paths = sorted(p for p in SHARED_CORPUS.glob("*.eml"))
    if not paths:
        pytest.skip("the handbook corpus is not beside the checkout")
    ids = env.sandbox.load_eml_files(BOB, paths)
    gmail = env.gmail(subject=BOB)
    assert len(_list_all(gmail, maxResults=500, includeSpamTrash=True)) == len(paths)
    failures: list[str] = []

    def check(request_id: str, response: Any, exception: HttpError | None) -> None:
        if exception is not None or response is None or response["id"] not in ids:
            failures.append(f"{request_id}: {exception}")

    for fmt in ("full", "metadata", "raw"):
        for start in range(0, len(ids), 10):  # the default concurrency limit
            batch = BatchHttpRequest(callback=check, batch_uri=env.running.batch_uri)
            for message_id in ids[start : start + 10]:
                batch.add(gmail.users().messages().get(userId="me", id=message_id, format=fmt))
            batch.execute()
    assert failures == []


def test_mbox_with_takeout_labels(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "takeout.mbox"
    box = mailbox.mbox(str(path))
    box.add(make_mail("one"))
    labelled = email.message_from_bytes(make_mail("two"))
    labelled["X-Gmail-Labels"] = "Spam,Unread"
    box.add(labelled)
    box.close()
    first, second = env.sandbox.load_mbox(BOB, path)
    assert env.sandbox.labels_of(BOB, first) == ["INBOX"]
    assert env.sandbox.labels_of(BOB, second) == ["SPAM", "UNREAD"]
    assert env.sandbox.message_ids(BOB, include_spam_trash=False) == [first]


def test_an_expired_access_token_is_refreshed_by_the_client(make_env: Callable[..., Env]) -> None:
    clock = ManualClock()
    env = make_env(clock=clock)
    gmail = env.gmail()
    gmail.users().getProfile(userId="me").execute()
    clock.advance(3601)  # the sandbox's token expired; google-auth refreshes on the 401
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == ADA


def test_history_retention_expires_old_records(make_env: Callable[..., Env]) -> None:
    clock = ManualClock()
    env = make_env(clock=clock, history_retention_s=3600)
    gmail = env.gmail()
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    env.sandbox.add_message(ADA, make_mail("old"))
    clock.advance(1800)
    middle = env.sandbox.history_id(ADA)
    env.sandbox.add_message(ADA, make_mail("new"))
    clock.advance(1801)  # "old" is now past retention, "new" is not
    with pytest.raises(HttpError) as expired:
        gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert expired.value.status_code == 404
    kept = gmail.users().history().list(userId="me", startHistoryId=middle).execute()
    assert len(kept["history"]) == 1
