"""watch_renew: Cloud Scheduler, daily (the local ticker on one machine).

Input: the scheduler identity's OIDC token. Side effects: ``users.watch`` on every active
mailbox (Gmail drops a watch after 7 days and recommends renewing daily); the expiration is
kept in the mailbox's sync state. A mailbox that fails is logged under ``watch_failed`` and the
others still renew. Retries: Cloud Scheduler's; renewing twice is harmless.
"""

from __future__ import annotations

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared import wiring
from shared.domain.models import Caller, ServiceRole
from shared.services import watch
from shared.web import guarded, json_response


@functions_framework.http
@guarded("watch_renew", {ServiceRole.SCHEDULER}, verifier=wiring.verifier)
def watch_renew(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    topic = wiring.get_settings().gmail_watch_topic
    renewed, failed = watch.renew_watches(wiring.store(), wiring.gmail_for, topic=topic)
    return json_response({"renewed": renewed, "failed": failed})
