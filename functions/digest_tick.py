"""digest_tick: Cloud Scheduler every 15 minutes (the local ticker on one machine).

Input: the scheduler identity's OIDC token. Side effects: at most one digest per local day to
the active admins, when the stored policy says it is enabled and the send hour has come in the
fund's time zone; the day's guard and the cursor in app settings (see
``shared.services.digest_schedule``). Retries: a failed day is retried by later ticks (3
attempts); the reply is 200 either way, so Cloud Scheduler does not double-send.
"""

from __future__ import annotations

import uuid

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared import wiring
from shared.domain.models import Caller, ServiceRole
from shared.web import guarded, json_response


@functions_framework.http
@guarded("digest_tick", {ServiceRole.SCHEDULER}, verifier=wiring.verifier)
def digest_tick(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    from shared.services import digest_schedule

    settings = wiring.get_settings()
    runtime = wiring.digest_runtime()
    outcome = digest_schedule.tick(
        runtime,
        now=wiring.clock().now(),
        time_zone=settings.fund_time_zone,
        policy=digest_schedule.load_policy(
            runtime.store,
            env_enabled=settings.digest_enabled,
            env_send_hour=settings.digest_send_hour,
        ),
        run_id=uuid.uuid4().hex,
    )
    return json_response(
        {"sent": outcome.sent, "reason": outcome.reason, "local_date": outcome.local_date}
    )
