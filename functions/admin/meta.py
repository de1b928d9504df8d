"""The API's description of itself, for any signed-in user (it describes; it holds no data)."""

from __future__ import annotations

import flask

from functions.admin_api import api
from shared.domain.models import Caller
from shared.web import PEOPLE, json_response


@api.route("GET", "/openapi.json", roles=PEOPLE, tag="meta")
def openapi_document(request: flask.Request, caller: Caller) -> flask.Response:
    """This API's OpenAPI 3.1 document."""
    from functions.admin import openapi

    return json_response(openapi.cached())
