"""Background jobs (admins only): the progress of a re-match queued by a CRM or exclusion change."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import flask
from pydantic import Field

from functions.admin.schemas import ApiModel
from functions.admin_api import api
from shared import wiring
from shared.domain.models import Caller
from shared.services import crm
from shared.web import ADMINS

SHOWN_KEYS = 100


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class JobProgress(ApiModel):
    """A re-match job: the mail its addresses and domains find, examined page by page."""

    job_id: str
    kind: str = "rematch"
    state: JobState
    reason: str
    requested_by: str
    address_count: int
    domain_count: int
    addresses: list[str] = Field(description=f"The first {SHOWN_KEYS} addresses, sorted.")
    domains: list[str] = Field(description=f"The first {SHOWN_KEYS} domains, sorted.")
    passes: int = Field(description="Passes over the keys (a pass takes up to 300 of them).")
    current_pass: int = Field(description="The pass running (0-based).")
    done: int = Field(description="Emails examined (one found in two passes counts twice).")
    linked: int = Field(description="Emails that became linked to an investor.")
    unlinked: int = Field(description="Links removed.")
    bodies_fetched: int = Field(description="Bodies fetched from Gmail for newly linked mail.")
    created_at: datetime
    updated_at: datetime


@api.route("GET", "/jobs/<job_id>", roles=ADMINS, response=JobProgress, tag="jobs")
def get_job(request: flask.Request, caller: Caller, job_id: str) -> JobProgress:
    """A job's progress: queued, running or done, with its counts."""
    guard = crm.get_job(wiring.store(), job_id)
    data = guard.data
    addresses = [str(a) for a in data.get("addresses", [])]
    domains = [str(d) for d in data.get("domains", [])]
    state = guard.state if guard.state in set(JobState) else JobState.RUNNING
    return JobProgress(
        job_id=job_id,
        state=JobState(state),
        reason=str(data.get("reason", "")),
        requested_by=guard.owner,
        address_count=len(addresses),
        domain_count=len(domains),
        addresses=addresses[:SHOWN_KEYS],
        domains=domains[:SHOWN_KEYS],
        passes=int(data.get("passes", 1)),
        current_pass=int(data.get("pass", 0)),
        done=int(data.get("done", 0)),
        linked=int(data.get("linked", 0)),
        unlinked=int(data.get("unlinked", 0)),
        bodies_fetched=int(data.get("bodies_fetched", 0)),
        created_at=guard.created_at,
        updated_at=guard.updated_at,
    )
