"""Domain-wide delegation credentials: real google-auth against the Gmail sandbox's OAuth and IAM.

The key path signs the assertion with the sandbox's service-account key and exchanges it at the
sandbox's ``/token``. The keyless paths run google-auth's own IAM code (``iam.Signer`` ->
``signBlob``; ``impersonated_credentials`` -> ``signJwt``), whose Google hosts are hard-coded: a
:class:`RedirectingRequest` sends them to the sandbox, and every redirected call is recorded.
The runtime's "ADC" is a plain bearer-token credential, which is all IAM needs from it here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import google.auth.transport.requests
import pytest
from google.oauth2 import credentials as user_credentials

from sandbox.gmail import GmailSandbox, serve_gmail_sandbox
from shared.adapters.gmail.api import GmailApiClient
from shared.adapters.gmail.credentials import (
    GOOGLE_TOKEN_URI,
    IAM_CREDENTIALS_URL,
    SCOPE_COMPOSE,
    SCOPE_READONLY,
    DelegatedCredentials,
    RedirectingRequest,
    delegated_credentials,
    parse_key_secret,
)
from shared.errors import ConfigurationError

pytestmark = pytest.mark.usefixtures("loopback_bypasses_proxies")

MAILBOX = "partner@fund.example"
ADC_TOKEN = "adc-runtime-token"


@pytest.fixture
def sandbox() -> GmailSandbox:
    sandbox = GmailSandbox(seed=1)
    sandbox.add_mailbox(MAILBOX)
    sandbox.grant_scopes(sandbox.client_id, [SCOPE_READONLY])
    return sandbox


@pytest.fixture
def server(sandbox: GmailSandbox) -> Iterator[Any]:
    with serve_gmail_sandbox(sandbox) as running:
        yield running


def http_request() -> google.auth.transport.requests.Request:
    return google.auth.transport.requests.Request()


def adc() -> user_credentials.Credentials:
    """Stands in for the function's runtime credentials (metadata server in the cloud)."""
    return user_credentials.Credentials(token=ADC_TOKEN)


def keyless(
    sandbox: GmailSandbox,
    server: Any,
    method: str,
    *,
    scopes: list[str] | None = None,
    mailbox: str = MAILBOX,
    service_account_email: str | None = None,
) -> tuple[DelegatedCredentials, RedirectingRequest]:
    transport = RedirectingRequest.to_sandbox(server.base_url)
    creds = delegated_credentials(
        mailbox,
        scopes or [SCOPE_READONLY],
        service_account_email=service_account_email or sandbox.service_account_email,
        source_credentials=adc(),
        transport=transport,
        keyless_method=method,  # type: ignore[arg-type]
    )
    return creds, transport


def minted(sandbox: GmailSandbox, token: str | None) -> Any:
    assert token is not None
    return sandbox.oauth.tokens[token]


def assert_no_secret(message: str, sandbox: GmailSandbox) -> None:
    info = sandbox.service_account_info()
    assert "PRIVATE KEY" not in message
    assert info["private_key_id"] not in message
    assert "ya29." not in message
    assert ADC_TOKEN not in message


# -- key ------------------------------------------------------------------------------------


def test_key_path_mints_a_token_for_the_subject_and_reads_the_profile(
    sandbox: GmailSandbox, server: Any
) -> None:
    creds = delegated_credentials(
        MAILBOX, [SCOPE_READONLY], key_info=sandbox.service_account_info()
    )

    creds.refresh(http_request())

    token = minted(sandbox, creds.token)
    assert token.subject == MAILBOX
    assert token.scopes == {SCOPE_READONLY}
    assert creds.method == "key"
    assert creds.valid
    profile = GmailApiClient(creds, endpoint=server.base_url).get_profile()
    assert profile.email_address == MAILBOX
    assert sandbox.sign_calls == []  # the key signed locally


def test_token_uri_parameter_overrides_the_key_files(sandbox: GmailSandbox, server: Any) -> None:
    info = sandbox.service_account_info()
    info["token_uri"] = GOOGLE_TOKEN_URI  # what a real key file says

    creds = delegated_credentials(
        MAILBOX, [SCOPE_READONLY], key_info=info, token_uri=server.token_uri
    )

    assert GmailApiClient(creds, endpoint=server.base_url).get_profile().email_address == MAILBOX


# -- keyless --------------------------------------------------------------------------------


def test_keyless_sign_blob_signs_through_iam_and_reads_the_profile(
    sandbox: GmailSandbox, server: Any
) -> None:
    creds, transport = keyless(sandbox, server, "sign_blob")

    profile = GmailApiClient(creds, endpoint=server.base_url).get_profile()

    assert profile.email_address == MAILBOX
    [call] = sandbox.sign_calls
    assert call.rpc == "signBlob"
    assert call.service_account == sandbox.service_account_email
    assert call.caller_token == ADC_TOKEN
    assert minted(sandbox, creds.token).subject == MAILBOX
    originals = [original for _method, original, _target in transport.calls]
    assert originals == [
        f"{IAM_CREDENTIALS_URL}/v1/projects/-/serviceAccounts/"
        f"{sandbox.service_account_email}:signBlob",
        GOOGLE_TOKEN_URI,
    ]
    assert all(target.startswith(server.base_url) for _m, _o, target in transport.calls)


def test_keyless_sign_jwt_signs_through_iam_and_reads_the_profile(
    sandbox: GmailSandbox, server: Any
) -> None:
    creds, transport = keyless(sandbox, server, "sign_jwt")

    profile = GmailApiClient(creds, endpoint=server.base_url).get_profile()

    assert profile.email_address == MAILBOX
    [call] = sandbox.sign_calls
    assert call.rpc == "signJwt"
    assert call.caller_token == ADC_TOKEN
    token = minted(sandbox, creds.token)
    assert token.subject == MAILBOX
    assert token.scopes == {SCOPE_READONLY}
    originals = [original for _method, original, _target in transport.calls]
    assert originals == [
        f"{IAM_CREDENTIALS_URL}/v1/projects/-/serviceAccounts/"
        f"{sandbox.service_account_email}:signJwt",
        GOOGLE_TOKEN_URI,
    ]


@pytest.mark.parametrize("method", ["sign_blob", "sign_jwt"])
def test_keyless_without_permission_to_sign_is_a_configuration_error(
    sandbox: GmailSandbox, server: Any, method: str
) -> None:
    creds, _transport = keyless(
        sandbox, server, method, service_account_email="other@sandbox.iam.gserviceaccount.com"
    )

    with pytest.raises(ConfigurationError, match="serviceAccountTokenCreator") as caught:
        creds.refresh(http_request())
    assert_no_secret(str(caught.value), sandbox)


# -- refused grants -------------------------------------------------------------------------


def test_an_ungranted_scope_is_a_configuration_error_naming_it(
    sandbox: GmailSandbox, server: Any
) -> None:
    creds = delegated_credentials(
        MAILBOX, [SCOPE_READONLY, SCOPE_COMPOSE], key_info=sandbox.service_account_info()
    )

    with pytest.raises(ConfigurationError) as caught:
        creds.refresh(http_request())

    message = caught.value.message
    assert "unauthorized_client" in message
    assert SCOPE_COMPOSE in message
    assert MAILBOX in message
    assert sandbox.client_id in message  # the admin grants by client id
    assert caught.value.details["scopes"] == [SCOPE_READONLY, SCOPE_COMPOSE]
    assert caught.value.__cause__ is None
    assert_no_secret(message, sandbox)


def test_an_ungranted_scope_surfaces_from_a_gmail_call(sandbox: GmailSandbox, server: Any) -> None:
    creds, _transport = keyless(sandbox, server, "sign_blob", scopes=[SCOPE_COMPOSE])

    with pytest.raises(ConfigurationError, match=r"gmail\.compose"):
        GmailApiClient(creds, endpoint=server.base_url).list_message_ids()


def test_an_unknown_mailbox_is_a_configuration_error(sandbox: GmailSandbox, server: Any) -> None:
    creds = delegated_credentials(
        "nobody@fund.example", [SCOPE_READONLY], key_info=sandbox.service_account_info()
    )

    with pytest.raises(ConfigurationError, match="invalid_grant") as caught:
        GmailApiClient(creds, endpoint=server.base_url).get_profile()

    assert "nobody@fund.example" in caught.value.message
    assert "Invalid email or User ID" in caught.value.message
    assert_no_secret(caught.value.message, sandbox)


def test_a_revoked_grant_is_a_configuration_error_on_the_next_token(
    sandbox: GmailSandbox, server: Any
) -> None:
    creds = delegated_credentials(
        MAILBOX, [SCOPE_READONLY], key_info=sandbox.service_account_info()
    )
    creds.refresh(http_request())
    sandbox.revoke_scopes(sandbox.client_id)

    with pytest.raises(ConfigurationError, match="unauthorized_client"):
        creds.refresh(http_request())


# -- inputs ---------------------------------------------------------------------------------


def test_scopes_are_required() -> None:
    with pytest.raises(ConfigurationError, match="explicit scopes"):
        delegated_credentials(MAILBOX, [], service_account_email="sa@p.iam.gserviceaccount.com")


def test_a_key_or_a_service_account_is_required() -> None:
    with pytest.raises(ConfigurationError, match="neither was given"):
        delegated_credentials(MAILBOX, [SCOPE_READONLY])


def test_an_incomplete_or_broken_key_is_named_without_its_contents(sandbox: GmailSandbox) -> None:
    info = sandbox.service_account_info()
    partial = {k: v for k, v in info.items() if k != "client_email"}
    with pytest.raises(ConfigurationError, match="missing client_email"):
        delegated_credentials(MAILBOX, [SCOPE_READONLY], key_info=partial)

    broken = dict(info, private_key=info["private_key"][:200])
    with pytest.raises(ConfigurationError, match="could not be loaded") as caught:
        delegated_credentials(MAILBOX, [SCOPE_READONLY], key_info=broken)
    assert_no_secret(str(caught.value), sandbox)
    assert caught.value.__cause__ is None


def test_the_redirecting_transport_rewrites_only_googles_hard_coded_hosts() -> None:
    transport = RedirectingRequest.to_sandbox("http://127.0.0.1:9/")

    assert transport.rewrite(f"{IAM_CREDENTIALS_URL}/v1/x:signBlob") == (
        "http://127.0.0.1:9/v1/x:signBlob"
    )
    assert transport.rewrite(GOOGLE_TOKEN_URI) == "http://127.0.0.1:9/token"
    assert transport.rewrite("https://gmail.googleapis.com/gmail/v1") == (
        "https://gmail.googleapis.com/gmail/v1"
    )


def test_threads_share_one_token_refresh(sandbox: GmailSandbox, server: Any) -> None:
    creds = delegated_credentials(
        MAILBOX, [SCOPE_READONLY], key_info=sandbox.service_account_info()
    )
    before = len(sandbox.oauth.tokens)
    barrier = threading.Barrier(6)
    headers: list[dict[str, str]] = []

    def use() -> None:
        barrier.wait(timeout=10)
        applied: dict[str, str] = {}
        creds.before_request(http_request(), "GET", server.base_url, applied)
        headers.append(applied)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(sandbox.oauth.tokens) - before == 1
    assert len({h["authorization"] for h in headers}) == 1


def _key_secret_texts(info: dict[str, Any]) -> list[str]:
    """What an operator may have put in the key's secret by mistake, each holding key material."""
    text = json.dumps(info)
    return [
        text[: len(text) // 2],  # cut short: not JSON
        info["private_key"],  # the PEM alone
        json.dumps([info]),  # JSON, not an object
        json.dumps(dict(info, private_key=12345)),  # an object whose key is not text
        json.dumps(dict(info, client_email=["x"])),  # fields of the wrong type
        "",  # empty
    ]


def _credentials_from_secret(text: str) -> DelegatedCredentials:
    """What the wiring does with the key secret's value."""
    key_info = parse_key_secret(text, secret="gmail-dwd-key")
    return delegated_credentials(MAILBOX, [SCOPE_READONLY], key_info=key_info)


def test_a_key_secret_that_is_no_key_json_is_a_configuration_error_in_words(
    sandbox: GmailSandbox,
) -> None:
    info = sandbox.service_account_info()
    for text in _key_secret_texts(info):
        with pytest.raises(ConfigurationError) as caught:
            _credentials_from_secret(text)
        message = str(caught.value)
        assert caught.value.__cause__ is None or "PRIVATE" not in str(caught.value.__cause__)
        assert_no_secret(message, sandbox)
        assert info["private_key"][40:80] not in message
        assert "key" in message.lower()
