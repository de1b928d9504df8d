"""OAuth for the simulator: service accounts, the JWT-bearer token endpoint, scopes, IAM signing.

Mirrors what Google does for domain-wide delegation (FACTS.md, "Domain-wide delegation"): the
token endpoint takes a JWT signed by a service-account key (``kid`` = ``private_key_id``), checks
``aud``, ``exp``, the subject (a known mailbox) and that every requested scope was granted to the
account's client id, and answers Google's ``invalid_grant`` (400) / ``unauthorized_client`` (401)
otherwise. Access tokens are opaque and bound to (subject, scopes, expiry).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt

MAIL_SCOPE = "https://mail.google.com/"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_LIFETIME_S = 3600
MAX_ASSERTION_LIFETIME_S = 3600
CLOCK_SKEW_S = 300


def full_scope(scope: str) -> str:
    """``gmail.readonly`` -> ``https://www.googleapis.com/auth/gmail.readonly``."""
    scope = scope.strip()
    if scope.startswith(("https://", "http://")):
        return scope
    return SCOPE_PREFIX + scope


def _s(*names: str) -> frozenset[str]:
    return frozenset({MAIL_SCOPE, *(SCOPE_PREFIX + name for name in names)})


_READ = _s("gmail.modify", "gmail.readonly", "gmail.metadata")
# Scopes per method, from the bundled discovery document (add-on scopes left out).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "getProfile": _s("gmail.modify", "gmail.readonly", "gmail.metadata", "gmail.compose"),
    "messages.list": _READ,
    "messages.get": _READ,
    "threads.get": _READ,
    "history.list": _READ,
    "watch": _READ,
    "stop": _READ,
    "messages.send": _s("gmail.modify", "gmail.compose", "gmail.send"),
    "drafts.create": _s("gmail.modify", "gmail.compose"),
}
# Scopes that let a caller read bodies; a token whose only read scope is gmail.metadata cannot.
BODY_SCOPES = _s("gmail.modify", "gmail.readonly")
METADATA_SCOPE = SCOPE_PREFIX + "gmail.metadata"


class TokenError(Exception):
    """An OAuth error answer: ``{"error", "error_description"}`` with an HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_grant(description: str) -> TokenError:
    return TokenError(400, "invalid_grant", description)


UNAUTHORIZED_CLIENT = TokenError(
    401,
    "unauthorized_client",
    "Client is unauthorized to retrieve access tokens using this method, or client not "
    "authorized for any of the scopes requested.",
)


@dataclass
class ServiceAccount:
    email: str
    client_id: str
    public_keys: dict[str, Any] = field(default_factory=dict)  # kid -> RSAVerifier
    signer: crypt.RSASigner | None = None  # only for the sandbox's own account (IAM signing)


@dataclass(frozen=True)
class AccessToken:
    token: str
    subject: str | None  # the impersonated mailbox; None for the service account itself
    scopes: frozenset[str]
    expires_at: float
    client_email: str

    def allows(self, method: str) -> bool:
        return bool(self.scopes & METHOD_SCOPES.get(method, frozenset()))

    @property
    def metadata_only(self) -> bool:
        return METADATA_SCOPE in self.scopes and not (self.scopes & BODY_SCOPES)


@dataclass(frozen=True)
class SignCall:
    """One IAM Credentials call: which account signed, which RPC, and the caller's token."""

    service_account: str
    rpc: str  # "signJwt" | "signBlob"
    caller_token: str


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def new_key_info(*, email: str, project_id: str, client_id: str, token_uri: str) -> dict[str, str]:
    """A fresh RSA key, written as Google's JSON key file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
        "universe_domain": "googleapis.com",
    }


def verifier_from_info(info: Mapping[str, Any]) -> crypt.RSAVerifier:
    key = serialization.load_pem_private_key(info["private_key"].encode("ascii"), password=None)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return crypt.RSAVerifier.from_string(public_pem)


class OAuthAuthority:
    """Service accounts, DWD grants and issued access tokens. Not locked: the sandbox's lock is."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.accounts: dict[str, ServiceAccount] = {}  # by email
        self.grants: dict[str, set[str]] = {}  # client id -> full scope URLs
        self.tokens: dict[str, AccessToken] = {}
        self.sign_calls: list[SignCall] = []

    def register(self, info: Mapping[str, Any], *, with_signer: bool = False) -> ServiceAccount:
        email = str(info["client_email"])
        account = self.accounts.get(email)
        if account is None:
            account = ServiceAccount(email=email, client_id=str(info["client_id"]))
            self.accounts[email] = account
        kid = str(info["private_key_id"])
        account.public_keys[kid] = verifier_from_info(info)
        if with_signer:
            account.signer = crypt.RSASigner.from_string(info["private_key"], key_id=kid)
        return account

    def grant(self, client_id: str, scopes: Iterable[str]) -> None:
        self.grants.setdefault(client_id, set()).update(full_scope(s) for s in scopes)

    def revoke(self, client_id: str, scopes: Iterable[str] | None = None) -> None:
        if scopes is None:
            self.grants.pop(client_id, None)
        else:
            self.grants.get(client_id, set()).difference_update(full_scope(s) for s in scopes)

    def exchange(
        self,
        form: Mapping[str, str],
        *,
        token_uris: Iterable[str],
        known_subject: Callable[[str], str | None],
    ) -> dict[str, Any]:
        """The token endpoint: a JWT-bearer assertion -> an access token, or a TokenError."""
        if form.get("grant_type") != JWT_BEARER:
            raise TokenError(400, "unsupported_grant_type", "Invalid grant_type: ")
        assertion = form.get("assertion", "")
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(claims_b64))
            signature = _b64decode(signature_b64)
        except (ValueError, TypeError):
            raise invalid_grant("Invalid JWT: Token must be a short-lived token.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise invalid_grant("Invalid JWT: Token must be a short-lived token.")
        account = self.accounts.get(str(claims.get("iss", "")))
        if account is None:
            raise TokenError(401, "invalid_client", "The OAuth client was not found.")
        # By ``kid`` when it names a key; without one (IAM signBlob signers set none) Google
        # tries each of the account's keys.
        kid = str(header.get("kid") or "")
        verifiers = ([account.public_keys[kid]] if kid in account.public_keys else []) or (
            [] if kid else list(account.public_keys.values())
        )
        signed = f"{header_b64}.{claims_b64}".encode("ascii")
        if not any(verifier.verify(signed, signature) for verifier in verifiers):
            raise invalid_grant("Invalid JWT Signature.")
        if claims.get("aud") not in set(token_uris):
            raise invalid_grant("Invalid JWT: Failed audience check.")
        # The assertion was minted by google-auth on the real clock; the sandbox clock (which
        # tests may move by hours) governs only the access tokens issued here.
        now = time.time()
        try:
            iat, exp = float(claims["iat"]), float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise invalid_grant("Invalid JWT: iat and exp are required.") from None
        if (
            exp <= now - CLOCK_SKEW_S
            or iat > now + CLOCK_SKEW_S
            or exp - iat > MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S
        ):
            raise invalid_grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim."
            )
        subject: str | None = None
        if claims.get("sub"):
            subject = known_subject(str(claims["sub"]))
            if subject is None:
                raise invalid_grant("Invalid email or User ID")
        requested = {full_scope(s) for s in str(claims.get("scope", "")).split() if s}
        if not requested:
            raise TokenError(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        if subject is not None and not requested <= self.grants.get(account.client_id, set()):
            raise UNAUTHORIZED_CLIENT
        token = AccessToken(
            token="ya29.sandbox-" + secrets.token_urlsafe(32),
            subject=subject,
            scopes=frozenset(requested),
            expires_at=self._clock() + ACCESS_TOKEN_LIFETIME_S,
            client_email=account.email,
        )
        self.tokens[token.token] = token
        return {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
        }

    def lookup(self, authorization: str | None) -> AccessToken | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = self.tokens.get(authorization[7:].strip())
        if token is None or token.expires_at <= self._clock():
            return None
        return token

    def sign(self, email: str, rpc: str, body: Mapping[str, Any], caller: str) -> dict[str, str]:
        """IAM Credentials ``signJwt`` / ``signBlob`` with an account's own key."""
        account = self.accounts.get(email)
        if account is None or account.signer is None:
            raise TokenError(404, "not_found", f"Not found; Gaia id not found for email {email}")
        signer = account.signer
        payload = body.get("payload")
        if not isinstance(payload, str):
            raise TokenError(400, "invalid_argument", "payload is required")
        self.sign_calls.append(SignCall(service_account=email, rpc=rpc, caller_token=caller))
        if rpc == "signBlob":
            try:
                blob = base64.b64decode(payload)
            except ValueError:
                raise TokenError(400, "invalid_argument", "payload is not base64") from None
            signature = signer.sign(blob)
            return {"keyId": str(signer.key_id), "signedBlob": base64.b64encode(signature).decode()}
        try:
            claims = json.loads(payload)
        except ValueError:
            raise TokenError(400, "invalid_argument", "payload is not a JSON object") from None
        if not isinstance(claims, dict):
            raise TokenError(400, "invalid_argument", "payload is not a JSON object")
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp > self._clock() + 12 * 3600:
            raise TokenError(400, "invalid_argument", "exp must be at most 12 hours away")
        header = {"alg": "RS256", "typ": "JWT", "kid": signer.key_id}
        signing_input = (
            _b64encode(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = signer.sign(signing_input.encode("ascii"))
        return {
            "keyId": str(signer.key_id),
            "signedJwt": signing_input + "." + _b64encode(signature),
        }
