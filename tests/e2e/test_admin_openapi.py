"""The admin API's OpenAPI document: generated from the routes, committed as
``infra/openapi.json``, served by the function, and honoured by every route under fuzzing.

Schemathesis generates requests from the document (valid ones, and invalid ones) and sends them
with an admin's real signed token to the local server; no request may get a 5xx, and every
reply must match the status codes, content type and schema the document declares. Hypothesis
runs derandomized with a fixed seed and a bounded number of examples per operation, so a run is
repeatable and a failure reproduces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from embedded.stack import Stack, local_stack
from functions.admin import openapi
from functions.admin_api import api
from sandbox.scenario import TEAM, seed_crm
from shared import wiring

ADMIN = TEAM[0]
EXAMPLES_PER_OPERATION = 20
SEED = 20261125
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_FRAMEWORK_UNROUTABLE = re.compile(r"\n")
DOCUMENT = openapi.build()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}  # type: ignore[union-attr]


@pytest.fixture
def seeded_stack(tmp_path: Path) -> Iterator[Stack]:
    # Function-scoped: the suite's autouse fixture restores the environment after every test.
    path = tmp_path / "crm.sqlite3"
    with local_stack(sqlite_path=path, bootstrap_admin=ADMIN, start_ticker=False) as running:
        seed_crm(wiring.store())
        # Send-now and the test email may legitimately mail the admin (and only the admin).
        running.gmail.allow_send_to([ADMIN])
        running.smtp.allow_send_to([ADMIN])
        yield running


def test_the_committed_document_is_the_generated_one() -> None:
    committed = openapi.DOCUMENT_PATH.read_text()
    assert committed == openapi.render(DOCUMENT), (
        "infra/openapi.json is stale: run python -m functions.admin.openapi --write"
    )


def test_every_route_is_documented_with_its_roles() -> None:
    documented = {
        (method.upper(), path)
        for path, operations in DOCUMENT["paths"].items()
        for method in operations
    }
    routes = {(r.method, openapi._openapi_path(r.path)[0]) for r in api.routes}
    assert documented == routes
    for route in api.routes:
        operation = DOCUMENT["paths"][openapi._openapi_path(route.path)[0]][route.method.lower()]
        assert operation["summary"], f"{route.method} {route.path} has no summary"
        for role in route.roles:
            assert str(role) in operation["description"]


def test_the_document_is_valid_openapi_3_1() -> None:
    from jsonschema_rs import validator_for  # schemathesis' own validator

    assert DOCUMENT["openapi"] == "3.1.0"
    # Every $ref resolves to a component.
    text = json.dumps(DOCUMENT)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in DOCUMENT["components"]["schemas"], name
    for name, schema in DOCUMENT["components"]["schemas"].items():
        validator_for({**schema, "components": DOCUMENT["components"]})  # compiles
        assert isinstance(name, str)


def test_the_function_serves_the_same_document(seeded_stack: Stack) -> None:
    response = requests.get(
        f"{seeded_stack.base_url}/admin_api/openapi.json",
        headers={"Authorization": f"Bearer {seeded_stack.person_token(ADMIN)}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == DOCUMENT
    assert (
        requests.get(f"{seeded_stack.base_url}/admin_api/openapi.json", timeout=10).status_code
        == 401
    )


def fuzz(operation: Any, mode: GenerationMode, base_url: str, token: str) -> list[int]:
    """Run one operation's generated cases; the statuses seen (a failed check raises)."""
    headers = {"Authorization": f"Bearer {token}"}
    statuses: list[int] = []

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        statuses.append(response.status_code)
        if any(
            _FRAMEWORK_UNROUTABLE.search(unquote(str(value)))
            for value in (case.path_parameters or {}).values()
        ):
            # functions-framework's own Flask rule (``/<path:path>``, whose regex has no
            # DOTALL) does not match a newline, so it answers its HTML 404 before our code
            # runs (on Cloud Run too). Not a crash; the reply is not ours to shape.
            assert response.status_code == 404
            return
        case.validate_response(response, checks=CHECKS)

    exercise()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_5xx_and_replies_match_the_schema(
    seeded_stack: Stack, mode: GenerationMode
) -> None:
    """Every operation in one test (one server): the failures are collected and named."""
    base_url = f"{seeded_stack.base_url}/admin_api"
    token = seeded_stack.person_token(ADMIN)
    failures: dict[str, str] = {}
    sent: dict[str, int] = {}
    for label, operation in sorted(OPERATIONS.items()):
        try:
            sent[label] = len(fuzz(operation, mode, base_url, token))
        except Exception as exc:  # a failed check: keep going, report every operation at once
            failures[label] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    # Negative generation cannot always make a request invalid (an operation with no
    # parameters), but positive generation must reach every operation.
    if mode is GenerationMode.POSITIVE:
        assert all(sent.values()), sent
