"""Secret Manager: the secrets (created empty; values are added by hand) and who reads them."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    Context,
    policy_change,
)
from infra.deploy.model import (
    Change,
    FieldChange,
)


def stage_secrets(context: Context) -> list[Change]:
    from google.api_core import exceptions as api_exceptions

    client = context.clients.secret_manager
    changes = []
    for secret in context.spec.secrets:
        name = f"projects/{context.project}/secrets/{secret.secret_id}"
        add_value = (
            f"add its value: gcloud secrets versions add {secret.secret_id} "
            f"--project={context.project} --data-file=-"
        )
        try:
            client.get_secret(name=name)
            exists = True
        except api_exceptions.NotFound:
            exists = False
        if exists:
            versions = list(
                client.list_secret_versions(request={"parent": name, "filter": "state:ENABLED"})
            )
            notes = [] if versions else [f"no enabled version: {add_value}"]
            changes.append(Change("secret", secret.secret_id, "unchanged", notes=notes))
        else:

            def run(secret_id: str = secret.secret_id) -> None:
                client.create_secret(
                    parent=f"projects/{context.project}",
                    secret_id=secret_id,
                    secret={
                        "replication": {"automatic": {}},
                        "labels": {specs.MANAGED_LABEL: "true"},
                    },
                )

            changes.append(
                Change(
                    "secret",
                    secret.secret_id,
                    "create",
                    fields=[FieldChange("read by", None, f"CRM_{secret.setting.upper()}")],
                    notes=[f"created empty: {add_value}"],
                    run=run,
                )
            )

        def read(name: str = name) -> Mapping[str, Any] | None:
            try:
                policy = client.get_iam_policy(request={"resource": name})
            except api_exceptions.NotFound:
                return None
            return _policy_from_proto(policy)

        def write(policy: dict[str, Any], name: str = name) -> Any:
            request = {"resource": name, "policy": _policy_to_proto_fields(policy)}
            return client.set_iam_policy(request=request)

        wanted = {specs.ROLE_SECRET_ACCESSOR: secret.accessors}
        changes.append(policy_change(context, "secret", secret.secret_id, read, write, wanted))
    return changes


def _policy_from_proto(policy: Any) -> dict[str, Any]:
    """A ``google.iam.v1`` Policy message as the JSON dict the discovery clients use."""
    bindings = []
    for binding in policy.bindings:
        entry: dict[str, Any] = {"role": binding.role, "members": list(binding.members)}
        if binding.HasField("condition"):
            condition = binding.condition
            entry["condition"] = {
                "expression": condition.expression,
                "title": condition.title,
                "description": condition.description,
            }
        bindings.append(entry)
    etag = base64.b64encode(bytes(policy.etag)).decode("ascii")
    return {"version": policy.version, "etag": etag, "bindings": bindings}


def _policy_to_proto_fields(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a Policy message (etag as bytes) from the JSON dict form."""
    return {
        "version": int(policy.get("version", 1)),
        "etag": base64.b64decode(policy.get("etag", "") or ""),
        "bindings": list(policy.get("bindings", [])),
    }
