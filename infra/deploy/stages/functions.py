"""Cloud Functions gen2 and the Cloud Run services under them.

A function is rebuilt (new upload, ``buildConfig.source`` in the mask) only when the bundle's
hash, kept as its ``crm-source-hash`` label, differs; any other difference patches just the
fields that differ."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    FORBIDDEN_INVOKERS,
    Context,
    policy_change,
    read_or_none,
    send,
    wait_operation,
)
from infra.deploy.model import (
    Change,
    FieldChange,
    diff,
    dig,
    memory,
)

_FUNCTION_MASK = {
    "description": "description",
    "runtime": "buildConfig.runtime",
    "entry point": "buildConfig.entryPoint",
    "build identity": "buildConfig.serviceAccount",
    "source hash": "labels",
    "memory": "serviceConfig.availableMemory",
    "timeout s": "serviceConfig.timeoutSeconds",
    "min instances": "serviceConfig.minInstanceCount",
    "max instances": "serviceConfig.maxInstanceCount",
    "concurrency": "serviceConfig.maxInstanceRequestConcurrency",
    "identity": "serviceConfig.serviceAccountEmail",
    "ingress": "serviceConfig.ingressSettings",
}


def _function_body(
    context: Context, wanted: specs.FunctionDeploy, source: Mapping[str, Any] | None
) -> dict[str, Any]:
    build: dict[str, Any] = {"runtime": wanted.runtime, "entryPoint": wanted.entry_point}
    if source is not None:
        build["source"] = {"storageSource": dict(source)}
    if context.spec.build_service_account:
        build["serviceAccount"] = (
            f"projects/{context.project}/serviceAccounts/{context.spec.build_service_account}"
        )
    return {
        "description": wanted.description,
        "labels": {
            specs.MANAGED_LABEL: "true",
            specs.SOURCE_HASH_LABEL: context.bundle.source_hash,
        },
        "environment": "GEN_2",
        "buildConfig": build,
        "serviceConfig": {
            "availableMemory": f"{wanted.memory_mb}Mi",
            "timeoutSeconds": wanted.timeout_s,
            "minInstanceCount": wanted.min_instances,
            "maxInstanceCount": wanted.max_instances,
            "maxInstanceRequestConcurrency": wanted.concurrency,
            "serviceAccountEmail": wanted.service_account,
            "environmentVariables": dict(wanted.env),
            "ingressSettings": "ALLOW_ALL",
            "allTrafficOnLatestRevision": True,
        },
    }


def _function_view(body: Mapping[str, Any], managed_env: Iterable[str] = ()) -> dict[str, Any]:
    env = dig(body, "serviceConfig.environmentVariables", {}) or {}
    view: dict[str, Any] = {
        "description": body.get("description", ""),
        "runtime": dig(body, "buildConfig.runtime"),
        "entry point": dig(body, "buildConfig.entryPoint"),
        "build identity": dig(body, "buildConfig.serviceAccount", ""),
        "source hash": dig(body, f"labels.{specs.SOURCE_HASH_LABEL}", ""),
        "memory": memory(dig(body, "serviceConfig.availableMemory", "256M")),
        "timeout s": dig(body, "serviceConfig.timeoutSeconds", 60),
        "min instances": dig(body, "serviceConfig.minInstanceCount", 0),
        "max instances": dig(body, "serviceConfig.maxInstanceCount", 0),
        "concurrency": dig(body, "serviceConfig.maxInstanceRequestConcurrency", 1),
        "identity": dig(body, "serviceConfig.serviceAccountEmail", ""),
        "ingress": dig(body, "serviceConfig.ingressSettings", "ALLOW_ALL"),
    }
    # Only the service's own variables are compared (Cloud Functions adds LOG_EXECUTION_ID).
    for key in sorted(set(managed_env) | {k for k in env if k.startswith("CRM_")}):
        view[f"env {key}"] = env.get(key)
    return view


def _upload_source(context: Context) -> dict[str, Any]:
    """generateUploadUrl, then PUT the zip there: the storage source a create or patch names."""
    functions = context.clients.functions.projects().locations().functions()
    answer = send(context, functions.generateUploadUrl(parent=context.location, body={}))
    context.clients.upload(str(answer["uploadUrl"]), context.bundle.zip_bytes())
    return dict(answer["storageSource"])


def _functions_operation(context: Context, operation: Mapping[str, Any]) -> Any:
    operations = context.clients.functions.projects().locations().operations()
    return wait_operation(context, operation, lambda name: operations.get(name=name))


def stage_functions(context: Context) -> list[Change]:
    functions = context.clients.functions.projects().locations().functions()
    changes = []
    for wanted in context.spec.functions:
        name = f"{context.location}/functions/{wanted.name}"
        wanted_view = _function_view(_function_body(context, wanted, None))
        live = read_or_none(context, functions.get(name=name))
        if live is None:

            def create(wanted: specs.FunctionDeploy = wanted) -> None:
                body = _function_body(context, wanted, _upload_source(context))
                operation = send(
                    context,
                    functions.create(parent=context.location, functionId=wanted.name, body=body),
                )
                _functions_operation(context, operation)

            fields = diff(None, {k: v for k, v in wanted_view.items() if v not in ("", None)})
            changes.append(Change("function", wanted.name, "create", fields, run=create))
            continue
        live_view = _function_view(live)
        # Variables of ours that the spec no longer sets are compared too (wanted: absent).
        stale = [key.removeprefix("env ") for key in live_view if key.startswith("env ")]
        wanted_view = _function_view(_function_body(context, wanted, None), managed_env=stale)
        changed = diff(live_view, wanted_view)
        notes = []
        if live.get("url") and live["url"] != wanted.url:
            notes.append(f"served at {live['url']}, but the spec's audience is {wanted.url}")
        if not changed:
            changes.append(Change("function", wanted.name, "unchanged", notes=notes))
            continue
        mask = sorted(
            {_FUNCTION_MASK.get(c.key, "serviceConfig.environmentVariables") for c in changed}
        )
        redeploy = any(c.key == "source hash" for c in changed)
        if redeploy:
            mask = sorted({*mask, "buildConfig.source"})

        def patch(
            wanted: specs.FunctionDeploy = wanted,
            mask: list[str] = mask,
            redeploy: bool = redeploy,
            name: str = name,
        ) -> None:
            source = _upload_source(context) if redeploy else None
            body = _function_body(context, wanted, source)
            operation = send(
                context, functions.patch(name=name, updateMask=",".join(mask), body=body)
            )
            _functions_operation(context, operation)

        if redeploy:
            notes.append("new source: uploaded and rebuilt")
        changes.append(Change("function", wanted.name, "update", changed, notes, patch))
    return changes


def stage_run_services(context: Context) -> list[Change]:
    functions = context.clients.functions.projects().locations().functions()
    services = context.clients.run.projects().locations().services()
    operations = context.clients.run.projects().locations().operations()
    changes = []
    for wanted in context.spec.functions:
        function = read_or_none(
            context, functions.get(name=f"{context.location}/functions/{wanted.name}")
        )
        service = dig(function, "serviceConfig.service")
        if not service:
            changes.append(
                Change(
                    "cloud run service",
                    f"{wanted.name} (created with its function)",
                    "update",
                    [FieldChange("invokerIamDisabled", None, True)],
                )
            )
            continue
        live = read_or_none(context, services.get(name=service)) or {}
        if live.get("invokerIamDisabled") is True:
            changes.append(Change("cloud run service", service, "unchanged"))
        else:

            def disable(service: str = service) -> None:
                operation = send(
                    context,
                    services.patch(
                        name=service,
                        updateMask="invokerIamDisabled",
                        body={"invokerIamDisabled": True},
                    ),
                )
                wait_operation(context, operation, lambda name: operations.get(name=name))

            changes.append(
                Change(
                    "cloud run service",
                    service,
                    "update",
                    [
                        FieldChange(
                            "invokerIamDisabled", live.get("invokerIamDisabled", False), True
                        )
                    ],
                    ["the code verifies every token itself (ARCHITECTURE.md, TokenVerifier)"],
                    disable,
                )
            )

        def read(service: str = service) -> Mapping[str, Any] | None:
            return read_or_none(context, services.getIamPolicy(resource=service))

        def write(policy: dict[str, Any], service: str = service) -> Any:
            return services.setIamPolicy(resource=service, body={"policy": policy}).execute()

        changes.append(
            policy_change(
                context, "cloud run service", service, read, write, {}, forbidden=FORBIDDEN_INVOKERS
            )
        )
    return changes
