"""CSV import of CRM records: a header row naming columns, then one record per row.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, quoted as spreadsheets write
it. Column names are matched without regard to case or surrounding space; their order is free.

===============  ================================================================
record           columns
===============  ================================================================
organizations    ``id``, ``name``, ``domains``
investors        ``id``, ``name``, ``organization_id``, ``emails``, ``domains``,
                 ``graveyard``
contacts         ``id``, ``name``, ``investor_id``, ``organization_id``, ``emails``
===============  ================================================================

- ``emails`` and ``domains`` hold several values separated by ``;`` (a domain may be written
  ``@x.com``); ``graveyard`` is ``true``/``false`` (also ``yes``/``no``, ``1``/``0``).
- A row without ``id`` (or with an empty one) creates a record with a generated id; a row with
  one creates or updates that record.
- A column present sets its field on every row: an empty cell clears it (no addresses, no
  reference, not graveyard; an empty ``name`` is refused for organisations and investors). A
  column left out keeps each record's stored value.
- Rows are numbered as a spreadsheet shows them: the header is row 1. Blank rows are skipped.
- Spreadsheet safety: an export writes a cell beginning with ``=``, ``+``, ``-``, ``@``, tab, CR
  or ``'`` with a leading ``'`` (:func:`escape_cell`), so no spreadsheet reads it as a formula;
  the import removes exactly that prefix (a ``'`` followed by one of those characters,
  :func:`unescape_cell`), so an export re-imports unchanged. A ``'`` before anything else is
  kept: a hand-written ``'Connor`` stays as typed.
- An export ends with a trailer line, ``# rows=<n>`` (plus `` next_cursor=<c>`` when the
  export continues in another chunk, :func:`trailer`). The import skips it and refuses a file
  whose trailer counts other rows than it holds (cut short, or edited past the trailer); a file
  without one (made by hand) imports as before.

A problem with the file as a whole (not UTF-8, no header, an unknown or repeated column,
unreadable CSV) raises :class:`CsvError` and nothing is written; a file over the size or row
limit raises :class:`CsvTooLargeError`. A problem with a row is reported for that row
(:class:`RowError`), and the other rows are still imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from shared.domain.crm import ContactInput, CrmInput, InvestorInput, OrganizationInput
from shared.domain.models import Activity, Contact, Investor, Organization

MAX_CSV_BYTES = 2 * 1024 * 1024
# What one request of the admin API (60 s) writes and audits comfortably on Firestore: about
# 13 s for 2,000 new contacts against the emulator, which is slower than production.
MAX_CSV_ROWS = 2000
LIST_SEPARATOR = ";"
# What a spreadsheet may read as the start of a formula (or a DDE payload), and the quote that
# escapes them (itself escaped, so unescaping is exact).
FORMULA_TRIGGERS = frozenset({"=", "+", "-", "@", "\t", "\r", "'"})
ESCAPE = "'"
TRAILER_PREFIX = "# rows="
_TRAILER = re.compile(r"# rows=(\d{1,9})(?: next_cursor=([A-Za-z0-9_=-]{1,4096}))?")

COLUMNS: dict[type[CrmInput], tuple[str, ...]] = {
    OrganizationInput: ("id", "name", "domains"),
    InvestorInput: ("id", "name", "organization_id", "emails", "domains", "graveyard"),
    ContactInput: ("id", "name", "investor_id", "organization_id", "emails"),
}
_LISTS = frozenset({"emails", "domains"})
_BOOLEANS = frozenset({"graveyard"})
_OPTIONAL = frozenset({"id", "organization_id", "investor_id"})
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})

In = TypeVar("In", bound=CrmInput)


class CsvError(ValueError):
    """The file as a whole cannot be imported; nothing was written."""


class CsvTooLargeError(CsvError):
    """The file is over MAX_CSV_BYTES or MAX_CSV_ROWS."""


@dataclass(frozen=True)
class RowError:
    row: int
    errors: list[str]


@dataclass
class ParsedCsv(Generic[In]):
    """The rows that parsed into inputs, by row number, and the rows that did not."""

    columns: list[str]
    rows: list[tuple[int, In]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def parse_csv(data: bytes, model: type[In]) -> ParsedCsv[In]:
    """Parse a CSV file of ``model`` inputs (one of COLUMNS' keys)."""
    if len(data) > MAX_CSV_BYTES:
        raise CsvTooLargeError(f"the file is over {MAX_CSV_BYTES} bytes: split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(f"the file is not UTF-8 (byte {exc.start})") from None
    records = _records(text)
    header = next(records, None)
    if header is None or not _trimmed(header[1]):
        raise CsvError("the file is empty: the first row must name the columns")
    columns = _columns(_trimmed(header[1]), COLUMNS[model])
    parsed: ParsedCsv[In] = ParsedCsv(columns=columns)
    count = 0
    declared: int | None = None
    for row, given in records:
        cells = _trimmed(given)
        if not cells:
            continue
        if declared is not None:
            raise CsvError(f"row {row}: rows after the '{TRAILER_PREFIX}' trailer line")
        trailer = _TRAILER.fullmatch(cells[0]) if len(cells) == 1 else None
        if trailer is not None:
            declared = int(trailer.group(1))
            if declared != count:
                raise CsvError(
                    f"the trailer says {declared} rows but the file holds {count}:"
                    " it was cut short or edited; export it again"
                )
            continue
        count += 1
        if count > MAX_CSV_ROWS:
            raise CsvTooLargeError(f"the file has over {MAX_CSV_ROWS} rows: split it")
        if len(cells) > len(columns):
            parsed.errors.append(
                RowError(row, [f"{len(cells)} cells, but the header names {len(columns)}"])
            )
            continue
        values, problems = _values(columns, cells)
        if problems:
            parsed.errors.append(RowError(row, problems))
            continue
        try:
            parsed.rows.append((row, model.model_validate(values)))
        except ValidationError as exc:
            parsed.errors.append(RowError(row, row_problems(exc)))
    return parsed


def row_problems(exc: ValidationError) -> list[str]:
    """Each bad field of a row and why (values are not echoed beyond what the message says)."""
    return [f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors()]


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvError(f"row {row + 1}: unreadable CSV ({exc})") from None
        row += 1
        yield row, cells


def _trimmed(cells: list[str]) -> list[str]:
    """The cells without the empty ones at the end (spreadsheets pad rows with them)."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def _columns(header: list[str], known: tuple[str, ...]) -> list[str]:
    columns = [cell.strip().lower() for cell in header]
    if "" in columns:
        raise CsvError(f"column {columns.index('') + 1} of the header has no name")
    unknown = sorted({c for c in columns if c not in known})
    if unknown:
        raise CsvError(
            f"unknown column(s): {', '.join(repr(c) for c in unknown)}; the columns are:"
            f" {', '.join(known)}"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise CsvError(f"column(s) named twice: {', '.join(repeated)}")
    return columns


def _values(columns: list[str], cells: list[str]) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    problems: list[str] = []
    padded = cells + [""] * (len(columns) - len(cells))  # trailing empty cells may be cut
    for name, raw in zip(columns, padded, strict=True):
        cell = unescape_cell(raw.strip())
        if name in _LISTS:
            values[name] = [part.strip() for part in cell.split(LIST_SEPARATOR) if part.strip()]
        elif name in _BOOLEANS:
            if cell.lower() not in _TRUE | _FALSE:
                problems.append(f"{name}: expected true or false")
            values[name] = cell.lower() in _TRUE
        elif name in _OPTIONAL:
            if name == "id" and not cell:
                continue  # a new record: the id is generated
            values[name] = cell or None
        else:
            values[name] = cell
    return values, problems


def escape_cell(value: str) -> str:
    """A cell as an export writes it: a leading ``'`` before a formula trigger."""
    return ESCAPE + value if value[:1] in FORMULA_TRIGGERS else value


def unescape_cell(cell: str) -> str:
    """Undo :func:`escape_cell`: exactly one ``'`` before a formula trigger is removed."""
    if cell.startswith(ESCAPE) and cell[1:2] in FORMULA_TRIGGERS and len(cell) > 1:
        return cell[1:]
    return cell


def csv_line(cells: Sequence[str]) -> str:
    """One CSV record of escaped cells, quoted as spreadsheets read it (CRLF-terminated)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([escape_cell(cell) for cell in cells])
    return buffer.getvalue()


def trailer(rows: int, next_cursor: str = "") -> str:
    """The last line of an export chunk: how many rows it holds, and where the next begins."""
    more = f" next_cursor={next_cursor}" if next_cursor else ""
    return f"{TRAILER_PREFIX}{rows}{more}\r\n"


# Approved activities, exported for reading (there is no activity import): the same quoting,
# escaping and trailer as the record exports.
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "id",
    "occurred_at",
    "investor_id",
    "contact_id",
    "account_id",
    "email_id",
    "summary",
    "created_by",
    "created_at",
)


def record_cells(record: Organization | Investor | Contact) -> list[str]:
    """A stored record as the import's columns (``COLUMNS``) read it back."""
    if isinstance(record, Organization):
        return [record.id, record.name, LIST_SEPARATOR.join(record.domains)]
    if isinstance(record, Investor):
        return [
            record.id,
            record.name,
            record.organization_id or "",
            LIST_SEPARATOR.join(record.emails),
            LIST_SEPARATOR.join(record.domains),
            "true" if record.graveyard else "false",
        ]
    return [
        record.id,
        record.name,
        record.investor_id or "",
        record.organization_id or "",
        LIST_SEPARATOR.join(record.emails),
    ]


def activity_cells(activity: Activity) -> list[str]:
    """An approved activity as ``ACTIVITY_COLUMNS`` (times in UTC, ISO 8601)."""
    return [
        activity.id,
        _iso(activity.occurred_at),
        activity.investor_id,
        activity.contact_id or "",
        activity.account_id or "",
        activity.email_id,
        activity.summary,
        activity.created_by,
        _iso(activity.created_at),
    ]


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""
