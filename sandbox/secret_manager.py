"""A loopback stand-in for Secret Manager's REST API: the one call the service makes.

Google ships no Secret Manager emulator, so the real ``SecretManagerServiceClient`` (REST
transport) is pointed here instead. It serves
``GET /v1/projects/{project}/secrets/{secret}/versions/{version}:access`` with Google's JSON
(``payload.data`` base64, ``payload.dataCrc32c`` an int64 written as a string, as proto3 JSON
writes int64) and Google's error envelope, so ``google.api_core`` maps failures to the same
exception classes it would raise in production (404 -> NotFound, 403 -> PermissionDenied).

It serves one project; any other project gets 403, which is what Secret Manager answers when
the caller cannot see a project (it does not reveal whether the secret exists). Every request
is recorded so tests can count round trips (e.g. that the adapter caches).

    with SecretManagerStandIn({"smtp-password": "hunter22"}, project="p") as sm:
        SecretManagerSecrets("p", endpoint=sm.endpoint).get("smtp-password")
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from werkzeug.wrappers import Request, Response

from sandbox.loopback import LoopbackServer
from shared.adapters.secrets import crc32c

_ACCESS_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/]+)/versions/(?P<version>[^/:]+):access$"
)

ChecksumMode = Literal["valid", "wrong", "absent"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in answered."""

    method: str
    path: str
    status: int
    project: str = ""
    secret: str = ""
    version: str = ""


class SecretManagerStandIn(LoopbackServer):
    """Serves seeded secrets on ``127.0.0.1`` at an OS-chosen port, in a background thread.

    Each seeded secret starts with version 1; :meth:`add_version` adds more, and ``latest``
    is the highest. :meth:`set_checksum` makes a secret's ``dataCrc32c`` wrong or absent, to
    exercise the client's integrity check.
    """

    thread_name = "secret-manager-stand-in"

    def __init__(
        self,
        secrets: Mapping[str, str | bytes] | None = None,
        *,
        project: str = "sandbox-project",
        host: str = "127.0.0.1",
    ) -> None:
        self.project = project
        super().__init__(host=host)
        self._lock = threading.Lock()
        self._versions: dict[str, list[bytes]] = {}
        self._checksum: dict[str, ChecksumMode] = {}
        self._requests: list[RecordedRequest] = []
        for name, value in (secrets or {}).items():
            self.add_version(name, value)

    # -- state -------------------------------------------------------------------------------
    def add_version(self, secret: str, value: str | bytes) -> int:
        """Add a version (creating the secret if needed); returns its number."""
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        with self._lock:
            versions = self._versions.setdefault(secret, [])
            versions.append(data)
            return len(versions)

    def set_checksum(self, secret: str, mode: ChecksumMode) -> None:
        """Serve ``secret`` with a correct (default), wrong or missing ``dataCrc32c``."""
        with self._lock:
            self._checksum[secret] = mode

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, secret: str) -> list[RecordedRequest]:
        """The access requests that named ``secret``."""
        return [request for request in self.requests if request.secret == secret]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- HTTP --------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        match = _ACCESS_PATH.match(request.path)
        parts = match.groupdict() if match else {}
        if match is None:
            response = _error(404, "NOT_FOUND", f"Method not found: {request.path}")
        elif request.method != "GET":
            response = _error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")
        else:
            response = self._access(parts["project"], parts["secret"], parts["version"])
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    status=response.status_code,
                    **parts,
                )
            )
        return response(environ, start_response)

    def _access(self, project: str, secret: str, version: str) -> Response:
        resource = f"projects/{project}/secrets/{secret}/versions/{version}"
        if project != self.project:
            return _error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'secretmanager.versions.access' denied for resource '{resource}' "
                "(or it may not exist).",
            )
        with self._lock:
            versions = list(self._versions.get(secret, []))
            mode = self._checksum.get(secret, "valid")
        if not versions:
            return _error(
                404,
                "NOT_FOUND",
                f"Secret [projects/{project}/secrets/{secret}] not found or has no versions.",
            )
        number = len(versions) if version == "latest" else _version_number(version)
        if number is None or not 1 <= number <= len(versions):
            return _error(404, "NOT_FOUND", f"Secret Version [{resource}] not found.")
        data = versions[number - 1]
        payload: dict[str, str] = {"data": base64.b64encode(data).decode("ascii")}
        if mode != "absent":
            checksum = crc32c(data)
            if mode == "wrong":
                checksum ^= 0x1  # one flipped bit: the smallest corruption a check must catch
            payload["dataCrc32c"] = str(checksum)
        body = {
            "name": f"projects/{project}/secrets/{secret}/versions/{number}",
            "payload": payload,
        }
        return _json(200, body)


def _version_number(version: str) -> int | None:
    return int(version) if version.isdigit() else None


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=UTF-8")


def _error(status: int, code: str, message: str) -> Response:
    """Google's error envelope, which ``google.api_core.exceptions.from_http_response`` parses."""
    return _json(status, {"error": {"code": status, "message": message, "status": code}})
