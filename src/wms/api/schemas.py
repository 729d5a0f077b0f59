"""Shared pieces of request and response schemas, and the typed path parameters."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from annotated_types import Interval
from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"
ORDER_NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"
# Free text may hold any character but NUL (PostgreSQL refuses it in text) and the other
# control characters; tab and line breaks stay allowed (a description may span lines).
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
MAX_ID = 2**63 - 1  # ids are int64 (API.md)


class MemberError(ValueError):
    """A whole-object check's failure, pointing at the member to fix.

    Raised from a model validator, where pydantic would locate the error at the object
    itself (``/``, which as a JSON Pointer names a member called ""); the problem's
    ``field`` then ends with ``member``.
    """

    def __init__(self, member: str, message: str) -> None:
        super().__init__(message)
        self.member = member


Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=TEXT_PATTERN),
]


MAX_QUANTITY = 1_000_000_000
PositiveQuantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
Lot = Annotated[str | None, Field(max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")]
Uom = Annotated[str | None, Field(max_length=10, pattern=r"^[A-Z0-9]+$")]


def text(max_length: int, *, min_length: int = 0) -> Any:
    """Constraints of a free-text field: its length, and no control characters."""
    return Field(min_length=min_length, max_length=max_length, pattern=TEXT_PATTERN)


def text_query(max_length: int, description: str | None = None) -> Any:
    """A free-text query filter (no control characters, bounded length)."""
    return Query(max_length=max_length, pattern=TEXT_PATTERN, description=description)


# Path parameters: an object's business code or int64 id. A value that can never name
# an object (wrong shape) is a 422 validation error before any lookup.
CodePath = Annotated[str, Path(pattern=CODE_PATTERN, examples=["SP1"])]
_SLASH_ENCODED = "A `/` in it is sent encoded, as `%2F` (`CABLE-1%2F2`)."
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, examples=["SKU-1"], description=_SLASH_ENCODED)]
OrderNumberPath = Annotated[
    str, Path(pattern=ORDER_NUMBER_PATTERN, examples=["SO-1001"], description=_SLASH_ENCODED)
]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# Dates a query may name: a day's or a range's arithmetic past Python's years 1..9999
# raised OverflowError (a 500); no warehouse record lies outside these.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9000, 12, 31)
BoundedDate = Annotated[date, Interval(ge=EARLIEST_DATE, le=LATEST_DATE)]
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


def _not_a_number(value: Any) -> Any:
    """Refuse a number where RFC 3339 text is due: pydantic would read it as Unix time."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be RFC 3339 text, not a number")
    return value


# Times and dates in requests (API.md: RFC 3339, times with an offset): "1700000000" was
# taken as 2023-11-14T22:13:20Z.
Rfc3339Datetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
Rfc3339Date = Annotated[date, BeforeValidator(_not_a_number)]


def not_null(value: object) -> object:
    """A PATCH field's check: it may be left out, never null (defaults are not validated,
    so only a null the client sent fails); use as ``field_validator(...)(not_null)``."""
    if value is None:
        raise ValueError("may be left out but not null")
    return value


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """A response body."""

    model_config = ConfigDict(from_attributes=True)


def examples(*values: dict[str, Any]) -> ConfigDict:
    """The config of a request model with ``values`` as its OpenAPI examples (API.md's)."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(values)})


class CancelReason(RequestModel):
    """Body of a cancellation (replenishment task, cycle count): why, optionally."""

    model_config = examples({"reason": "reserve stock sold"})

    reason: Annotated[str | None, text(200)] = None
