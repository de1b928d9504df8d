"""gmail_push: a Pub/Sub push delivery of a Gmail ``users.watch`` notification.

Input: a push envelope whose data is ``{"emailAddress", "historyId"}`` (base64 or base64url);
the push identity's OIDC token (audience = this function's URL).
Side effects: one sync request for that mailbox on the sync-requests topic. The notification's
historyId is not used: the sync reads history from the mailbox's *stored* history id.
Retries: 204 for success and for what a retry cannot fix (an undecodable, oversize or hostile
payload, an unknown or paused mailbox), logged with the reason; 5xx only for transient failures,
which Pub/Sub redelivers.
"""

from __future__ import annotations

import logging

import flask
import functions_framework
from flask.typing import ResponseReturnValue

from shared import wiring
from shared.domain.models import Caller, ServiceRole
from shared.domain.pubsub import decode_push_envelope
from shared.errors import BadRequestError, TooLargeError
from shared.services import sync
from shared.web import guarded, read_json

logger = logging.getLogger(__name__)


@functions_framework.http
@guarded("gmail_push", {ServiceRole.PUBSUB_PUSH}, verifier=wiring.verifier)
def gmail_push(request: flask.Request, caller: Caller) -> ResponseReturnValue:
    try:
        notification = decode_push_envelope(read_json(request))
        address = notification.get("emailAddress")
        if not isinstance(address, str) or "@" not in address:
            raise BadRequestError("notification without emailAddress")
    except (BadRequestError, TooLargeError) as exc:
        logger.warning(
            "gmail push dropped", extra={"fields": {"event": "push_dropped", "reason": exc.message}}
        )
        return "", 204
    account_id = sync.request_sync_of_address(wiring.store(), wiring.queue(), address)
    if account_id is None:
        logger.warning(
            "gmail push for an unknown or paused mailbox",
            extra={"fields": {"event": "push_dropped", "mailbox": address.lower()}},
        )
    return "", 204
