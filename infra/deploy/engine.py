"""Plan and apply: compare the live project with the spec, stage by stage, and converge it.

Each stage reads one kind of resource, compares it with the spec through a view (``model``)
and returns a :class:`~infra.deploy.model.Change` per resource, carrying the calls that would
converge it. ``plan`` runs every stage and only reads. ``apply`` runs a stage's changes before
reading the next stage, in dependency order: accounts before the grants naming them, topics
before the subscriptions on them, functions before their Cloud Run services, subscriptions and
jobs. Every change is idempotent and only sent when its view differs, so a second ``apply``
reads and sends nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from infra.deploy.common import Context, DeployError, read_project_number
from infra.deploy.model import Change
from infra.deploy.stages import (
    firestore,
    functions,
    iam,
    monitoring,
    pubsub,
    scheduler,
    secrets,
    storage,
)

__all__ = ["STAGES", "Context", "DeployError", "apply", "dumps", "plan", "read_project_number"]

Stage = Callable[[Context], list[Change]]


def plan(context: Context) -> list[Change]:
    """Every change ``apply`` would make, read from the live project; sends no mutation."""
    changes: list[Change] = []
    for stage in STAGES:
        changes += stage(context)
    return changes


def apply(context: Context) -> list[Change]:
    """Converge the project, stage by stage; returns every change found (applied or not)."""
    done: list[Change] = []
    for stage in STAGES:
        for change in stage(context):
            if change.changes_anything and change.run is not None:
                symbol = "+" if change.action == "create" else "~"
                context.out(f"{symbol} {change.kind} {change.name}")
                change.run()
            done.append(change)
    return done


STAGES: tuple[Stage, ...] = (
    iam.stage_service_accounts,
    iam.stage_project_iam,
    iam.stage_service_account_iam,
    secrets.stage_secrets,
    firestore.stage_firestore_database,
    firestore.stage_firestore_indexes,
    firestore.stage_field_overrides,
    storage.stage_bucket,
    pubsub.stage_topics,
    functions.stage_functions,
    functions.stage_run_services,
    pubsub.stage_subscriptions,
    scheduler.stage_scheduler_jobs,
    monitoring.stage_notification_channels,
    monitoring.stage_alert_policies,
)


def dumps(changes: list[Change]) -> str:
    """The plan as JSON (``plan --json``), for a reviewer's tooling."""
    return json.dumps(
        [
            {
                "kind": c.kind,
                "name": c.name,
                "action": c.action,
                "fields": [{"key": f.key, "before": f.before, "after": f.after} for f in c.fields],
                "notes": c.notes,
            }
            for c in changes
        ],
        indent=2,
        default=str,
    )
