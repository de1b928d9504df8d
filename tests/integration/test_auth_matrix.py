"""Who may call what: the full matrix of tokens against real functions, with no auth mocked.

The sandbox issuer serves its certs on a loopback port; the verifier fetches them over HTTP with
google-auth exactly as it fetches Google's in production. The functions under test are loaded
with ``functions_framework.create_app`` from ``auth_functions.py``, so requests go through the
same framework routing (including ``OPTIONS``) as a deployed function.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from sandbox.issuer import RunningIssuer, SandboxIssuer, serve_issuer
from shared.adapters.auth import GoogleTokenVerifier, check_claims
from shared.config import Settings, get_settings
from shared.domain.models import Caller, Role, ServiceRole, User
from shared.domain.tenancy import TeamDomains, effective_team_domains
from shared.errors import (
    ConfigurationError,
    ForbiddenError,
    RetryableError,
    UnauthenticatedError,
)
from shared.web import status_for
from tests.support import auth as auth_support

ISSUER = "https://sandbox-issuer.local"
PEOPLE_AUDIENCE = "console-client-id.apps.googleusercontent.com"
FUNCTIONS_BASE = "https://functions.fund.test"
API_AUDIENCE = f"{FUNCTIONS_BASE}/auth_api"
TICK_AUDIENCE = f"{FUNCTIONS_BASE}/scheduled_tick"
SCHEDULER = "scheduler@fund-prod.iam.gserviceaccount.com"
PUSH = "pubsub-push@fund-prod.iam.gserviceaccount.com"
AGENT = "drafting-agent@fund-prod.iam.gserviceaccount.com"
ADMIN = "admin@fund.test"
MEMBER = "member@fund.test"
FORMER = "former@fund.test"
STRANGER = "stranger@fund.test"
HD = "fund.test"  # the fund's Workspace domain: CRM_TEAM_DOMAINS, and people's ``hd`` claim
ALLOWED_ORIGIN = "https://console.fund.test"
FOREIGN_ORIGIN = "https://evil.example"
FUNCTIONS_FILE = Path(__file__).with_name("auth_functions.py")

USERS = {
    user.email: user
    for user in [
        User.new(ADMIN, "Ada Admin", Role.ADMIN),
        User.new(MEMBER, "Max Member", Role.MEMBER),
        User.new(FORMER, "Fay Former", Role.ADMIN).model_copy(update={"is_active": False}),
    ]
}


def lookup_user(email: str) -> User | None:
    return USERS.get(email.lower())


def fund_team() -> TeamDomains:
    """The fund's domains, decided from this test's settings as ``shared.wiring`` does."""
    settings = get_settings()
    return effective_team_domains(
        settings.team_domains,
        bootstrap_admin=settings.bootstrap_admin,
        admins=lambda: [u for u in USERS.values() if u.role is Role.ADMIN and u.is_active],
    )


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running() -> Iterator[RunningIssuer]:
    with serve_issuer(SandboxIssuer(ISSUER)) as running:
        yield running


@pytest.fixture(scope="module")
def forger(running: RunningIssuer) -> SandboxIssuer:
    """Another key that even claims the real key's id: only the signature check can catch it."""
    return SandboxIssuer(ISSUER, kid=running.issuer.kid)


@pytest.fixture
def settings(running: RunningIssuer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    env = {
        "CRM_TOKEN_CERTS_URL": running.certs_url,
        "CRM_TOKEN_ISSUERS": f"{ISSUER},sandbox-issuer.local",
        "CRM_PEOPLE_AUDIENCE": PEOPLE_AUDIENCE,
        "CRM_FUNCTIONS_BASE_URL": FUNCTIONS_BASE + "/",
        "CRM_SCHEDULER_IDENTITY": SCHEDULER.upper(),
        "CRM_PUSH_IDENTITY": PUSH,
        "CRM_DRAFTING_AGENT_IDENTITIES": f"{AGENT}, other-agent@fund-prod.iam.gserviceaccount.com",
        "CRM_CORS_ORIGINS": f"{ALLOWED_ORIGIN},http://localhost:5173",
        "CRM_CLOCK_SKEW_SECONDS": "10",
        "CRM_TEAM_DOMAINS": HD,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def verifier(settings: Settings) -> Iterator[GoogleTokenVerifier]:
    verifier = GoogleTokenVerifier(settings, lookup_user, team_domains=fund_team)
    auth_support.install(verifier)
    yield verifier
    auth_support.clear()


@pytest.fixture
def api(verifier: GoogleTokenVerifier) -> FlaskClient:
    return functions_framework.create_app("auth_api", str(FUNCTIONS_FILE)).test_client()


@pytest.fixture
def tick(verifier: GoogleTokenVerifier) -> FlaskClient:
    return functions_framework.create_app("scheduled_tick", str(FUNCTIONS_FILE)).test_client()


# -- token recipes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    real: SandboxIssuer
    forger: SandboxIssuer


Recipe = Callable[[Keys], "str | None"]


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _segment(data: dict[str, Any]) -> str:
    import base64

    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def tampered(keys: Keys) -> str:
    """A member's genuine token with the payload rewritten to claim the admin's address."""
    header, _, signature = keys.real.mint(MEMBER, PEOPLE_AUDIENCE, hosted_domain=HD).split(".")
    now = int(time.time())
    claims = {
        "aud": PEOPLE_AUDIENCE,
        "email": ADMIN,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
        "iss": ISSUER,
        "sub": "1",
    }
    return f"{header}.{_segment(claims)}.{signature}"


def unsigned(keys: Keys) -> str:
    now = int(time.time())
    claims = {
        "aud": PEOPLE_AUDIENCE,
        "email": ADMIN,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
        "iss": ISSUER,
    }
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}.c2ln"


def hs256(keys: Keys) -> str:
    """Algorithm confusion: an HMAC token whose 'key' would be the public certificate."""
    real = keys.real.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD)
    _, payload, signature = real.split(".")
    return f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': keys.real.kid})}.{payload}.{signature}"


def people(email: str, **options: Any) -> Recipe:
    """A person's token; a Workspace account of the fund (``hd``) unless ``hosted_domain`` says
    otherwise (None: a personal Google account, which carries no ``hd``)."""
    options.setdefault("hosted_domain", HD)
    return lambda keys: keys.real.mint(email, PEOPLE_AUDIENCE, **options)


def service(email: str, audience: str = API_AUDIENCE, **options: Any) -> Recipe:
    return lambda keys: keys.real.mint(email, audience, **options)


@dataclass(frozen=True)
class Refusal:
    name: str
    recipe: Recipe
    status: int
    reason: str  # a fragment of the expected reason
    path: str = "/admin/ping"
    method: str = "GET"
    raw_header: str | None = None


REFUSALS = [
    Refusal("missing header", lambda keys: None, 401, "missing bearer token"),
    Refusal("basic scheme", lambda keys: None, 401, "Bearer", raw_header="Basic YWRtaW46YWRtaW4="),
    Refusal("bearer without token", lambda keys: None, 401, "Bearer", raw_header="Bearer"),
    Refusal("bearer with two parts", lambda keys: None, 401, "Bearer", raw_header="Bearer a b"),
    Refusal("malformed token", lambda keys: "not-a-jwt", 401, "malformed"),
    Refusal("segments not json", lambda keys: "YWJj.ZGVm.Z2hp", 401, "malformed"),
    Refusal("oversized token", lambda keys: "a" * 20000 + ".b.c", 401, "malformed"),
    Refusal("unsigned (alg none)", unsigned, 401, "algorithm"),
    Refusal("hs256 confusion", hs256, 401, "algorithm"),
    Refusal(
        "forged with another key, same kid",
        lambda keys: keys.forger.mint(ADMIN, PEOPLE_AUDIENCE),
        401,
        "signature",
    ),
    Refusal(
        "forged with an unknown kid",
        lambda keys: SandboxIssuer(ISSUER, key_size=1024).mint(ADMIN, PEOPLE_AUDIENCE),
        401,
        "signature",
    ),
    Refusal("payload tampered", tampered, 401, "signature"),
    Refusal(
        "expired",
        lambda keys: keys.real.mint(
            ADMIN, PEOPLE_AUDIENCE, issued_at=time.time() - 3660, expires_in=1800
        ),
        401,
        "expired",
    ),
    Refusal(
        "issued in the future",
        lambda keys: keys.real.mint(
            ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD, issued_at=time.time() + 3600
        ),
        401,
        "issue time",
    ),
    Refusal("no exp claim", people(ADMIN, extra_claims={"exp": None}), 401, "expiry"),
    Refusal(
        "wrong audience", lambda keys: keys.real.mint(ADMIN, "someone-else.apps"), 401, "audience"
    ),
    Refusal(
        "another function's URL", service(SCHEDULER, f"{FUNCTIONS_BASE}/other_fn"), 401, "audience"
    ),
    Refusal(
        "audience as a list",
        people(ADMIN, extra_claims={"aud": [PEOPLE_AUDIENCE]}),
        401,
        "audience",
    ),
    Refusal(
        "wrong issuer (validly signed)",
        people(ADMIN, extra_claims={"iss": "https://accounts.google.com"}),
        401,
        "issuer",
    ),
    Refusal("no issuer", people(ADMIN, extra_claims={"iss": None}), 401, "issuer"),
    Refusal("unverified email", people(ADMIN, email_verified=False), 403, "not verified"),
    Refusal(
        "email_verified string false",
        people(ADMIN, extra_claims={"email_verified": "false"}),
        403,
        "not verified",
    ),
    Refusal("no email claim", people(ADMIN, extra_claims={"email": None}), 403, "no e-mail"),
    Refusal(
        "personal google account (no hd)", people(ADMIN, hosted_domain=None), 403, "hosted domain"
    ),
    Refusal(
        "another organisation's hd", people(ADMIN, hosted_domain="evil.example"), 403, "hosted"
    ),
    Refusal("a subdomain's hd", people(ADMIN, hosted_domain="mail.fund.test"), 403, "hosted"),
    Refusal("a look-alike hd", people(ADMIN, hosted_domain="evilfund.test"), 403, "hosted"),
    Refusal("hd as a list", people(ADMIN, extra_claims={"hd": [HD]}), 403, "hosted domain"),
    Refusal("unknown user", people(STRANGER), 403, "unknown user"),
    Refusal("inactive user", people(FORMER), 403, "inactive"),
    Refusal("member on an admin route", people(MEMBER), 403, "role"),
    Refusal("scheduler on a people route", service(SCHEDULER), 403, "role"),
    Refusal("drafting agent on an admin route", service(AGENT), 403, "role"),
    Refusal(
        "service account with the people audience",
        people(SCHEDULER),
        403,
        "function's URL",
        path="/member/ping",
    ),
    Refusal("person with a function audience", service(ADMIN), 403, "service identity"),
    Refusal(
        "unknown service account",
        service("intruder@evil.iam.gserviceaccount.com"),
        403,
        "service identity",
        path="/jobs/run",
        method="POST",
    ),
    Refusal(
        "admin on the scheduler route", people(ADMIN), 403, "role", path="/jobs/run", method="POST"
    ),
    Refusal(
        "push identity on the scheduler route",
        service(PUSH),
        403,
        "role",
        path="/jobs/run",
        method="POST",
    ),
    Refusal(
        "unauthenticated on an unknown path",
        lambda keys: None,
        401,
        "missing",
        path="/no/such/route",
    ),
]


def call(client: FlaskClient, method: str, path: str, headers: dict[str, str]) -> Any:
    return client.open(path, method=method, headers=headers)


def assert_refused(response: Any, status: int, reason: str, token: str | None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == ("unauthenticated" if status == 401 else "forbidden")
    assert isinstance(body["reason"], str)
    assert reason.lower() in body["reason"].lower()
    text = response.get_data(as_text=True)
    if token:
        assert token not in text
        signature = token.split(".")[-1]
        if len(signature) > 16:
            assert signature not in text  # not even the signature
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


# -- the matrix over HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize("case", REFUSALS, ids=[case.name for case in REFUSALS])
def test_refusals(
    case: Refusal, api: FlaskClient, running: RunningIssuer, forger: SandboxIssuer
) -> None:
    token = case.recipe(Keys(running.issuer, forger))
    headers = bearer(token)
    if case.raw_header is not None:
        headers = {"Authorization": case.raw_header}
    response = call(api, case.method, case.path, headers)
    assert_refused(response, case.status, case.reason, token)


@pytest.mark.parametrize(
    ("recipe", "method", "path", "expected"),
    [
        (people(ADMIN), "GET", "/admin/ping", {"route": "admin", "email": ADMIN, "role": "admin"}),
        (people(ADMIN.upper()), "GET", "/admin/ping", {"email": ADMIN, "role": "admin"}),
        (people(ADMIN), "GET", "/member/ping", {"route": "member", "role": "admin"}),
        (
            people(MEMBER),
            "GET",
            "/member/ping",
            {"route": "member", "email": MEMBER, "role": "member"},
        ),
        (people(MEMBER), "POST", "/drafts", {"route": "drafts", "role": "member"}),
        (
            service(AGENT),
            "POST",
            "/drafts",
            {"route": "drafts", "email": AGENT, "role": "drafting_agent", "user_id": None},
        ),
        (
            service(SCHEDULER),
            "POST",
            "/jobs/run",
            {"route": "job", "email": SCHEDULER, "role": "scheduler"},
        ),
        (
            people(ADMIN, extra_claims={"iss": "sandbox-issuer.local"}),
            "GET",
            "/admin/ping",
            {"route": "admin"},
        ),
        (
            people(ADMIN, extra_claims={"email_verified": "true"}),
            "GET",
            "/admin/ping",
            {"route": "admin"},
        ),
        # Expired five seconds ago, inside the ten seconds of allowed clock skew.
        (
            lambda keys: keys.real.mint(
                ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD, issued_at=time.time() - 3605
            ),
            "GET",
            "/admin/ping",
            {"route": "admin"},
        ),
    ],
    ids=[
        "admin",
        "admin-upper-case-email",
        "admin-on-people-route",
        "member",
        "member-drafts",
        "agent-drafts",
        "scheduler-job",
        "second-issuer",
        "verified-as-string",
        "within-skew",
    ],
)
def test_admitted(
    recipe: Recipe,
    method: str,
    path: str,
    expected: dict[str, Any],
    api: FlaskClient,
    running: RunningIssuer,
    forger: SandboxIssuer,
) -> None:
    token = recipe(Keys(running.issuer, forger))
    response = call(api, method, path, bearer(token))
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    body = response.get_json()
    assert {key: body[key] for key in expected} == expected
    if body["role"] in ("admin", "member"):
        assert body["user_id"] == USERS[body["email"]].id


def test_guarded_function_admits_only_the_scheduler(
    tick: FlaskClient, running: RunningIssuer
) -> None:
    ok = tick.post("/", headers=bearer(running.mint(SCHEDULER, TICK_AUDIENCE)))
    assert ok.status_code == 200
    assert ok.get_json()["role"] == "scheduler"

    push = running.mint(PUSH, TICK_AUDIENCE)
    assert_refused(tick.post("/", headers=bearer(push)), 403, "role", push)
    admin = running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD)
    assert_refused(tick.post("/", headers=bearer(admin)), 403, "role", admin)
    # A scheduler token made out to another function is not valid here.
    other = running.mint(SCHEDULER, API_AUDIENCE)
    assert_refused(tick.post("/", headers=bearer(other)), 401, "audience", other)
    assert_refused(tick.post("/"), 401, "missing", None)


def test_guarded_function_refuses_other_methods_after_auth(
    tick: FlaskClient, running: RunningIssuer
) -> None:
    assert tick.get("/").status_code == 401
    response = tick.get("/", headers=bearer(running.mint(SCHEDULER, TICK_AUDIENCE)))
    assert response.status_code == 405
    assert response.get_json() == {
        "error": "method_not_allowed",
        "reason": "method not allowed",
        "allowed": ["POST"],
    }


# -- routing and error mapping ----------------------------------------------------------------


def test_unknown_path_is_404_and_wrong_method_405_for_an_authenticated_caller(
    api: FlaskClient, running: RunningIssuer
) -> None:
    headers = bearer(running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD))
    missing = api.get("/no/such/route", headers=headers)
    assert missing.status_code == 404
    assert missing.get_json() == {"error": "not_found", "reason": "no such route"}
    wrong = api.delete("/admin/ping", headers=headers)
    assert wrong.status_code == 405
    assert wrong.get_json()["error"] == "method_not_allowed"
    assert wrong.get_json()["allowed"] == ["GET", "HEAD"]


def test_path_parameters_reach_the_handler_and_prefix_is_stripped(
    api: FlaskClient, running: RunningIssuer
) -> None:
    headers = bearer(running.mint(MEMBER, PEOPLE_AUDIENCE, hosted_domain=HD))
    response = api.post("/items/inv-42/echo", headers=headers, json={"note": "hi"})
    assert response.status_code == 201
    assert response.get_json()["item_id"] == "inv-42"
    assert response.get_json()["body"] == {"note": "hi"}
    # Mounted under /<function name>, as the local server does (settings.function_url).
    prefixed = api.get("/auth_api/member/ping", headers=headers)
    assert prefixed.status_code == 200
    assert prefixed.get_json()["route"] == "member"


def test_app_errors_map_to_their_status_with_details(
    api: FlaskClient, running: RunningIssuer
) -> None:
    response = api.get(
        "/conflict", headers=bearer(running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD))
    )
    assert response.status_code == 409
    assert response.get_json() == {
        "error": "conflict",
        "reason": "proposal already decided",
        "state": "approved",
    }


def test_bad_json_body_is_a_client_error_not_500(api: FlaskClient, running: RunningIssuer) -> None:
    response = api.post(
        "/items/x/echo",
        headers={
            **bearer(running.mint(MEMBER, PEOPLE_AUDIENCE, hosted_domain=HD)),
            "Content-Type": "application/json",
        },
        data="{not json",
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert response.get_json()["reason"]


def test_unexpected_error_is_a_generic_500_and_the_token_never_reaches_the_log(
    api: FlaskClient, running: RunningIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD)
    with caplog.at_level(logging.ERROR, logger="shared.web"):
        response = api.get("/boom", headers=bearer(token))
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal", "reason": "internal error"}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError: handler bug while holding [redacted]" in logged  # the stack is there
    assert token not in logged
    assert token not in caplog.text


def test_refusals_are_logged_without_the_token(
    api: FlaskClient,
    running: RunningIssuer,
    forger: SandboxIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = forger.mint(ADMIN, PEOPLE_AUDIENCE)
    with caplog.at_level(logging.DEBUG):
        response = api.get("/admin/ping", headers=bearer(token))
    assert response.status_code == 401
    assert "401 unauthenticated" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[1] not in caplog.text


# -- CORS -------------------------------------------------------------------------------------


def test_preflight_from_an_allowed_origin_needs_no_token(api: FlaskClient) -> None:
    response = api.options(
        "/admin/ping",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS, POST"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Max-Age"] == "3600"
    assert "Origin" in response.headers["Vary"]
    assert response.get_data() == b""


def test_preflight_of_a_guarded_function_lists_its_methods(tick: FlaskClient) -> None:
    response = tick.options("/", headers={"Origin": "http://localhost:5173"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert response.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"


@pytest.mark.parametrize("origin", [FOREIGN_ORIGIN, ALLOWED_ORIGIN + ".evil.example", None])
def test_preflight_from_a_foreign_or_no_origin_is_refused(
    api: FlaskClient, origin: str | None
) -> None:
    headers = {"Access-Control-Request-Method": "GET"}
    if origin:
        headers["Origin"] = origin
    response = api.options("/admin/ping", headers=headers)
    assert response.status_code == 403
    assert response.get_json()["reason"] == "origin not allowed"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_real_responses_carry_allow_origin_for_allowed_origins_only(
    api: FlaskClient, running: RunningIssuer
) -> None:
    headers = bearer(running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD))
    allowed = api.get("/admin/ping", headers={**headers, "Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    foreign = api.get("/admin/ping", headers={**headers, "Origin": FOREIGN_ORIGIN})
    assert foreign.status_code == 200  # CORS is the browser's gate; the token is ours
    assert "Access-Control-Allow-Origin" not in foreign.headers
    # Refusals too, so the console can show the reason.
    refused = api.get("/admin/ping", headers={"Origin": ALLOWED_ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


# -- the verifier on its own ------------------------------------------------------------------


def test_verifier_resolves_people_and_services(
    verifier: GoogleTokenVerifier, running: RunningIssuer
) -> None:
    admin = verifier.verify(
        running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD), audience_for="auth_api"
    )
    assert admin == Caller(email=ADMIN, role=Role.ADMIN, user_id=USERS[ADMIN].id)
    for email, role in [
        (SCHEDULER, ServiceRole.SCHEDULER),
        (PUSH, ServiceRole.PUBSUB_PUSH),
        (AGENT, ServiceRole.DRAFTING_AGENT),
        ("other-agent@fund-prod.iam.gserviceaccount.com", ServiceRole.DRAFTING_AGENT),
    ]:
        caller = verifier.verify(running.mint(email, API_AUDIENCE), audience_for="auth_api")
        assert caller == Caller(email=email, role=role)
        assert caller.is_service


def test_certs_are_fetched_once_and_then_served_from_the_cache(
    verifier: GoogleTokenVerifier, running: RunningIssuer
) -> None:
    before = running.app.requests_served
    for _ in range(3):
        verifier.verify(
            running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD), audience_for="auth_api"
        )
    assert running.app.requests_served == before + 1
    # A second verifier has its own cache: the count moves, proving the counter is live.
    GoogleTokenVerifier(get_settings(), lookup_user, team_domains=fund_team).verify(
        running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD), audience_for="auth_api"
    )
    assert running.app.requests_served == before + 2


def test_token_is_not_in_the_exception_or_its_traceback(
    verifier: GoogleTokenVerifier, forger: SandboxIssuer
) -> None:
    token = forger.mint(ADMIN, PEOPLE_AUDIENCE)
    with pytest.raises(UnauthenticatedError) as caught:
        verifier.verify(token, audience_for="auth_api")
    text = "".join(traceback.format_exception(caught.value))
    assert "signature" in text
    assert token not in text
    assert token.split(".")[1] not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("certs_url", ["closed-port", "wrong-path"])
def test_unreachable_certs_are_retryable_not_the_callers_fault(
    certs_url: str, settings: Settings, running: RunningIssuer
) -> None:
    url = (
        f"http://127.0.0.1:{_closed_port()}/oauth2/v1/certs"
        if certs_url == "closed-port"
        else running.base_url + "/nothing-here"
    )
    verifier = GoogleTokenVerifier(
        settings.model_copy(update={"token_certs_url": url}), lookup_user, team_domains=fund_team
    )
    with pytest.raises(RetryableError) as caught:
        verifier.verify(
            running.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain=HD), audience_for="auth_api"
        )
    assert status_for(caught.value) == 503


def test_empty_people_audience_admits_no_person(settings: Settings, running: RunningIssuer) -> None:
    verifier = GoogleTokenVerifier(
        settings.model_copy(update={"people_audience": ""}), lookup_user, team_domains=fund_team
    )
    with pytest.raises(UnauthenticatedError, match="audience"):
        verifier.verify(running.mint(ADMIN, ""), audience_for="auth_api")
    assert (
        verifier.verify(running.mint(SCHEDULER, API_AUDIENCE), audience_for="auth_api").role
        is ServiceRole.SCHEDULER
    )


@pytest.mark.parametrize(
    ("update", "fragment"),
    [
        ({"token_certs_url": "http://certs.example.com/oauth2/v1/certs"}, "CRM_TOKEN_CERTS_URL"),
        ({"token_certs_url": "file:///etc/certs.json"}, "CRM_TOKEN_CERTS_URL"),
        ({"token_issuers": []}, "CRM_TOKEN_ISSUERS"),
        ({"push_identity": SCHEDULER}, "one role only"),
        ({"drafting_agent_identities": [PUSH]}, "one role only"),
    ],
)
def test_dangerous_configuration_fails_loudly(
    settings: Settings, update: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        GoogleTokenVerifier(settings.model_copy(update=update), lookup_user, team_domains=fund_team)


def test_importing_the_verifier_and_glue_is_cheap() -> None:
    """Cold start: neither module may pull in requests or google-auth's verification code."""
    probe = (
        "import sys, shared.adapters.auth, shared.web; "
        "heavy = [m for m in ('requests', 'google.oauth2.id_token', 'cachecontrol', "
        "'google.auth.transport.requests') if m in sys.modules]; "
        "print(heavy)"
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


# -- claim checks, rule by rule ---------------------------------------------------------------

NOW = 1_700_000_000.0
GOOD = {
    "iss": ISSUER,
    "aud": PEOPLE_AUDIENCE,
    "exp": NOW + 60,
    "iat": NOW,
    "email": "Ada@Fund.Test",
    "email_verified": True,
}


def _check(**changes: Any) -> str:
    claims = {**GOOD, **changes}
    claims = {key: value for key, value in claims.items() if value is not None}
    return check_claims(
        claims,
        issuers={ISSUER},
        audiences=(API_AUDIENCE, PEOPLE_AUDIENCE, ""),
        now=NOW,
        clock_skew_seconds=10,
    )


def test_check_claims_accepts_good_claims_and_lower_cases_the_email() -> None:
    assert _check() == "ada@fund.test"
    assert _check(exp=NOW - 9) == "ada@fund.test"  # within skew


@pytest.mark.parametrize(
    ("changes", "error", "fragment"),
    [
        ({"iss": "accounts.google.com"}, UnauthenticatedError, "issuer"),
        ({"iss": None}, UnauthenticatedError, "issuer"),
        ({"aud": "x"}, UnauthenticatedError, "audience"),
        ({"aud": ""}, UnauthenticatedError, "audience"),
        ({"aud": [PEOPLE_AUDIENCE]}, UnauthenticatedError, "audience"),
        ({"exp": None}, UnauthenticatedError, "no expiry"),
        ({"exp": True}, UnauthenticatedError, "no expiry"),
        ({"exp": str(NOW + 60)}, UnauthenticatedError, "no expiry"),
        ({"exp": NOW - 10}, UnauthenticatedError, "expired"),
        ({"email": None}, ForbiddenError, "no e-mail"),
        ({"email": "  "}, ForbiddenError, "no e-mail"),
        ({"email_verified": None}, ForbiddenError, "not verified"),
        ({"email_verified": 1}, ForbiddenError, "not verified"),
        ({"email_verified": "yes"}, ForbiddenError, "not verified"),
    ],
)
def test_check_claims_refuses(
    changes: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        _check(**changes)
