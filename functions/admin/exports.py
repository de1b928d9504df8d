"""CSV exports (admins only, audited): ``GET /exports/{kind}``.

The reply is streamed (``text/csv``) as the store is read, and ends with ``# rows=<n>``, plus
`` next_cursor=<c>`` when more rows follow: pass that as ``cursor`` for the next chunk. The
default ``limit`` is the import's row cap, so each chunk of organisations, investors or
contacts re-imports as it is (``docs/admin-api-read.md``).
"""

from __future__ import annotations

import flask
from pydantic import Field

from functions.admin.schemas import ApiModel, IdText, PageToken
from functions.admin_api import api
from shared import wiring
from shared.domain.crm_csv import MAX_CSV_ROWS
from shared.domain.models import Caller
from shared.domain.proposal_requests import Instant
from shared.services import exports
from shared.web import ADMINS


class ExportQuery(ApiModel):
    limit: int = Field(
        default=MAX_CSV_ROWS,
        ge=1,
        le=exports.MAX_EXPORT_LIMIT,
        description="Rows in this chunk (default: the import's row cap).",
    )
    cursor: PageToken = Field(default="", description="next_cursor of the previous chunk.")
    investor_id: IdText | None = Field(default=None, description="Activities only.")
    occurred_from: Instant | None = Field(default=None, description="Activities only.")
    occurred_to: Instant | None = Field(default=None, description="Activities only.")


@api.route(
    "GET",
    "/exports/<any(organizations, investors, contacts, activities):kind>",
    roles=ADMINS,
    query=ExportQuery,
    raw_response="text/csv",
    tag="exports",
)
def export_csv(
    request: flask.Request, caller: Caller, query: ExportQuery, kind: str
) -> flask.Response:
    """One chunk of a CSV export (audited), streamed; its last line counts its rows."""
    lines = exports.start_export(
        wiring.store(),
        caller,
        exports.ExportRequest(
            kind=exports.ExportKind(kind),
            limit=query.limit,
            cursor=query.cursor,
            investor_id=query.investor_id or None,
            occurred_from=query.occurred_from,
            occurred_to=query.occurred_to,
        ),
    )
    response = flask.Response(lines, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{kind}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
