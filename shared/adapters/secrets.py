"""Secrets port adapters: environment/files on one machine, Secret Manager in the cloud.

Both cache each value once per instance (a warm Cloud Functions instance must not pay a Secret
Manager round trip per request) and register every value they read with the log redaction
filter, so a secret that reaches a log call by accident is printed as ``[REDACTED]``.

Errors name what was looked for (the variable, the file, the secret's resource name) and never
the value. Nothing heavy is imported at module scope: the Google client, ``requests`` and
google-auth are imported the first time a Secret Manager value is needed, so functions that
never read a secret never pay for them.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError, RetryableError
from shared.logging import register_secret

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.secretmanager import SecretManagerServiceClient

ENV_PREFIX = "CRM_SECRET_"

# Secret Manager's own rule for secret ids. Checking it before building a resource name also
# stops a name with "/" from addressing some other resource.
_SECRET_MANAGER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Locally names may also carry dots (``gmail.key.json``); no separators, no leading dot, so a
# name can never step out of the secrets directory.
_LOCAL_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$")


def env_var_for(name: str) -> str:
    """The variable holding secret ``name``: ``smtp-password`` -> ``CRM_SECRET_SMTP_PASSWORD``."""
    return ENV_PREFIX + name.upper().replace("-", "_").replace(".", "_")


class EnvFileSecrets:
    """Secrets from ``CRM_SECRET_<NAME>`` or, failing that, from ``<secrets_dir>/<name>``.

    The environment wins so a developer can override one file-held secret for one run. An
    empty variable counts as unset (``FOO=`` in a compose file is a common way to leave a value
    out); an empty file counts as missing. One trailing newline sequence (what ``echo`` and
    editors add) is stripped from files.
    """

    def __init__(self, secrets_dir: Path | None, environ: Mapping[str, str] = os.environ) -> None:
        self._secrets_dir = secrets_dir
        self._environ = environ
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        """The secret's value; raises ConfigurationError naming the variable and file looked at."""
        value = self.get_optional(name)
        if value is None:
            raise ConfigurationError(
                f"Secret {name!r} is not set: looked for environment variable "
                f"{env_var_for(name)} and {self._describe_file(name)}",
                secret=name,
                variable=env_var_for(name),
            )
        return value

    def get_optional(self, name: str) -> str | None:
        """The secret's value, or None when neither the variable nor the file holds one."""
        _check_name(name, _LOCAL_NAME)
        with self._lock:
            if name in self._cache:
                return self._cache[name]
        value = self._environ.get(env_var_for(name)) or self._read_file(name)
        if not value:
            return None  # not cached: a file dropped in later is picked up
        register_secret(value)
        with self._lock:
            self._cache[name] = value
        return value

    def _read_file(self, name: str) -> str | None:
        if self._secrets_dir is None:
            return None
        path = self._secrets_dir / name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            # The exception text can quote file content (UnicodeDecodeError carries the bytes),
            # so only its type travels; ``from None`` keeps it out of tracebacks too.
            raise ConfigurationError(
                f"Secret {name!r}: cannot read {path} ({type(exc).__name__})",
                secret=name,
                file=str(path),
            ) from None
        return _strip_one_newline(text)

    def _describe_file(self, name: str) -> str:
        if self._secrets_dir is None:
            return "no file (no secrets directory configured: CRM_SECRETS_DIR)"
        return f"file {self._secrets_dir / name}"


class SecretManagerSecrets:
    """Secrets from Google Secret Manager, ``projects/<project>/secrets/<name>/versions/latest``.

    The client is the real ``SecretManagerServiceClient`` on its REST transport: no gRPC channel
    to set up at cold start, and the same code runs against the loopback stand-in in
    ``sandbox/secret_manager.py``. ``endpoint`` is for that stand-in: the REST transport keeps a
    scheme given in the host and only prepends its ``url_scheme`` (default ``https``) when there
    is none, so ``http://127.0.0.1:PORT`` is honoured as written; with an endpoint and no
    credentials the client gets ``AnonymousCredentials`` instead of searching for ADC.

    ``latest`` is read on purpose (rotation needs no redeploy); the value is then fixed for the
    life of the instance, like secrets that Cloud Functions resolves into environment variables.
    """

    def __init__(
        self,
        project: str,
        *,
        endpoint: str = "",
        credentials: Credentials | None = None,
    ) -> None:
        if not project:
            raise ConfigurationError(
                "Secret Manager needs a project: set CRM_GCP_PROJECT", variable="CRM_GCP_PROJECT"
            )
        self._project = project
        self._endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._client: SecretManagerServiceClient | None = None
        # One lock for client and cache: a value is fetched once even when concurrent requests
        # of a fresh instance ask for it together. Only cold paths ever wait on it.
        self._lock = threading.Lock()
        self._cache: dict[str, str | None] = {}

    def get(self, name: str) -> str:
        """The latest version's value; ConfigurationError if the secret is missing or unreadable."""
        value = self._lookup(name)
        if value is None:
            raise ConfigurationError(
                f"Secret {self.resource_name(name)} does not exist or has no enabled version",
                secret=name,
            )
        return value

    def get_optional(self, name: str) -> str | None:
        """The value, or None if the secret has no version; still raises if it may not be read.

        A permission or credentials problem is a deployment mistake, not an absent secret, so
        it is never silently turned into None.
        """
        return self._lookup(name)

    def resource_name(self, name: str) -> str:
        """The resource name read for ``name``, as it appears in errors and IAM policy."""
        return f"projects/{self._project}/secrets/{name}/versions/latest"

    def _lookup(self, name: str) -> str | None:
        _check_name(name, _SECRET_MANAGER_NAME)
        with self._lock:
            # Absence is cached too: an optional secret must not cost a round trip per request.
            if name not in self._cache:
                self._cache[name] = self._fetch(name)
            return self._cache[name]

    def _fetch(self, name: str) -> str | None:
        """One ``access_secret_version`` call; None when the secret is absent. Lock held.

        Over REST, ``google.api_core`` picks the exception class from the HTTP status, not
        from the error's ``status`` string: a 403 arrives as ``Forbidden`` (the parent of
        ``PermissionDenied``), a disabled version's 400 FAILED_PRECONDITION as ``BadRequest``,
        a 429 as ``TooManyRequests``. Hence the parent classes below.
        """
        import requests
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions

        resource = self.resource_name(name)
        try:
            response = self._get_client().access_secret_version(name=resource)
        except api_exceptions.NotFound:
            return None
        except api_exceptions.Forbidden as exc:
            raise ConfigurationError(
                f"Permission denied reading secret {resource}: grant the function's service "
                "account roles/secretmanager.secretAccessor on it (or it may not exist)",
                secret=name,
            ) from exc
        except (api_exceptions.Unauthorized, auth_exceptions.DefaultCredentialsError) as exc:
            raise ConfigurationError(
                f"No usable Google credentials to read secret {resource} (Application "
                "Default Credentials, GOOGLE_APPLICATION_CREDENTIALS)",
                secret=name,
            ) from exc
        except api_exceptions.BadRequest as exc:
            # What Secret Manager answers when the latest version is disabled or destroyed.
            raise ConfigurationError(
                f"Secret {resource} cannot be read (latest version disabled?): {exc.message}",
                secret=name,
            ) from exc
        except (
            api_exceptions.ServerError,
            api_exceptions.TooManyRequests,
            api_exceptions.RetryError,
            auth_exceptions.TransportError,
            requests.ConnectionError,
            requests.Timeout,
        ) as exc:
            raise RetryableError(
                f"Secret Manager is unavailable reading {resource} ({type(exc).__name__})",
                secret=name,
            ) from exc

        payload = response.payload
        data = bytes(payload.data)
        # ``data_crc32c`` is proto3 ``optional``: ``in`` tells "absent" from a checksum of 0.
        if "data_crc32c" in payload and crc32c(data) != payload.data_crc32c:
            # Corruption on the way, not a configuration mistake: worth a retry.
            raise RetryableError(
                f"Secret {resource} arrived corrupted (CRC32C mismatch); refusing it",
                secret=name,
            )
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            # ``from None``: the decode error carries the raw bytes of the secret.
            raise ConfigurationError(f"Secret {resource} is not UTF-8 text", secret=name) from None
        register_secret(value)
        return value

    def _get_client(self) -> SecretManagerServiceClient:
        """Build the client on first use only (lock held): it imports requests and google-auth."""
        if self._client is None:
            from google.cloud import secretmanager

            options: dict[str, Any] = {}
            credentials = self._credentials
            if self._endpoint:
                options["api_endpoint"] = self._endpoint
                if credentials is None:
                    from google.auth.credentials import AnonymousCredentials

                    credentials = AnonymousCredentials()
            self._client = secretmanager.SecretManagerServiceClient(
                credentials=credentials, transport="rest", client_options=options or None
            )
        return self._client


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, the checksum Secret Manager sends as ``dataCrc32c``.

    Pure Python because ``google-crc32c`` is not installed with our pins (it ships with
    google-cloud-storage, which we don't use). Secrets are at most 64 KiB, usually a few dozen
    bytes, so table-driven Python is fast enough.
    """
    table = _crc32c_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@functools.cache
def _crc32c_table() -> tuple[int, ...]:
    # Built on first use, not at import: this module is imported by every entry point.
    polynomial = 0x82F63B78  # reflected Castagnoli polynomial
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ polynomial if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _check_name(name: str, rule: re.Pattern[str]) -> None:
    if not rule.fullmatch(name):
        raise ConfigurationError(
            f"Invalid secret name {name!r}: it must match {rule.pattern}", secret=name
        )


def _strip_one_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text
