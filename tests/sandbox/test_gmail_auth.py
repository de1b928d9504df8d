"""The sandbox's OAuth: DWD token exchange, scopes per method, IAM signing for the keyless path."""

from __future__ import annotations

import base64
import json
from typing import Any

import google.auth.transport.requests
import pytest
import requests
from google.auth import exceptions, iam, impersonated_credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from googleapiclient.errors import HttpError

from sandbox.gmail.auth import GOOGLE_TOKEN_URI, new_key_info
from tests.support.gmail_sandbox import ADA, BOB, COMPOSE, METADATA, READONLY, Env, make_mail

MODIFY = "https://www.googleapis.com/auth/gmail.modify"


def _reason(error: HttpError) -> str:
    return json.loads(error.content)["error"]["errors"][0]["reason"]


def _refresh(creds: service_account.Credentials) -> None:
    creds.refresh(google.auth.transport.requests.Request())


def test_service_account_info_is_a_google_key_file(env: Env) -> None:
    info = env.sandbox.service_account_info()
    assert info["type"] == "service_account"
    assert info["token_uri"] == env.running.token_uri
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert {"project_id", "private_key_id", "client_email", "client_id"} <= set(info)
    creds = env.credentials()
    _refresh(creds)
    assert creds.token and creds.token.startswith("ya29.")


def test_a_key_the_sandbox_does_not_know_is_refused(env: Env) -> None:
    info = env.sandbox.service_account_info()
    forged = new_key_info(
        email=info["client_email"],
        project_id=info["project_id"],
        client_id=info["client_id"],
        token_uri=info["token_uri"],
    )
    forged["private_key_id"] = info["private_key_id"]  # names the real key, signs with another
    with pytest.raises(exceptions.RefreshError, match="invalid_grant"):
        _refresh(env.credentials(info=forged))
    # Registered (a rotated key), the same file is accepted.
    forged["private_key_id"] = "0" * 40
    env.sandbox.register_service_account(forged)
    _refresh(env.credentials(info=forged))


def test_unknown_subject_and_ungranted_scope(env: Env) -> None:
    with pytest.raises(exceptions.RefreshError, match="invalid_grant") as unknown:
        _refresh(env.credentials(subject="nobody@fund.example"))
    assert "Invalid email or User ID" in str(unknown.value)
    with pytest.raises(exceptions.RefreshError, match="unauthorized_client"):
        _refresh(env.credentials(scopes=[READONLY, MODIFY]))
    # The raw answers, as Google gives them: 400 invalid_grant, 401 unauthorized_client.
    answer = requests.post(env.running.token_uri, data={"grant_type": "password"}, timeout=5)
    assert answer.status_code == 400


def test_gmail_needs_a_bearer_token(env: Env) -> None:
    url = f"{env.base_url}/gmail/v1/users/me/profile"
    assert requests.get(url, timeout=5).status_code == 401
    forged = requests.get(url, headers={"Authorization": "Bearer ya29.nope"}, timeout=5)
    assert forged.status_code == 401
    assert forged.json()["error"]["status"] == "UNAUTHENTICATED"


def test_compose_token_drafts_and_sends_but_cannot_read(env: Env) -> None:
    sandbox = env.sandbox
    original = sandbox.add_message(ADA, make_mail("Intro", message_id="<intro@lp.example>"))
    gmail = env.gmail(scopes=[COMPOSE])
    with pytest.raises(HttpError) as refused:
        gmail.users().messages().get(userId="me", id=original).execute()
    assert refused.value.status_code == 403 and _reason(refused.value) == "insufficientPermissions"
    with pytest.raises(HttpError):
        gmail.users().messages().list(userId="me").execute()

    reply = make_mail(
        "Re: Intro", sender=ADA, to="investor@lp.example", in_reply_to="<intro@lp.example>"
    )
    raw = base64.urlsafe_b64encode(reply).decode()
    draft = (
        gmail.users()
        .drafts()
        .create(userId="me", body={"message": {"raw": raw, "threadId": original}})
        .execute()
    )
    assert draft["message"]["threadId"] == original
    assert draft["message"]["labelIds"] == ["DRAFT"]
    assert [d.id for d in sandbox.drafts(ADA)] == [draft["id"]]
    # A draft that does not fit the thread lands in a new one; an unknown thread is a 404.
    stray = base64.urlsafe_b64encode(make_mail("Other", sender=ADA)).decode()
    moved = (
        gmail.users()
        .drafts()
        .create(userId="me", body={"message": {"raw": stray, "threadId": original}})
        .execute()
    )
    assert moved["message"]["threadId"] != original
    with pytest.raises(HttpError) as unknown:
        gmail.users().drafts().create(
            userId="me", body={"message": {"raw": raw, "threadId": "0000000000000001"}}
        ).execute()
    assert unknown.value.status_code == 404

    digest = make_mail(
        "Daily digest",
        sender=ADA,
        to="Admin <admin@fund.example>",
        cc=BOB,
        bcc="audit@fund.example",
    )
    # Marked as the fund's admins, or the session's send guard fails the run
    # (tests/support/send_guard.py).
    sandbox.allow_send_to(["admin@fund.example", BOB, "audit@fund.example"])
    sent = (
        gmail.users()
        .messages()
        .send(userId="me", body={"raw": base64.urlsafe_b64encode(digest).decode()})
        .execute()
    )
    assert sent["labelIds"] == ["SENT"]
    (record,) = sandbox.sends
    assert (record.mailbox, record.id, record.subject) == (ADA, sent["id"], "Daily digest")
    assert record.recipients == ("admin@fund.example", BOB, "audit@fund.example")
    assert "SENT" in sandbox.labels_of(ADA, sent["id"])


def test_metadata_scope_gets_headers_but_never_bodies(env: Env) -> None:
    message_id = env.sandbox.add_message(ADA, make_mail("Numbers"))
    messages = env.gmail(scopes=[METADATA]).users().messages()
    got = messages.get(userId="me", id=message_id, format="metadata").execute()
    assert any(h["name"] == "Subject" for h in got["payload"]["headers"])
    for fmt in ("full", "raw"):
        with pytest.raises(HttpError) as refused:
            messages.get(userId="me", id=message_id, format=fmt).execute()
        assert refused.value.status_code == 403
    with pytest.raises(HttpError) as no_q:
        messages.list(userId="me", q="newer_than:1d").execute()
    assert no_q.value.status_code == 403
    assert messages.list(userId="me").execute()["resultSizeEstimate"] == 1


class _ToSandbox(requests.Session):
    """A transport that routes Google's hard-coded hosts to the sandbox (FACTS.md section 4)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        for host in ("https://iamcredentials.googleapis.com", "https://oauth2.googleapis.com"):
            text = text.replace(host, self.base_url)
        return super().request(method, text, *args, **kwargs)


def test_keyless_dwd_through_sign_blob_and_sign_jwt(env: Env) -> None:
    sandbox = env.sandbox
    request = google.auth.transport.requests.Request(session=_ToSandbox(env.base_url))
    caller = user_credentials.Credentials(token="ambient-adc-token")
    email = sandbox.service_account_email

    via_blob = service_account.Credentials(
        signer=iam.Signer(request, caller, email),
        service_account_email=email,
        token_uri=GOOGLE_TOKEN_URI,
        scopes=[READONLY],
        subject=ADA,
    )
    via_blob.refresh(request)
    via_jwt = impersonated_credentials.Credentials(
        source_credentials=caller, target_principal=email, target_scopes=[READONLY], subject=BOB
    )
    via_jwt.refresh(request)
    assert via_blob.token and via_jwt.token
    assert [(c.rpc, c.caller_token) for c in sandbox.sign_calls] == [
        ("signBlob", "ambient-adc-token"),
        ("signJwt", "ambient-adc-token"),
    ]
    unsigned = requests.post(
        f"{env.base_url}/v1/projects/-/serviceAccounts/{email}:signBlob",
        json={"payload": "aGk="},
        timeout=5,
    )
    assert unsigned.status_code == 401
