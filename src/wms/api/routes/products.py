"""``/products``: create, read, update, list (by barcode too), and bulk import (JSON or CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError, field_validator
from pydantic_core import ErrorDetails

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.json_body import MalformedJsonError, parse_json
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.paths import segment
from wms.api.problems import json_pointer
from wms.api.query_models import query_of
from wms.api.routing import api_router, link, links
from wms.api.schemas import (
    TEXT_PATTERN,
    RequestModel,
    ResponseModel,
    Sku,
    SkuPath,
    examples,
    not_null,
    text_query,
)
from wms.domain.errors import FieldError, ImportRejectedError, NotFoundError
from wms.domain.products import DEFAULT_BASE_UOM, Uom, VelocityClass
from wms.domain.settings import AllocationStrategy
from wms.services import products as service
from wms.services.products import ImportRow, ImportSummary
from wms.store import products as store

router = api_router("products")

MAX_IMPORT_ROWS = 50_000
CSV_LIST_SEPARATOR = "|"
Description = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, strip_whitespace=True, pattern=TEXT_PATTERN),
]
UomCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,10}$")]
Barcode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Barcodes = Annotated[list[Barcode], Field(max_length=100)]
Category = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=TEXT_PATTERN),
]
Weight = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
Length = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
# Columns that may be left out but never set to null (the others: null clears them).
_NOT_NULL = ("description", "base_uom", "lot_tracked", "expiry_tracked", "active", "barcodes")


class NewUom(RequestModel):
    """A unit of measure other than the base unit: ``factor`` base units each."""

    code: UomCode
    factor: Annotated[int, Field(ge=1, le=2_147_483_647)]
    barcodes: Barcodes = Field(default_factory=list)


class ProductChanges(RequestModel):
    """Body of ``PATCH /products/{sku}``: only the fields given change.

    ``barcodes`` and ``uoms``, when given, replace the whole list. ``expiry_tracked``
    requires ``lot_tracked``.
    """

    model_config = examples({"description": "Widget, blue", "barcodes": ["7891234567895"]})

    description: Description | None = None
    base_uom: UomCode | None = None
    lot_tracked: bool | None = None
    expiry_tracked: bool | None = None
    velocity_class: VelocityClass | None = None
    category: Category | None = None
    weight_kg: Weight | None = None
    length_cm: Length | None = None
    width_cm: Length | None = None
    height_cm: Length | None = None
    allocation_strategy: AllocationStrategy | None = None
    over_receipt_tolerance_pct: Percent | None = None
    min_shelf_life_days: Annotated[int, Field(ge=0, le=36_500)] | None = None
    active: bool | None = None
    barcodes: Barcodes | None = None
    uoms: Annotated[list[NewUom], Field(max_length=20)] | None = None

    _present = field_validator(*_NOT_NULL)(not_null)


class NewProduct(ProductChanges):
    """Body of ``POST /products`` and one row of ``POST /products:import``."""

    model_config = examples(
        {"sku": "SKU-1", "description": "Widget", "barcodes": ["7891234567895"],
         "lot_tracked": False, "expiry_tracked": False,
         "uoms": [{"code": "CASE", "factor": 12, "barcodes": ["17891234567892"]}]}
    )  # fmt: skip

    sku: Sku
    description: Description
    base_uom: UomCode = DEFAULT_BASE_UOM


class UomOut(ResponseModel):
    """A unit of measure with its barcodes."""

    code: str
    factor: int
    barcodes: list[str]


class Product(ResponseModel):
    """A product with its barcodes and units (barcodes sorted; units by factor)."""

    sku: str
    description: str
    base_uom: str
    lot_tracked: bool
    expiry_tracked: bool
    velocity_class: VelocityClass | None
    category: str | None
    weight_kg: float | None
    length_cm: float | None
    width_cm: float | None
    height_cm: float | None
    allocation_strategy: AllocationStrategy | None
    over_receipt_tolerance_pct: float | None
    min_shelf_life_days: int | None
    active: bool
    barcodes: list[str]
    uoms: list[UomOut]
    created_at: datetime
    updated_at: datetime


class ImportResult(ResponseModel):
    """What an import did: products created, updated, and given but already as stated."""

    created: int
    updated: int
    unchanged: int


class _ImportBody(RequestModel):
    """Body of ``POST /products:import`` as JSON (documented by ``_IMPORT_BODY``)."""

    products: Annotated[list[NewProduct], Field(max_length=MAX_IMPORT_ROWS)]


_ROW = TypeAdapter(NewProduct)
_IMPORT = TypeAdapter(_ImportBody)
_IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["products"],
                "additionalProperties": False,
                "properties": {
                    "products": {
                        "type": "array",
                        "maxItems": MAX_IMPORT_ROWS,
                        "items": {"$ref": "#/components/schemas/NewProduct"},
                    }
                },
            }
        },
        "text/csv": {
            "schema": {
                "type": "string",
                "description": (
                    "A header row naming columns of `NewProduct` (`sku` and `description` "
                    "required); `barcodes` separated by `|`; `uoms` as a JSON array; "
                    "an empty cell leaves the field out."
                ),
            },
            "example": "sku,description,lot_tracked,barcodes\nSKU-1,Widget,false,789|790\n",
        },
    },
}


def _changes(body: ProductChanges) -> dict[str, Any]:
    """The fields given, as the domain's values (plain strings, tuples, ``Uom``)."""
    changes: dict[str, Any] = {}
    for name in body.model_fields_set - {"sku"}:
        value = getattr(body, name)
        if isinstance(value, Enum):
            value = value.value
        elif name == "barcodes":
            value = tuple(value)
        elif name == "uoms":
            value = tuple(Uom(u.code, u.factor, tuple(u.barcodes)) for u in value or ())
        changes[name] = value
    return changes


def _created(row: dict[str, Any]) -> Answer:
    product = Product.model_validate(row)
    return Answer(201, product, f"/api/v1/products/{segment(product.sku)}")


def _ok(row: dict[str, Any]) -> Answer:
    return Answer(200, Product.model_validate(row))


def _imported(summary: ImportSummary) -> Answer:
    return Answer(200, ImportResult(**vars(summary)))


@router.post(
    "/products",
    status_code=201,
    response_model=Product,
    responses=links(
        201,
        GetProduct=link("GET /products/{sku}", "The new product", sku="$response.body#/sku"),
        UpdateProduct=link("PATCH /products/{sku}", "Change it", sku="$response.body#/sku"),
    ),
)
async def create_product(body: NewProduct, request: Request, principal: PrincipalDep) -> Response:
    """Create a product with its barcodes and units of measure."""
    changes = _changes(body)
    return await run_command(
        request, principal, lambda uow: service.create_product(uow, body.sku, changes), _created
    )


class ProductQuery(ListQuery):
    """Filters of the product listing."""

    barcode: Annotated[str | None, text_query(64, "A barcode of the product or of a unit.")] = None
    category: Annotated[str | None, text_query(100)] = None
    active: bool | None = None
    sku: Annotated[str | None, text_query(64)] = None


@router.get("/products", response_model=Page[Product])
async def list_products(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[ProductQuery, query_of(ProductQuery)],
) -> Page[Product]:
    """Products in creation order (by id), filtered."""
    listing = start_listing(request, principal.tenant_id, query=query)
    after = listing.after[0] if listing.after else None
    async with read_transaction(request, principal) as conn:
        rows = await store.list_page(
            conn,
            after_id=after,
            limit=listing.fetch,
            sku=query.sku,
            barcode=query.barcode,
            category=query.category,
            active=query.active,
        )
    return listing.page(rows, position=lambda row: [row["id"]], item=Product.model_validate)


@router.get("/products/{sku:segment}", response_model=Product)
async def get_product(sku: SkuPath, request: Request, principal: PrincipalDep) -> Product:
    """One product."""
    async with read_transaction(request, principal) as conn:
        row = await store.get(conn, sku)
    if row is None:
        raise NotFoundError(f"no product {sku}")
    return Product.model_validate(row)


@router.patch("/products/{sku:segment}", response_model=Product)
async def update_product(
    sku: SkuPath, body: ProductChanges, request: Request, principal: PrincipalDep
) -> Response:
    """Change the fields given; ``barcodes`` and ``uoms`` when given replace the lists."""
    changes = _changes(body)
    return await run_command(
        request, principal, lambda uow: service.update_product(uow, sku, changes), _ok
    )


@router.post(
    "/products:import", response_model=ImportResult, openapi_extra={"requestBody": _IMPORT_BODY}
)
async def import_products(request: Request, principal: PrincipalDep) -> Response:
    """Create or update products by SKU from JSON or CSV: every row, or none (422 per row)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    rows, errors = _csv_rows(raw) if content_type == "text/csv" else _json_rows(raw)
    return await run_command(
        request, principal, lambda uow: service.import_products(uow, rows, errors), _imported
    )


def _json_rows(raw: bytes) -> tuple[list[ImportRow], list[dict[str, object]]]:
    """Rows of ``{"products": [...]}`` (line = 1-based index), and the rows' shape errors."""
    try:
        # The fast path: pydantic parses and checks the whole body in one call.
        products = _IMPORT.validate_json(raw).products
    except ValidationError:
        return _json_rows_one_by_one(raw)
    return [
        ImportRow(index + 1, p.sku, _changes(p), f"/products/{index}")
        for index, p in enumerate(products)
    ], []


def _json_rows_one_by_one(raw: bytes) -> tuple[list[ImportRow], list[dict[str, object]]]:
    """``_json_rows`` for a body with errors: every row's errors, and the good rows."""
    body = parse_json(raw, parse_float=Decimal)
    if not isinstance(body, dict) or set(body) != {"products"}:
        raise FieldError("/", 'must be an object with the one field "products"')
    items = body["products"]
    if not isinstance(items, list):
        raise FieldError("/products", "must be a list of products")
    _check_size(len(items), "/products")
    rows, errors = [], []
    for index, item in enumerate(items):
        pointer = f"/products/{index}"
        try:
            product = _ROW.validate_python(item)
        except ValidationError as exc:
            errors += [
                {"line": index + 1, "field": pointer + json_pointer(e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
        else:
            rows.append(ImportRow(index + 1, product.sku, _changes(product), pointer))
    return rows, errors


def _csv_rows(raw: bytes) -> tuple[list[ImportRow], list[dict[str, object]]]:
    """Rows of a CSV file (line = physical line, header = 1), and the rows' errors."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        error = {"line": line, "field": "", "message": "the file is not UTF-8 text"}
        raise ImportRejectedError("the file is not UTF-8 text", [error]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    records = _records(reader)
    columns = [name.strip() for name in next(records, [])]
    _check_header(columns)
    rows: list[ImportRow] = []
    errors: list[dict[str, object]] = []
    last_line, row_count = reader.line_num, 0
    for record in records:
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank lines are not rows
        row_count += 1  # a bad row may have many errors: they are not rows
        _check_size(row_count, "body")
        if len(record) != len(columns):
            message = f"has {len(record)} cells where the header names {len(columns)} columns"
            errors.append({"line": line, "field": "", "message": message})
            continue
        cells = {name: cell.strip() for name, cell in zip(columns, record, strict=True)}
        try:
            product = _ROW.validate_python(
                {name: _cell(name, cell) for name, cell in cells.items() if cell}
            )
        except ValidationError as exc:
            errors += [_csv_error(line, e) for e in exc.errors()]
        except ValueError as exc:
            errors.append({"line": line, "field": "uoms", "message": str(exc)})
        else:
            rows.append(ImportRow(line, product.sku, _changes(product)))
    return rows, errors


def _records(reader: Any) -> Iterator[list[str]]:
    """The reader's records; a file the csv module cannot read (a cell over its size
    limit, say) is rejected at the line it reached, not answered with a 500."""
    try:
        yield from reader
    except csv.Error as exc:
        error = {"line": reader.line_num, "field": "", "message": str(exc)}
        raise ImportRejectedError("the CSV file is malformed", [error]) from None


def _check_header(columns: list[str]) -> None:
    """Refuse a header with unknown, repeated or missing required columns."""
    known = NewProduct.model_fields
    problems = [(name, "is not a product field") for name in columns if name not in known]
    problems += [(name, "is repeated") for name in set(columns) if columns.count(name) > 1]
    problems += [(name, "is required") for name in ("sku", "description") if name not in columns]
    if problems:
        errors: list[dict[str, object]] = [
            {"line": 1, "field": name, "message": f"column {message}"} for name, message in problems
        ]
        raise ImportRejectedError("the header row is not valid", errors)


def _cell(column: str, cell: str) -> object:
    """A CSV cell as the value pydantic validates (lists split, ``uoms`` parsed)."""
    if column == "barcodes":
        return [code.strip() for code in cell.split(CSV_LIST_SEPARATOR) if code.strip()]
    if column == "uoms":
        try:
            return parse_json(cell)
        except MalformedJsonError:
            raise ValueError(
                'must be a JSON array such as [{"code": "CS", "factor": 12}]'
            ) from None
    return cell


def _csv_error(line: int, error: ErrorDetails) -> dict[str, object]:
    """A pydantic error of one CSV row: the column as the field, any inner path in the text."""
    column, *inner = error["loc"] or ("",)
    where = f"at {json_pointer(tuple(inner))}: " if inner else ""
    return {"line": line, "field": str(column), "message": where + error["msg"]}


def _check_size(rows: int, field: str) -> None:
    if rows > MAX_IMPORT_ROWS:
        raise FieldError(field, f"at most {MAX_IMPORT_ROWS} rows per import; split the file")
