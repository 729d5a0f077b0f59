"""``/inventory``: balances, the ledger, and the commands that change stock."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, field_validator

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.query_models import query_of
from wms.api.routing import api_router
from wms.api.schemas import (
    MAX_QUANTITY,
    Code,
    IdPath,
    Lot,
    PositiveQuantity,
    RequestModel,
    ResponseModel,
    Rfc3339Date,
    Sku,
    Uom,
    examples,
    text,
    text_query,
)
from wms.domain.errors import NotFoundError
from wms.domain.inventory import AdjustmentReason, MovementKind, StockStatus
from wms.services import inventory as service
from wms.services.inventory import Quantity, StockChange
from wms.store import inventory as store

router = api_router("inventory")
SignedQuantity = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]


class InventoryItem(ResponseModel):
    """One balance: where, what, which lot and status, and how much."""

    warehouse: str
    location: str
    sku: str
    lot: str | None
    expiry: date | None
    status: StockStatus
    on_hand: int
    allocated: int
    available: int


class Movement(ResponseModel):
    """One ledger row: a signed change of on-hand stock at one balance."""

    id: int
    occurred_at: datetime
    warehouse: str
    location: str
    sku: str
    lot: str | None
    status: StockStatus
    quantity: int
    kind: MovementKind
    reason: str | None
    reference_type: str | None
    reference_id: str | None
    uom: str | None
    uom_quantity: int | None
    actor: str
    request_id: str | None


class StockChangeOut(ResponseModel):
    """What an inventory command did: its ledger rows and the balances after it."""

    movements: list[int]
    balances: list[InventoryItem]


class Adjustment(RequestModel):
    """Body of ``POST /inventory/adjustments``; ``quantity`` is signed."""

    model_config = examples(
        {"warehouse": "SP1", "location": "A-01-01", "sku": "SKU-1", "lot": None,
         "quantity": 10, "reason": "found"}
    )  # fmt: skip

    warehouse: Code
    location: Code
    sku: Sku
    lot: Lot = None
    quantity: SignedQuantity
    uom: Uom = None
    reason: AdjustmentReason
    status: StockStatus = StockStatus.AVAILABLE
    expiry: Rfc3339Date | None = None
    reference: Annotated[str | None, text(100)] = None

    @field_validator("reason")
    @classmethod
    def _not_cycle_count(cls, value: AdjustmentReason) -> AdjustmentReason:
        if value == AdjustmentReason.CYCLE_COUNT:
            raise ValueError("cycle_count adjustments come from approving a cycle count")
        return value


class Move(RequestModel):
    """Body of ``POST /inventory/moves``."""

    model_config = examples(
        {"warehouse": "SP1", "sku": "SKU-1", "lot": None, "from_location": "A-01-01",
         "to_location": "A-01-02", "quantity": 3}
    )  # fmt: skip

    warehouse: Code
    sku: Sku
    lot: Lot = None
    from_location: Code
    to_location: Code
    quantity: PositiveQuantity
    uom: Uom = None
    status: StockStatus = StockStatus.AVAILABLE


class StatusChange(RequestModel):
    """Body of ``POST /inventory/status-changes``."""

    model_config = examples(
        {"warehouse": "SP1", "location": "A-01-01", "sku": "SKU-1", "lot": None, "quantity": 5,
         "from_status": "available", "to_status": "quarantine", "reason": "damaged"}
    )  # fmt: skip

    warehouse: Code
    location: Code
    sku: Sku
    lot: Lot = None
    quantity: PositiveQuantity
    uom: Uom = None
    from_status: StockStatus
    to_status: StockStatus
    reason: Annotated[str | None, text(100)] = None


def _created(change: StockChange) -> Answer:
    body = StockChangeOut(
        movements=change.movement_ids,
        balances=[InventoryItem.model_validate(row) for row in change.balances],
    )
    return Answer(201, body, f"/api/v1/inventory/movements/{change.movement_ids[0]}")


@router.post("/inventory/adjustments", status_code=201, response_model=StockChangeOut)
async def adjust(body: Adjustment, request: Request, principal: PrincipalDep) -> Response:
    """Add or remove stock at one place with a reason code (negative removes)."""
    return await run_command(
        request,
        principal,
        lambda uow: service.adjust(
            uow,
            warehouse=body.warehouse,
            location_code=body.location,
            sku=body.sku,
            lot=body.lot,
            quantity=Quantity(body.quantity, body.uom),
            reason=body.reason,
            status=body.status,
            expiry=body.expiry,
            reference=body.reference,
        ),
        _created,
    )


@router.post("/inventory/moves", status_code=201, response_model=StockChangeOut)
async def move(body: Move, request: Request, principal: PrincipalDep) -> Response:
    """Move unallocated stock between locations of one warehouse (partial moves allowed)."""
    return await run_command(
        request,
        principal,
        lambda uow: service.move(
            uow,
            warehouse=body.warehouse,
            sku=body.sku,
            lot=body.lot,
            from_location=body.from_location,
            to_location=body.to_location,
            quantity=Quantity(body.quantity, body.uom),
            status=body.status,
        ),
        _created,
    )


@router.post("/inventory/status-changes", status_code=201, response_model=StockChangeOut)
async def change_status(body: StatusChange, request: Request, principal: PrincipalDep) -> Response:
    """Move stock between statuses in place (available ↔ quarantine, damaged, hold)."""
    return await run_command(
        request,
        principal,
        lambda uow: service.change_status(
            uow,
            warehouse=body.warehouse,
            location_code=body.location,
            sku=body.sku,
            lot=body.lot,
            quantity=Quantity(body.quantity, body.uom),
            from_status=body.from_status,
            to_status=body.to_status,
            reason=body.reason,
        ),
        _created,
    )


Filter = Annotated[str | None, text_query(64)]


class InventoryQuery(ListQuery):
    """Filters of the balance listing, the stock lookup by barcode among them."""

    warehouse: Filter = None
    location: Filter = None
    sku: Filter = None
    barcode: Annotated[
        str | None, text_query(64, "A product's or unit's barcode (a scan): its product's stock.")
    ] = None
    lot: Filter = None
    status: StockStatus | None = None


@router.get("/inventory", response_model=Page[InventoryItem])
async def list_inventory(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[InventoryQuery, query_of(InventoryQuery)],
) -> Page[InventoryItem]:
    """Balances with stock on hand, in balance id order, with optional filters."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.balances(
            conn,
            **listing.filters,
            after_id=listing.after[0] if listing.after else None,
            limit=listing.fetch,
        )
    return listing.page(rows, position=lambda r: [r["id"]], item=InventoryItem.model_validate)


class MovementQuery(ListQuery):
    """Filters of the ledger listing."""

    warehouse: Filter = None
    location: Filter = None
    sku: Filter = None
    lot: Filter = None
    kind: MovementKind | None = None
    reference: Filter = None
    # A reference id alone matches ASN 7, pick task 7 and shipment 7 alike.
    reference_type: Filter = None


@router.get("/inventory/movements", response_model=Page[Movement])
async def list_movements(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[MovementQuery, query_of(MovementQuery)],
) -> Page[Movement]:
    """The ledger in the order it was written (by id), with optional filters."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.movements(
            conn,
            **listing.filters,
            after_id=listing.after[0] if listing.after else None,
            limit=listing.fetch,
        )
    return listing.page(rows, position=lambda r: [r["id"]], item=Movement.model_validate)


@router.get("/inventory/movements/{id}", response_model=Movement)
async def get_movement(id: IdPath, request: Request, principal: PrincipalDep) -> Movement:
    """One ledger row."""
    async with read_transaction(request, principal) as conn:
        rows = await store.movements(
            conn, warehouse=None, location=None, sku=None, lot=None, kind=None,
            reference=None, movement_id=id, after_id=None, limit=1,
        )  # fmt: skip
    if not rows:
        raise NotFoundError(f"no movement {id}")
    return Movement.model_validate(rows[0])
