"""The admin API's OpenAPI 3.1 document, built from the routes and their pydantic models.

One source: each route declares its roles, query, body and reply models (``Router.route``),
and this module turns them into the document. ``infra/openapi.json`` is its output, written by
``python -m functions.admin.openapi --write`` and kept equal by a test; the function also
serves it at ``GET /openapi.json`` (``functions.admin.meta``).

Usage::

    python -m functions.admin.openapi            # print
    python -m functions.admin.openapi --write    # write infra/openapi.json
    python -m functions.admin.openapi --check    # exit 1 if infra/openapi.json is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.admin.schemas import ErrorBody
from functions.admin_api import api
from shared.web import Route, Router

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "infra" / "openapi.json"
TITLE = "Fund CRM admin API"
VERSION = "1"
# Statuses every authenticated route can answer, whatever it does.
COMMON_ERRORS = {
    400: "Bad request: a parameter or the body is invalid (the reason names it).",
    401: "No valid Google ID token.",
    403: "The caller's role is not admitted on this route.",
    404: "No such route or record.",
    413: "The body is larger than the route takes (the reason gives the limit).",
}
SUCCESS_TEXT = {
    201: "Created.",
    202: "Accepted: the change queued a job (its id is in the reply; GET /jobs/{job_id}).",
}
ERROR_TEXT = {
    409: "Conflict with the stored state (already decided, last admin, duplicate).",
    413: "The body is larger than the route takes (the reason gives the limit).",
    415: "The body is not of a media type the route takes.",
    502: "An upstream (Gmail, SMTP) refused.",
    503: "An upstream is unavailable; retry later.",
}
_PARAM = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def build(router: Router = api) -> dict[str, Any]:
    """The document for every route of ``router`` (deterministic: sorted, no timestamps)."""
    routes = sorted(router.routes, key=lambda r: (r.path, r.method))
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for route in routes:
        for model, mode in (
            (route.query, "validation"),
            (route.body, "validation"),
            (route.response, "serialization"),
        ):
            if model is not None and (model, mode) not in models:
                models.append((model, mode))  # type: ignore[arg-type]
    keys, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    ref = {key: value for key, value in keys.items()}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, path_params = _openapi_path(route.path)
        operation: dict[str, Any] = {
            "operationId": route.handler.__name__,
            "summary": route.summary,
            "tags": [route.tag] if route.tag else [],
            "description": "Admitted roles: " + ", ".join(sorted(str(r) for r in route.roles)),
            "parameters": path_params + _query_params(route, ref, schemas),
            "responses": _responses(route, ref),
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref[(route.body, "validation")]}},
            }
        elif route.raw_body:
            operation["requestBody"] = {
                "required": True,
                "content": {route.raw_body: {"schema": {"type": "string"}}},
            }
        paths.setdefault(path, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "The admin console's API. Every request carries a Google ID token "
                "(Authorization: Bearer) whose audience is this function's URL."
            ),
        },
        "security": [{"googleIdToken": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "googleIdToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """``/proposals/<id>/<any(a, b):action>`` -> ``/proposals/{id}/{action}`` and its params."""
    params: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        schema: dict[str, Any] = {"type": "string"}
        if match["converter"] == "any":
            schema["enum"] = [a.strip().strip("'\"") for a in (match["args"] or "").split(",")]
        elif match["converter"] == "int":
            schema = {"type": "integer"}
        else:
            # What werkzeug's default converter matches: one non-empty path segment.
            schema["pattern"] = "^[^/]+$"
        params.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
        return "{" + match["name"] + "}"

    return _PARAM.sub(replace, rule), params


def _query_params(
    route: Route, ref: dict[Any, Any], schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    if route.query is None:
        return []
    name = ref[(route.query, "validation")]["$ref"].rsplit("/", 1)[-1]
    # The query model itself is not a body: its fields become parameters, and its schema is
    # dropped from the components (nothing else refers to it).
    model_schema = schemas.pop(name)
    required = set(model_schema.get("required", []))
    return [
        {
            "name": field,
            "in": "query",
            "required": field in required,
            "schema": _not_null(schema),
            **({"description": schema["description"]} if "description" in schema else {}),
        }
        for field, schema in model_schema.get("properties", {}).items()
    ]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never JSON null: ``X | None`` is just ``X``."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        if len(kept) == 1:
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            return {**kept[0], **rest}
    return schema


def _responses(route: Route, ref: dict[Any, Any]) -> dict[str, Any]:
    error = {"application/json": {"schema": ref[(ErrorBody, "serialization")]}}
    responses: dict[str, Any] = {}
    for status in (route.status, *route.also):
        if route.response is not None:
            responses[str(status)] = {
                "description": SUCCESS_TEXT.get(status, "OK"),
                "content": {"application/json": {"schema": ref[(route.response, "serialization")]}},
            }
        elif route.raw_response:
            responses[str(status)] = {
                "description": SUCCESS_TEXT.get(status, "OK"),
                "content": {route.raw_response: {"schema": {"type": "string"}}},
            }
        else:
            responses[str(status)] = {"description": SUCCESS_TEXT.get(status, "OK")}
    for status, text in COMMON_ERRORS.items():
        responses[str(status)] = {"description": text, "content": error}
    for status in route.errors:
        responses[str(status)] = {"description": ERROR_TEXT.get(status, "Error"), "content": error}
    return dict(sorted(responses.items()))


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


_document: dict[str, Any] | None = None


def cached() -> dict[str, Any]:
    """The document, built once per instance (the routes cannot change while it runs)."""
    global _document
    if _document is None:
        _document = build()
    return _document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {DOCUMENT_PATH}")
    group.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render(build())
    if args.write:
        DOCUMENT_PATH.write_text(text)
        print(f"wrote {DOCUMENT_PATH}")
    elif args.check:
        if not DOCUMENT_PATH.exists() or DOCUMENT_PATH.read_text() != text:
            print(f"{DOCUMENT_PATH} is stale: run python -m functions.admin.openapi --write")
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
