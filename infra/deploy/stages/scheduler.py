"""Cloud Scheduler jobs, through google-cloud-scheduler's REST transport."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    Context,
)
from infra.deploy.model import (
    Change,
    diff,
    seconds,
)


def _scheduler_job(context: Context, wanted: specs.SchedulerJob) -> Any:
    from google.cloud import scheduler_v1

    target: dict[str, Any] = {
        "uri": wanted.uri,
        "http_method": scheduler_v1.HttpMethod.POST,
        "headers": dict(wanted.headers),
        "body": wanted.body.encode("utf-8"),
    }
    if wanted.oidc_service_account:
        target["oidc_token"] = {
            "service_account_email": wanted.oidc_service_account,
            "audience": wanted.oidc_audience,
        }
    else:
        target["oauth_token"] = {
            "service_account_email": wanted.oauth_service_account,
            "scope": wanted.oauth_scope,
        }
    retry = wanted.retry
    return scheduler_v1.Job(
        name=f"{context.location}/jobs/{wanted.name}",
        description=wanted.description,
        schedule=wanted.schedule,
        time_zone=wanted.time_zone,
        http_target=target,
        retry_config={
            "retry_count": retry.retry_count,
            "max_retry_duration": timedelta(seconds=retry.max_retry_duration_s),
            "min_backoff_duration": timedelta(seconds=retry.min_backoff_s),
            "max_backoff_duration": timedelta(seconds=retry.max_backoff_s),
            "max_doublings": retry.max_doublings,
        },
        attempt_deadline=timedelta(seconds=wanted.attempt_deadline_s),
    )


def _job_view(job: Any, header_names: Iterable[str]) -> dict[str, Any]:
    target = job.http_target
    retry = job.retry_config
    view: dict[str, Any] = {
        "description": job.description,
        "schedule": job.schedule,
        "time zone": job.time_zone or "UTC",
        "uri": target.uri,
        "method": int(target.http_method) or 1,
        "body": bytes(target.body).decode("utf-8", "replace"),
        "oidc identity": target.oidc_token.service_account_email,
        "oidc audience": target.oidc_token.audience,
        "oauth identity": target.oauth_token.service_account_email,
        "oauth scope": target.oauth_token.scope,
        "retry count": retry.retry_count,
        "retry max duration s": seconds(retry.max_retry_duration),
        "retry min backoff s": seconds(retry.min_backoff_duration),
        "retry max backoff s": seconds(retry.max_backoff_duration),
        "retry max doublings": retry.max_doublings,
        "attempt deadline s": seconds(job.attempt_deadline),
    }
    for header in sorted(header_names):
        view[f"header {header}"] = dict(target.headers).get(header)
    return view


_JOB_MASK = {
    "description": "description",
    "schedule": "schedule",
    "time zone": "time_zone",
    "attempt deadline s": "attempt_deadline",
}


def stage_scheduler_jobs(context: Context) -> list[Change]:
    from google.api_core import exceptions as api_exceptions

    client = context.clients.scheduler
    changes = []
    for wanted in context.spec.scheduler_jobs:
        job = _scheduler_job(context, wanted)
        wanted_view = _job_view(job, wanted.headers)
        try:
            live = client.get_job(name=job.name)
        except api_exceptions.NotFound:
            live = None
        if live is None:

            def create(job: Any = job) -> None:
                client.create_job(parent=context.location, job=job)

            shown = {k: v for k, v in wanted_view.items() if v not in ("", 0, 0.0)}
            changes.append(
                Change("scheduler job", wanted.name, "create", diff(None, shown), run=create)
            )
            continue
        changed = diff(_job_view(live, wanted.headers), wanted_view)
        if not changed:
            changes.append(Change("scheduler job", wanted.name, "unchanged"))
            continue
        mask = sorted(
            {
                _JOB_MASK.get(c.key)
                or ("retry_config" if c.key.startswith("retry") else "http_target")
                for c in changed
            }
        )

        def update(job: Any = job, mask: list[str] = mask) -> None:
            client.update_job(job=job, update_mask={"paths": mask})

        changes.append(Change("scheduler job", wanted.name, "update", changed, run=update))
    return changes
