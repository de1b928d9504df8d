"""CSV exports (admins only, audited): organisations, investors, contacts in the format the CSV
import reads (``shared.domain.crm_csv``), and approved activities.

Why chunks: the import takes at most ``MAX_CSV_ROWS`` rows per file, so an export answers at
most ``limit`` rows (default that cap) and its trailer names the cursor of the next chunk;
each chunk re-imports as it is. Why a trailer: a download that stops early (a timeout, a
dropped connection) would otherwise look like a smaller export; the last line ``# rows=<n>``
says how many rows came before it, and the import refuses a file whose count disagrees.

Memory stays flat: rows are read from the store a page at a time and written out as they come
(a generator the web layer streams). The first page is read before the reply starts, so a bad
cursor or filter is a 400, not a 200 with a broken body. The audit entry is written then too:
an export that was asked for is on record even if the download fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.crm import ContactInput, InvestorInput, OrganizationInput
from shared.domain.crm_csv import (
    ACTIVITY_COLUMNS,
    COLUMNS,
    MAX_CSV_ROWS,
    activity_cells,
    csv_line,
    record_cells,
    trailer,
)
from shared.domain.models import Activity, AuditEntry, Caller, Contact, Investor, Organization
from shared.errors import BadRequestError
from shared.ports import ExportStore, Page

# Rows read from the store per page: the memory an export holds at once.
EXPORT_PAGE = 500
# One request's ceiling (the admin API's 60 s at about 100,000 rows on SQLite).
MAX_EXPORT_LIMIT = 100_000

Row = Organization | Investor | Contact | Activity


class ExportKind(StrEnum):
    ORGANIZATIONS = "organizations"
    INVESTORS = "investors"
    CONTACTS = "contacts"
    ACTIVITIES = "activities"


_HEADERS: dict[ExportKind, tuple[str, ...]] = {
    ExportKind.ORGANIZATIONS: COLUMNS[OrganizationInput],
    ExportKind.INVESTORS: COLUMNS[InvestorInput],
    ExportKind.CONTACTS: COLUMNS[ContactInput],
    ExportKind.ACTIVITIES: ACTIVITY_COLUMNS,
}


@dataclass(frozen=True)
class ExportRequest:
    """One chunk: ``cursor`` from the previous chunk's trailer ("" for the first)."""

    kind: ExportKind
    limit: int = MAX_CSV_ROWS
    cursor: str = ""
    investor_id: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


def start_export(store: ExportStore, caller: Caller, request: ExportRequest) -> Iterator[str]:
    """Audit the export, read its first page, and return the CSV text to stream."""
    if not 1 <= request.limit <= MAX_EXPORT_LIMIT:
        raise BadRequestError(f"limit must be 1..{MAX_EXPORT_LIMIT}", limit=request.limit)
    has_activity_filter = request.investor_id or request.occurred_from or request.occurred_to
    if request.kind is not ExportKind.ACTIVITIES and has_activity_filter:
        raise BadRequestError("investor_id and the date range filter activity exports only")
    first = _page(store, request, min(EXPORT_PAGE, request.limit), request.cursor)
    store.append_audit(
        AuditEntry(
            actor=caller.email,
            action="export",
            target=request.kind.value,
            details={
                "limit": request.limit,
                "cursor": request.cursor,
                "investor_id": request.investor_id or "",
                "occurred_from": request.occurred_from.isoformat() if request.occurred_from else "",
                "occurred_to": request.occurred_to.isoformat() if request.occurred_to else "",
            },
        )
    )
    return _lines(store, request, first)


def _lines(store: ExportStore, request: ExportRequest, page: Page[Row]) -> Iterator[str]:
    yield csv_line(_HEADERS[request.kind])
    rows = 0
    while True:
        for item in page.items:
            yield csv_line(
                activity_cells(item) if isinstance(item, Activity) else record_cells(item)
            )
            rows += 1
        if not page.next_token or rows >= request.limit:
            break
        page = _page(store, request, min(EXPORT_PAGE, request.limit - rows), page.next_token)
    yield trailer(rows, page.next_token)


def _page(store: ExportStore, request: ExportRequest, limit: int, token: str) -> Page[Row]:
    pages: Page[Row]
    if request.kind is ExportKind.ORGANIZATIONS:
        pages = store.list_organization_page(limit=limit, page_token=token)  # type: ignore[assignment]
    elif request.kind is ExportKind.INVESTORS:
        pages = store.list_investor_page(limit=limit, page_token=token)  # type: ignore[assignment]
    elif request.kind is ExportKind.CONTACTS:
        pages = store.list_contact_page(limit=limit, page_token=token)  # type: ignore[assignment]
    else:
        pages = store.list_activity_page(  # type: ignore[assignment]
            investor_id=request.investor_id,
            occurred_from=request.occurred_from,
            occurred_to=request.occurred_to,
            limit=limit,
            page_token=token,
        )
    return pages
