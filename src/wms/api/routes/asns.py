"""``/asns``: advance shipping notices, receiving by scan, and closing with a report."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, StringConstraints

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.query_models import query_of
from wms.api.routes.putaway import PutawayTask
from wms.api.routing import api_router, link, links
from wms.api.schemas import (
    TEXT_PATTERN,
    Code,
    IdPath,
    Lot,
    Name,
    PositiveQuantity,
    RequestModel,
    ResponseModel,
    Rfc3339Date,
    Rfc3339Datetime,
    Sku,
    Uom,
    examples,
    text_query,
)
from wms.domain.errors import FieldError
from wms.domain.inbound import AsnStatus, Condition
from wms.services import asns as service
from wms.store import asns as store

router = api_router("inbound")
MAX_LINES = 5000
Barcode = Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Reference = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True, pattern=TEXT_PATTERN),
]


class NewAsnLine(RequestModel):
    """An expected line; ``lot``/``expiry`` optional (named when the supplier knows them)."""

    sku: Sku
    quantity: PositiveQuantity
    uom: Uom = None
    lot: Lot = None
    expiry: Rfc3339Date | None = None


class NewAsn(RequestModel):
    """Body of ``POST /asns``."""

    model_config = examples(
        {"reference": "PO-77", "warehouse": "SP1", "supplier": "ACME",
         "expected_at": "2026-12-01T12:00:00Z", "lines": [{"sku": "SKU-1", "quantity": 100}]}
    )  # fmt: skip

    reference: Reference
    warehouse: Code
    supplier: Name
    expected_at: Rfc3339Datetime | None = None
    lines: Annotated[list[NewAsnLine], Field(min_length=1, max_length=MAX_LINES)]


class ScanLine(RequestModel):
    """One scan: the product by ``sku`` or ``barcode`` (a unit's barcode names its unit)."""

    location: Code
    sku: Sku | None = None
    barcode: Barcode = None
    quantity: PositiveQuantity
    uom: Uom = None
    lot: Lot = None
    expiry: Rfc3339Date | None = None
    condition: Condition = Condition.GOOD


class NewReceipt(RequestModel):
    """Body of ``POST /asns/{id}/receipts``: one scan's fields, or ``lines`` of scans.

    ``allow_unexpected`` lets products the ASN does not list be received (else 409
    ``not-on-asn``).
    """

    model_config = examples(
        {"location": "DOCK-1", "sku": "SKU-1", "quantity": 40, "lot": None, "expiry": None,
         "condition": "good"}
    )  # fmt: skip

    location: Code | None = None
    sku: Sku | None = None
    barcode: Barcode = None
    quantity: PositiveQuantity | None = None
    uom: Uom = None
    lot: Lot = None
    expiry: Rfc3339Date | None = None
    condition: Condition = Condition.GOOD
    lines: Annotated[list[ScanLine], Field(min_length=1, max_length=MAX_LINES)] | None = None
    allow_unexpected: bool = False


class AsnLineOut(ResponseModel):
    """An expected line with what was received against it (base units)."""

    line: int
    sku: str
    lot: str | None
    expiry: date | None
    expected: int
    received_good: int
    received_damaged: int


class DiscrepancyOut(ResponseModel):
    """Expected against received; ``line`` is null for a product the ASN did not list."""

    line: int | None
    sku: str
    lot: str | None
    expected: int
    received_good: int
    received_damaged: int
    short: int
    over: int


class AsnSummary(ResponseModel):
    """An ASN in a listing."""

    id: int
    reference: str
    warehouse: str
    supplier: str
    expected_at: datetime | None
    status: AsnStatus
    created_at: datetime
    closed_at: datetime | None
    line_count: int


class Asn(ResponseModel):
    """An ASN with its lines and the discrepancy report (final once closed)."""

    id: int
    reference: str
    warehouse: str
    supplier: str
    expected_at: datetime | None
    status: AsnStatus
    created_by: str
    created_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    lines: list[AsnLineOut]
    discrepancies: list[DiscrepancyOut]


class ReceiptLineOut(ResponseModel):
    """One received scan: base ``quantity``, and ``uom``/``uom_quantity`` as scanned."""

    line: int
    asn_line: int | None
    sku: str
    lot: str | None
    expiry: date | None
    quantity: int
    uom: str | None
    uom_quantity: int
    scanned: str
    condition: Condition
    location: str
    putaway_task: int | None


class Receipt(ResponseModel):
    """A receipt with its lines and the putaway tasks of its good lines."""

    id: int
    asn: int
    received_by: str
    received_at: datetime
    lines: list[ReceiptLineOut]
    putaway_tasks: list[PutawayTask]


_ASN = {"id": "$response.body#/id"}


_ASN_LINKS = {
    "GetAsn": link("GET /asns/{id}", "The ASN", **_ASN),
    "Receive": link("POST /asns/{id}/receipts", "Receive against it", **_ASN),
    "CloseAsn": link("POST /asns/{id}/close", "Close it", **_ASN),
}


@router.post(
    "/asns",
    status_code=201,
    response_model=Asn,
    responses={
        200: {
            "model": Asn,
            "description": "An ASN with this reference and content already exists (unchanged)",
            "links": _ASN_LINKS,
        },
        201: {"links": _ASN_LINKS},
    },
)
async def create_asn(body: NewAsn, request: Request, principal: PrincipalDep) -> Response:
    """Create an ASN (201). The same ``reference`` with the same content again answers 200
    with the existing ASN, unchanged; with other content, 409 ``conflict``."""
    lines = [service.ExpectedLine(ln.sku, ln.quantity, ln.uom, ln.lot, ln.expiry)
             for ln in body.lines]  # fmt: skip

    def answer(result: tuple[dict[str, Any], bool]) -> Answer:
        asn, created = result
        return Answer(201 if created else 200, Asn.model_validate(asn), f"/api/v1/asns/{asn['id']}")

    return await run_command(
        request,
        principal,
        lambda uow: service.create(
            uow,
            reference=body.reference,
            warehouse=body.warehouse,
            supplier=body.supplier,
            expected_at=body.expected_at,
            lines=lines,
        ),
        answer,
    )


Filter = Annotated[str | None, text_query(100)]


class AsnQuery(ListQuery):
    """Filters of the ASN listing."""

    reference: Filter = None
    status: AsnStatus | None = None
    warehouse: Filter = None


@router.get("/asns", response_model=Page[AsnSummary])
async def list_asns(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[AsnQuery, query_of(AsnQuery)],
) -> Page[AsnSummary]:
    """ASNs in id order (oldest first), filtered by reference, status and warehouse."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.list_page(
            conn,
            reference=query.reference,
            status=query.status,
            warehouse=query.warehouse,
            after_id=listing.after[0] if listing.after else None,
            limit=listing.fetch,
        )
    return listing.page(rows, position=lambda r: [r["id"]], item=AsnSummary.model_validate)


@router.get("/asns/{id}", response_model=Asn)
async def get_asn(id: IdPath, request: Request, principal: PrincipalDep) -> Asn:
    """An ASN with its lines, received quantities and discrepancies."""
    async with read_transaction(request, principal) as conn:
        return Asn.model_validate(await service.view(conn, id))


def _scans(body: NewReceipt) -> tuple[list[service.Scan], bool]:
    """The scans of a receipt body, and whether it listed ``lines``."""
    single = {"location": body.location, "sku": body.sku, "barcode": body.barcode,
              "quantity": body.quantity, "uom": body.uom, "lot": body.lot,
              "expiry": body.expiry}  # fmt: skip
    if body.lines is not None:
        named = [name for name, value in single.items() if value is not None]
        if "condition" in body.model_fields_set:  # defaulted, so never None: it was sent
            named.append("condition")
        if named:
            raise FieldError(f"/{named[0]}", "give one scan's fields or lines, not both")
        scans = [
            service.Scan(
                ln.location,
                ln.quantity,
                ln.sku,
                ln.barcode,
                ln.uom,
                ln.lot,
                ln.expiry,
                ln.condition,
            )
            for ln in body.lines
        ]
        for i, ln in enumerate(body.lines):
            if ln.sku is None and ln.barcode is None:
                raise FieldError(f"/lines/{i}/sku", "give the sku or the barcode")
        return scans, True
    if body.location is None:
        raise FieldError("/location", "is required (or send lines)")
    if body.quantity is None:
        raise FieldError("/quantity", "is required (or send lines)")
    if body.sku is None and body.barcode is None:
        raise FieldError("/sku", "give the sku or the barcode")
    scan = service.Scan(body.location, body.quantity, body.sku, body.barcode, body.uom,
                        body.lot, body.expiry, body.condition)  # fmt: skip
    return [scan], False


@router.post(
    "/asns/{id}/receipts",
    status_code=201,
    response_model=Receipt,
    responses=links(
        201,
        GetReceipt=link(
            "GET /asns/{id}/receipts/{receipt_id}",
            "The new receipt",
            id="$response.body#/asn",
            receipt_id="$response.body#/id",
        ),
        ConfirmPutaway=link(
            "POST /putaway-tasks/{id}/confirm",
            "Put the first line's stock away",
            id="$response.body#/putaway_tasks/0/id",
        ),
    ),
)
async def receive(
    id: IdPath, body: NewReceipt, request: Request, principal: PrincipalDep
) -> Response:
    """Receive one scan or ``lines`` of scans at a dock of the ASN's warehouse.

    Lot and expiry are required when tracked (a past expiry is refused); beyond the
    over-receipt tolerance the answer is 409 ``over-receipt`` with ``expected``,
    ``received``, ``requested`` and ``allowed``. Good lines get a putaway task each.
    """
    scans, many = _scans(body)
    return await run_command(
        request,
        principal,
        lambda uow: service.receive(
            uow, id, scans, allow_unexpected=body.allow_unexpected, many=many
        ),
        lambda receipt: Answer(
            201, Receipt.model_validate(receipt), f"/api/v1/asns/{id}/receipts/{receipt['id']}"
        ),
    )


@router.get("/asns/{id}/receipts/{receipt_id}", response_model=Receipt)
async def get_receipt(
    id: IdPath, receipt_id: IdPath, request: Request, principal: PrincipalDep
) -> Receipt:
    """One receipt of the ASN with its lines and putaway tasks."""
    async with read_transaction(request, principal) as conn:
        return Receipt.model_validate(await service.receipt_view(conn, id, receipt_id))


@router.post("/asns/{id}/close", response_model=Asn)
async def close(id: IdPath, request: Request, principal: PrincipalDep) -> Response:
    """Close the ASN: no more receipts; the answer carries the discrepancy report."""
    return await run_command(
        request,
        principal,
        lambda uow: service.close(uow, id),
        lambda asn: Answer(200, Asn.model_validate(asn)),
    )
