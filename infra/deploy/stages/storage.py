"""Cloud Storage: the bucket the daily Firestore export writes to, and who may write there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    Context,
    policy_change,
    read_or_none,
    send,
)
from infra.deploy.model import (
    Change,
    diff,
    dig,
)


def stage_bucket(context: Context) -> list[Change]:
    buckets = context.clients.storage.buckets()
    bucket = context.spec.bucket
    wanted_body = {
        "location": bucket.location.upper(),
        "iamConfiguration": {
            "uniformBucketLevelAccess": {"enabled": True},
            "publicAccessPrevention": "enforced",
        },
        "lifecycle": {
            "rule": [{"action": {"type": "Delete"}, "condition": {"age": bucket.retention_days}}]
        },
    }
    wanted = _bucket_view(wanted_body)
    live = read_or_none(context, buckets.get(bucket=bucket.name))
    changes = []
    if live is None:

        def create() -> None:
            body = {"name": bucket.name, **wanted_body, "labels": {specs.MANAGED_LABEL: "true"}}
            send(context, buckets.insert(project=context.project, body=body))

        changes.append(Change("bucket", bucket.name, "create", diff(None, wanted), run=create))
    else:
        changed = diff(_bucket_view(live), wanted)
        notes = [
            f"location is {c.before}, the spec says {c.after}: a bucket cannot move"
            for c in changed
            if c.key == "location"
        ]
        changed = [c for c in changed if c.key != "location"]
        if changed:

            def patch() -> None:
                body = {
                    "iamConfiguration": wanted_body["iamConfiguration"],
                    "lifecycle": wanted_body["lifecycle"],
                }
                send(context, buckets.patch(bucket=bucket.name, body=body))

            changes.append(Change("bucket", bucket.name, "update", changed, notes, patch))
        else:
            changes.append(Change("bucket", bucket.name, "unchanged", notes=notes))

    def read() -> Mapping[str, Any] | None:
        return read_or_none(context, buckets.getIamPolicy(bucket=bucket.name))

    def write(policy: dict[str, Any]) -> Any:
        return buckets.setIamPolicy(bucket=bucket.name, body=policy).execute()

    wanted_roles = {specs.ROLE_STORAGE_ADMIN: bucket.admins}
    changes.append(policy_change(context, "bucket", bucket.name, read, write, wanted_roles))
    return changes


def _bucket_view(resource: Mapping[str, Any]) -> dict[str, Any]:
    rules = dig(resource, "lifecycle.rule", []) or []
    ages = sorted(
        int(dig(rule, "condition.age", 0)) for rule in rules if dig(rule, "action.type") == "Delete"
    )
    return {
        "location": str(resource.get("location", "")).upper(),
        "uniform access": bool(dig(resource, "iamConfiguration.uniformBucketLevelAccess.enabled")),
        "public access prevention": dig(resource, "iamConfiguration.publicAccessPrevention"),
        "delete after days": ages,
    }
