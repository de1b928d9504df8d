"""What every stage shares: the run's context, reads that tolerate 404, operations, IAM.

IAM policies are read-modify-write with the policy's etag: a concurrent change makes the write
fail (409 ``ABORTED``, 412 on Cloud Storage) and the whole read-modify-write is retried, keeping
what the other writer added. A newly created service account can take a few seconds to become
visible to IAM (a 400 "does not exist"); that is retried the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra import spec as specs
from infra.bundle import Bundle
from infra.deploy.clients import Clients
from infra.deploy.model import (
    Change,
    converge_policy,
    describe_grant,
)

POLICY_ATTEMPTS = 6
FORBIDDEN_INVOKERS = ("allUsers", "allAuthenticatedUsers")
ENABLED_PITR = "POINT_IN_TIME_RECOVERY_ENABLED"
ENABLED_DELETE_PROTECTION = "DELETE_PROTECTION_ENABLED"


class DeployError(RuntimeError):
    """A call failed in a way retrying here cannot fix; the message says what and where."""


@dataclass
class Context:
    """One run of the tool: the spec, the clients, the bundle and how long to wait."""

    spec: specs.DeploymentSpec
    clients: Clients
    bundle: Bundle
    sleep: Callable[[float], None] = time.sleep
    poll_interval: float = 3.0
    operation_timeout: float = 1800.0
    num_retries: int = 3
    out: Callable[[str], None] = print

    @property
    def project(self) -> str:
        return self.spec.project

    @property
    def location(self) -> str:
        return f"projects/{self.spec.project}/locations/{self.spec.region}"

    @property
    def database(self) -> str:
        return f"projects/{self.spec.project}/databases/{self.spec.firestore.database}"

    @property
    def managed_members(self) -> set[str]:
        return {account.member for account in self.spec.service_accounts}


def read_project_number(clients: Clients, project: str) -> str:
    """The project's number (``projects/123`` in Resource Manager v3): names service agents."""
    project_resource = clients.resource_manager.projects().get(name=f"projects/{project}")
    name = str(project_resource.execute(num_retries=3).get("name", ""))
    number = name.removeprefix("projects/")
    if not number.isdigit():
        raise DeployError(f"Resource Manager returned no project number for {project}: {name!r}")
    return number


# --- helpers --------------------------------------------------------------------------------


def http_status(exc: BaseException) -> int:
    return int(getattr(getattr(exc, "resp", None), "status", 0) or 0)


def read_or_none(context: Context, request: Any) -> dict[str, Any] | None:
    """Execute a discovery read; None on 404 (the resource, or its parent, does not exist)."""
    from googleapiclient.errors import HttpError

    try:
        result = request.execute(num_retries=context.num_retries)
    except HttpError as exc:
        if http_status(exc) == 404:
            return None
        raise
    return dict(result or {})


def send(context: Context, request: Any) -> dict[str, Any]:
    from googleapiclient.errors import HttpError

    try:
        return dict(request.execute(num_retries=context.num_retries) or {})
    except HttpError as exc:
        raise DeployError(f"{request.method} {request.uri}: {exc}") from exc


def wait_operation(
    context: Context, operation: Mapping[str, Any], poll: Callable[[str], Any]
) -> Any:
    """Poll a long-running operation until done; raise with its error if it failed."""
    deadline = time.monotonic() + context.operation_timeout
    current: Mapping[str, Any] = operation
    while not current.get("done"):
        if time.monotonic() > deadline:
            raise DeployError(f"operation {current.get('name')} did not finish in time")
        context.sleep(context.poll_interval)
        current = send(context, poll(str(current["name"])))
    if "error" in current:
        error = current["error"]
        raise DeployError(f"operation {current.get('name')} failed: {error.get('message', error)}")
    return current


def policy_change(
    context: Context,
    kind: str,
    name: str,
    read: Callable[[], Mapping[str, Any] | None],
    write: Callable[[dict[str, Any]], Any],
    wanted: Mapping[str, Iterable[str]],
    *,
    forbidden: Iterable[str] = (),
) -> Change:
    """The change of one resource's IAM policy, with a retrying read-modify-write to apply it."""
    managed = context.managed_members
    current = read() or {}
    new, changes = converge_policy(current, wanted, managed=managed, forbidden=forbidden)
    if new is None:
        return Change(f"IAM {kind}", name, "unchanged")

    def run() -> None:
        read_modify_write(context, name, read, write, wanted, managed, forbidden)

    return Change(
        f"IAM {kind}", name, "update", fields=[describe_grant(c) for c in changes], run=run
    )


def read_modify_write(
    context: Context,
    name: str,
    read: Callable[[], Mapping[str, Any] | None],
    write: Callable[[dict[str, Any]], Any],
    wanted: Mapping[str, Iterable[str]],
    managed: set[str],
    forbidden: Iterable[str],
) -> None:
    from google.api_core import exceptions as api_exceptions
    from googleapiclient.errors import HttpError

    for attempt in range(POLICY_ATTEMPTS):
        current = read() or {}
        new, _ = converge_policy(current, wanted, managed=managed, forbidden=forbidden)
        if new is None:
            return
        try:
            write(new)
            return
        except (HttpError, api_exceptions.GoogleAPICallError) as exc:
            status = http_status(exc) or int(getattr(exc, "code", 0) or 0)
            text = str(exc)
            stale = status in (409, 412)
            unseen_account = status == 400 and "does not exist" in text
            if not (stale or unseen_account):
                raise DeployError(f"setting the IAM policy of {name}: {text}") from exc
        context.sleep(min(30.0, 2.0**attempt) if context.poll_interval else 0.0)
    raise DeployError(f"the IAM policy of {name} kept changing under us; run apply again")
