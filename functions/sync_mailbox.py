"""sync_mailbox: push delivery of one message from the sync-requests topic.

Input: a Pub/Sub push envelope whose data is ``{"account_id": ...}``; the push identity's OIDC
token (audience = this function's URL).
Side effects: one bounded sync run of that mailbox under a create-if-absent lease.
Retries: any 2xx acks. 204 also for what a retry cannot fix (a bad, oversize or hostile envelope,
an unknown or paused mailbox, a run already holding the mailbox), logged with the reason; a 5xx
(raised RetryableError) makes Pub/Sub redeliver.
"""

from __future__ import annotations

import logging
import uuid

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared import lifecycle, wiring
from shared.domain.models import Caller, ServiceRole
from shared.domain.pubsub import decode_push_envelope
from shared.errors import BadRequestError, TooLargeError
from shared.services import sync
from shared.web import guarded, json_response, read_json

logger = logging.getLogger(__name__)


@functions_framework.http
@guarded("sync_mailbox", {ServiceRole.PUBSUB_PUSH}, verifier=wiring.verifier)
def sync_mailbox(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    try:
        request_ = sync.SyncRequest.from_message(decode_push_envelope(read_json(request)))
    except (BadRequestError, TooLargeError) as exc:
        logger.warning(
            "sync request dropped",
            extra={"fields": {"event": "sync_dropped", "reason": exc.message}},
        )
        return "", 204
    outcome = sync.run_sync(
        wiring.store(),
        request_,
        gmail_for=wiring.gmail_for,
        queue=wiring.queue(),
        now=wiring.clock().now(),
        run_id=uuid.uuid4().hex,
        clock=lifecycle.run_clock,
    )
    if not outcome.ran:
        logger.info(
            "sync run skipped",
            extra={
                "fields": {
                    "event": "sync_skipped",
                    "mailbox": outcome.account_id,
                    "reason": outcome.reason,
                }
            },
        )
        return "", 204
    report = outcome.result.report if outcome.result else None
    return json_response(
        {
            "account_id": outcome.account_id,
            "ran": True,
            "outcome": outcome.reason,
            "captured": report.captured if report else 0,
            "matched": report.matched if report else 0,
        }
    )
