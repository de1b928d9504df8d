"""Google's own Python clients for every API the deploy tool calls, built once per run.

Discovery clients (google-api-python-client) from the documents the library ships
(``static_discovery=True``: no network fetch of discovery documents) for Cloud Functions v2,
Cloud Run Admin v2, Pub/Sub v1, IAM v1, Resource Manager v3, Firestore admin v1, Cloud Storage
v1 and Cloud Monitoring v3; google-cloud-scheduler and google-cloud-secret-manager on their REST
transports.

Credentials are Application Default Credentials (``gcloud auth application-default login`` or
the Cloud Shell's), unless ``endpoint`` points every API at a loopback stand-in
(``--endpoint`` / ``CRM_INFRA_ENDPOINT``): then, and only then, anonymous credentials are used,
and a non-loopback endpoint is refused so no real project is ever called unauthenticated.
Everything heavy is imported here, on first use, not when ``python -m infra`` starts.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class EndpointError(ValueError):
    """An endpoint override that is not a loopback URL."""


class CredentialsError(RuntimeError):
    """No usable Application Default Credentials: said in one line, never as a traceback."""


NO_CREDENTIALS = (
    "no Google credentials (Application Default Credentials) were found: run "
    "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key "
    "file) and try again; `make deploy-demo` runs the same plan against loopback stand-ins"
)


def check_loopback(endpoint: str) -> str:
    """``endpoint`` without a trailing slash, if it is ``http(s)://<loopback>:<port>``."""
    parsed = urlparse(endpoint)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise EndpointError(
            f"--endpoint must be a loopback stand-in (http://127.0.0.1:PORT), not {endpoint!r}: "
            "against Google the tool uses Application Default Credentials and Google's endpoints"
        )
    return endpoint.rstrip("/")


def _first_line(exc: Exception) -> str:
    """An error's kind and first line, bounded: enough to act on, in one line."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


@dataclass
class Clients:
    """Lazily built clients; ``endpoint`` empty means Google's endpoints with ADC."""

    endpoint: str = ""

    def __post_init__(self) -> None:
        if self.endpoint:
            self.endpoint = check_loopback(self.endpoint)

    @functools.cached_property
    def credentials(self) -> Any:
        if self.endpoint:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM])
        except google.auth.exceptions.DefaultCredentialsError:
            raise CredentialsError(NO_CREDENTIALS) from None
        # Refreshed here, once, so expired or revoked credentials (``gcloud`` asks to log in
        # again) are one line too rather than a traceback from inside the first API call.
        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.RefreshError as exc:
            raise CredentialsError(
                f"Google credentials could not be used ({_first_line(exc)}): run "
                "`gcloud auth application-default login` and try again"
            ) from None
        except google.auth.exceptions.TransportError as exc:
            raise CredentialsError(
                f"Google's token endpoint could not be reached to use the credentials "
                f"({_first_line(exc)}): check the network and try again"
            ) from None
        return credentials

    def _discovery(self, api: str, version: str, suffix: str = "") -> Any:
        from googleapiclient.discovery import build

        options = {"api_endpoint": f"{self.endpoint}/{suffix}"} if self.endpoint else None
        return build(
            api,
            version,
            credentials=self.credentials,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )

    @functools.cached_property
    def functions(self) -> Any:
        return self._discovery("cloudfunctions", "v2")

    @functools.cached_property
    def run(self) -> Any:
        return self._discovery("run", "v2")

    @functools.cached_property
    def pubsub(self) -> Any:
        return self._discovery("pubsub", "v1")

    @functools.cached_property
    def iam(self) -> Any:
        return self._discovery("iam", "v1")

    @functools.cached_property
    def resource_manager(self) -> Any:
        return self._discovery("cloudresourcemanager", "v3")

    @functools.cached_property
    def firestore(self) -> Any:
        return self._discovery("firestore", "v1")

    @functools.cached_property
    def storage(self) -> Any:
        # Storage's discovery document keeps its version in servicePath, which an endpoint
        # override replaces along with the host.
        return self._discovery("storage", "v1", "storage/v1/")

    @functools.cached_property
    def monitoring(self) -> Any:
        return self._discovery("monitoring", "v3")

    def _rest_options(self) -> dict[str, str] | None:
        return {"api_endpoint": self.endpoint} if self.endpoint else None

    @functools.cached_property
    def scheduler(self) -> Any:
        from google.cloud import scheduler_v1

        return scheduler_v1.CloudSchedulerClient(
            credentials=self.credentials, transport="rest", client_options=self._rest_options()
        )

    @functools.cached_property
    def secret_manager(self) -> Any:
        from google.cloud import secretmanager

        return secretmanager.SecretManagerServiceClient(
            credentials=self.credentials, transport="rest", client_options=self._rest_options()
        )

    def upload(self, url: str, data: bytes) -> None:
        """PUT the source zip to the signed URL ``generateUploadUrl`` returned (no auth)."""
        import requests

        response = requests.put(
            url, data=data, headers={"Content-Type": "application/zip"}, timeout=300
        )
        response.raise_for_status()
