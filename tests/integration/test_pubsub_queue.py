"""The cloud queue adapter: publishing over Pub/Sub's REST API, against a loopback stand-in."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from shared.adapters.queue import PubSubQueue
from shared.errors import RetryableError


class PubSubStandIn:
    """Answers ``POST /v1/projects/{p}/topics/{t}:publish`` as Pub/Sub does, and records it."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: int | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if self.fail_with is not None:
            response = Response('{"error": {"code": 503}}', status=self.fail_with)
        elif request.method == "POST" and request.path.endswith(":publish"):
            body = request.get_json()
            self.published.append((request.path, body))
            ids = [str(len(self.published))] * len(body["messages"])
            response = Response(json.dumps({"messageIds": ids}), mimetype="application/json")
        else:
            response = Response("{}", status=404)
        return response(environ, start_response)


@pytest.fixture
def pubsub() -> Iterator[tuple[PubSubStandIn, str]]:
    app = PubSubStandIn()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_publish_sends_base64_json_to_the_topic(pubsub: tuple[PubSubStandIn, str]) -> None:
    app, endpoint = pubsub
    queue = PubSubQueue("fund-crm", endpoint=endpoint, credentials=AnonymousCredentials())

    message_id = queue.publish("sync-requests", {"account_id": "a_1"})

    assert message_id == "1"
    path, body = app.published[0]
    assert path == "/v1/projects/fund-crm/topics/sync-requests:publish"
    assert json.loads(base64.b64decode(body["messages"][0]["data"])) == {"account_id": "a_1"}


def test_a_failed_publish_is_retryable(pubsub: tuple[PubSubStandIn, str]) -> None:
    app, endpoint = pubsub
    app.fail_with = 503
    queue = PubSubQueue("fund-crm", endpoint=endpoint, credentials=AnonymousCredentials())
    with pytest.raises(RetryableError):
        queue.publish("sync-requests", {"account_id": "a_1"})
