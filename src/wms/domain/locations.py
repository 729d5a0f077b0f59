"""Locations in the warehouse's terms: their types, and the rows of a bulk import.

An import arrives as CSV or JSON; both become ``RawRow``s that ``validate_rows`` checks
all at once, so a file is either accepted whole or rejected with every bad row's line
and field (``ImportRejectedError``), before anything touches the database.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from wms.domain.errors import ImportRejectedError

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MAX_INT = 2**31 - 1  # the columns are PostgreSQL ``integer``
MAX_MEASURE = Decimal("999999999.999")  # numeric(12,3)
MAX_IMPORT_ROWS = 50_000
MAX_REPORTED_ERRORS = 1000
REQUIRED_COLUMNS = ("code", "type")
OPTIONAL_COLUMNS = (
    "zone",
    "pick_sequence",
    "capacity_units",
    "capacity_volume_l",
    "capacity_weight_kg",
    "active",
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
T = TypeVar("T")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class LocationType(StrEnum):
    """What a location is for."""

    DOCK = "dock"
    STORAGE = "storage"
    PICK = "pick"
    STAGING = "staging"
    SHIPPING = "shipping"


@dataclass(frozen=True)
class RawRow:
    """One row of an import as received: CSV cells (text) or a decoded JSON object.

    ``line`` is the CSV physical line (header = 1) or the 1-based JSON index; ``prefix``
    turns a column name into the error's ``field`` (``""`` for CSV, ``/locations/3/``).
    """

    line: int
    values: Mapping[str, object]
    prefix: str = ""
    text: bool = False  # CSV: every value is text, so numbers and flags are parsed


@dataclass(frozen=True)
class ImportedLocation:
    """A valid import row. Optional fields not in ``given`` keep their stored value."""

    code: str
    type: LocationType
    zone: str | None = None
    pick_sequence: int | None = None  # None: keep (0 for a new location)
    capacity_units: int | None = None
    capacity_volume_l: Decimal | None = None
    capacity_weight_kg: Decimal | None = None
    active: bool | None = None  # None: keep (true for a new location)
    given: frozenset[str] = frozenset()
    line: int = 0  # where the row is in the file, for errors found after validation
    prefix: str = ""  # the row's field prefix (JSON: its pointer; CSV: none)


class _BadValueError(ValueError):
    """One field of one row is wrong; the message is what the client reads."""


def rejected(detail: str, line: int, field: str, message: str) -> ImportRejectedError:
    """An ``ImportRejectedError`` about a single problem (a bad header, a bad body)."""
    return ImportRejectedError(
        detail, row_errors=[{"line": line, "field": field, "message": message}]
    )


def csv_rows(data: bytes) -> list[RawRow]:
    """The data rows of a CSV file (UTF-8, header first); blank lines are skipped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise rejected("the CSV file is not UTF-8", 1, "", str(exc)) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise rejected("the CSV file is empty", 1, "", "expected a header row") from None
    _check_header(header)
    rows: list[RawRow] = []
    line_after = reader.line_num
    try:
        for cells in reader:
            # A quoted value may span lines: a row starts right after the previous one ended.
            start, line_after = line_after + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                rows.append(
                    RawRow(start, {"": f"expected {len(header)} values, found {len(cells)}"})
                )
                continue
            rows.append(RawRow(start, dict(zip(header, cells, strict=True)), text=True))
    except csv.Error as exc:
        raise rejected("the CSV file is malformed", reader.line_num, "", str(exc)) from None
    return rows


def _check_header(header: list[str]) -> None:
    problems = [f"unknown column {name!r}" for name in header if name not in COLUMNS]
    problems += [f"column {name!r} repeats" for name in set(header) if header.count(name) > 1]
    problems += [f"missing column {name!r}" for name in REQUIRED_COLUMNS if name not in header]
    if problems:
        raise ImportRejectedError(
            "the CSV header is not valid",
            row_errors=[{"line": 1, "field": "", "message": p} for p in sorted(problems)],
        )


def json_rows(items: Sequence[object]) -> list[RawRow]:
    """The rows of a JSON import body's ``locations`` list."""
    rows = []
    for index, item in enumerate(items):
        prefix = f"/locations/{index}/"
        if isinstance(item, Mapping):
            rows.append(RawRow(index + 1, item, prefix))
        else:
            rows.append(RawRow(index + 1, {"": "must be an object"}, prefix))
    return rows


def validate_rows(rows: Sequence[RawRow], zones: Collection[str]) -> list[ImportedLocation]:
    """Every row checked (fields, known zone, code once per file); all good or none."""
    if len(rows) > MAX_IMPORT_ROWS:
        raise rejected(
            f"an import holds at most {MAX_IMPORT_ROWS} rows",
            rows[MAX_IMPORT_ROWS].line,
            "",
            f"{len(rows)} rows sent",
        )
    errors: list[dict[str, object]] = []
    valid: list[ImportedLocation] = []
    first_line: dict[str, int] = {}
    for row in rows:
        row_errors: list[tuple[str, str]] = []
        location = _validate_row(row, zones, row_errors)
        if location is not None:
            seen = first_line.setdefault(location.code, row.line)
            if seen != row.line:
                row_errors.append(("code", f"code {location.code} repeats line {seen}"))
            else:
                valid.append(location)
        errors += [{"line": row.line, "field": _field(row, f), "message": m} for f, m in row_errors]
    if errors:
        raise _rejection(errors)
    return valid


class TypeLock(StrEnum):
    """Why a location's type may not change now."""

    # A location's type decides what its stock is for: dock stock waits for its putaway
    # task, storage and pick stock is allocatable. Changed under stock or open tasks,
    # received stock would become allocatable while its task still means to move it (or
    # allocated stock would sit on a dock).
    IN_USE = "in_use"
    # Approval adds what the count found: onto a dock, no putaway task would move it on.
    COUNTED = "counted"
    # Allocation never takes stock from the outbound staging location, whatever its type:
    # made storage, putaway would fill it with stock no order could ever have.
    OUTBOUND_STAGING = "outbound_staging"


_TYPE_LOCKED_MESSAGES = {
    TypeLock.IN_USE: "location {code} holds stock or open tasks: its type changes only while "
    "it holds none (move the stock out, finish the tasks)",
    TypeLock.COUNTED: "location {code} is in a cycle count awaiting approval: its type "
    "changes only once no count of it awaits approval (approve or cancel the count)",
    TypeLock.OUTBOUND_STAGING: "location {code} is the warehouse's outbound staging location, "
    "where picked stock waits for dispatch: its type stays staging",
}


def type_locked(code: str, reason: TypeLock) -> str:
    """What a client reads when location ``code``'s type may not change for ``reason``."""
    return _TYPE_LOCKED_MESSAGES[reason].format(code=code)


def check_type_changes(rows: Sequence[ImportedLocation], locked: Mapping[str, TypeLock]) -> None:
    """Reject the import if any row changes the type of a location in ``locked``."""
    errors: list[dict[str, object]] = [
        {"line": r.line, "field": _field(r, "type"), "message": type_locked(r.code, locked[r.code])}
        for r in rows
        if r.code in locked
    ]
    if errors:
        raise _rejection(errors)


def _rejection(errors: list[dict[str, object]]) -> ImportRejectedError:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = f"; the first {len(shown)} are listed" if len(errors) > len(shown) else ""
    return ImportRejectedError(
        f"{len(errors)} error(s) in {len({e['line'] for e in errors})} row(s); "
        f"nothing was imported{more}",
        row_errors=shown,
    )


def _field(row: RawRow | ImportedLocation, name: str) -> str:
    return (row.prefix + name).rstrip("/") if row.prefix else name


def _validate_row(
    row: RawRow, zones: Collection[str], errors: list[tuple[str, str]]
) -> ImportedLocation | None:
    values = row.values
    if "" in values:  # the row could not even be split into fields
        errors.append(("", str(values[""])))
        return None
    errors += [(name, "unknown field") for name in values if name not in COLUMNS]
    parsed: dict[str, object] = {}
    for name, parse in _PARSERS.items():
        if name not in values:
            continue
        try:
            parsed[name] = parse(values[name], row.text)
        except _BadValueError as exc:
            errors.append((name, str(exc)))
    bad = {field for field, _ in errors}
    errors += [
        (name, "is required")
        for name in REQUIRED_COLUMNS
        if name not in bad and parsed.get(name) is None
    ]
    zone = parsed.get("zone")
    if isinstance(zone, str) and zone not in zones:
        errors.append(("zone", f"no zone {zone} in this warehouse"))
    if errors:
        return None
    return ImportedLocation(
        code=str(parsed["code"]),
        type=LocationType(str(parsed["type"])),
        zone=zone if isinstance(zone, str) else None,
        pick_sequence=_optional(parsed, "pick_sequence", int),
        capacity_units=_optional(parsed, "capacity_units", int),
        capacity_volume_l=_optional(parsed, "capacity_volume_l", Decimal),
        capacity_weight_kg=_optional(parsed, "capacity_weight_kg", Decimal),
        active=_optional(parsed, "active", bool),
        given=frozenset(name for name in OPTIONAL_COLUMNS if name in values),
        line=row.line,
        prefix=row.prefix,
    )


def _optional(parsed: Mapping[str, object], name: str, kind: type[T]) -> T | None:
    value = parsed.get(name)
    return value if isinstance(value, kind) else None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_code(value: object, text: bool = False) -> str | None:
    """A location or zone code; blank is None."""
    if _blank(value):
        return None
    if not isinstance(value, str) or not CODE_PATTERN.match(value.strip()):
        raise _BadValueError("must be 1-40 letters, digits, '_', '.' or '-', starting alphanumeric")
    return value.strip()


def parse_type(value: object, text: bool = False) -> LocationType | None:
    """A location type; blank is None."""
    if _blank(value):
        return None
    if isinstance(value, str) and value.strip().lower() in _TYPES:
        return LocationType(value.strip().lower())
    raise _BadValueError("must be one of " + ", ".join(_TYPES))


def _integer(value: object, text: bool, *, minimum: int) -> int | None:
    if _blank(value):
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text and isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    if number is None or not minimum <= number <= MAX_INT:
        raise _BadValueError(f"must be a whole number from {minimum} to {MAX_INT}")
    return number


def parse_pick_sequence(value: object, text: bool = False) -> int | None:
    """Walking order: a whole number ≥ 0; blank is None."""
    return _integer(value, text, minimum=0)


def parse_capacity_units(value: object, text: bool = False) -> int | None:
    """Capacity in base units: a whole number ≥ 1; blank is None."""
    return _integer(value, text, minimum=1)


def parse_measure(value: object, text: bool = False) -> Decimal | None:
    """A volume or weight: a positive number with at most 3 decimals; blank is None."""
    if _blank(value):
        return None
    number: Decimal | None = None
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        text and isinstance(value, str)
    ):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = None
    if (
        number is None
        or not number.is_finite()
        or not 0 < number <= MAX_MEASURE
        or number != number.quantize(Decimal("0.001"))
    ):
        raise _BadValueError(
            f"must be a number above 0 and up to {MAX_MEASURE}, 3 decimals at most"
        )
    return number


def parse_active(value: object, text: bool = False) -> bool | None:
    """A flag: JSON true/false, or in CSV true/false, yes/no, 1/0; blank is None."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _BadValueError("must be true or false")


_TYPES = tuple(t.value for t in LocationType)
_PARSERS = {
    "code": parse_code,
    "type": parse_type,
    "zone": parse_code,
    "pick_sequence": parse_pick_sequence,
    "capacity_units": parse_capacity_units,
    "capacity_volume_l": parse_measure,
    "capacity_weight_kg": parse_measure,
    "active": parse_active,
}
