"""Firestore's admin surface, read-only: does the database exist, which composite indexes serve.

Only ``doctor`` uses it: production refuses a query whose composite index is missing or still
building, and that shows up as a failing function long after deploy. The Firestore emulator has
no admin API, so tests point ``CRM_FIRESTORE_ADMIN_ENDPOINT`` at a loopback stand-in. The REST
client is google-api-python-client's bundled ``firestore v1`` discovery document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.adapters.firestore.indexes import Direction, Index, IndexField

SCOPE_DATASTORE = "https://www.googleapis.com/auth/datastore"


class FirestoreAdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServingIndex:
    index: Index
    state: str


class FirestoreAdmin:
    def __init__(
        self, credentials: Any, project: str, database: str, *, endpoint: str = ""
    ) -> None:
        import google_auth_httplib2
        import httplib2
        from googleapiclient.discovery import build

        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=15))
        self._service = build(
            "firestore",
            "v1",
            http=http,
            client_options={"api_endpoint": endpoint} if endpoint else None,
            static_discovery=True,
            cache_discovery=False,
        )
        self.database_path = f"projects/{project}/databases/{database}"

    def database(self) -> dict[str, Any]:
        return self._run(self._service.projects().databases().get(name=self.database_path))

    def indexes(self) -> list[ServingIndex]:
        """Every composite index of the database, with its state (``READY``, ``CREATING``...)."""
        groups = self._service.projects().databases().collectionGroups().indexes()
        found: list[ServingIndex] = []
        token = None
        while True:
            answer = self._run(
                groups.list(parent=f"{self.database_path}/collectionGroups/-", pageToken=token)
            )
            for entry in answer.get("indexes") or []:
                parsed = _parse(entry)
                if parsed is not None:
                    found.append(parsed)
            token = answer.get("nextPageToken")
            if not token:
                return found

    @staticmethod
    def _run(request: Any) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        try:
            answer = request.execute(num_retries=0)
        except HttpError as exc:
            raise FirestoreAdminError(exc.resp.status, f"HTTP {exc.resp.status}") from None
        except OSError as exc:
            raise FirestoreAdminError(0, type(exc).__name__) from None
        return answer if isinstance(answer, dict) else {}


def _parse(entry: dict[str, Any]) -> ServingIndex | None:
    """The API's index (``name`` .../collectionGroups/<group>/indexes/<id>, fields ending with
    ``__name__``, which every index carries implicitly) as the declared file spells it."""
    name = str(entry.get("name", ""))
    parts = name.split("/")
    if "collectionGroups" not in parts:
        return None
    group = parts[parts.index("collectionGroups") + 1]
    fields = []
    for field in entry.get("fields") or []:
        path = field.get("fieldPath", "")
        if path == "__name__":
            continue
        if "order" in field:
            fields.append(IndexField(field_path=path, order=Direction(field["order"])))
        elif field.get("arrayConfig"):
            fields.append(IndexField(field_path=path, array_config=field["arrayConfig"]))
    index = Index(
        collection_group=group,
        fields=tuple(fields),
        query_scope=str(entry.get("queryScope", "COLLECTION")),
    )
    return ServingIndex(index=index, state=str(entry.get("state", "")))
