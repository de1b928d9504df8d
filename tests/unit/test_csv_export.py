"""The export side of the CSV format (shared/domain/crm_csv.py): spreadsheet-safe cells whose
escape the import removes exactly, and the row-count trailer the import checks."""

from __future__ import annotations

import csv
import io

import pytest

from shared.domain.crm import ContactInput, OrganizationInput
from shared.domain.crm_csv import (
    FORMULA_TRIGGERS,
    CsvError,
    csv_line,
    escape_cell,
    parse_csv,
    trailer,
    unescape_cell,
)

CELLS = ["=1+1", "+x", "-x", "@x", "\tx", "\rx", "'x", "''x", "'", "x'=", "plain", "", "=", "'\t"]


class TestEscaping:
    @pytest.mark.parametrize("value", CELLS)
    def test_unescape_undoes_escape_exactly(self, value: str) -> None:
        assert unescape_cell(escape_cell(value)) == value

    @pytest.mark.parametrize("value", CELLS)
    def test_no_escaped_cell_starts_a_formula(self, value: str) -> None:
        escaped = escape_cell(value)
        assert escaped[:1] not in FORMULA_TRIGGERS - {"'"}
        if value[:1] in FORMULA_TRIGGERS:
            assert escaped == "'" + value

    def test_a_quote_before_anything_else_is_kept_on_import(self) -> None:
        assert unescape_cell("'Connor") == "'Connor"
        assert unescape_cell("'=x") == "=x"
        assert unescape_cell("''=x") == "'=x"

    def test_a_line_is_quoted_csv_of_escaped_cells(self) -> None:
        line = csv_line(["id-1", '=cmd|"/c calc"!A1', "a,b", "line\nbreak"])
        assert line.endswith("\r\n")
        (row,) = list(csv.reader(io.StringIO(line, newline="")))
        assert row == ["id-1", '\'=cmd|"/c calc"!A1', "a,b", "line\nbreak"]


class TestTrailer:
    def _file(self, *rows: str, last: str) -> bytes:
        return ("id,name,domains\r\n" + "".join(rows) + last).encode("utf-8")

    def test_a_matching_trailer_is_skipped(self) -> None:
        data = self._file(
            csv_line(["", "=Acme", "acme.example"]),
            csv_line(["", "Beta", ""]),
            last=trailer(2, "bmV4dA=="),
        )
        parsed = parse_csv(data, OrganizationInput)
        assert [given.name for _, given in parsed.rows] == ["=Acme", "Beta"]
        assert parsed.errors == []

    def test_a_short_file_is_refused(self) -> None:
        data = self._file(csv_line(["", "Acme", ""]), last=trailer(2))
        with pytest.raises(CsvError, match="cut short"):
            parse_csv(data, OrganizationInput)

    def test_rows_after_the_trailer_are_refused(self) -> None:
        data = self._file(trailer(0), last=csv_line(["", "Acme", ""]))
        with pytest.raises(CsvError, match="after"):
            parse_csv(data, OrganizationInput)

    def test_a_file_without_a_trailer_imports_as_before(self) -> None:
        data = b"name,emails\r\n'Connor,a@x.example\r\n"
        parsed = parse_csv(data, ContactInput)
        assert [given.name for _, given in parsed.rows] == ["'Connor"]


def test_a_strangers_line_breaks_and_encoded_words_stay_inside_one_inert_cell() -> None:
    """A summary or name carrying CR/LF, a NUL or an encoded word that starts with '=' is one
    cell of one record when read back, and nothing it holds starts a formula."""
    hostile = ["Re: =evil\r\nBcc: x@y", "a\x00b", "=?utf-8?q?=3Dcmd?=", "<script>x</script>"]
    line = csv_line(["id1", *hostile])
    (record,) = list(csv.reader(io.StringIO(line)))
    assert [unescape_cell(cell) for cell in record] == ["id1", *hostile]
    assert record[3] == "'=?utf-8?q?=3Dcmd?="
    assert all(cell[:1] not in FORMULA_TRIGGERS - {"'"} for cell in record)
