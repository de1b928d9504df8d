"""CSV import parsing: header rules, cells to fields, per-row errors, limits."""

from __future__ import annotations

import pytest

from shared.domain import crm_csv
from shared.domain.crm import ContactInput, InvestorInput, OrganizationInput
from shared.domain.crm_csv import CsvError, CsvTooLargeError, parse_csv


def csv_bytes(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def test_rows_become_inputs_with_lists_split_on_semicolons() -> None:
    parsed = parse_csv(
        csv_bytes(
            "Name , EMAILS,domains,graveyard,id",
            'Zeta Fund,"zoe@zeta.vc; ZED@Zeta.VC",@zeta.vc;zeta.com,yes,inv-1',
            "Angel,,,,",
        ),
        InvestorInput,
    )
    assert parsed.errors == []
    assert parsed.columns == ["name", "emails", "domains", "graveyard", "id"]
    (row2, zeta), (row3, angel) = parsed.rows
    assert (row2, row3) == (2, 3)
    assert zeta.id == "inv-1"
    assert zeta.emails == ["zoe@zeta.vc", "zed@zeta.vc"]
    assert zeta.domains == ["zeta.vc", "zeta.com"]
    assert zeta.graveyard is True
    # Empty cells of present columns clear; an empty id means a new record.
    assert angel.id is None
    assert angel.model_fields_set == {"name", "emails", "domains", "graveyard"}
    assert (angel.emails, angel.domains, angel.graveyard) == ([], [], False)


def test_columns_left_out_are_not_given() -> None:
    parsed = parse_csv(csv_bytes("id,domains", "org-1,acme.example"), OrganizationInput)
    ((_, org),) = parsed.rows
    assert org.given() == {"domains": ["acme.example"]}


def test_a_bad_row_is_reported_with_its_number_and_the_others_are_kept() -> None:
    parsed = parse_csv(
        csv_bytes(
            "name,emails,investor_id",
            "Good One,good@lp.example,inv-1",
            "Bad Address,not-an-address,inv-1",
            "",  # blank rows are skipped but keep the numbering
            "Too many,a@b.example,inv-1,extra",
            '"Multi\nline",c@d.example,inv-1',
            "Good Two,e@f.example,",
        ),
        ContactInput,
    )
    assert [row for row, _ in parsed.rows] == [2, 6, 7]
    assert parsed.rows[1][1].name == "Multi\nline"
    assert parsed.rows[2][1].investor_id is None
    errors = {e.row: e.errors for e in parsed.errors}
    assert set(errors) == {3, 5}
    assert errors[3][0].startswith("emails.0:")
    assert "not an e-mail address" in errors[3][0]
    assert "4 cells" in errors[5][0]


def test_a_graveyard_cell_must_be_a_boolean_and_a_name_must_not_be_empty() -> None:
    parsed = parse_csv(csv_bytes("name,graveyard", "Fund,maybe", ",no"), InvestorInput)
    assert parsed.rows == []
    errors = {e.row: e.errors for e in parsed.errors}
    assert errors[2] == ["graveyard: expected true or false"]
    assert errors[3][0].startswith("name:")


def test_trailing_empty_cells_and_a_byte_order_mark_are_accepted() -> None:
    data = "\ufeffid,name,,\r\norg-1,Acme,,\r\n".encode()
    parsed = parse_csv(data, OrganizationInput)
    assert parsed.columns == ["id", "name"]
    assert [(row, o.id, o.name) for row, o in parsed.rows] == [(2, "org-1", "Acme")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (csv_bytes("name,phone", "A,1"), "unknown column(s): 'phone'"),
        (csv_bytes("name,Name", "A,B"), "named twice: name"),
        (csv_bytes("name,,emails", "A,,a@b.example"), "column 2 of the header has no name"),
        ("name\r\nCaf\xe9\r\n".encode("latin-1"), "not UTF-8"),
        (b'name\r\n"unterminated\r\n', "unreadable CSV"),
        (b'name\r\nA\r\n"B"C\r\n', "row 3: unreadable CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(data: bytes, reason: str) -> None:
    with pytest.raises(CsvError) as caught:
        parse_csv(data, InvestorInput if b"emails" not in data else ContactInput)
    assert reason in str(caught.value)
    assert not isinstance(caught.value, CsvTooLargeError)


def test_columns_are_checked_against_the_record_kind() -> None:
    with pytest.raises(CsvError, match="graveyard"):
        parse_csv(csv_bytes("name,graveyard", "A,yes"), ContactInput)


def test_limits_on_bytes_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CsvTooLargeError, match="bytes"):
        parse_csv(b"name\r\n" + b"A\r\n" * (crm_csv.MAX_CSV_BYTES // 3 + 1), OrganizationInput)
    monkeypatch.setattr(crm_csv, "MAX_CSV_ROWS", 3)
    ok = parse_csv(csv_bytes("name", "A", "", "B", "C"), OrganizationInput)
    assert len(ok.rows) == 3  # blank rows do not count
    with pytest.raises(CsvTooLargeError, match="over 3 rows"):
        parse_csv(csv_bytes("name", "A", "B", "C", "D"), OrganizationInput)


def test_an_unknown_field_cannot_sneak_in_through_the_header() -> None:
    # "deleted" is a field of the input model but not an import column.
    with pytest.raises(CsvError, match="deleted"):
        parse_csv(csv_bytes("name,deleted", "A,true"), OrganizationInput)
