"""Hostile requests: no request gets a 5xx, and a request that is refused writes nothing.

Schemathesis (``test_admin_openapi.py``) sends what the OpenAPI document describes, valid and
invalid. What a JSON Schema cannot say is generated here, from schemathesis' own valid cases of
every operation (seeded, derandomized, a bounded number per operation): each string of a valid
body in turn made a lone surrogate, a NUL, a 1 MB string or a 500-deep array; the whole body
nested 100,000 deep; bytes that are not UTF-8; long query strings; bodies over the size limit,
with a ``Content-Length`` and streamed without one. The push and queue functions get the same
inside their envelopes and their messages' data, and a schemathesis run of their envelope's
schema. On SQLite, with the ticker and the queue's delivery stopped, the store's dump after each
refused request equals the dump before it, and nothing was published.

Each check is collected, not asserted at once, so a failure names every request that failed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance

from embedded.stack import PUSH_IDENTITY, Stack, local_stack
from functions.admin import openapi
from functions.admin_api import api
from sandbox.scenario import TEAM, seed_crm
from shared import wiring
from shared.web import MAX_BODY_BYTES

ADMIN = TEAM[0]
SEED = 20261202
CASES_PER_OPERATION = 2
STRINGS_PER_CASE = 4
PUSH_EXAMPLES = 20

ONE_MB = "a" * 1_000_000
# Query strings travel in the request line, which HTTP servers cap (64 KiB here): long, not 1 MB.
LONG_QUERY_VALUE = "a" * 60_000
DEEP_LIST = "[" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
# Parses (under the interpreter's recursion limit) but nests far beyond any model.
DEEP_VALUE = "[" * 500 + "]" * 500
_HOLE = "@@hostile-hole@@"

DOCUMENT = openapi.build()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}  # type: ignore[union-attr]

PUSH_FUNCTIONS = ("gmail_push", "sync_mailbox", "rematch_job")

Statuses = set[int]


@dataclass
class World:
    """The running stack, its store file, and what was found wrong so far."""

    stack: Stack
    path: Path
    failures: list[str] = field(default_factory=list)

    def dump(self) -> list[str]:
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            return list(db.iterdump())

    def published(self) -> int:
        return len(wiring.local_queue().published)

    def check(
        self,
        label: str,
        send: Callable[[], requests.Response],
        expected: Statuses | None = None,
        *,
        refused: bool | None = None,
    ) -> int:
        """Send one request: never a 5xx, the status among ``expected`` if given, and the store
        and queue unchanged if it was refused (a 4xx, or ``refused`` said so)."""
        before, queued = self.dump(), self.published()
        response = send()
        status = response.status_code
        if status >= 500:
            self.failures.append(f"{label}: {status} {response.text[:300]}")
        elif expected is not None and status not in expected:
            self.failures.append(
                f"{label}: {status}, expected {sorted(expected)}: {response.text[:300]}"
            )
        if refused if refused is not None else 400 <= status < 500:
            if self.dump() != before:
                self.failures.append(f"{label}: refused with {status} but the store changed")
            if self.published() != queued:
                self.failures.append(f"{label}: refused with {status} but published a message")
        return status

    def assert_clean(self) -> None:
        assert not self.failures, f"{len(self.failures)} failure(s):\n" + "\n".join(
            self.failures[:60]
        )


@pytest.fixture
def quiet_world(tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "crm.sqlite3"
    with local_stack(sqlite_path=path, bootstrap_admin=ADMIN, start_ticker=False) as running:
        seed_crm(wiring.store())
        running.gmail.allow_send_to([ADMIN])
        running.smtp.allow_send_to([ADMIN])
        # The queue keeps recording what is published, but delivers nothing: every write a
        # request makes is the request's own.
        wiring.local_queue().close()
        yield World(running, path)


# -- helpers ------------------------------------------------------------------------------------


def valid_cases(operation: Any) -> list[Any]:
    """A few of schemathesis' valid cases of one operation (seeded, derandomized)."""
    cases: list[Any] = []

    @seed(SEED)
    @settings(
        max_examples=CASES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def draw(case: Any) -> None:
        cases.append(case)

    draw()
    return cases[:CASES_PER_OPERATION]


def string_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where the strings of a JSON value are (keys of objects, indexes of arrays)."""
    if isinstance(value, str):
        yield prefix
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from string_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from string_paths(child, (*prefix, index))


def value_at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return copy


def with_deep_value(body: Any, path: tuple[Any, ...]) -> bytes:
    """``body`` with the value at ``path`` replaced by :data:`DEEP_VALUE` (as JSON text: the
    standard encoder would itself refuse to write something that deep)."""
    text = json.dumps(replaced(body, path, _HOLE))
    return text.replace(json.dumps(_HOLE), DEEP_VALUE, 1).encode()


def body_mutations(body: Any) -> Iterator[tuple[str, bytes, Statuses | None]]:
    """(what, JSON bytes, the statuses allowed) for one valid body."""
    paths = list(string_paths(body))[:STRINGS_PER_CASE]
    if not paths and isinstance(body, dict):
        body = {**body, "hostile": "x"}  # an unknown field: refused whatever else holds
        paths = [("hostile",)]
    for path in paths:
        where = "/".join(map(str, path)) or "body"
        text = value_at(body, path)
        # json.dumps writes a lone surrogate as the escape "\ud800", as a hostile client would.
        yield (
            f"{where}=surrogate",
            json.dumps(replaced(body, path, text + "\ud800")).encode(),
            {400},
        )
        yield f"{where}=NUL", json.dumps(replaced(body, path, text + "\x00")).encode(), None
        yield f"{where}=1MB", json.dumps(replaced(body, path, ONE_MB)).encode(), {400, 413}
        yield f"{where}=deep", with_deep_value(body, path), {400}
    yield "body=[x100000", DEEP_LIST.encode(), {400}
    yield "body={a:x50000", DEEP_OBJECT.encode(), {400}
    yield "body=not-utf8", b'{"name": "\xff\xfe"}', {400}


def over_the_limit() -> bytes:
    return b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}'


def streamed(data: bytes) -> Iterator[bytes]:
    """A body without Content-Length: requests sends a generator chunked."""
    step = 64 * 1024
    for start in range(0, len(data), step):
        yield data[start : start + step]


def admin_call(quiet_world: World, case: Any, **overrides: Any) -> Callable[[], requests.Response]:
    kwargs = case.as_transport_kwargs(
        base_url=f"{quiet_world.stack.base_url}/admin_api",
        headers={"Authorization": f"Bearer {quiet_world.stack.person_token(ADMIN)}"},
    )
    for name in ("json", "data"):
        kwargs.pop(name, None)
    headers = {**kwargs.pop("headers", {}), **overrides.pop("headers", {})}
    kwargs.update(overrides)

    def send() -> requests.Response:
        return requests.request(headers=headers, timeout=60, **kwargs)

    return send


def json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def operation_info(operation: Any) -> dict[str, Any]:
    path, method = operation.path, operation.method.lower()
    return dict(DOCUMENT["paths"][path][method])


def free_text_query_parameters(operation: Any) -> list[str]:
    """Query parameters that take any text (no enum, no format): their length is the bound."""
    return [
        p["name"]
        for p in operation_info(operation).get("parameters", [])
        if p["in"] == "query"
        and p["schema"].get("type") == "string"
        and "enum" not in p["schema"]
        and "format" not in p["schema"]
    ]


# -- the admin API --------------------------------------------------------------------------------


def test_hostile_bodies_on_every_route_are_refused_and_write_nothing(quiet_world: World) -> None:
    for label, operation in sorted(OPERATIONS.items()):
        info = operation_info(operation)
        takes_json = "application/json" in info.get("requestBody", {}).get("content", {})
        for case in valid_cases(operation):
            if takes_json:
                for what, data, expected in body_mutations(case.body):
                    quiet_world.check(
                        f"{label} {what}",
                        admin_call(quiet_world, case, data=data, headers=json_headers()),
                        expected=expected,
                    )
            for name in free_text_query_parameters(operation):
                query = dict(case.query or {})
                quiet_world.check(
                    f"{label} ?{name}=60000 chars",
                    admin_call(quiet_world, case, params={**query, name: LONG_QUERY_VALUE}),
                    expected={400},
                )
                quiet_world.check(
                    f"{label} ?{name}=NUL",
                    admin_call(quiet_world, case, params={**query, name: "a\x00b"}),
                )
    quiet_world.assert_clean()


def test_bodies_over_the_limit_are_413_on_every_route_declared_or_streamed(
    quiet_world: World,
) -> None:
    data = over_the_limit()
    for label, operation in sorted(OPERATIONS.items()):
        media_types = list(operation_info(operation).get("requestBody", {}).get("content", {}))
        headers = {"Content-Type": media_types[0] if media_types else "application/json"}
        reads_body = bool(media_types)
        (case,) = valid_cases(operation)[:1]
        quiet_world.check(
            f"{label} {len(data)} bytes with Content-Length",
            admin_call(quiet_world, case, data=data, headers=headers),
            expected={413},
        )
        quiet_world.check(
            f"{label} {len(data)} bytes streamed",
            admin_call(quiet_world, case, data=streamed(data), headers=headers),
            # A route that reads no body never reads a streamed one either.
            expected={413} if reads_body else None,
        )
    quiet_world.assert_clean()


# -- the push and queue functions ---------------------------------------------------------------


def push_call(
    quiet_world: World, function: str, data: bytes | Iterator[bytes]
) -> Callable[[], Any]:
    token = quiet_world.stack.service_token(PUSH_IDENTITY, function)

    def send() -> requests.Response:
        return requests.post(
            f"{quiet_world.stack.base_url}/{function}",
            data=data,
            headers={"Authorization": f"Bearer {token}", **json_headers()},
            timeout=60,
        )

    return send


def envelope(data: bytes, **message: Any) -> bytes:
    return json.dumps(
        {
            "message": {"data": base64.b64encode(data).decode(), "messageId": "1", **message},
            "subscription": "projects/local/subscriptions/hostile",
        }
    ).encode()


def valid_message(function: str) -> dict[str, Any]:
    """A well-formed message naming nothing the store holds: handling it writes nothing."""
    return {
        "gmail_push": {"emailAddress": "nobody@example.org", "historyId": "1"},
        "sync_mailbox": {"account_id": "no-such-mailbox"},
        "rematch_job": {"job_id": "no-such-job"},
    }[function]


def push_mutations(function: str) -> Iterator[tuple[str, bytes]]:
    message = valid_message(function)
    for path in string_paths(message):
        where = "data." + "/".join(map(str, path))
        value = value_at(message, path)
        yield (
            f"{where}=surrogate",
            envelope(json.dumps(replaced(message, path, value + "\ud800")).encode()),
        )
        yield f"{where}=NUL", envelope(json.dumps(replaced(message, path, value + "\x00")).encode())
        yield f"{where}=1MB", envelope(json.dumps(replaced(message, path, ONE_MB)).encode())
        yield f"{where}=deep", envelope(with_deep_value(message, path))
    yield "data=[x100000", envelope(DEEP_LIST.encode())
    yield "data={a:x50000", envelope(DEEP_OBJECT.encode())
    yield "data=not-utf8", envelope(b'{"job_id": "\xff"}')
    yield "messageId=surrogate", envelope(json.dumps(message).encode(), messageId="\ud800")
    yield "envelope=[x100000", DEEP_LIST.encode()
    yield "envelope={a:x50000", DEEP_OBJECT.encode()


def test_hostile_pushes_are_acknowledged_and_write_nothing(quiet_world: World) -> None:
    """204 (Pub/Sub must not redeliver what no retry can fix), and nothing written or queued."""
    big = over_the_limit()
    for function in PUSH_FUNCTIONS:
        for what, data in push_mutations(function):
            quiet_world.check(
                f"{function} {what}",
                push_call(quiet_world, function, data),
                expected={204},
                refused=True,
            )
        quiet_world.check(
            f"{function} over the limit",
            push_call(quiet_world, function, big),
            expected={204},
            refused=True,
        )
        quiet_world.check(
            f"{function} over the limit, streamed",
            push_call(quiet_world, function, streamed(big)),
            expected={204},
            refused=True,
        )
    quiet_world.assert_clean()


ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {
            "type": "object",
            "properties": {
                "data": {"type": "string"},
                "messageId": {"type": "string"},
                "publishTime": {"type": "string"},
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "subscription": {"type": "string"},
    },
}
PUSH_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Pub/Sub push deliveries", "version": "1"},
    "paths": {
        f"/{function}": {
            "post": {
                "operationId": function,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ENVELOPE_SCHEMA}},
                },
                "responses": {
                    "200": {"description": "Ran (a queue function's report)."},
                    "204": {"description": "Acknowledged (done, or nothing a retry could fix)."},
                    "401": {"description": "No valid token."},
                    "403": {"description": "Not the push identity."},
                },
            }
        }
        for function in PUSH_FUNCTIONS
    },
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_push_envelopes_get_no_5xx(quiet_world: World, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_dict(PUSH_DOCUMENT)
    failures: dict[str, str] = {}
    tokens = {name: quiet_world.stack.service_token(PUSH_IDENTITY, name) for name in PUSH_FUNCTIONS}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        function = operation.path.strip("/")

        @seed(SEED)
        @settings(
            max_examples=PUSH_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: Any) -> None:
            response = case.call(
                base_url=quiet_world.stack.base_url,
                headers={"Authorization": f"Bearer {tokens[case.operation.path.strip('/')]}"},
                timeout=30,
            )
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        try:
            exercise()
        except Exception as exc:
            failures[function] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    assert not failures, "\n\n".join(f"{name}\n{text}" for name, text in failures.items())


# -- the models bound what they take --------------------------------------------------------------


def unbounded_fields(schema: dict[str, Any], defs: dict[str, Any], where: str) -> Iterator[str]:
    """Paths of the string fields with no maxLength and list fields with no maxItems."""
    seen: set[str] = set()

    def walk(node: Any, at: str) -> Iterator[str]:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                yield from walk(defs[name], f"{at}<{name}>")
            return
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if (
            "string" in types
            and "maxLength" not in node
            and "enum" not in node
            and "const" not in node
            and node.get("format") not in ("date-time", "date")
        ):
            yield f"{at}: a string without maxLength"
        if "array" in types and "maxItems" not in node:
            yield f"{at}: a list without maxItems"
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, []):
                yield from walk(option, at)
        for name, child in node.get("properties", {}).items():
            yield from walk(child, f"{at}.{name}")
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{at}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from walk(node["additionalProperties"], f"{at}{{}}")

    yield from walk(schema, where)


def test_every_request_model_bounds_its_strings_and_lists() -> None:
    """Every string field a request can send has a maxLength and every list a maxItems, in the
    model itself (so the OpenAPI document shows them): a route added later fails here until it
    does too."""
    problems: list[str] = []
    for route in api.routes:
        for model in (route.query, route.body):
            if model is None:
                continue
            schema = model.model_json_schema(mode="validation")
            defs = schema.pop("$defs", {})
            problems += unbounded_fields(
                schema, defs, f"{route.method} {route.path} {model.__name__}"
            )
    assert not problems, "\n".join(problems)


# -- the cases the review reported, one by one ----------------------------------------------------


def admin(quiet_world: World, method: str, path: str, body: Any) -> Callable[[], requests.Response]:
    """A call of the admin API as the scenario's admin, with a JSON body, to be sent later."""

    def send() -> requests.Response:
        return requests.request(
            method,
            f"{quiet_world.stack.base_url}/admin_api{path}",
            headers={"Authorization": f"Bearer {quiet_world.stack.person_token(ADMIN)}"},
            json=body,
            timeout=60,
        )

    return send


def test_a_lone_surrogate_is_refused_at_the_edge_not_met_by_the_store(quiet_world: World) -> None:
    """It used to reach SQLite (an encode error, 500) and the reply model."""
    for method, path, body in (
        ("POST", "/users", {"email": "new@fund.example", "name": "Zoe \ud800"}),
        ("PUT", "/investors/inv-new", {"name": "Fund \udfff"}),
        ("POST", "/organizations", {"name": "Org", "domains": ["\ud800.example"]}),
    ):
        quiet_world.check(
            f"{method} {path}", admin(quiet_world, method, path, body), expected={400}
        )
    quiet_world.assert_clean()
    assert wiring.store().get_user_by_email("new@fund.example") is None


def test_a_one_megabyte_user_name_is_refused(quiet_world: World) -> None:
    response = admin(quiet_world, "POST", "/users", {"email": "new@fund.example", "name": ONE_MB})()
    assert response.status_code == 400
    assert "name" in response.json()["reason"]
    assert len(response.text) < 2000  # the reason names the field, it does not quote the value
    assert wiring.store().get_user_by_email("new@fund.example") is None


def test_a_bulk_request_over_its_size_is_413_and_writes_nothing(quiet_world: World) -> None:
    for kind in ("contacts", "organizations", "investors"):
        items = [{"name": f"{kind}-{i}"} for i in range(501)]
        quiet_world.check(
            f"POST /{kind}/bulk",
            admin(quiet_world, "POST", f"/{kind}/bulk", {"items": items}),
            {413},
        )
    domains = [f"d{i}.example" for i in range(2001)]
    quiet_world.check(
        "PUT /exclusions", admin(quiet_world, "PUT", "/exclusions", {"domains": domains}), {413}
    )
    # A list inside one record over that record's own bound is the record's mistake: 400.
    emails = [f"a{i}@x.example" for i in range(21)]
    quiet_world.check(
        "POST /investors/bulk, 21 emails in one record",
        admin(quiet_world, "POST", "/investors/bulk", {"items": [{"name": "x", "emails": emails}]}),
        {400},
    )
    quiet_world.assert_clean()


def test_a_forged_page_token_is_a_400_on_every_listing(quiet_world: World) -> None:
    def token(key: bytes) -> str:
        return base64.urlsafe_b64encode(key).decode()

    forged = [
        token(b"0000|"),
        token(b'["zeta", "a/b"]'),
        token(b'["zeta", "inv-1", "x"]'),
        token(b"2024-06-03T10:00:00.000000Z|a/b"),
        "aGVsbG8",
    ]
    listings = [
        label
        for label, operation in OPERATIONS.items()
        if any(p["name"] == "page_token" for p in operation_info(operation).get("parameters", []))
    ]
    assert {"GET /activity", "GET /investors", "GET /proposals"} <= set(listings)
    for label in listings:
        for value in forged:
            quiet_world.check(
                f"{label}?page_token={value}",
                admin_call(
                    quiet_world, valid_cases(OPERATIONS[label])[0], params={"page_token": value}
                ),
                {400},
            )
    quiet_world.assert_clean()
