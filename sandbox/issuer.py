"""A local stand-in for Google's ID-token issuer: one RSA key, its certificate, and signed tokens.

Why it exists: the service verifies every caller's Google ID token against a certs URL taken from
settings (ARCHITECTURE.md, "TokenVerifier"). Locally and in tests that URL points here, so the very
same verifier code path (``google.oauth2.id_token.verify_token``, a real HTTP fetch of the certs,
the cache) runs as in production; only the key and the issuer string differ. There is no
"skip auth" switch anywhere, so tests and the demo need a real issuer to mint real tokens.

The certs are served in Google's v1 format, ``{kid: PEM certificate}``, exactly like
``https://www.googleapis.com/oauth2/v1/certs`` (with a ``Cache-Control: public, max-age=...``
header, which the verifier's HTTP cache honours).

Mounting: :class:`CertsApp` is a plain WSGI callable with no Flask or werkzeug dependency, so a
larger sandbox server (the Gmail simulator) can dispatch ``CertsApp.path`` to it from its own
server. :func:`serve_issuer` runs it alone on a loopback port for tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from sandbox.loopback import SHUTDOWN_POLL_S

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

DEFAULT_ISSUER = "https://sandbox-issuer.local"
CERTS_PATH = "/oauth2/v1/certs"
# Google's certs endpoint answers with a max-age of several hours; an hour keeps the demo honest
# (the verifier must cache) without making a rotated sandbox key wait long.
DEFAULT_CERTS_MAX_AGE = 3600


def _numeric_subject(email: str) -> str:
    """A stable, numeric-looking ``sub``, like Google's 21-digit account ids."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
    return str(int(digest[:16], 16)).rjust(21, "1")


def _epoch(value: datetime | float | None) -> int:
    if value is None:
        return int(time.time())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        return int(value.timestamp())
    return int(value)


class SandboxIssuer:
    """An ID-token issuer with one in-memory RSA key and a self-signed certificate for it.

    Two issuers never share a key, so a token minted by one and checked against the other's certs
    is a forgery; passing the same ``kid`` to a second issuer makes a forgery that even names a
    key the verifier knows (the signature check, not the key lookup, must refuse it).
    """

    def __init__(
        self, issuer: str = DEFAULT_ISSUER, *, kid: str | None = None, key_size: int = 2048
    ) -> None:
        self.issuer = issuer
        self.kid = kid or secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self._certificate_pem = (
            self._self_signed_certificate().public_bytes(serialization.Encoding.PEM).decode("ascii")
        )
        private_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = crypt.RSASigner.from_string(private_pem, key_id=self.kid)

    def _self_signed_certificate(self) -> x509.Certificate:
        # Google's certs are short-lived self-signed certificates; verifiers only use the public
        # key inside, but the v1 format carries certificates, so that is what we serve.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.kid)])
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=14))
            .sign(self._key, hashes.SHA256())
        )

    def certs_json(self) -> dict[str, str]:
        """The body of the certs endpoint in Google's v1 format: ``{kid: PEM certificate}``."""
        return {self.kid: self._certificate_pem}

    def mint(
        self,
        email: str,
        audience: str,
        *,
        email_verified: bool = True,
        expires_in: int = 3600,
        issued_at: datetime | float | None = None,
        hosted_domain: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed RS256 ID token with the claims Google puts in one.

        ``aud, azp, email, email_verified, exp, iat, iss, sub``. ``azp`` is the audience when the
        audience is an OAuth client id (a person signing in to the console) and the caller's
        ``sub`` otherwise (a service account's OIDC token, as Pub/Sub and Scheduler send).
        ``hosted_domain`` adds ``hd``, which Google sets for a Workspace account (never for a
        personal Google account or a service account).
        ``extra_claims`` overrides or adds claims; a claim mapped to ``None`` is removed, which
        is how tests build tokens that lack a claim.
        """
        iat = _epoch(issued_at)
        sub = _numeric_subject(email)
        is_url = audience.startswith(("https://", "http://"))
        claims: dict[str, Any] = {
            "aud": audience,
            "azp": sub if is_url else audience,
            "email": email,
            "email_verified": email_verified,
            "exp": iat + expires_in,
            "iat": iat,
            "iss": self.issuer,
            "sub": sub,
        }
        if hosted_domain is not None:
            claims["hd"] = hosted_domain
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(self._signer, claims, key_id=self.kid).decode("ascii")


class CertsApp:
    """WSGI callable serving ``GET /oauth2/v1/certs`` for one issuer; anything else is a 404.

    Free of Flask and werkzeug so any sandbox server can mount it: route requests whose
    ``PATH_INFO`` equals :attr:`path` here. :attr:`requests_served` counts answered certs
    requests, which lets tests prove the verifier caches them.
    """

    path = CERTS_PATH

    def __init__(self, issuer: SandboxIssuer, *, max_age: int = DEFAULT_CERTS_MAX_AGE) -> None:
        self.issuer = issuer
        self.max_age = max_age
        self._lock = threading.Lock()
        self._served = 0

    @property
    def requests_served(self) -> int:
        with self._lock:
            return self._served

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if environ.get("PATH_INFO", "") != self.path:
            return _json(start_response, "404 Not Found", {"error": "not_found"})
        if method not in {"GET", "HEAD"}:
            return _json(
                start_response,
                "405 Method Not Allowed",
                {"error": "method_not_allowed"},
                [("Allow", "GET, HEAD")],
            )
        with self._lock:
            self._served += 1
        body = json.dumps(self.issuer.certs_json(), indent=2).encode("utf-8")
        headers = [
            # Like Google's: the Date lets an HTTP cache compute the age, max-age its lifetime.
            ("Cache-Control", f"public, max-age={self.max_age}, must-revalidate, no-transform"),
            ("Date", formatdate(usegmt=True)),
        ]
        return _json(start_response, "200 OK", body, headers, head=method == "HEAD")


def _json(
    start_response: StartResponse,
    status: str,
    body: Mapping[str, Any] | bytes,
    headers: list[tuple[str, str]] | None = None,
    *,
    head: bool = False,
) -> list[bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "application/json; charset=UTF-8"),
            ("Content-Length", str(len(data))),
            *(headers or []),
        ],
    )
    return [] if head else [data]


@dataclass(frozen=True)
class RunningIssuer:
    """A sandbox issuer being served: what tests put in ``CRM_TOKEN_CERTS_URL`` and mint with."""

    issuer: SandboxIssuer
    app: CertsApp
    base_url: str

    @property
    def certs_url(self) -> str:
        return self.base_url + CertsApp.path

    def mint(self, email: str, audience: str, **options: Any) -> str:
        """Shorthand for ``issuer.mint``."""
        return self.issuer.mint(email, audience, **options)


@contextlib.contextmanager
def serve_issuer(
    issuer: SandboxIssuer | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_age: int = DEFAULT_CERTS_MAX_AGE,
) -> Iterator[RunningIssuer]:
    """Serve an issuer's certs on a loopback port (0: the OS picks) in a background thread.

    The server is shut down and its socket closed when the block exits, so tests leave no
    listening port or thread behind.
    """
    from werkzeug.serving import make_server

    issuer = issuer or SandboxIssuer()
    app = CertsApp(issuer, max_age=max_age)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_S},
        name=f"sandbox-issuer:{server.port}",
        daemon=True,
    )
    thread.start()
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield RunningIssuer(issuer=issuer, app=app, base_url=f"http://{url_host}:{server.port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
