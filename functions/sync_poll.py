"""sync_poll: Cloud Scheduler (every 5 minutes; the local ticker on one machine).

Input: any body; the scheduler identity's OIDC token (audience = this function's URL).
Side effects: one message per active mailbox on the sync-requests topic (its run also does the
coverage check); an ERROR line (event ``mailbox_behind``) per mailbox with no success for 30 min,
and one (event ``watch_expired``) per mailbox whose Gmail watch has lapsed.
Retries: Cloud Scheduler's retry config; publishing twice is harmless (runs are leased).
"""

from __future__ import annotations

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared import wiring
from shared.domain.models import Caller, ServiceRole
from shared.services import sync, watch_health
from shared.web import guarded, json_response


@functions_framework.http
@guarded("sync_poll", {ServiceRole.SCHEDULER}, verifier=wiring.verifier)
def sync_poll(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    store = wiring.store()
    now = wiring.clock().now()
    behind = sync.report_lagging_mailboxes(store, now)
    expired = watch_health.report_expired_watches(store, now)
    requested = sync.request_sync_of_active_mailboxes(store, wiring.queue())
    return json_response({"requested": requested, "behind": behind, "watch_expired": expired})
