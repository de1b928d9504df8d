"""rematch_job: push delivery of one message from the rematch-jobs topic.

Input: a push envelope whose data is ``{"job_id": ...}``; the push identity's OIDC token.
Side effects: links, unlinks, body fetches and proposals for the mail the job's addresses and
domains affect, with progress kept on the job record. Stops at ~70% of its timeout and queues
itself again. Retries: 204 for an unknown job or a bad envelope; 5xx (transient) redelivers.
"""

from __future__ import annotations

import logging
import time

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared import lifecycle, wiring
from shared.catalog import Topic, function_spec
from shared.domain.models import Caller, ServiceRole
from shared.domain.pubsub import decode_push_envelope
from shared.errors import BadRequestError, NotFoundError, TooLargeError
from shared.web import guarded, json_response, read_json

logger = logging.getLogger(__name__)


@functions_framework.http
@guarded("rematch_job", {ServiceRole.PUBSUB_PUSH}, verifier=wiring.verifier)
def rematch_job(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    from shared.services import rematch  # the capture code: paid only by this function

    try:
        job_id = str(decode_push_envelope(read_json(request)).get("job_id") or "")
        if not job_id:
            raise BadRequestError("re-match message without job_id")
        budget = function_spec("rematch_job").timeout_s * 0.7
        progress = rematch.run_rematch(
            wiring.store(),
            job_id,
            gmail_for=wiring.gmail_for,
            deadline=time.monotonic() + budget,
            clock=lifecycle.run_clock,
        )
    except (BadRequestError, TooLargeError, NotFoundError) as exc:
        logger.warning(
            "re-match message dropped",
            extra={"fields": {"event": "rematch_dropped", "reason": exc.message}},
        )
        return "", 204
    if progress["state"] != "done":
        wiring.queue().publish(Topic.REMATCH.value, {"job_id": job_id})
    return json_response(progress)
