"""One loopback HTTP server standing in for every Google Cloud API the deploy tool calls.

Google ships no emulator for Cloud Functions, Cloud Run Admin, IAM, Resource Manager, Cloud
Scheduler, Monitoring or Firestore's admin API, so ``python -m infra plan|apply`` is exercised
against this instead. It speaks the REST subset the tool sends, with Google's JSON shapes and
error envelope, so the real clients (google-api-python-client's discovery clients,
google-cloud-scheduler and google-cloud-secret-manager on their REST transports) run unchanged:

* resources kept in memory, created with ``POST``/``PUT`` and read with ``GET``; ``PATCH`` honours
  ``updateMask``; a create of something that exists is 409 ``ALREADY_EXISTS``;
* long-running operations (Cloud Functions, Cloud Run, Firestore) that report ``done`` on the
  first poll; Firestore indexes are ``CREATING`` until polled once, then ``READY``;
* ``generateUploadUrl`` and a ``PUT`` of the zip to the URL it returns; a function create or
  source update naming an object never uploaded is refused;
* IAM ``getIamPolicy``/``setIamPolicy`` with etags: a stale etag is 409 ``ABORTED`` (412 on Cloud
  Storage), and :meth:`CloudStandIn.interfere_once` plays a concurrent writer; a binding naming
  a service account of the project that does not exist is 400, as in production;
* server-filled fields a real API adds (Cloud Functions' ``LOG_EXECUTION_ID`` variable, Pub/Sub's
  default expiration, Firestore's ``__name__`` index field, proto3 JSON omitting empty values),
  so the tool's comparisons are tested against what it will really read.

Every request is recorded (:class:`RecordedRequest`); :attr:`RecordedRequest.mutation` is false
for reads, including the ``POST ...:getIamPolicy`` some APIs use, so a test can assert that a
second ``apply`` sent none.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from sandbox.loopback import LoopbackServer

Json = dict[str, Any]
_LEGACY_BUCKET_MEMBERS = ("projectOwner:", "projectEditor:", "projectViewer:")
Handler = Callable[["_Call"], Response]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int

    @property
    def mutation(self) -> bool:
        """Whether it asks for a change (reads, ``:getIamPolicy`` included, do not)."""
        if self.method == "GET":
            return False
        return not self.path.endswith((":getIamPolicy", ":testIamPermissions"))

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted(self.query.items()))
        return f"{self.method} {self.path}{'?' + query if query else ''} -> {self.status}"


class ApiError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass
class _Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    raw: bytes
    params: dict[str, str] = field(default_factory=dict)


class CloudStandIn(LoopbackServer):
    """Serves the stand-in APIs on ``127.0.0.1`` at an OS-chosen port (background thread).

    ``endpoint`` is the base URL every API is pointed at (``client_options.api_endpoint``);
    Cloud Storage's JSON API lives under ``<endpoint>/storage/v1/``, as at Google.
    """

    thread_name = "cloud-stand-in"

    def __init__(
        self,
        *,
        project: str = "crm-sandbox",
        project_number: str = "123456789012",
        host: str = "127.0.0.1",
    ) -> None:
        self.project = project
        self.project_number = project_number
        super().__init__(host=host)
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self.resources: dict[str, Json] = {}
        self.policies: dict[str, Json] = {}
        self.operations: dict[str, Json] = {}
        self._on_done: dict[str, Callable[[], None]] = {}
        self.uploads: dict[str, bytes] = {}
        self._interfere: set[str] = set()
        self._routes = self._route_table()

    # -- what tests look at ------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def mutations(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.mutation]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def interfere_once(self, policy_key: str, member: str, role: str) -> None:
        """Before the next ``setIamPolicy`` on ``policy_key``, another writer adds a binding.

        The tool's read-modify-write then holds a stale etag and must re-read and retry,
        keeping the other writer's binding. Keys: ``project``, or a resource path such as
        ``v1/projects/p/topics/t`` (what :meth:`policy` takes).
        """
        with self._lock:
            self._interfere.add(json.dumps([policy_key, member, role]))

    def policy(self, key: str) -> Json:
        with self._lock:
            return copy.deepcopy(
                self.policies.get(key, {"version": 1, "etag": "BwAAAA==", "bindings": []})
            )

    def members(self, key: str, role: str) -> set[str]:
        for binding in self.policy(key).get("bindings", []):
            if binding.get("role") == role and "condition" not in binding:
                return set(binding.get("members", []))
        return set()

    def add_secret_version(self, secret_id: str) -> None:
        """An operator adding a value (``gcloud secrets versions add``): plan stops warning."""
        with self._lock:
            key = f"v1/projects/{self.project}/secrets/{secret_id}"
            self.resources[key].setdefault("_versions", []).append("ENABLED")

    def seed_allusers_binding(self, service_path: str) -> None:
        """Give a Cloud Run service the ``allUsers`` invoker binding the tool must remove."""
        with self._lock:
            policy = self.policy(service_path)
            policy.setdefault("bindings", []).append(
                {"role": "roles/run.invoker", "members": ["allUsers"]}
            )
            policy["etag"] = self._etag()
            self.policies[service_path] = policy

    # -- HTTP --------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path.lstrip("/")
        query = {key: values[-1] for key, values in parse_qs(request.query_string.decode()).items()}
        raw = request.get_data()
        body: Any = None
        if raw and not path.startswith("upload/"):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        call = _Call(request.method, path, query, body, raw)
        try:
            response = self._dispatch(call)
        except ApiError as exc:
            response = _error(exc.code, exc.status, exc.message)
        recorded_body = {"bytes": len(raw)} if path.startswith("upload/") else body
        with self._lock:
            self._requests.append(
                RecordedRequest(request.method, path, query, recorded_body, response.status_code)
            )
        return response(environ, start_response)

    def _dispatch(self, call: _Call) -> Response:
        for method, pattern, handler in self._routes:
            if method != call.method:
                continue
            match = pattern.fullmatch(call.path)
            if match:
                call.params = match.groupdict()
                with self._lock:
                    return handler(call)
        raise ApiError(404, "NOT_FOUND", f"no stand-in route for {call.method} {call.path}")

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        seg = r"[^/:]+"
        loc = rf"v2/projects/(?P<project>{seg})/locations/(?P<region>{seg})"
        fs = rf"v1/projects/(?P<project>{seg})/databases/(?P<db>[^/:]+)"
        raw_routes: list[tuple[str, str, Handler]] = [
            # Resource Manager v3
            ("GET", rf"v3/projects/(?P<project>{seg})", self._get_project),
            ("POST", rf"v3/projects/(?P<project>{seg}):getIamPolicy", self._get_policy_project),
            ("POST", rf"v3/projects/(?P<project>{seg}):setIamPolicy", self._set_policy_project),
            # IAM v1
            ("POST", rf"v1/projects/(?P<project>{seg})/serviceAccounts", self._create_sa),
            ("GET", rf"v1/projects/{seg}/serviceAccounts/{seg}", self._get),
            ("POST", rf"v1/projects/{seg}/serviceAccounts/{seg}:getIamPolicy", self._get_policy),
            ("POST", rf"v1/projects/{seg}/serviceAccounts/{seg}:setIamPolicy", self._set_policy),
            # Secret Manager v1
            ("POST", rf"v1/projects/(?P<project>{seg})/secrets", self._create_secret),
            ("GET", rf"v1/projects/{seg}/secrets/{seg}", self._get_secret),
            ("GET", rf"v1/projects/{seg}/secrets/(?P<secret>{seg})/versions", self._list_versions),
            ("GET", rf"v1/projects/{seg}/secrets/{seg}:getIamPolicy", self._get_policy),
            ("POST", rf"v1/projects/{seg}/secrets/{seg}:setIamPolicy", self._set_policy),
            # Pub/Sub v1
            ("GET", rf"v1/projects/{seg}/(topics|subscriptions)/{seg}", self._get),
            ("PUT", rf"v1/projects/{seg}/topics/{seg}", self._create_topic),
            ("PUT", rf"v1/projects/{seg}/subscriptions/{seg}", self._create_subscription),
            ("PATCH", rf"v1/projects/{seg}/subscriptions/{seg}", self._patch_subscription),
            (
                "GET",
                rf"v1/projects/{seg}/(topics|subscriptions)/{seg}:getIamPolicy",
                self._get_policy,
            ),
            (
                "POST",
                rf"v1/projects/{seg}/(topics|subscriptions)/{seg}:setIamPolicy",
                self._set_policy,
            ),
            # Cloud Scheduler v1
            ("POST", rf"v1/projects/{seg}/locations/{seg}/jobs", self._create_job),
            ("GET", rf"v1/projects/{seg}/locations/{seg}/jobs/{seg}", self._get),
            ("PATCH", rf"v1/projects/{seg}/locations/{seg}/jobs/{seg}", self._patch_masked),
            # Cloud Functions v2 and Cloud Run v2 (their operations share one path shape)
            ("POST", rf"{loc}/functions:generateUploadUrl", self._upload_url),
            ("PUT", r"upload/(?P<token>[A-Za-z0-9]+)", self._upload),
            ("POST", rf"{loc}/functions", self._create_function),
            ("GET", rf"{loc}/functions/{seg}", self._get),
            ("PATCH", rf"{loc}/functions/{seg}", self._patch_function),
            ("GET", rf"{loc}/operations/(?P<op>{seg})", self._get_operation),
            ("GET", rf"{loc}/services/{seg}", self._get),
            ("PATCH", rf"{loc}/services/{seg}", self._patch_service),
            ("GET", rf"{loc}/services/{seg}:getIamPolicy", self._get_policy),
            ("POST", rf"{loc}/services/{seg}:setIamPolicy", self._set_policy),
            # Firestore admin v1
            ("POST", rf"v1/projects/(?P<project>{seg})/databases", self._create_database),
            ("GET", rf"{fs}", self._get),
            ("PATCH", rf"{fs}", self._patch_database),
            ("GET", rf"{fs}/collectionGroups/-/indexes", self._list_indexes),
            ("POST", rf"{fs}/collectionGroups/(?P<cg>{seg})/indexes", self._create_index),
            ("GET", rf"{fs}/collectionGroups/{seg}/indexes/{seg}", self._get_index),
            (
                "GET",
                rf"{fs}/collectionGroups/(?P<cg>{seg})/fields/(?P<field>{seg})",
                self._get_field,
            ),
            (
                "PATCH",
                rf"{fs}/collectionGroups/(?P<cg>{seg})/fields/(?P<field>{seg})",
                self._patch_field,
            ),
            ("GET", rf"{fs}/operations/(?P<op>{seg})", self._get_operation),
            # Cloud Storage JSON v1
            ("POST", r"storage/v1/b", self._create_bucket),
            ("GET", rf"storage/v1/b/{seg}", self._get),
            ("PATCH", rf"storage/v1/b/{seg}", self._patch_merge),
            ("GET", rf"storage/v1/b/(?P<bucket>{seg})/iam", self._get_bucket_policy),
            ("PUT", rf"storage/v1/b/(?P<bucket>{seg})/iam", self._set_bucket_policy),
            # Cloud Monitoring v3
            ("GET", rf"v3/projects/{seg}/(notificationChannels|alertPolicies)", self._list_kind),
            (
                "POST",
                rf"v3/projects/{seg}/(notificationChannels|alertPolicies)",
                self._create_numbered,
            ),
            ("PATCH", rf"v3/projects/{seg}/alertPolicies/{seg}", self._patch_masked),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in raw_routes]

    # -- generic resources ---------------------------------------------------------------------
    def _etag(self) -> str:
        return f"BwY{next(self._ids):05d}="

    def _require(self, key: str) -> Json:
        if key not in self.resources:
            raise ApiError(404, "NOT_FOUND", f"Resource '{key}' was not found")
        return self.resources[key]

    def _store_new(self, key: str, resource: Json) -> Json:
        if key in self.resources:
            raise ApiError(409, "ALREADY_EXISTS", f"Resource '{key}' already exists")
        self.resources[key] = resource
        return resource

    def _get(self, call: _Call) -> Response:
        return _json(_public(self._require(call.path)))

    def _patch_masked(self, call: _Call) -> Response:
        resource = self._require(call.path)
        _apply_mask(resource, call.body or {}, call.query.get("updateMask", ""))
        return _json(_public(resource))

    def _patch_merge(self, call: _Call) -> Response:
        resource = self._require(call.path)
        resource.update(call.body or {})
        return _json(_public(resource))

    def _operation(
        self, prefix: str, response: Json, on_done: Callable[[], None] | None = None
    ) -> Json:
        name = f"{prefix}/operations/op-{next(self._ids)}"
        operation = {"name": name, "done": False, "metadata": {}}
        self.operations[name] = {"name": name, "done": True, "response": response}
        if on_done is not None:
            self._on_done[name] = on_done
        return operation

    def _get_operation(self, call: _Call) -> Response:
        name = call.path.split("/", 1)[1]
        if name not in self.operations:
            raise ApiError(404, "NOT_FOUND", f"operation {name} not found")
        done = self._on_done.pop(name, None)
        if done is not None:
            done()
        return _json(self.operations[name])

    # -- IAM policies --------------------------------------------------------------------------
    def _policy_key(self, call: _Call) -> str:
        return call.path.rsplit(":", 1)[0]

    def _get_policy(self, call: _Call) -> Response:
        key = self._policy_key(call)
        if key not in self.resources:
            raise ApiError(404, "NOT_FOUND", f"Resource '{key}' was not found")
        return _json(self._policy_of(key))

    def _policy_of(self, key: str) -> Json:
        if key not in self.policies:
            self.policies[key] = {"version": 1, "etag": "ACAB", "bindings": []}
        return _public(self.policies[key])

    def _set_policy(self, call: _Call) -> Response:
        key = self._policy_key(call)
        if key not in self.resources:
            raise ApiError(404, "NOT_FOUND", f"Resource '{key}' was not found")
        return self._replace_policy(key, (call.body or {}).get("policy", {}), 409, "ABORTED")

    def _replace_policy(
        self, key: str, wanted: Json, code: int, status: str, *, bucket: bool = False
    ) -> Response:
        self._run_interference(key)
        current = self._policy_of(key)
        if wanted.get("etag") and wanted["etag"] != current["etag"]:
            raise ApiError(
                code,
                status,
                "There were concurrent policy changes. Please retry the whole read-modify-write "
                "with exponential backoff.",
            )
        for binding in wanted.get("bindings", []):
            for member in binding.get("members", []):
                # Buckets also hold legacy convenience members (``projectOwner:<project>``).
                if not (bucket and member.startswith(_LEGACY_BUCKET_MEMBERS)):
                    self._check_member(member)
        policy = {
            "version": wanted.get("version", 1),
            "etag": self._etag(),
            "bindings": [b for b in wanted.get("bindings", []) if b.get("members")],
        }
        self.policies[key] = policy
        return _json(_public(policy))

    def _run_interference(self, key: str) -> None:
        for entry in list(self._interfere):
            policy_key, member, role = json.loads(entry)
            if policy_key != key:
                continue
            self._interfere.discard(entry)
            policy = self._policy_of(key)
            policy.setdefault("bindings", []).append({"role": role, "members": [member]})
            policy["etag"] = self._etag()
            self.policies[key] = policy

    def _check_member(self, member: str) -> None:
        kind, _, email = member.partition(":")
        if kind not in {"serviceAccount", "user", "group", "domain"} and member not in {
            "allUsers",
            "allAuthenticatedUsers",
        }:
            raise ApiError(400, "INVALID_ARGUMENT", f"Invalid member '{member}'")
        suffix = f"@{self.project}.iam.gserviceaccount.com"
        if kind == "serviceAccount" and email.endswith(suffix):
            key = f"v1/projects/{self.project}/serviceAccounts/{email}"
            if key not in self.resources:
                raise ApiError(400, "INVALID_ARGUMENT", f"Service account {email} does not exist.")

    # -- Resource Manager ----------------------------------------------------------------------
    def _get_project(self, call: _Call) -> Response:
        if call.params["project"] != self.project:
            raise ApiError(403, "PERMISSION_DENIED", "The caller does not have permission")
        self.resources.setdefault(call.path, {})
        return _json(
            {
                "name": f"projects/{self.project_number}",
                "projectId": self.project,
                "state": "ACTIVE",
                "etag": "W/project",
            }
        )

    def _get_policy_project(self, call: _Call) -> Response:
        return _json(self._policy_of("project"))

    def _set_policy_project(self, call: _Call) -> Response:
        return self._replace_policy("project", (call.body or {}).get("policy", {}), 409, "ABORTED")

    # -- IAM service accounts ------------------------------------------------------------------
    def _create_sa(self, call: _Call) -> Response:
        body = call.body or {}
        account_id = body.get("accountId", "")
        if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", account_id):
            raise ApiError(400, "INVALID_ARGUMENT", f"invalid accountId '{account_id}'")
        email = f"{account_id}@{call.params['project']}.iam.gserviceaccount.com"
        details = body.get("serviceAccount", {})
        resource = {
            "name": f"projects/{call.params['project']}/serviceAccounts/{email}",
            "projectId": call.params["project"],
            "uniqueId": str(100000000000000000000 + next(self._ids)),
            "email": email,
            "displayName": details.get("displayName", ""),
            "description": details.get("description", ""),
            "oauth2ClientId": str(200000000000000000000 + next(self._ids)),
        }
        self._store_new(f"{call.path}/{email}", resource)
        return _json(resource)

    # -- Secret Manager ------------------------------------------------------------------------
    def _create_secret(self, call: _Call) -> Response:
        secret_id = call.query.get("secretId", "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", secret_id):
            raise ApiError(400, "INVALID_ARGUMENT", "invalid secretId")
        body = call.body or {}
        if "replication" not in body:
            raise ApiError(400, "INVALID_ARGUMENT", "Secret.replication is required")
        resource = {
            "name": f"projects/{self.project_number}/secrets/{secret_id}",
            "replication": body["replication"],
            "createTime": "2026-01-01T00:00:00Z",
            "labels": body.get("labels", {}),
            "etag": '"1"',
        }
        self._store_new(f"{call.path}/{secret_id}", resource)
        return _json(resource)

    def _get_secret(self, call: _Call) -> Response:
        return _json(_public(self._require(call.path)))

    def _list_versions(self, call: _Call) -> Response:
        secret = self._require(call.path.rsplit("/", 1)[0])
        states = secret.get("_versions", [])
        wanted = call.query.get("filter", "")
        versions = [
            {"name": f"{secret['name']}/versions/{n}", "state": state}
            for n, state in enumerate(states, start=1)
            if not wanted or wanted == f"state:{state}"
        ]
        return _json({"versions": versions, "totalSize": len(versions)} if versions else {})

    # -- Pub/Sub -------------------------------------------------------------------------------
    def _create_topic(self, call: _Call) -> Response:
        resource = {"name": call.path.removeprefix("v1/")}
        resource.update({k: v for k, v in (call.body or {}).items() if k != "name"})
        self._store_new(call.path, resource)
        return _json(resource)

    def _create_subscription(self, call: _Call) -> Response:
        body = dict(call.body or {})
        self._check_subscription(body)
        resource: Json = {
            "name": call.path.removeprefix("v1/"),
            "ackDeadlineSeconds": 10,
            "messageRetentionDuration": "604800s",
            "expirationPolicy": {"ttl": "2678400s"},
            "state": "ACTIVE",
        }
        resource.update({k: v for k, v in body.items() if k != "name"})
        self._store_new(call.path, resource)
        return _json(resource)

    def _check_subscription(self, body: Json) -> None:
        topic = body.get("topic", "")
        if f"v1/{topic}" not in self.resources:
            raise ApiError(404, "NOT_FOUND", f"Resource not found (resource={topic}).")
        dead_letter = body.get("deadLetterPolicy", {}).get("deadLetterTopic")
        if dead_letter and f"v1/{dead_letter}" not in self.resources:
            raise ApiError(404, "NOT_FOUND", f"Resource not found (resource={dead_letter}).")
        oidc = body.get("pushConfig", {}).get("oidcToken", {}).get("serviceAccountEmail")
        if oidc:
            self._check_member(f"serviceAccount:{oidc}")

    def _patch_subscription(self, call: _Call) -> Response:
        resource = self._require(call.path)
        body = call.body or {}
        subscription = body.get("subscription", {})
        self._check_subscription({**resource, **subscription})
        _apply_mask(resource, subscription, body.get("updateMask", ""))
        return _json(_public(resource))

    # -- Cloud Scheduler -----------------------------------------------------------------------
    def _create_job(self, call: _Call) -> Response:
        job = dict(call.body or {})
        name = job.get("name", "")
        if not name.startswith(call.path.removeprefix("v1/") + "/"):
            raise ApiError(400, "INVALID_ARGUMENT", f"job name {name!r} is not under the parent")
        target = job.get("httpTarget", {})
        for token in ("oidcToken", "oauthToken"):
            email = target.get(token, {}).get("serviceAccountEmail")
            if email:
                self._check_member(f"serviceAccount:{email}")
        job.setdefault(
            "retryConfig",
            {
                "maxRetryDuration": "0s",
                "minBackoffDuration": "5s",
                "maxBackoffDuration": "3600s",
                "maxDoublings": 5,
            },
        )
        job.setdefault("attemptDeadline", "180s")
        job["state"] = "ENABLED"
        job["userUpdateTime"] = "2026-01-01T00:00:00Z"
        self._store_new(f"v1/{name}", job)
        return _json(job)

    # -- Cloud Functions and Cloud Run ---------------------------------------------------------
    def _upload_url(self, call: _Call) -> Response:
        token = f"u{next(self._ids)}"
        return _json(
            {
                "uploadUrl": f"{self.endpoint}/upload/{token}",
                "storageSource": {
                    "bucket": f"gcf-v2-uploads-{self.project_number}.{call.params['region']}",
                    "object": f"{token}.zip",
                },
            }
        )

    def _upload(self, call: _Call) -> Response:
        if not call.raw.startswith(b"PK"):
            raise ApiError(400, "INVALID_ARGUMENT", "the upload is not a zip archive")
        self.uploads[f"{call.params['token']}.zip"] = call.raw
        return Response(status=200)

    def _check_source(self, function: Json) -> None:
        source = function.get("buildConfig", {}).get("source", {}).get("storageSource", {})
        if source.get("object") not in self.uploads:
            raise ApiError(400, "INVALID_ARGUMENT", "buildConfig.source names no uploaded object")

    def _create_function(self, call: _Call) -> Response:
        function_id = call.query.get("functionId", "")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,62}", function_id):
            raise ApiError(400, "INVALID_ARGUMENT", f"invalid functionId {function_id!r}")
        function = copy.deepcopy(call.body or {})
        self._check_source(function)
        service_account = function.get("serviceConfig", {}).get("serviceAccountEmail", "")
        self._check_member(f"serviceAccount:{service_account}")
        project, region = call.params["project"], call.params["region"]
        name = f"projects/{project}/locations/{region}/functions/{function_id}"
        service_id = function_id.lower().replace("_", "-")
        service_name = f"projects/{project}/locations/{region}/services/{service_id}"
        function["name"] = name
        function["state"] = "ACTIVE"
        function["environment"] = "GEN_2"
        function["url"] = f"https://{region}-{project}.cloudfunctions.net/{function_id}"
        config = function.setdefault("serviceConfig", {})
        config["service"] = service_name
        config["uri"] = f"https://{service_id}-abc123-ew.a.run.app"
        config.setdefault("environmentVariables", {})["LOG_EXECUTION_ID"] = "true"
        config.setdefault("availableCpu", "0.1666")
        self._store_new(f"v2/{name}", function)
        self.resources.setdefault(
            f"v2/{service_name}", {"name": service_name, "uri": config["uri"]}
        )
        return _json(self._operation(f"projects/{project}/locations/{region}", {"name": name}))

    def _patch_function(self, call: _Call) -> Response:
        function = self._require(call.path)
        mask = call.query.get("updateMask", "")
        if not mask:
            raise ApiError(400, "INVALID_ARGUMENT", "updateMask is required by this stand-in")
        changed = copy.deepcopy(function)
        _apply_mask(changed, call.body or {}, mask)
        if "buildConfig.source" in mask.split(","):
            self._check_source(changed)
        config = changed.setdefault("serviceConfig", {})
        config.setdefault("environmentVariables", {})["LOG_EXECUTION_ID"] = "true"
        self.resources[call.path] = changed
        prefix = call.path.removeprefix("v2/").split("/functions/")[0]
        return _json(self._operation(prefix, {"name": changed["name"]}))

    def _patch_service(self, call: _Call) -> Response:
        service = self._require(call.path)
        _apply_mask(service, call.body or {}, call.query.get("updateMask", ""))
        prefix = call.path.removeprefix("v2/").split("/services/")[0]
        return _json(self._operation(prefix, {"name": service["name"]}))

    # -- Firestore -----------------------------------------------------------------------------
    def _create_database(self, call: _Call) -> Response:
        database_id = call.query.get("databaseId", "")
        body = dict(call.body or {})
        if not body.get("locationId") or body.get("type") != "FIRESTORE_NATIVE":
            raise ApiError(400, "INVALID_ARGUMENT", "locationId and type FIRESTORE_NATIVE needed")
        name = f"projects/{call.params['project']}/databases/{database_id}"
        body.update({"name": name, "concurrencyMode": "PESSIMISTIC", "uid": "db-1"})
        self._store_new(f"v1/{name}", body)
        return _json(self._operation(name, body))

    def _patch_database(self, call: _Call) -> Response:
        database = self._require(call.path)
        _apply_mask(database, call.body or {}, call.query.get("updateMask", ""))
        return _json(self._operation(database["name"], _public(database)))

    def _list_indexes(self, call: _Call) -> Response:
        prefix = call.path.split("/collectionGroups/")[0] + "/collectionGroups/"
        indexes = [
            _public(resource)
            for key, resource in sorted(self.resources.items())
            if key.startswith(prefix) and "/indexes/" in key
        ]
        return _json({"indexes": indexes} if indexes else {})

    def _create_index(self, call: _Call) -> Response:
        body = dict(call.body or {})
        fields = list(body.get("fields", []))
        if len(fields) < 2:
            raise ApiError(400, "INVALID_ARGUMENT", "this index is not necessary")
        last = next((f.get("order") for f in reversed(fields) if f.get("order")), "ASCENDING")
        stored_fields = [*fields, {"fieldPath": "__name__", "order": last}]
        for key, resource in self.resources.items():
            if key.startswith(call.path + "/") and resource["fields"] == stored_fields:
                raise ApiError(409, "ALREADY_EXISTS", "index already exists")
        index_id = f"CICAgJi{next(self._ids)}"
        name = f"{call.path.removeprefix('v1/')}/{index_id}"
        index = {
            "name": name,
            "queryScope": body.get("queryScope", "COLLECTION"),
            "fields": stored_fields,
            "state": "CREATING",
        }
        self.resources[f"v1/{name}"] = index

        def ready() -> None:
            index["state"] = "READY"

        database = call.path.removeprefix("v1/").split("/collectionGroups/")[0]
        operation = self._operation(database, {"name": name}, ready)
        return _json(operation)

    def _get_index(self, call: _Call) -> Response:
        index = self._require(call.path)
        response = _json(_public(index))
        if index["state"] == "CREATING":
            index["state"] = "READY"  # the next look finds it built
        return response

    def _get_field(self, call: _Call) -> Response:
        key = call.path
        if key not in self.resources:
            database = call.path.removeprefix("v1/").split("/collectionGroups/")[0]
            return _json(
                {
                    "name": call.path.removeprefix("v1/"),
                    "indexConfig": {
                        "indexes": [
                            _single(call.params["field"], "ASCENDING"),
                            _single(call.params["field"], "DESCENDING"),
                            {
                                "queryScope": "COLLECTION",
                                "fields": [
                                    {"fieldPath": call.params["field"], "arrayConfig": "CONTAINS"}
                                ],
                                "state": "READY",
                            },
                        ],
                        "usesAncestorConfig": True,
                        "ancestorField": f"{database}/collectionGroups/__default__/fields/*",
                    },
                }
            )
        return _json(_proto_clean(self.resources[key]))

    def _patch_field(self, call: _Call) -> Response:
        if call.query.get("updateMask") != "indexConfig":
            raise ApiError(400, "INVALID_ARGUMENT", "this stand-in patches indexConfig only")
        config = (call.body or {}).get("indexConfig", {})
        field_resource = {
            "name": call.path.removeprefix("v1/"),
            "indexConfig": {
                "indexes": [dict(index, state="READY") for index in config.get("indexes", [])],
                "usesAncestorConfig": False,
            },
        }
        self.resources[call.path] = field_resource
        database = call.path.removeprefix("v1/").split("/collectionGroups/")[0]
        return _json(self._operation(database, {"name": field_resource["name"]}))

    # -- Cloud Storage -------------------------------------------------------------------------
    def _create_bucket(self, call: _Call) -> Response:
        body = dict(call.body or {})
        name = body.get("name", "")
        if call.query.get("project") != self.project or not name:
            raise ApiError(400, "INVALID_ARGUMENT", "bucket name and project are required")
        body.update(
            {
                "kind": "storage#bucket",
                "id": name,
                "location": str(body.get("location", "US")).upper(),
                "projectNumber": self.project_number,
                "etag": "CAE=",
            }
        )
        self._store_new(f"storage/v1/b/{name}", body)
        self.policies[f"storage/v1/b/{name}"] = {
            "kind": "storage#policy",
            "resourceId": f"projects/_/buckets/{name}",
            "version": 1,
            "etag": "CAE=",
            "bindings": [
                {
                    "role": "roles/storage.legacyBucketOwner",
                    "members": [f"projectOwner:{self.project}", f"projectEditor:{self.project}"],
                },
                {
                    "role": "roles/storage.legacyBucketReader",
                    "members": [f"projectViewer:{self.project}"],
                },
            ],
        }
        return _json(body)

    def _get_bucket_policy(self, call: _Call) -> Response:
        key = f"storage/v1/b/{call.params['bucket']}"
        self._require(key)
        return _json(_public(self.policies[key]))

    def _set_bucket_policy(self, call: _Call) -> Response:
        key = f"storage/v1/b/{call.params['bucket']}"
        self._require(key)
        response = self._replace_policy(
            key, dict(call.body or {}), 412, "FAILED_PRECONDITION", bucket=True
        )
        self.policies[key].update(
            {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{call.params['bucket']}"}
        )
        return response

    # -- Cloud Monitoring ----------------------------------------------------------------------
    def _list_kind(self, call: _Call) -> Response:
        kind = call.path.rsplit("/", 1)[1]
        items = [
            _public(resource)
            for key, resource in sorted(self.resources.items())
            if key.startswith(call.path + "/")
        ]
        return _json({kind: items} if items else {})

    def _create_numbered(self, call: _Call) -> Response:
        resource = dict(call.body or {})
        kind = call.path.rsplit("/", 1)[1]
        if kind == "alertPolicies":
            for condition in resource.get("conditions", []):
                if "conditionMatchedLog" in condition and not resource.get("alertStrategy", {}).get(
                    "notificationRateLimit"
                ):
                    raise ApiError(
                        400,
                        "INVALID_ARGUMENT",
                        "A log-match condition needs alertStrategy.notificationRateLimit",
                    )
        name = f"{call.path.removeprefix('v3/')}/{next(self._ids)}"
        resource["name"] = name
        self.resources[f"v3/{name}"] = resource
        return _json(resource)


def _single(field_path: str, order: str) -> Json:
    return {
        "queryScope": "COLLECTION",
        "fields": [{"fieldPath": field_path, "order": order}],
        "state": "READY",
    }


def _public(resource: Json) -> Json:
    """A resource as served: private bookkeeping keys (``_versions``) left out."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if not k.startswith("_")}


def _proto_clean(value: Any) -> Any:
    """Drop empty lists and false booleans, as proto3 JSON does (Firestore's field configs)."""
    if isinstance(value, dict):
        return {k: _proto_clean(v) for k, v in value.items() if v != [] and v is not False}
    if isinstance(value, list):
        return [_proto_clean(v) for v in value]
    return value


def _apply_mask(resource: Json, patch: Json, mask: str) -> None:
    """Set each dotted ``mask`` path of ``resource`` from ``patch`` (absent in patch: removed)."""
    paths = [p.strip() for p in mask.split(",") if p.strip()] if mask else list(patch)
    for path in paths:
        parts = _split_path(path)
        source: Any = patch
        for part in parts:
            source = source.get(part) if isinstance(source, dict) else None
        target = resource
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if source is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(source)


def _split_path(path: str) -> list[str]:
    # Masks name proto fields in snake_case or camelCase; resources here are camelCase.
    return [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part) for part in path.split(".")]


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _error(code: int, status: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message, "status": status}}, code)
