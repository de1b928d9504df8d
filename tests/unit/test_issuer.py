"""The sandbox issuer: tokens shaped like Google's, certs served like Google's v1 endpoint."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from cryptography import x509
from google.auth import jwt
from werkzeug.test import Client

from sandbox.issuer import (
    CERTS_PATH,
    DEFAULT_ISSUER,
    CertsApp,
    SandboxIssuer,
    serve_issuer,
)

AUDIENCE_URL = "https://functions.fund.test/gmail_push"
CLIENT_ID = "console.apps.googleusercontent.com"


@pytest.fixture(scope="module")
def issuer() -> SandboxIssuer:
    return SandboxIssuer()


def test_certs_are_googles_v1_format_one_pem_certificate_per_kid(issuer: SandboxIssuer) -> None:
    certs = issuer.certs_json()
    assert list(certs) == [issuer.kid]
    pem = certs[issuer.kid]
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert certificate.issuer == certificate.subject  # self-signed
    now = datetime.now(UTC)
    assert certificate.not_valid_before_utc < now < certificate.not_valid_after_utc


def test_minted_token_verifies_against_its_certs_with_googles_claims(
    issuer: SandboxIssuer,
) -> None:
    token = issuer.mint("Push@Fund.iam.gserviceaccount.com", AUDIENCE_URL)
    header = jwt.decode_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.kid
    claims = jwt.decode(token, certs=issuer.certs_json(), audience=AUDIENCE_URL)
    assert set(claims) == {"aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub"}
    assert claims["iss"] == DEFAULT_ISSUER
    assert claims["email"] == "Push@Fund.iam.gserviceaccount.com"
    assert claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5
    # A service account's OIDC token: azp is the account's numeric id, like sub.
    assert claims["sub"].isdigit()
    assert claims["azp"] == claims["sub"]


def test_people_tokens_name_the_client_as_azp_and_sub_is_stable(issuer: SandboxIssuer) -> None:
    first = jwt.decode(issuer.mint("ada@fund.test", CLIENT_ID), certs=issuer.certs_json())
    again = jwt.decode(issuer.mint("ADA@fund.test", CLIENT_ID), certs=issuer.certs_json())
    other = jwt.decode(issuer.mint("max@fund.test", CLIENT_ID), certs=issuer.certs_json())
    assert first["azp"] == CLIENT_ID
    assert first["sub"] == again["sub"] != other["sub"]


def test_a_workspace_account_carries_its_hosted_domain(issuer: SandboxIssuer) -> None:
    workspace = jwt.decode(
        issuer.mint("ada@fund.test", CLIENT_ID, hosted_domain="fund.test"),
        certs=issuer.certs_json(),
    )
    assert workspace["hd"] == "fund.test"
    personal = jwt.decode(issuer.mint("ada@gmail.com", CLIENT_ID), certs=issuer.certs_json())
    assert "hd" not in personal


def test_options_shape_the_claims(issuer: SandboxIssuer) -> None:
    issued = datetime.now(UTC) - timedelta(seconds=30)
    token = issuer.mint(
        "ada@fund.test",
        CLIENT_ID,
        email_verified=False,
        expires_in=600,
        issued_at=issued,
        extra_claims={"hd": "fund.test", "azp": None, "iss": "accounts.google.com"},
    )
    claims = jwt.decode(token, certs=issuer.certs_json())
    assert claims["email_verified"] is False
    assert claims["iat"] == int(issued.timestamp())
    assert claims["exp"] == int(issued.timestamp()) + 600
    assert claims["hd"] == "fund.test"
    assert claims["iss"] == "accounts.google.com"
    assert "azp" not in claims


def test_naive_issue_time_is_refused(issuer: SandboxIssuer) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issuer.mint("ada@fund.test", CLIENT_ID, issued_at=datetime(2024, 1, 1))


def test_another_issuer_cannot_sign_for_this_one_even_with_the_same_kid(
    issuer: SandboxIssuer,
) -> None:
    impostor = SandboxIssuer(kid=issuer.kid)
    assert impostor.certs_json()[issuer.kid] != issuer.certs_json()[issuer.kid]
    with pytest.raises(ValueError, match="signature"):
        jwt.decode(impostor.mint("ada@fund.test", CLIENT_ID), certs=issuer.certs_json())
    stranger = SandboxIssuer()
    assert stranger.kid != issuer.kid
    with pytest.raises(ValueError, match="key id"):
        jwt.decode(stranger.mint("ada@fund.test", CLIENT_ID), certs=issuer.certs_json())


def test_certs_app_is_a_plain_wsgi_callable_that_can_be_mounted(issuer: SandboxIssuer) -> None:
    app = CertsApp(issuer, max_age=120)
    client = Client(app)
    response = client.get(CERTS_PATH)
    assert response.status_code == 200
    assert json.loads(response.get_data()) == issuer.certs_json()
    assert response.headers["Cache-Control"].startswith("public, max-age=120")
    head = client.head(CERTS_PATH)
    assert head.status_code == 200
    assert head.get_data() == b""
    assert client.post(CERTS_PATH).status_code == 405
    assert client.post(CERTS_PATH).headers["Allow"] == "GET, HEAD"
    assert client.get("/oauth2/v3/certs").status_code == 404
    assert app.requests_served == 2  # GET and HEAD; refusals are not counted


def test_serve_issuer_serves_certs_over_loopback_and_stops(issuer: SandboxIssuer) -> None:
    with serve_issuer(issuer) as running:
        assert running.base_url.startswith("http://127.0.0.1:")
        assert running.certs_url == running.base_url + "/oauth2/v1/certs"
        with urllib.request.urlopen(running.certs_url, timeout=5) as response:
            body = json.loads(response.read())
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
            cache_control = response.headers["Cache-Control"]
            date = parsedate_to_datetime(response.headers["Date"])
        assert body == issuer.certs_json()
        assert "public" in cache_control
        assert "max-age=3600" in cache_control
        assert abs((date - datetime.now(UTC)).total_seconds()) < 5
        assert running.app.requests_served == 1
        token = running.mint("ada@fund.test", CLIENT_ID)
        assert jwt.decode(token, certs=body)["email"] == "ada@fund.test"
        certs_url = running.certs_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(certs_url, timeout=2)


def test_serve_issuer_makes_its_own_issuer_when_none_is_given() -> None:
    with serve_issuer() as running, urllib.request.urlopen(running.certs_url, timeout=5) as r:
        assert json.loads(r.read()) == running.issuer.certs_json()
        assert running.issuer.issuer == DEFAULT_ISSUER
