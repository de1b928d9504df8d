"""Admin API: the admin console's HTTP function (HTTPS, Google ID token of a person).

The routes live in ``functions/admin/``, one module per area, each naming the roles it admits
and the pydantic models of its query, body and reply (from which ``functions.admin.openapi``
builds the OpenAPI document, ``infra/openapi.json``). They are imported on this function's
first request, not at import: ``functions/main.py`` loads every function on every cold start.
Writes only to the store (and, for drafts, Gmail drafts); HTTP functions are never retried by
the platform.
"""

from __future__ import annotations

import flask
import functions_framework

from functions import console
from shared import wiring
from shared.web import Router

ROUTE_MODULES = (
    "functions.admin.people",
    "functions.admin.activity",
    "functions.admin.mailboxes",
    "functions.admin.proposals",
    "functions.admin.drafts",
    "functions.admin.digest",
    "functions.admin.crm",
    "functions.admin.jobs",
    "functions.admin.settings",
    "functions.admin.meta",
    "functions.admin.lists",
    "functions.admin.exports",
    "functions.admin.emails",
    "functions.admin.me",
    "functions.admin.relationships",
)

api = Router(
    "admin_api",
    verifier=wiring.verifier,
    modules=ROUTE_MODULES,
)


@functions_framework.http
def admin_api(request: flask.Request) -> flask.Response:
    # The console's static files first: no token, no route modules loaded (functions/console.py).
    return console.serve(request) or api(request)
