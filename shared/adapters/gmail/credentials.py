"""Domain-wide delegation credentials for one mailbox, through google-auth.

Two ways to mint a token that acts as a Workspace user (FACTS.md, "Domain-wide delegation"):

* **key**: a service-account JSON key (``from_service_account_info(info, scopes=...)
  .with_subject(mailbox)``); the assertion is signed locally and exchanged at ``token_uri``.
* **keyless** (Cloud Functions: no key file exists): the runtime's own credentials (ADC) ask IAM
  Credentials to sign the assertion for the delegating service account. ``sign_blob`` (option B,
  the default) is ``service_account.Credentials(signer=iam.Signer(...), subject=mailbox)``;
  ``sign_jwt`` (option A) is ``impersonated_credentials.Credentials(..., subject=mailbox)``.
  Both need ``roles/iam.serviceAccountTokenCreator`` on the service account.

Scopes are always explicit: credentials without scopes would be given every Gmail scope by
``googleapiclient.discovery.build`` and the grant would then be refused.

Whatever the path, the result is wrapped in :class:`DelegatedCredentials`, which

* refreshes once at a time across threads (one token fetch, not one per thread);
* turns google-auth's refresh failures into the service's errors: a grant that lacks a scope
  (``unauthorized_client``) or an unknown user (``invalid_grant``) becomes
  :class:`ConfigurationError` naming the mailbox and scopes; a transient failure becomes
  :class:`RetryableError`. Messages never carry a token, an assertion or a key;
* can pin the transport used for refreshing. google-auth hard-codes the IAM Credentials host and
  ``https://oauth2.googleapis.com/token`` on the keyless path, so tests and the local sandbox pass a
  :class:`RedirectingRequest` that sends those hosts to the sandbox. Production passes none.

Only ``google.auth.credentials`` (the base class) is imported with the module; the key, IAM and
transport code is imported on first use. ``gmail.api`` imports this module lazily.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import google.auth.credentials
import google.auth.transport

from shared import events
from shared.errors import AppError, ConfigurationError, RetryableError

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials
    from google.auth.transport import Request as TransportRequest
    from google.auth.transport import Response as TransportResponse

SCOPE_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SCOPE_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
# What the runtime's own credentials need to call IAM Credentials signBlob/signJwt.
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

KeylessMethod = Literal["sign_blob", "sign_jwt"]

logger = logging.getLogger(__name__)

_ACCEPTED_SCOPE_PREFIXES = ("https://www.googleapis.com/auth/", "https://mail.google.com/")
# OAuth error codes meaning "the grant itself is wrong": retrying cannot help.
_GRANT_ERRORS = frozenset(
    {"unauthorized_client", "invalid_grant", "access_denied", "invalid_scope", "invalid_client"}
)


def delegated_credentials(
    mailbox: str,
    scopes: Sequence[str],
    *,
    key_info: Mapping[str, Any] | None = None,
    service_account_email: str | None = None,
    source_credentials: GoogleCredentials | None = None,
    token_uri: str | None = None,
    transport: TransportRequest | None = None,
    keyless_method: KeylessMethod = "sign_blob",
) -> DelegatedCredentials:
    """Credentials acting as ``mailbox`` with exactly ``scopes``.

    With ``key_info`` (the service account's JSON key as a mapping) the key signs the assertion.
    Without it, the keyless path: ``service_account_email`` names the delegating service account
    and ``source_credentials`` (default: Application Default Credentials) call IAM to sign.
    ``token_uri`` overrides the key's ``token_uri`` (keyless default: Google's token endpoint).
    ``transport`` (a ``google.auth.transport.Request``) is used for every refresh and IAM call;
    ``None`` means the caller's transport for refreshes and a ``requests`` transport for IAM.

    Nothing is fetched here; the first request (or :meth:`DelegatedCredentials.refresh`) does.
    Raises ConfigurationError when the inputs cannot make credentials (no scopes, no key and no
    service account, a key missing fields).
    """
    mailbox = _check_mailbox(mailbox)
    scope_list = _check_scopes(scopes)
    if key_info is not None:
        inner = _from_key(mailbox, scope_list, key_info, token_uri)
        client_id = str(key_info.get("client_id") or "") or None
        signer_email = str(key_info.get("client_email") or "")
        method = "key"
    else:
        if not service_account_email:
            raise ConfigurationError(
                "Gmail delegation needs a service-account key or the service account's e-mail "
                "(keyless signing through IAM); neither was given",
                mailbox=mailbox,
            )
        inner = _keyless(
            mailbox,
            scope_list,
            service_account_email=service_account_email,
            source_credentials=source_credentials,
            token_uri=token_uri or GOOGLE_TOKEN_URI,
            transport=transport,
            method=keyless_method,
        )
        client_id = None
        signer_email = service_account_email
        method = keyless_method
    return DelegatedCredentials(
        inner,
        mailbox=mailbox,
        scopes=scope_list,
        transport=transport,
        service_account_email=signer_email,
        client_id=client_id,
        method=method,
    )


def parse_key_secret(text: str, *, secret: str) -> dict[str, Any]:
    """The service-account key held in the secret named ``secret``, as a mapping.

    ConfigurationError naming the secret (never quoting it: what an operator pasted there by
    mistake is still key material) when it is not a JSON object; :func:`delegated_credentials`
    then checks its fields.
    """
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        raise ConfigurationError(
            f"The Gmail key secret {secret!r} is not a service-account key: its value is not the"
            " key file's JSON; store the JSON key file the console downloaded, as it is",
            secret=secret,
        )
    return info


def _check_mailbox(mailbox: str) -> str:
    mailbox = (mailbox or "").strip()
    if "@" not in mailbox or mailbox.startswith("@") or mailbox.endswith("@"):
        raise ConfigurationError(f"Not a mailbox address: {mailbox!r}")
    return mailbox


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    if isinstance(scopes, str):
        scopes = [scopes]
    scope_list = [scope.strip() for scope in scopes if scope and scope.strip()]
    if not scope_list:
        # Without scopes, discovery.build would request every Gmail scope (FACTS.md).
        raise ConfigurationError("Gmail delegation needs explicit scopes; none were given")
    for scope in scope_list:
        if not scope.startswith(_ACCEPTED_SCOPE_PREFIXES):
            raise ConfigurationError(f"Not a Google OAuth scope: {scope!r}")
    return list(dict.fromkeys(scope_list))


def _from_key(
    mailbox: str, scopes: list[str], key_info: Mapping[str, Any], token_uri: str | None
) -> GoogleCredentials:
    from google.oauth2 import service_account

    required = ("type", "client_email", "private_key", "token_uri")
    missing = [name for name in required if not key_info.get(name)]
    if missing:
        raise ConfigurationError(
            "The Gmail service-account key is incomplete: missing " + ", ".join(missing),
            mailbox=mailbox,
        )
    not_text = [name for name in required if not isinstance(key_info[name], str)]
    if not_text:
        raise ConfigurationError(
            "The Gmail service-account key is malformed: " + ", ".join(not_text) + " must be text",
            mailbox=mailbox,
        )
    if key_info.get("type") != "service_account":
        raise ConfigurationError(
            "The Gmail key is not a service-account key (its 'type' is not 'service_account')",
            mailbox=mailbox,
        )
    info = dict(key_info)
    if token_uri:
        info["token_uri"] = token_uri
    try:
        creds = service_account.Credentials.from_service_account_info(info, scopes=scopes)
    except Exception:  # ValueError mostly; a malformed key can break the parser in other ways
        # The library's message may quote parts of the key: say only what is wrong.
        raise ConfigurationError(
            "The Gmail service-account key could not be loaded (malformed private key?)",
            mailbox=mailbox,
            service_account=str(key_info.get("client_email")),
        ) from None
    return creds.with_subject(mailbox)


def _keyless(
    mailbox: str,
    scopes: list[str],
    *,
    service_account_email: str,
    source_credentials: GoogleCredentials | None,
    token_uri: str,
    transport: TransportRequest | None,
    method: KeylessMethod,
) -> GoogleCredentials:
    if source_credentials is None:
        source_credentials = _application_default_credentials()
    if method == "sign_jwt":
        from google.auth import impersonated_credentials

        # The JWT-bearer exchange of this path always goes to Google's token endpoint
        # (hard-coded in google-auth); ``token_uri`` does not apply.
        return impersonated_credentials.Credentials(
            source_credentials=source_credentials,
            target_principal=service_account_email,
            target_scopes=scopes,
            subject=mailbox,
        )
    if method != "sign_blob":
        raise ConfigurationError(f"Unknown keyless signing method: {method!r}")
    from google.auth import iam
    from google.oauth2 import service_account

    signer = iam.Signer(
        transport or _default_transport(), source_credentials, service_account_email
    )
    return service_account.Credentials(
        signer=signer,
        service_account_email=service_account_email,
        token_uri=token_uri,
        scopes=scopes,
        subject=mailbox,
    )


def _application_default_credentials() -> GoogleCredentials:
    import google.auth
    from google.auth import exceptions

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except exceptions.DefaultCredentialsError:
        raise ConfigurationError(
            "Keyless Gmail delegation needs Application Default Credentials (the function's "
            "runtime service account); none were found"
        ) from None
    return credentials


def _default_transport() -> TransportRequest:
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


class DelegatedCredentials(google.auth.credentials.Credentials):
    """google-auth credentials for one mailbox, wrapping the key or keyless credentials.

    Usable wherever google-auth credentials are (``googleapiclient.discovery.build``,
    ``google_auth_httplib2.AuthorizedHttp``). Refreshes are serialised across threads and their
    failures translated (see the module docstring).
    """

    def __init__(
        self,
        inner: GoogleCredentials,
        *,
        mailbox: str,
        scopes: Sequence[str],
        transport: TransportRequest | None = None,
        service_account_email: str = "",
        client_id: str | None = None,
        method: str = "key",
    ) -> None:
        super().__init__()
        self._inner = inner
        self._mailbox = mailbox
        self._scopes = tuple(scopes)
        self._transport = transport
        self._service_account_email = service_account_email
        self._client_id = client_id
        self._method = method
        self._refresh_lock = threading.Lock()

    @property
    def mailbox(self) -> str:
        return self._mailbox

    @property
    def scopes(self) -> tuple[str, ...]:
        return self._scopes

    @property
    def method(self) -> str:
        """``key``, ``sign_blob`` or ``sign_jwt``: how the assertion is signed."""
        return self._method

    @property
    def service_account_email(self) -> str:
        return self._service_account_email

    @property
    def inner(self) -> GoogleCredentials:
        """The google-auth credentials doing the work (tests look at them)."""
        return self._inner

    def refresh(self, request: TransportRequest) -> None:
        """Mint a token for the mailbox (once at a time across threads)."""
        seen = self.token
        with self._refresh_lock:
            if self.token is not None and self.token != seen and self.valid:
                return  # another thread refreshed while this one waited
            try:
                self._inner.refresh(self._transport or request)
            except Exception as exc:
                translated = translate_auth_error(
                    exc, self._mailbox, self._scopes, client_id=self._client_id
                )
                if translated is None:
                    raise
                raise translated from None
            self.token = self._inner.token
            self.expiry = self._inner.expiry

    def __repr__(self) -> str:
        return (
            f"DelegatedCredentials(mailbox={self._mailbox!r}, scopes={list(self._scopes)!r}, "
            f"method={self._method!r})"
        )


def translate_auth_error(
    exc: BaseException,
    mailbox: str,
    scopes: Sequence[str],
    *,
    client_id: str | None = None,
) -> AppError | None:
    """The service's error for a google-auth failure while minting ``mailbox``'s token.

    ``None`` when ``exc`` is not a google-auth error. Never quotes a token, assertion or key:
    only the OAuth error code, its description and Google's error status.
    """
    from google.auth import exceptions

    scope_text = ", ".join(scopes)
    details: dict[str, Any] = {"mailbox": mailbox, "scopes": list(scopes)}
    if isinstance(exc, exceptions.RefreshError):
        code, description = _oauth_error(exc)
        if code == "unauthorized_client":
            who = f"client {client_id}" if client_id else "the service account's client"
            # Logged where it is detected, under one stable name the deployment alerts on.
            logger.error(
                "gmail delegation refused",
                extra={
                    "fields": {"event": events.UNAUTHORIZED_CLIENT, "oauth_error": code, **details}
                },
            )
            return ConfigurationError(
                f"Gmail domain-wide delegation refused for {mailbox}: {who} is not authorized "
                f"for the scopes {scope_text} (unauthorized_client). A Workspace super admin must "
                "grant exactly these scopes under Admin console > Security > API controls > "
                "Domain-wide delegation.",
                oauth_error=code,
                **details,
            )
        if code == "invalid_grant":
            return ConfigurationError(
                f"Gmail domain-wide delegation refused for {mailbox}: invalid_grant"
                f"{_describe(description)}. The mailbox is not a user of the Workspace domain, "
                "is suspended, or the service account's assertion was rejected.",
                oauth_error=code,
                **details,
            )
        if code in _GRANT_ERRORS:
            return ConfigurationError(
                f"Gmail domain-wide delegation refused for {mailbox} with scopes {scope_text}: "
                f"{code}{_describe(description)}",
                oauth_error=code,
                **details,
            )
        iam_status = _iam_status(exc)
        if iam_status is not None and iam_status not in (429,) and iam_status < 500:
            return ConfigurationError(
                f"IAM refused to sign the Gmail delegation assertion for {mailbox} (HTTP "
                f"{iam_status}): the runtime identity needs roles/iam.serviceAccountTokenCreator "
                "on the delegating service account, and the IAM Credentials API must be enabled.",
                **details,
            )
        return RetryableError(
            f"Could not mint a Gmail token for {mailbox}: {code or 'refresh failed'}"
            f"{_describe(description)}",
            **details,
        )
    if isinstance(exc, exceptions.TransportError):
        text = str(exc)
        if text.startswith("Error calling the IAM signBlob API"):
            # iam.Signer retries 5xx itself; another non-200 is a permission or naming problem.
            return ConfigurationError(
                f"IAM refused to sign the Gmail delegation assertion for {mailbox} (signBlob): "
                "the runtime identity needs roles/iam.serviceAccountTokenCreator on the "
                "delegating service account, and the IAM Credentials API must be enabled.",
                **details,
            )
        return RetryableError(
            f"Could not reach the token service while minting a Gmail token for {mailbox}",
            **details,
        )
    if isinstance(exc, exceptions.GoogleAuthError):
        return ConfigurationError(
            f"Gmail delegation for {mailbox} is misconfigured: {type(exc).__name__}",
            **details,
        )
    return None


def _oauth_error(exc: BaseException) -> tuple[str, str]:
    """(error, error_description) from a RefreshError raised by google-auth's token client."""
    for arg in exc.args[1:]:
        if isinstance(arg, Mapping) and isinstance(arg.get("error"), str):
            return str(arg["error"]), str(arg.get("error_description") or "")
    first = str(exc.args[0]) if exc.args else ""
    code, sep, description = first.partition(": ")
    if sep and code.replace("_", "").isalpha() and code.islower():
        return code, description
    return "", ""


def _iam_status(exc: BaseException) -> int | None:
    """HTTP status IAM answered a signJwt call with (impersonated credentials' RefreshError)."""
    for arg in exc.args[1:]:
        body: Any = arg
        if isinstance(arg, str | bytes):
            try:
                body = json.loads(arg)
            except ValueError:
                continue
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            code = body["error"].get("code")
            if isinstance(code, int):
                return code
    return None


def _describe(description: str) -> str:
    description = " ".join(description.split())[:200]
    return f" ({description})" if description else ""


class RedirectingRequest(google.auth.transport.Request):
    """A ``google.auth.transport.Request`` that sends hard-coded Google hosts elsewhere.

    Sandbox/test infrastructure: google-auth's keyless path calls
    ``https://iamcredentials.googleapis.com`` and ``https://oauth2.googleapis.com/token`` with no
    override, so this rewrites any URL starting with a key of ``redirects`` to start with its
    value, then delegates to ``inner`` (default ``google.auth.transport.requests.Request()``).
    Every rewritten call is recorded in :attr:`calls` as ``(method, original, rewritten)``.
    Production never builds one.
    """

    def __init__(self, redirects: Mapping[str, str], inner: TransportRequest | None = None) -> None:
        # Longest prefix first, so a specific URL wins over its host.
        self._redirects = sorted(redirects.items(), key=lambda item: -len(item[0]))
        self._inner = inner or _default_transport()
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, str]] = []

    @classmethod
    def to_sandbox(cls, base_url: str, token_uri: str | None = None) -> RedirectingRequest:
        """Google's IAM Credentials host and token endpoint, sent to a loopback sandbox."""
        base = base_url.rstrip("/")
        return cls(
            {
                IAM_CREDENTIALS_URL: base,
                GOOGLE_TOKEN_URI: token_uri or f"{base}/token",
            }
        )

    def rewrite(self, url: str) -> str:
        for prefix, target in self._redirects:
            if url.startswith(prefix):
                return target + url[len(prefix) :]
        return url

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> TransportResponse:
        target = self.rewrite(url)
        if target != url:
            with self._lock:
                self.calls.append((method, url, target))
        return self._inner(
            url=target, method=method, body=body, headers=headers, timeout=timeout, **kwargs
        )
