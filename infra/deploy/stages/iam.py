"""Service accounts and the grants on them and on the project."""

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
    FieldChange,
)


def stage_service_accounts(context: Context) -> list[Change]:
    iam = context.clients.iam
    changes = []
    for account in context.spec.service_accounts:
        name = f"projects/{context.project}/serviceAccounts/{account.email}"
        live = read_or_none(context, iam.projects().serviceAccounts().get(name=name))
        if live is not None:
            changes.append(Change("service account", account.email, "unchanged"))
            continue

        def run(account: specs.ServiceAccount = account) -> None:
            body = {
                "accountId": account.account_id,
                "serviceAccount": {
                    "displayName": account.display_name,
                    "description": account.description,
                },
            }
            send(
                context,
                iam.projects()
                .serviceAccounts()
                .create(name=f"projects/{context.project}", body=body),
            )

        changes.append(
            Change(
                "service account",
                account.email,
                "create",
                fields=[FieldChange("displayName", None, account.display_name)],
                run=run,
            )
        )
    return changes


def stage_project_iam(context: Context) -> list[Change]:
    projects = context.clients.resource_manager.projects()
    resource = f"projects/{context.project}"

    def read() -> Mapping[str, Any] | None:
        body = {"options": {"requestedPolicyVersion": 3}}
        return read_or_none(context, projects.getIamPolicy(resource=resource, body=body))

    def write(policy: dict[str, Any]) -> Any:
        return projects.setIamPolicy(resource=resource, body={"policy": policy}).execute()

    wanted = context.spec.project_roles
    return [policy_change(context, "project", resource, read, write, wanted)]


def stage_service_account_iam(context: Context) -> list[Change]:
    accounts = context.clients.iam.projects().serviceAccounts()
    changes = []
    for account in context.spec.service_accounts:
        resource = f"projects/{context.project}/serviceAccounts/{account.email}"

        def read(resource: str = resource) -> Mapping[str, Any] | None:
            return read_or_none(context, accounts.getIamPolicy(resource=resource))

        def write(policy: dict[str, Any], resource: str = resource) -> Any:
            return accounts.setIamPolicy(resource=resource, body={"policy": policy}).execute()

        wanted = {specs.ROLE_TOKEN_CREATOR: account.token_creators}
        changes.append(
            policy_change(context, "service account", account.email, read, write, wanted)
        )
    return changes
