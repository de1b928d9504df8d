"""Firestore: the database (point-in-time recovery, delete protection), indexes until READY,
and the field overrides that exempt large or unqueried fields from indexing."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    ENABLED_DELETE_PROTECTION,
    ENABLED_PITR,
    Context,
    DeployError,
    read_or_none,
    send,
    wait_operation,
)
from infra.deploy.model import (
    Change,
    FieldChange,
    diff,
    dig,
)


def _firestore_operation(context: Context, operation: Mapping[str, Any]) -> Any:
    operations = context.clients.firestore.projects().databases().operations()
    return wait_operation(context, operation, lambda name: operations.get(name=name))


def stage_firestore_database(context: Context) -> list[Change]:
    databases = context.clients.firestore.projects().databases()
    wanted_spec = context.spec.firestore
    wanted = {
        "locationId": wanted_spec.location,
        "type": "FIRESTORE_NATIVE",
        "pointInTimeRecoveryEnablement": ENABLED_PITR
        if wanted_spec.point_in_time_recovery
        else "POINT_IN_TIME_RECOVERY_DISABLED",
        "deleteProtectionState": ENABLED_DELETE_PROTECTION
        if wanted_spec.delete_protection
        else "DELETE_PROTECTION_DISABLED",
    }
    live = read_or_none(context, databases.get(name=context.database))
    if live is None:

        def create() -> None:
            operation = send(
                context,
                databases.create(
                    parent=f"projects/{context.project}",
                    databaseId=wanted_spec.database,
                    body=wanted,
                ),
            )
            _firestore_operation(context, operation)

        return [
            Change("firestore database", context.database, "create", diff(None, wanted), run=create)
        ]
    view = {
        "locationId": live.get("locationId"),
        "type": live.get("type"),
        "pointInTimeRecoveryEnablement": live.get(
            "pointInTimeRecoveryEnablement", "POINT_IN_TIME_RECOVERY_DISABLED"
        ),
        "deleteProtectionState": live.get("deleteProtectionState", "DELETE_PROTECTION_DISABLED"),
    }
    changed = diff(view, wanted)
    fixed = [c for c in changed if c.key in ("locationId", "type")]
    notes = [
        f"{c.key} is {c.before!r}, the spec says {c.after!r}: it cannot change after creation"
        for c in fixed
    ]
    mutable = [c for c in changed if c not in fixed]
    if not mutable:
        return [Change("firestore database", context.database, "unchanged", notes=notes)]

    def update() -> None:
        mask = ",".join(c.key for c in mutable)
        body = {c.key: c.after for c in mutable}
        operation = send(
            context, databases.patch(name=context.database, updateMask=mask, body=body)
        )
        _firestore_operation(context, operation)

    return [Change("firestore database", context.database, "update", mutable, notes, update)]


def _index_key(collection_group: str, query_scope: str, fields: Iterable[Any]) -> tuple[Any, ...]:
    pairs = []
    for item in fields:
        if isinstance(item, Mapping):
            path = item.get("fieldPath", "")
            kind = item.get("order") or item.get("arrayConfig") or item.get("vectorConfig")
            pairs.append((path, str(kind)))
        else:
            pairs.append((str(item[0]), str(item[1])))
    # Firestore appends ``__name__`` to every composite index it returns; the spec never names it.
    if pairs and pairs[-1][0] == "__name__":
        pairs.pop()
    return (collection_group, query_scope, tuple(pairs))


def _describe_index(key: tuple[Any, ...]) -> str:
    collection, scope, fields = key
    text = ", ".join(f"{path} {kind}" for path, kind in fields)
    return f"{collection} ({text})" + ("" if scope == "COLLECTION" else f" [{scope}]")


def stage_firestore_indexes(context: Context) -> list[Change]:
    indexes_api = context.clients.firestore.projects().databases().collectionGroups().indexes()
    live: dict[tuple[Any, ...], dict[str, Any]] = {}
    token = ""
    while True:
        kwargs: dict[str, Any] = {"parent": f"{context.database}/collectionGroups/-"}
        if token:
            kwargs["pageToken"] = token
        page = read_or_none(context, indexes_api.list(**kwargs)) or {}
        for index in page.get("indexes", []):
            group = str(index["name"]).split("/collectionGroups/")[1].split("/")[0]
            key = _index_key(group, index.get("queryScope", "COLLECTION"), index.get("fields", []))
            live[key] = index
        token = page.get("nextPageToken", "")
        if not token:
            break
    changes = []
    wanted_keys = set()
    for index in context.spec.firestore.indexes:
        key = _index_key(index.collection_group, index.query_scope, index.fields)
        wanted_keys.add(key)
        label = _describe_index(key)
        if key in live:
            state = live[key].get("state", "READY")
            notes = [] if state == "READY" else [f"state {state}"]
            changes.append(Change("firestore index", label, "unchanged", notes=notes))
            continue

        def create(index: specs.CompositeIndex = index) -> None:
            fields = [
                {"fieldPath": path, "arrayConfig": kind}
                if kind == "CONTAINS"
                else {"fieldPath": path, "order": kind}
                for path, kind in index.fields
            ]
            operation = send(
                context,
                indexes_api.create(
                    parent=f"{context.database}/collectionGroups/{index.collection_group}",
                    body={"queryScope": index.query_scope, "fields": fields},
                ),
            )
            finished = _firestore_operation(context, operation)
            name = dig(finished, "response.name") or dig(finished, "metadata.index")
            if name:
                _wait_index_ready(context, str(name))

        changes.append(Change("firestore index", label, "create", run=create))
    extra = sorted(set(live) - wanted_keys)
    if extra and changes:
        changes[0].notes += [
            f"index not in infra/firestore.indexes.json (left in place): {_describe_index(k)}"
            for k in extra
        ]
    return changes


def _wait_index_ready(context: Context, name: str) -> None:
    indexes_api = context.clients.firestore.projects().databases().collectionGroups().indexes()
    deadline = time.monotonic() + context.operation_timeout
    while True:
        index = send(context, indexes_api.get(name=name))
        if index.get("state") == "READY":
            return
        if index.get("state") == "NEEDS_REPAIR" or time.monotonic() > deadline:
            raise DeployError(f"index {name} is {index.get('state')}, not READY")
        context.sleep(context.poll_interval)


def _single_field_indexes(field_path: str, entries: Iterable[Mapping[str, Any]]) -> list[Any]:
    """An override's indexes as a comparable, sorted list (Firebase's file or the API's form)."""
    normal = []
    for entry in entries:
        if "fields" in entry:
            fields = entry["fields"]
            kind = (fields[0].get("order") or fields[0].get("arrayConfig")) if fields else ""
        else:
            kind = entry.get("order") or entry.get("arrayConfig")
        normal.append((entry.get("queryScope", "COLLECTION"), field_path, str(kind)))
    return sorted(normal)


def stage_field_overrides(context: Context) -> list[Change]:
    fields_api = context.clients.firestore.projects().databases().collectionGroups().fields()
    changes = []
    for override in context.spec.firestore.field_overrides:
        name = (
            f"{context.database}/collectionGroups/{override.collection_group}"
            f"/fields/{override.field_path}"
        )
        label = f"{override.collection_group}.{override.field_path}"
        live = read_or_none(context, fields_api.get(name=name))
        wanted = _single_field_indexes(override.field_path, override.indexes)
        current = (
            None
            if live is None
            else _single_field_indexes(override.field_path, dig(live, "indexConfig.indexes", []))
        )
        if current == wanted and not dig(live, "indexConfig.usesAncestorConfig", False):
            changes.append(Change("firestore field", label, "unchanged"))
            continue

        def patch(override: specs.FieldOverride = override, name: str = name) -> None:
            indexes = [
                {
                    "queryScope": entry.get("queryScope", "COLLECTION"),
                    "fields": [
                        {"fieldPath": override.field_path}
                        | {k: v for k, v in entry.items() if k in ("order", "arrayConfig")}
                    ],
                }
                for entry in override.indexes
            ]
            operation = send(
                context,
                fields_api.patch(
                    name=name, updateMask="indexConfig", body={"indexConfig": {"indexes": indexes}}
                ),
            )
            _firestore_operation(context, operation)

        shown = "exempt from indexing" if not wanted else repr(wanted)
        before: Any = current
        if live is None or dig(live, "indexConfig.usesAncestorConfig", False):
            before = "automatic (inherited)"
        changes.append(
            Change(
                "firestore field",
                label,
                "update",
                [FieldChange("indexes", before, shown)],
                run=patch,
            )
        )
    return changes
