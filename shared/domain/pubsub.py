"""Pub/Sub push envelopes: the JSON body a push subscription POSTs to a function.

``{"message": {"data": <base64 JSON>, "messageId", "publishTime", "attributes"}, "subscription"}``.
Google's documents disagree on whether ``data`` is base64 or base64url (FACTS.md), so decoding
accepts both. The data is parsed as untrusted JSON (``shared.domain.untrusted_json``): nesting
bounded, lone surrogates refused, so a hostile message is a bad envelope (acknowledged, dropped),
never a crash that Pub/Sub would redeliver.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain.untrusted_json import parse_untrusted_json
from shared.errors import BadRequestError


def encode_push_envelope(
    message: Mapping[str, Any], *, message_id: str, subscription: str, published_at: datetime
) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(dict(message)).encode("utf-8")).decode("ascii")
    return {
        "message": {
            "data": data,
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": published_at.isoformat().replace("+00:00", "Z"),
            "attributes": {},
        },
        "subscription": subscription,
    }


def decode_push_envelope(body: Any) -> dict[str, Any]:
    """The JSON object a push delivery carries; BadRequestError if it is not one.

    A bad envelope is not worth redelivering: callers answer it with a 2xx after logging.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("message"), Mapping):
        raise BadRequestError("not a Pub/Sub push envelope")
    data = body["message"].get("data")
    if not isinstance(data, str) or not data:
        raise BadRequestError("push message has no data")
    padded = data + "=" * (-len(data) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError("push message data is not base64 JSON") from exc
    try:
        decoded = parse_untrusted_json(raw)
    except BadRequestError as exc:
        raise BadRequestError(f"push message data: {exc.message}") from None
    if not isinstance(decoded, dict):
        raise BadRequestError("push message data is not a JSON object")
    return decoded
