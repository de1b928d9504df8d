"""A loopback stand-in for the two Firestore Admin REST reads ``doctor`` makes.

The Firestore emulator has no admin API (it serves any query without an index), so whether the
production database exists and its composite indexes are built is checked against this instead:
``GET /v1/projects/{p}/databases/{db}`` and ``GET .../collectionGroups/-/indexes``, answered as
Firestore does (index names ``.../collectionGroups/<group>/indexes/<id>``, an implicit
``__name__`` field last, a ``state``), paged two indexes at a time so the client must follow
``nextPageToken``.

By default the database exists and serves every index of ``infra/firestore.indexes.json``,
``READY``; :meth:`drop`, :meth:`set_state` and ``database_exists`` inject the faults.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.loopback import LoopbackServer
from shared.adapters.firestore.indexes import Index, load_indexes

PAGE_SIZE = 2


class FirestoreAdminStandIn(LoopbackServer):
    thread_name = "firestore-admin-stand-in"

    def __init__(
        self,
        *,
        project: str = "sandbox-project",
        database: str = "(default)",
        indexes: Iterable[Index] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.project = project
        self.database = database
        self.database_exists = True
        self._lock = threading.Lock()
        self._indexes: list[tuple[Index, str]] = [
            (index, "READY") for index in (load_indexes() if indexes is None else indexes)
        ]

    @property
    def database_path(self) -> str:
        return f"projects/{self.project}/databases/{self.database}"

    def drop(self, collection_group: str) -> Index:
        """Remove the first index of ``collection_group``; returns it."""
        with self._lock:
            for position, (index, _) in enumerate(self._indexes):
                if index.collection_group == collection_group:
                    del self._indexes[position]
                    return index
        raise KeyError(collection_group)

    def set_state(self, collection_group: str, state: str) -> Index:
        with self._lock:
            for position, (index, _) in enumerate(self._indexes):
                if index.collection_group == collection_group:
                    self._indexes[position] = (index, state)
                    return index
        raise KeyError(collection_group)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path.removeprefix("/v1/")
        if request.method != "GET":
            response = _error(405, "METHOD_NOT_ALLOWED", "read-only stand-in")
        elif not path.startswith(self.database_path) or not self.database_exists:
            response = _error(404, "NOT_FOUND", f"The database {path} does not exist.")
        elif path == self.database_path:
            response = _json({"name": self.database_path, "type": "FIRESTORE_NATIVE"})
        elif path == f"{self.database_path}/collectionGroups/-/indexes":
            response = self._list(int(request.args.get("pageToken") or 0))
        else:
            response = _error(404, "NOT_FOUND", f"Method not found: {request.path}")
        return response(environ, start_response)

    def _list(self, start: int) -> Response:
        with self._lock:
            page = self._indexes[start : start + PAGE_SIZE]
            more = start + PAGE_SIZE < len(self._indexes)
        body: dict[str, Any] = {
            "indexes": [
                {
                    "name": f"{self.database_path}/collectionGroups/{index.collection_group}"
                    f"/indexes/ix{start + offset}",
                    "queryScope": index.query_scope,
                    "fields": [
                        *index.to_json()["fields"],
                        {"fieldPath": "__name__", "order": "ASCENDING"},
                    ],
                    "state": state,
                }
                for offset, (index, state) in enumerate(page)
            ]
        }
        if more:
            body["nextPageToken"] = str(start + PAGE_SIZE)
        return _json(body)


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=200, mimetype="application/json")


def _error(code: int, status: str, message: str) -> Response:
    body = {"error": {"code": code, "message": message, "status": status}}
    return Response(json.dumps(body), status=code, mimetype="application/json")
