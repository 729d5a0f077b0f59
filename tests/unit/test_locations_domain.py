"""Import rows: CSV and JSON parsing and the all-or-nothing row validation, without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wms.domain.errors import ImportRejectedError
from wms.domain.locations import (
    MAX_REPORTED_ERRORS,
    ImportedLocation,
    LocationType,
    RawRow,
    TypeLock,
    check_type_changes,
    csv_rows,
    json_rows,
    validate_rows,
)

ZONES = {"A", "B"}


def errors_of(rows: list[RawRow], zones: set[str] = ZONES) -> set[tuple[object, object]]:
    with pytest.raises(ImportRejectedError) as caught:
        validate_rows(rows, zones)
    row_errors = caught.value.extensions["row_errors"]
    assert isinstance(row_errors, list)
    return {(error["line"], error["field"]) for error in row_errors}


def test_a_full_csv_row_becomes_a_typed_location() -> None:
    data = (
        b"code,type,zone,pick_sequence,capacity_units,capacity_volume_l,capacity_weight_kg,active\n"
        b"A-01-01,Storage,A,10,500,1.5,20,no\n"
    )
    [row] = validate_rows(csv_rows(data), ZONES)
    assert row == ImportedLocation(
        code="A-01-01",
        type=LocationType.STORAGE,
        zone="A",
        pick_sequence=10,
        capacity_units=500,
        capacity_volume_l=Decimal("1.5"),
        capacity_weight_kg=Decimal(20),
        active=False,
        given=frozenset(
            {
                "zone",
                "pick_sequence",
                "capacity_units",
                "capacity_volume_l",
                "capacity_weight_kg",
                "active",
            }
        ),
        line=2,  # the header is line 1
    )


def test_columns_missing_from_the_header_are_not_given_and_blank_cells_are_null() -> None:
    [row] = validate_rows(csv_rows(b"type,code,zone\ndock,D-1,\n"), ZONES)
    assert row.zone is None
    assert row.given == frozenset({"zone"})
    assert row.pick_sequence is None
    assert row.active is None


def test_csv_lines_are_physical_lines_counting_blank_and_multiline_rows() -> None:
    data = b'code,type\n\nA-1,storage\n"A\n2",storage\nA-3,roof\n'
    rows = csv_rows(data)
    assert [row.line for row in rows] == [3, 4, 6]
    assert errors_of(rows) == {(4, "code"), (6, "type")}


def test_a_csv_row_with_the_wrong_number_of_cells_is_an_error_of_its_line() -> None:
    assert errors_of(csv_rows(b"code,type\nA-1,storage,extra\n")) == {(2, "")}


def test_a_bad_csv_header_is_rejected_on_line_1() -> None:
    with pytest.raises(ImportRejectedError) as caught:
        csv_rows(b"code,kind,code\nA-1,storage,A-1\n")
    messages = [e["message"] for e in caught.value.extensions["row_errors"]]  # type: ignore[attr-defined]
    assert messages == ["column 'code' repeats", "missing column 'type'", "unknown column 'kind'"]


def test_a_csv_that_is_not_utf8_or_empty_is_rejected() -> None:
    with pytest.raises(ImportRejectedError):
        csv_rows("code,type\nÁ,storage\n".encode("latin-1"))
    with pytest.raises(ImportRejectedError):
        csv_rows(b"")


def test_a_byte_order_mark_is_ignored() -> None:
    [row] = validate_rows(csv_rows(b"\xef\xbb\xbfcode,type\nA-1,pick\n"), ZONES)
    assert row.type is LocationType.PICK


def test_json_rows_are_numbered_from_1_with_pointers_from_0() -> None:
    rows = json_rows([{"code": "A-1", "type": "storage"}, {"code": "A-2", "type": "roof"}, 7])
    assert errors_of(rows) == {(2, "/locations/1/type"), (3, "/locations/2")}


def test_json_values_must_have_json_types() -> None:
    rows = json_rows(
        [
            {"code": "A-1", "type": "storage", "pick_sequence": "10"},
            {"code": "A-2", "type": "storage", "capacity_units": True},
            {"code": "A-3", "type": "storage", "active": "yes"},
            {"code": 4, "type": "storage"},
        ]
    )
    assert errors_of(rows) == {
        (1, "/locations/0/pick_sequence"),
        (2, "/locations/1/capacity_units"),
        (3, "/locations/2/active"),
        (4, "/locations/3/code"),
    }


def test_json_null_clears_a_nullable_field_and_keeps_a_required_one() -> None:
    [row] = validate_rows(
        json_rows([{"code": "A-1", "type": "pick", "zone": None, "pick_sequence": None}]), ZONES
    )
    assert row.zone is None
    assert row.pick_sequence is None
    assert row.given == frozenset({"zone", "pick_sequence"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pick_sequence", -1),
        ("pick_sequence", 2**31),
        ("capacity_units", 0),
        ("capacity_volume_l", 0),
        ("capacity_volume_l", 1.2345),
        ("capacity_weight_kg", "NaN"),
        ("capacity_weight_kg", 10**10),
        ("zone", "C"),
        ("zone", "bad zone"),
        ("code", ""),
        ("type", None),
        ("colour", "red"),
    ],
)
def test_out_of_range_or_unknown_values_are_named(field: str, value: object) -> None:
    rows = json_rows([{"code": "A-1", "type": "storage", field: value}])
    assert errors_of(rows) == {(1, f"/locations/0/{field}")}


def test_missing_required_fields_are_reported() -> None:
    assert errors_of(json_rows([{"zone": "A"}])) == {
        (1, "/locations/0/code"),
        (1, "/locations/0/type"),
    }


def test_a_code_repeated_in_the_file_names_the_later_line() -> None:
    rows = csv_rows(b"code,type\nA-1,storage\nA-2,storage\nA-1,pick\n")
    with pytest.raises(ImportRejectedError) as caught:
        validate_rows(rows, ZONES)
    [error] = caught.value.extensions["row_errors"]  # type: ignore[misc]
    assert error == {"line": 4, "field": "code", "message": "code A-1 repeats line 2"}


def test_every_bad_row_is_reported_up_to_a_limit() -> None:
    rows = json_rows([{"code": f"A-{n}", "type": "roof"} for n in range(MAX_REPORTED_ERRORS + 5)])
    with pytest.raises(ImportRejectedError) as caught:
        validate_rows(rows, ZONES)
    assert len(caught.value.extensions["row_errors"]) == MAX_REPORTED_ERRORS  # type: ignore[arg-type]
    assert "the first 1000 are listed" in caught.value.detail


def test_a_file_of_good_rows_is_accepted_whole() -> None:
    rows = json_rows([{"code": f"A-{n}", "type": "storage", "zone": "B"} for n in range(100)])
    assert [row.code for row in validate_rows(rows, ZONES)] == [f"A-{n}" for n in range(100)]


def test_a_locked_type_change_names_each_row_with_its_reason() -> None:
    rows = validate_rows(csv_rows(b"code,type\nA-1,dock\nA-2,dock\nOUTBOUND,storage\n"), ZONES)
    locked = {"A-2": TypeLock.COUNTED, "OUTBOUND": TypeLock.OUTBOUND_STAGING}
    with pytest.raises(ImportRejectedError) as caught:
        check_type_changes(rows, locked)
    errors = caught.value.extensions["row_errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(3, "type"), (4, "type")]  # type: ignore[union-attr]
    assert "A-2 is in a cycle count awaiting approval" in errors[0]["message"]  # type: ignore[index]
    assert "OUTBOUND is the warehouse's outbound staging location" in errors[1]["message"]  # type: ignore[index]
    check_type_changes(rows, {})  # nothing locked: accepted
