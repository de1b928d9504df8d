"""Trust anchors: every anchor x caller kind in every mode, and forged ``iss``/``kid``/key mixes.

All tokens are really signed: a stand-in for Google's issuer (``https://accounts.google.com``,
its certs served on a loopback port), the sandbox issuer (its own certs URL), and the local
runtime key generated into a temporary ``var/``. The verifier fetches certs over HTTP exactly as
in production.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from sandbox.issuer import RunningIssuer, SandboxIssuer, serve_issuer
from shared.adapters.auth import (
    GOOGLE_ISSUERS,
    LOCAL_QUEUE_IDENTITY,
    LOCAL_TICKER_IDENTITY,
    CallerKind,
    GoogleTokenVerifier,
    anchors_for_settings,
)
from shared.adapters.local_identity import (
    KEY_FILE_NAME,
    LocalKey,
    load_or_create_local_key,
)
from shared.config import Settings
from shared.domain.models import Role, ServiceRole, User
from shared.domain.tenancy import TeamDomains, effective_team_domains
from shared.errors import ConfigurationError, ForbiddenError, UnauthenticatedError

GOOGLE = "https://accounts.google.com"
SANDBOX = "https://sandbox-issuer.local"
PEOPLE_AUDIENCE = "console.apps.googleusercontent.com"
BASE = "https://crm.fund.test"
FUNCTION = "sync_poll"
SERVICE_AUDIENCE = f"{BASE}/{FUNCTION}"
ADMIN = "admin@fund.test"
AGENT = "drafting-agent@fund-prod.iam.gserviceaccount.com"
CLOUD_SCHEDULER = "scheduler@fund-prod.iam.gserviceaccount.com"
CLOUD_PUSH = "push@fund-prod.iam.gserviceaccount.com"
USERS = {ADMIN: User.new(ADMIN, "Ada Admin", Role.ADMIN)}


def team() -> TeamDomains:
    return effective_team_domains(["fund.test"], bootstrap_admin="", admins=list)


@pytest.fixture(scope="module")
def google() -> Iterator[RunningIssuer]:
    """The stand-in for Google's certs endpoint: tokens carry Google's issuer string."""
    with serve_issuer(SandboxIssuer(GOOGLE)) as running:
        yield running


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningIssuer]:
    with serve_issuer(SandboxIssuer(SANDBOX)) as running:
        yield running


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalKey:
    return load_or_create_local_key(tmp_path_factory.mktemp("var") / "var")


def settings_for(mode: str, google: RunningIssuer, sandbox: RunningIssuer) -> Settings:
    issuer = sandbox if mode == "sandbox" else google
    cloud = mode == "cloud"
    return Settings(
        mode=mode,
        token_certs_url=issuer.certs_url,
        token_issuers=[SANDBOX] if mode == "sandbox" else sorted(GOOGLE_ISSUERS),
        people_audience=PEOPLE_AUDIENCE,
        functions_base_url=BASE,
        scheduler_identity=CLOUD_SCHEDULER if cloud else "",
        push_identity=CLOUD_PUSH if cloud else "",
        drafting_agent_identities=[AGENT],
        team_domains=["fund.test"],
    )


def verifier_for(
    mode: str, google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> GoogleTokenVerifier:
    return GoogleTokenVerifier(
        settings_for(mode, google, sandbox),
        USERS.get,
        team_domains=team,
        local_key=None if mode == "cloud" else local,
    )


# What each kind of caller presents: (e-mail, audience, hosted domain). The ticker and queue are
# the cloud's service accounts in cloud mode and the local runtime's identities on one machine.
def caller(kind: str, mode: str) -> tuple[str, str, str | None]:
    if kind == "person":
        return ADMIN, PEOPLE_AUDIENCE, "fund.test"
    if kind == "drafting_agent":
        return AGENT, SERVICE_AUDIENCE, None
    if kind == "ticker":
        return (
            (CLOUD_SCHEDULER if mode == "cloud" else LOCAL_TICKER_IDENTITY),
            SERVICE_AUDIENCE,
            None,
        )
    return (CLOUD_PUSH if mode == "cloud" else LOCAL_QUEUE_IDENTITY), SERVICE_AUDIENCE, None


def mint(
    signer: str,
    kind: str,
    mode: str,
    google: RunningIssuer,
    sandbox: RunningIssuer,
    local: LocalKey,
) -> str:
    email, audience, hd = caller(kind, mode)
    if signer == "local":
        if hd is None:
            return local.mint(audience, email)
        return _sign(
            local.private_pem, local.kid, {**_claims(email, audience, local.issuer), "hd": hd}
        )
    running = google if signer == "google" else sandbox
    return running.mint(email, audience, hosted_domain=hd)


def _claims(email: str, audience: str, issuer: str) -> dict[str, object]:
    import time

    now = int(time.time())
    return {
        "iss": issuer,
        "aud": audience,
        "sub": email,
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 300,
    }


def _sign(private_pem: bytes, kid: str, claims: dict[str, object]) -> str:
    signer = crypt.RSASigner.from_string(private_pem, key_id=kid)
    return jwt.encode(signer, claims, key_id=kid).decode("ascii")


ROLE_OF = {
    "person": Role.ADMIN,
    "drafting_agent": ServiceRole.DRAFTING_AGENT,
    "ticker": ServiceRole.SCHEDULER,
    "queue": ServiceRole.PUBSUB_PUSH,
}

# mode -> signer -> the kinds it gets accepted for (every other kind is refused).
ACCEPTED = {
    "cloud": {
        "google": {"person", "drafting_agent", "ticker", "queue"},
        "sandbox": set(),
        "local": set(),
    },
    "real": {
        "google": {"person", "drafting_agent"},
        "sandbox": set(),
        "local": {"ticker", "queue"},
    },
    "sandbox": {
        "google": set(),
        "sandbox": {"person", "drafting_agent"},
        "local": {"ticker", "queue"},
    },
}
MATRIX = [
    (mode, signer, kind, kind in kinds)
    for mode, signers in ACCEPTED.items()
    for signer, kinds in signers.items()
    for kind in ("person", "drafting_agent", "ticker", "queue")
]


@pytest.mark.parametrize(("mode", "signer", "kind", "accepted"), MATRIX)
def test_every_anchor_vouches_only_for_its_caller_kinds_in_each_mode(
    mode: str,
    signer: str,
    kind: str,
    accepted: bool,
    google: RunningIssuer,
    sandbox: RunningIssuer,
    local: LocalKey,
) -> None:
    verifier = verifier_for(mode, google, sandbox, local)
    token = mint(signer, kind, mode, google, sandbox, local)
    if accepted:
        assert verifier.verify(token, audience_for=FUNCTION).role is ROLE_OF[kind]
    else:
        with pytest.raises(UnauthenticatedError) as refused:
            verifier.verify(token, audience_for=FUNCTION)
        assert "issuer" in str(refused.value)


def test_a_refusal_for_the_wrong_kind_names_the_kind(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    verifier = verifier_for("real", google, sandbox, local)
    person_by_local_key = mint("local", "person", "real", google, sandbox, local)
    with pytest.raises(UnauthenticatedError, match="may not vouch for a person"):
        verifier.verify(person_by_local_key, audience_for=FUNCTION)
    ticker_by_google = mint("google", "ticker", "real", google, sandbox, local)
    with pytest.raises(UnauthenticatedError, match="may not vouch for a local_service"):
        verifier.verify(ticker_by_google, audience_for=FUNCTION)


# -- forged iss / kid / key combinations -------------------------------------------------------


def test_local_key_claiming_googles_issuer_and_googles_kid_is_refused(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    verifier = verifier_for("real", google, sandbox, local)
    for issuer in sorted(GOOGLE_ISSUERS):
        for kid in (google.issuer.kid, local.kid):
            forged = _sign(
                local.private_pem,
                kid,
                {**_claims(ADMIN, PEOPLE_AUDIENCE, issuer), "hd": "fund.test"},
            )
            with pytest.raises(UnauthenticatedError, match="signature"):
                verifier.verify(forged, audience_for=FUNCTION)


def test_google_key_claiming_the_local_issuer_is_refused(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    verifier = verifier_for("real", google, sandbox, local)
    claims = {"iss": local.issuer}
    for kid_of in (None, local.kid):
        signer = SandboxIssuer(GOOGLE, kid=kid_of) if kid_of else google.issuer
        forged = signer.mint(LOCAL_TICKER_IDENTITY, SERVICE_AUDIENCE, extra_claims=claims)
        with pytest.raises(UnauthenticatedError, match="signature"):
            verifier.verify(forged, audience_for=FUNCTION)


def test_another_key_with_the_local_issuer_and_kid_is_refused(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    verifier = verifier_for("sandbox", google, sandbox, local)
    forger = SandboxIssuer(local.issuer, kid=local.kid)
    forged = forger.mint(LOCAL_TICKER_IDENTITY, SERVICE_AUDIENCE)
    with pytest.raises(UnauthenticatedError, match="signature"):
        verifier.verify(forged, audience_for=FUNCTION)


def test_a_token_of_another_machines_local_key_names_an_unknown_issuer(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey, tmp_path: Path
) -> None:
    other = load_or_create_local_key(tmp_path / "other")
    assert other.issuer != local.issuer
    verifier = verifier_for("real", google, sandbox, local)
    with pytest.raises(UnauthenticatedError, match="issuer not accepted"):
        verifier.verify(other.mint(SERVICE_AUDIENCE, LOCAL_TICKER_IDENTITY), audience_for=FUNCTION)


def test_sandbox_key_claiming_googles_issuer_in_real_mode_is_refused(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    verifier = verifier_for("real", google, sandbox, local)
    forged = SandboxIssuer(GOOGLE, kid=google.issuer.kid).mint(
        ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.test"
    )
    with pytest.raises(UnauthenticatedError, match="signature"):
        verifier.verify(forged, audience_for=FUNCTION)
    sandbox_token = sandbox.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.test")
    with pytest.raises(UnauthenticatedError, match="issuer not accepted"):
        verifier.verify(sandbox_token, audience_for=FUNCTION)


def test_an_unknown_local_identity_is_forbidden_even_with_the_local_key(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    verifier = verifier_for("real", google, sandbox, local)
    token = local.mint(SERVICE_AUDIENCE, "someone@crm-local.invalid")
    with pytest.raises(ForbiddenError):
        verifier.verify(token, audience_for=FUNCTION)


# -- the anchors each mode builds ---------------------------------------------------------------


def test_anchor_table_per_mode(
    google: RunningIssuer, sandbox: RunningIssuer, local: LocalKey
) -> None:
    def table(mode: str) -> dict[str, set[str]]:
        anchors = anchors_for_settings(settings_for(mode, google, sandbox), local)
        return {anchor.name: {kind.value for kind in anchor.kinds} for anchor in anchors}

    assert table("cloud") == {"google": {"person", "drafting_agent", "scheduler", "pubsub_push"}}
    assert table("real") == {"google": {"person", "drafting_agent"}, "local": {"local_service"}}
    assert table("sandbox") == {"sandbox": {"person", "drafting_agent"}, "local": {"local_service"}}
    real = anchors_for_settings(settings_for("real", google, sandbox), local)
    assert not any(SANDBOX in anchor.issuers for anchor in real)
    assert [a.issuers for a in real if a.name == "local"] == [frozenset({local.issuer})]
    assert not any(CallerKind.PERSON in a.kinds for a in real if a.public_key_pem)


@pytest.mark.parametrize(
    ("mode", "issuers", "message"),
    [
        ("real", [SANDBOX], "trusts Google's issuers only"),
        ("real", [GOOGLE, SANDBOX], "trusts Google's issuers only"),
        ("sandbox", [GOOGLE], "not Google's"),
        ("cloud", ["crm-local:abc"], "local key's issuer"),
        ("real", [], "is empty"),
    ],
)
def test_misconfigured_issuers_are_refused_at_start(
    mode: str, issuers: list[str], message: str, local: LocalKey
) -> None:
    settings = Settings(mode=mode, token_issuers=issuers)
    with pytest.raises(ConfigurationError, match=message):
        anchors_for_settings(settings, local)


def test_one_machine_modes_need_the_local_key() -> None:
    with pytest.raises(ConfigurationError, match="local runtime's key"):
        anchors_for_settings(Settings(mode="real"), None)


# -- the local key itself -----------------------------------------------------------------------


def test_local_key_is_created_private_and_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = load_or_create_local_key(var)
    path = var / KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(var).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create_local_key(var)
    assert again.issuer == first.issuer
    assert first.issuer.startswith("crm-local:")
    assert "PRIVATE" not in repr(first)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_local_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_or_create_local_key(tmp_path)


def test_jwks_publishes_the_public_key_only(local: LocalKey) -> None:
    (key,) = local.jwks()["keys"]
    assert set(key) == {"kty", "alg", "use", "kid", "n", "e"}

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public = rsa.RSAPublicNumbers(number(key["e"]), number(key["n"])).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    assert pem == local.public_pem()
    claims = jwt.decode(local.mint(SERVICE_AUDIENCE, LOCAL_QUEUE_IDENTITY), certs={key["kid"]: pem})
    assert claims["iss"] == local.issuer


def test_wiring_local_minter_is_accepted_by_wirings_verifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: RunningIssuer
) -> None:
    from shared import wiring

    for name, value in {
        "CRM_MODE": "sandbox",
        "CRM_SQLITE_PATH": str(tmp_path / "var" / "sandbox" / "crm.sqlite3"),
        "CRM_TOKEN_CERTS_URL": sandbox.certs_url,
        "CRM_TOKEN_ISSUERS": SANDBOX,
        "CRM_FUNCTIONS_BASE_URL": BASE,
        "CRM_TEAM_DOMAINS": "fund.test",
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    identity = wiring.local_service_identity(ServiceRole.SCHEDULER)
    assert identity == LOCAL_TICKER_IDENTITY
    token = wiring.local_token_minter(identity, f"{BASE}/{FUNCTION}")
    assert wiring.verifier().verify(token, audience_for=FUNCTION).role is ServiceRole.SCHEDULER
    assert (tmp_path / "var" / "sandbox" / KEY_FILE_NAME).exists()
    queue = wiring.local_token_minter(wiring.local_service_identity(ServiceRole.PUBSUB_PUSH), BASE)
    with pytest.raises(UnauthenticatedError, match="audience"):
        wiring.verifier().verify(queue, audience_for=FUNCTION)


def test_real_mode_wiring_refuses_a_sandbox_token_and_accepts_google_and_local(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    google: RunningIssuer,
    sandbox: RunningIssuer,
) -> None:
    from shared import wiring

    for name, value in {
        "CRM_MODE": "real",
        "CRM_SQLITE_PATH": str(tmp_path / "var" / "crm.sqlite3"),
        "CRM_TOKEN_CERTS_URL": google.certs_url,
        "CRM_PEOPLE_AUDIENCE": PEOPLE_AUDIENCE,
        "CRM_FUNCTIONS_BASE_URL": BASE,
        "CRM_TEAM_DOMAINS": "fund.test",
        "CRM_BOOTSTRAP_ADMIN": ADMIN,
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    verifier = wiring.verifier()
    person = verifier.verify(
        google.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.test"), audience_for=FUNCTION
    )
    assert person.role is Role.ADMIN
    with pytest.raises(UnauthenticatedError, match="issuer not accepted"):
        verifier.verify(
            sandbox.mint(ADMIN, PEOPLE_AUDIENCE, hosted_domain="fund.test"), audience_for=FUNCTION
        )
    queue = wiring.local_service_identity(ServiceRole.PUBSUB_PUSH)
    token = wiring.local_token_minter(queue, SERVICE_AUDIENCE)
    assert verifier.verify(token, audience_for=FUNCTION).role is ServiceRole.PUBSUB_PUSH
