"""The one TokenVerifier: a Google ID token in, a verified and resolved :class:`Caller` out.

Every HTTP entry point is reached with its invoker IAM check disabled, so this code is the only
gate (ARCHITECTURE.md, "TokenVerifier"). Hence:

* The signature is checked by google-auth with the keys of the token's trust anchor only (see
  "Trust anchors" below: Google's certs URL, the sandbox issuer's, or the one machine's own key);
  then issuer, audience, expiry and ``email_verified`` are checked here explicitly, so what we
  accept does not depend on a library default.
* The audience says who the caller claims to be: the console's OAuth client id for people, the
  called function's URL for services (Scheduler, Pub/Sub push, the drafting agent). A service
  account's token made out to the people audience, or a person's token made out to a function
  URL, is refused: one audience, one kind of caller.
* A person's token must carry a hosted-domain claim (``hd``, which Google sets for Workspace
  accounts only) naming one of the fund's own domains (``shared.domain.tenancy``): a personal
  Google account, or one of another organisation, is refused (403) even if a user exists at its
  address.
* 401 (:class:`UnauthenticatedError`) when the token itself is wrong; 403
  (:class:`ForbiddenError`) when it is genuine but its holder may not call. The token never
  appears in a message, a log line or a chained exception.
* There is no switch that skips any of this.

Trust anchors (docs/security.md). The verifier holds a list of :class:`TrustAnchor`: an issuer,
its keys (a certs URL, or the one-machine runtime's own public key) and the kinds of caller it may
vouch for. A token's anchor is chosen by its exact ``iss`` and its signature is checked with that
anchor's keys only, so a locally signed token can never pass as Google's, whatever its ``kid``.
Then the kind the token claims (a person by the people audience; a service by its identity) must
be one its anchor may vouch for: the local key never vouches for a person, Google never for the
one machine's own ticker and queue, and the sandbox's issuer is an anchor in sandbox mode only.

Cold start: importing this module imports neither ``requests`` nor ``google.oauth2``; the HTTP
session (with its certs cache) is built on the first verification and reused after that.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeGuard, cast
from urllib.parse import urlsplit

from shared.domain.models import Caller, ServiceRole, User
from shared.domain.tenancy import TeamDomains
from shared.errors import (
    ConfigurationError,
    ForbiddenError,
    RetryableError,
    UnauthenticatedError,
)

if TYPE_CHECKING:
    from google.auth import transport

    from shared.adapters.local_identity import LocalKey
    from shared.config import Settings

UserLookup = Callable[[str], User | None]

# Google signs ID tokens with RS256 only. Refusing every other ``alg`` up front closes the door on
# algorithm-confusion tricks whatever the library would accept.
ACCEPTED_ALGORITHMS = frozenset({"RS256"})
# Google's ID tokens are about 1 KiB; anything this large is not one, and is refused before any
# decoding or certs fetch.
MAX_TOKEN_LENGTH = 16 * 1024
CERTS_FETCH_TIMEOUT_SECONDS = 10.0
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
LOCAL_ISSUER_PREFIX = "crm-local:"
# On one machine the ticker and the queue need identities even when no service account exists;
# these are theirs unless CRM_SCHEDULER_IDENTITY / CRM_PUSH_IDENTITY name others. ``.invalid``
# (RFC 2606) can never be a real mailbox or Google account.
LOCAL_TICKER_IDENTITY = "ticker@crm-local.invalid"
LOCAL_QUEUE_IDENTITY = "queue@crm-local.invalid"


class CallerKind(StrEnum):
    """What a token claims its holder to be; each anchor vouches for some kinds only."""

    PERSON = "person"
    DRAFTING_AGENT = "drafting_agent"
    # Cloud Scheduler's and Pub/Sub push's service accounts (the cloud only).
    SCHEDULER = "scheduler"
    PUBSUB_PUSH = "pubsub_push"
    # The one-machine runtime's own ticker and queue (sandbox and real modes).
    LOCAL_SERVICE = "local_service"


@dataclass(frozen=True)
class TrustAnchor:
    """One source of trust: the issuer string(s) it signs as, where its keys are, and which kinds
    of caller it may vouch for.

    Exactly one of ``certs_url`` (Google's v1 ``{kid: PEM}`` or a JWKS) and ``public_key_pem``
    (the local runtime's key, with its ``kid``) is set. Google signs under two issuer strings
    (with and without ``https://``), hence a set.
    """

    name: str
    issuers: frozenset[str]
    kinds: frozenset[CallerKind]
    certs_url: str = ""
    public_key_pem: str = ""
    kid: str = ""

    def __post_init__(self) -> None:
        if bool(self.certs_url) == bool(self.public_key_pem):
            raise ConfigurationError(f"trust anchor {self.name}: a certs URL or a key, not both")
        if self.certs_url:
            _check_certs_url(self.certs_url)
        if not self.issuers:
            raise ConfigurationError(f"trust anchor {self.name}: no issuer")


@dataclass(frozen=True)
class ServiceIdentity:
    """A service caller this deployment knows: the kind it claims and the role it gets."""

    kind: CallerKind
    role: ServiceRole


def anchors_for_settings(
    settings: Settings, local_key: LocalKey | None = None
) -> tuple[TrustAnchor, ...]:
    """The anchors of this mode (docs/security.md has the table).

    ``cloud``: the configured issuer (Google's; ``CRM_TOKEN_CERTS_URL``/``CRM_TOKEN_ISSUERS``) for
    every kind but the local one, exactly as before modes existed. ``real``: Google for people and
    drafting agents, the local key for the local services; the configured issuers must be
    Google's, so no sandbox issuer can be trusted by mistake. ``sandbox``: the configured issuer
    is the sandbox's (and may not claim a Google issuer string) for people and drafting agents,
    the local key for the local services.
    """
    configured = frozenset(settings.token_issuers)
    if not configured:
        raise ConfigurationError("CRM_TOKEN_ISSUERS is empty: no token could ever be accepted")
    if any(issuer.startswith(LOCAL_ISSUER_PREFIX) for issuer in configured):
        raise ConfigurationError(
            f"CRM_TOKEN_ISSUERS: {LOCAL_ISSUER_PREFIX}* is the local key's issuer, not configurable"
        )
    if settings.mode == "cloud":
        return (
            TrustAnchor(
                name="google",
                issuers=configured,
                kinds=frozenset(
                    {
                        CallerKind.PERSON,
                        CallerKind.DRAFTING_AGENT,
                        CallerKind.SCHEDULER,
                        CallerKind.PUBSUB_PUSH,
                    }
                ),
                certs_url=settings.token_certs_url,
            ),
        )
    if local_key is None:
        raise ConfigurationError(f"CRM_MODE={settings.mode} needs the local runtime's key")
    if settings.mode == "real":
        if not configured <= GOOGLE_ISSUERS:
            raise ConfigurationError(
                "CRM_MODE=real trusts Google's issuers only: set CRM_TOKEN_ISSUERS to "
                + ",".join(sorted(GOOGLE_ISSUERS))
                + " (or leave it unset)"
            )
        people = TrustAnchor(
            name="google",
            issuers=configured,
            kinds=frozenset({CallerKind.PERSON, CallerKind.DRAFTING_AGENT}),
            certs_url=settings.token_certs_url,
        )
    else:
        if configured & GOOGLE_ISSUERS:
            raise ConfigurationError(
                "CRM_MODE=sandbox: CRM_TOKEN_ISSUERS must name the sandbox issuer, not Google's"
            )
        people = TrustAnchor(
            name="sandbox",
            issuers=configured,
            kinds=frozenset({CallerKind.PERSON, CallerKind.DRAFTING_AGENT}),
            certs_url=settings.token_certs_url,
        )
    local = TrustAnchor(
        name="local",
        issuers=frozenset({local_key.issuer}),
        kinds=frozenset({CallerKind.LOCAL_SERVICE}),
        public_key_pem=local_key.public_pem(),
        kid=local_key.kid,
    )
    return (people, local)


def local_service_identity(settings: Settings, role: ServiceRole) -> str:
    """The identity the one-machine ticker (``SCHEDULER``) or queue (``PUBSUB_PUSH``) signs as."""
    if role is ServiceRole.SCHEDULER:
        return settings.scheduler_identity or LOCAL_TICKER_IDENTITY
    if role is ServiceRole.PUBSUB_PUSH:
        return settings.push_identity or LOCAL_QUEUE_IDENTITY
    raise ValueError(f"no local service plays {role}")


class GoogleTokenVerifier:
    """Verifies Google ID tokens and resolves them to callers (implements ``ports.TokenVerifier``).

    Build one per process (``shared.wiring`` caches it): it holds the HTTP session whose cache
    keeps the issuer's certs for as long as their ``Cache-Control: max-age`` allows, so a warm
    instance verifies without a network round trip.
    """

    def __init__(
        self,
        settings: Settings,
        lookup_user: UserLookup,
        *,
        team_domains: Callable[[], TeamDomains],
        certs_timeout: float = CERTS_FETCH_TIMEOUT_SECONDS,
        local_key: LocalKey | None = None,
        anchors: Iterable[TrustAnchor] | None = None,
    ) -> None:
        _check_certs_url(settings.token_certs_url)
        self._anchors = tuple(
            anchors if anchors is not None else anchors_for_settings(settings, local_key)
        )
        self._anchor_of: dict[str, TrustAnchor] = {}
        for anchor in self._anchors:
            for issuer in anchor.issuers:
                if issuer in self._anchor_of:
                    raise ConfigurationError(f"two trust anchors claim the issuer {issuer!r}")
                self._anchor_of[issuer] = anchor
        self._settings = settings
        self._lookup_user = lookup_user
        self._team_domains = team_domains
        self._certs_timeout = certs_timeout
        self._services = _service_identities(settings)
        self._lock = threading.Lock()
        self._request: transport.Request | None = None

    def verify(self, token: str | None, *, audience_for: str) -> Caller:
        """The caller behind ``token``, presented to the function named ``audience_for``.

        Raises UnauthenticatedError (401) for a missing, malformed, forged, expired, wrongly
        addressed or wrongly issued token, ForbiddenError (403) for a genuine token whose holder
        may not call (unverified e-mail, hosted domain not the fund's, unknown or inactive user,
        unknown service identity), and
        RetryableError (503) when the certs cannot be fetched (not the caller's fault).
        """
        if not token:
            raise UnauthenticatedError("missing bearer token")
        header, unverified = _peek(token)
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise UnauthenticatedError("token signing algorithm not accepted")
        # The anchor is chosen by the exact, still unverified ``iss``; the signature is then
        # checked with that anchor's keys alone, and ``check_claims`` re-reads the verified
        # ``iss``, so a token cannot name one anchor and be signed by another's key.
        issuer = unverified.get("iss")
        anchor = self._anchor_of.get(issuer) if isinstance(issuer, str) else None
        if anchor is None:
            raise UnauthenticatedError("token issuer not accepted")
        claims = self._verify_signature(token, unverified, anchor)
        service_audience = self._settings.function_url(audience_for)
        people_audience = self._settings.people_audience
        email = check_claims(
            claims,
            issuers=anchor.issuers,
            audiences=(service_audience, people_audience),
            now=time.time(),
            clock_skew_seconds=self._settings.clock_skew_seconds,
        )
        if claims["aud"] == service_audience:
            return self._service_caller(email, anchor)
        return self._person_caller(email, claims.get("hd"), anchor)

    # -- steps -------------------------------------------------------------------------------

    def _verify_signature(
        self, token: str, unverified: Mapping[str, Any], anchor: TrustAnchor
    ) -> Mapping[str, Any]:
        """Signature, key id, ``iat`` and ``exp`` by google-auth, with ``anchor``'s keys only;
        failures become 401 or 503.

        Exceptions are re-raised ``from None``: google-auth's messages quote the token, and a
        chained exception would carry it into any logged traceback.
        """
        from google.auth import exceptions as google_exceptions
        from google.auth import jwt
        from google.oauth2 import id_token

        try:
            if anchor.public_key_pem:
                claims = jwt.decode(
                    token,
                    certs={anchor.kid: anchor.public_key_pem},
                    audience=None,  # checked explicitly, as below
                    clock_skew_in_seconds=self._settings.clock_skew_seconds,
                )
            else:
                claims = id_token.verify_token(
                    token,
                    self._transport(),
                    audience=None,  # checked explicitly, against the audience of this call
                    certs_url=anchor.certs_url,
                    clock_skew_in_seconds=self._settings.clock_skew_seconds,
                )
        except google_exceptions.TransportError:
            raise RetryableError("token certificates are unavailable; try again") from None
        except (ValueError, TypeError, KeyError, google_exceptions.GoogleAuthError):
            reason = _failure_reason(unverified, self._settings.clock_skew_seconds)
            raise UnauthenticatedError(reason) from None
        return claims

    def _service_caller(self, email: str, anchor: TrustAnchor) -> Caller:
        identity = self._services.get(email)
        if identity is None:
            raise ForbiddenError("caller is not a service identity of this deployment")
        _check_vouches(anchor, identity.kind)
        return Caller(email=email, role=identity.role)

    def _person_caller(self, email: str, hosted_domain: object, anchor: TrustAnchor) -> Caller:
        _check_vouches(anchor, CallerKind.PERSON)
        if email in self._services:
            # A service account holding a token for the console's audience is not a person.
            raise ForbiddenError("service identities must address the function's URL")
        if not self._team_domains().admits_hosted_domain(hosted_domain):
            raise ForbiddenError("token's hosted domain (hd) is not one of the fund's domains")
        user = self._lookup_user(email)
        if user is None:
            raise ForbiddenError("unknown user")
        if not user.is_active:
            raise ForbiddenError("user is inactive")
        return Caller(email=user.email, role=user.role, user_id=user.id)

    def _transport(self) -> transport.Request:
        """The HTTP transport with a certs cache, built once (on first use, for cold start)."""
        with self._lock:
            if self._request is None:
                self._request = _cached_transport(self._certs_timeout)
            return self._request


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuers: Collection[str],
    audiences: Collection[str],
    now: float,
    clock_skew_seconds: int,
) -> str:
    """Explicit checks of verified claims; returns the caller's e-mail, lower-cased.

    A pure function so that each rule is tested on its own. Issuer, audience and expiry failures
    are 401 (the token is not for us, or no longer valid); a missing or unverified e-mail is 403
    (the token is genuine, but does not identify anyone we may admit).
    """
    if claims.get("iss") not in issuers:
        raise UnauthenticatedError("token issuer not accepted")
    audience = claims.get("aud")
    # Google issues one audience per ID token, as a string; an empty configured audience (people
    # audience not set) must never match anything.
    if not isinstance(audience, str) or not audience or audience not in audiences:
        raise UnauthenticatedError("token audience not accepted")
    expiry = claims.get("exp")
    if not _is_number(expiry):
        raise UnauthenticatedError("token has no expiry")
    if float(expiry) + clock_skew_seconds <= now:
        raise UnauthenticatedError("token expired")
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise ForbiddenError("token carries no e-mail address")
    if not _is_true(claims.get("email_verified")):
        raise ForbiddenError("token e-mail address is not verified")
    return email.strip().lower()


# -- helpers ---------------------------------------------------------------------------------


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a token, unverified: used only to refuse garbage early and to say why
    a verification failed. Nothing read here is trusted."""
    if len(token) > MAX_TOKEN_LENGTH or not _JWT_SHAPE.fullmatch(token):
        raise UnauthenticatedError("malformed token")
    encoded_header, encoded_claims, _ = token.split(".")
    try:
        header = json.loads(_b64decode(encoded_header))
        claims = json.loads(_b64decode(encoded_claims))
    except (ValueError, binascii.Error):
        raise UnauthenticatedError("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise UnauthenticatedError("malformed token")
    return header, claims


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _failure_reason(unverified: Mapping[str, Any], clock_skew_seconds: int) -> str:
    """Why google-auth refused a token, from its own (unverified) claims: safe to show."""
    now = time.time()
    expiry, issued = unverified.get("exp"), unverified.get("iat")
    if not _is_number(expiry):
        return "token has no expiry"
    if not _is_number(issued):
        return "token has no issue time"
    if float(expiry) + clock_skew_seconds < now:
        return "token expired"
    if float(issued) - clock_skew_seconds > now:
        return "token used before its issue time"
    return "token signature could not be verified"


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_true(value: object) -> bool:
    # Google's ID tokens carry a JSON boolean; some older Google token formats carried the string
    # "true". Both say the same thing, and both are signed.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _check_certs_url(url: str) -> None:
    """Certs define whose signatures we trust: fetch them over TLS, or from this machine only."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise ConfigurationError(
        "CRM_TOKEN_CERTS_URL must be an https URL (or http on a loopback address for the sandbox)"
    )


def _check_vouches(anchor: TrustAnchor, kind: CallerKind) -> None:
    """A genuine token from an anchor that may not vouch for this kind proves nothing: 401."""
    if kind not in anchor.kinds:
        raise UnauthenticatedError(f"token issuer may not vouch for a {kind.value} caller")


def _service_identities(settings: Settings) -> dict[str, ServiceIdentity]:
    """Service identity e-mail -> the kind it claims and its role. One identity, one role: a
    shared service account would make e.g. every scheduler job a valid Pub/Sub push, so that
    configuration is refused. On one machine the scheduler and push identities are the local
    ticker's and queue's (kind ``local_service``), on the cloud Google's service accounts."""
    local = settings.mode != "cloud"
    scheduler = (
        local_service_identity(settings, ServiceRole.SCHEDULER)
        if local
        else (settings.scheduler_identity)
    )
    push = (
        local_service_identity(settings, ServiceRole.PUBSUB_PUSH)
        if local
        else (settings.push_identity)
    )
    pairs = [
        (
            "CRM_SCHEDULER_IDENTITY",
            scheduler,
            CallerKind.LOCAL_SERVICE if local else CallerKind.SCHEDULER,
            ServiceRole.SCHEDULER,
        ),
        (
            "CRM_PUSH_IDENTITY",
            push,
            CallerKind.LOCAL_SERVICE if local else CallerKind.PUBSUB_PUSH,
            ServiceRole.PUBSUB_PUSH,
        ),
        *(
            (
                "CRM_DRAFTING_AGENT_IDENTITIES",
                identity,
                CallerKind.DRAFTING_AGENT,
                ServiceRole.DRAFTING_AGENT,
            )
            for identity in settings.drafting_agent_identities
        ),
    ]
    identities: dict[str, ServiceIdentity] = {}
    for variable, identity, kind, role in pairs:
        email = identity.strip().lower()
        if not email:
            continue
        known = identities.get(email)
        if known is not None and known.role is not role:
            raise ConfigurationError(
                f"{variable}: one service identity may hold one role only ({email})"
            )
        identities[email] = ServiceIdentity(kind=kind, role=role)
    return identities


class _TimedRequest:
    """google-auth's requests transport with a bounded timeout (its default is 120 s)."""

    def __init__(self, inner: Callable[..., Any], timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return self._inner(
            url,
            method=method,
            body=body,
            headers=headers,
            timeout=timeout if timeout is not None else self._timeout,
            **kwargs,
        )


def _cached_transport(timeout: float) -> transport.Request:
    """A google-auth transport over a CacheControl session: certs are fetched once per max-age."""
    import cachecontrol
    import requests
    from google.auth.transport.requests import Request

    session = cachecontrol.CacheControl(requests.Session())
    return cast("transport.Request", _TimedRequest(Request(session=session), timeout))
