"""``/shipments`` and ``/manifests``: shipping packed orders with a carrier."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import Field

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.routes.orders import ShipToView
from wms.api.routing import api_router, link, links
from wms.api.schemas import (
    BoundedDate,
    CancelReason,
    IdPath,
    RequestModel,
    ResponseModel,
    examples,
    text,
    text_query,
)
from wms.services import shipments as service

router = api_router("shipping")
OrderNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]


class ShipmentStatus(StrEnum):
    """A shipment is created, then dispatched once, or cancelled before."""

    CREATED = "created"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


class NewShipment(RequestModel):
    """Body of ``POST /shipments``."""

    model_config = examples(
        {"orders": ["SO-1001"], "carrier": "CORREIOS", "tracking_number": "BR123456789"}
    )

    orders: Annotated[list[OrderNumber], Field(min_length=1, max_length=500)]
    carrier: Annotated[str, text(60, min_length=1)]
    tracking_number: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]{1,100}$")]


class Shipment(ResponseModel):
    """A shipment of one or several orders."""

    id: int
    warehouse: str
    carrier: str
    tracking_number: str
    status: ShipmentStatus
    orders: list[str]
    created_by: str
    created_at: datetime
    dispatched_by: str | None
    dispatched_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class ManifestOrder(ResponseModel):
    """An order on a manifest."""

    number: str
    customer: str | None
    ship_to: ShipToView
    packages: int
    weight_kg: float


class ManifestShipment(ResponseModel):
    """A dispatched shipment on a manifest."""

    id: int
    carrier: str
    tracking_number: str
    dispatched_at: datetime
    dispatched_by: str
    orders: list[ManifestOrder]


class ManifestTotals(ResponseModel):
    """What the manifest adds up to."""

    shipments: int
    orders: int
    packages: int
    weight_kg: float


class Manifest(ResponseModel):
    """Shipments dispatched on a local date of the warehouse, by dispatch time."""

    warehouse: str
    carrier: str | None
    date: date
    shipments: list[ManifestShipment]
    totals: ManifestTotals


@router.post(
    "/shipments",
    status_code=201,
    response_model=Shipment,
    responses=links(
        201,
        GetShipment=link("GET /shipments/{id}", "The new shipment", id="$response.body#/id"),
        Dispatch=link("POST /shipments/{id}/dispatch", "Dispatch it", id="$response.body#/id"),
    ),
)
async def create_shipment(body: NewShipment, request: Request, principal: PrincipalDep) -> Response:
    """A shipment of packed orders of one warehouse booked with ``carrier``.

    An order not ``packed`` is 409 ``invalid-state``; orders of several warehouses, of
    another carrier, or already in a shipment are 409 ``conflict``.
    """
    return await run_command(
        request,
        principal,
        lambda uow: service.create(
            uow, orders=body.orders, carrier=body.carrier, tracking_number=body.tracking_number
        ),
        lambda s: Answer(201, Shipment.model_validate(s), f"/api/v1/shipments/{s['id']}"),
    )


@router.get("/shipments/{id}", response_model=Shipment)
async def get_shipment(id: IdPath, request: Request, principal: PrincipalDep) -> Shipment:
    """One shipment."""
    async with read_transaction(request, principal) as conn:
        return Shipment.model_validate(await service.view(conn, id))


@router.post("/shipments/{id}/dispatch", response_model=Shipment)
async def dispatch(id: IdPath, request: Request, principal: PrincipalDep) -> Response:
    """Dispatch: staged stock leaves (ledger ``ship``), orders become ``shipped``.

    A dispatched shipment answers 409 ``invalid-state``.
    """
    return await run_command(
        request,
        principal,
        lambda uow: service.dispatch(uow, id),
        lambda s: Answer(200, Shipment.model_validate(s)),
    )


@router.post("/shipments/{id}/cancel", response_model=Shipment)
async def cancel(
    id: IdPath, request: Request, principal: PrincipalDep, body: CancelReason | None = None
) -> Response:
    """Cancel a shipment not dispatched (not in API.md): its orders stay ``packed``, free
    to ship in another, and its tracking number is free again. A shipment whose orders
    were all cancelled is otherwise left with no order to dispatch. A dispatched or
    cancelled shipment answers 409 ``invalid-state``.
    """
    reason = body.reason if body is not None else None
    return await run_command(
        request,
        principal,
        lambda uow: service.cancel(uow, id, reason),
        lambda s: Answer(200, Shipment.model_validate(s)),
    )


@router.get("/manifests", response_model=Manifest)
async def manifest(
    request: Request,
    principal: PrincipalDep,
    *,
    warehouse: Annotated[str, text_query(40)],
    date: Annotated[
        BoundedDate, Query(description="Local date of dispatch in the warehouse's zone")
    ],
    carrier: Annotated[str | None, text_query(60)] = None,
) -> Manifest:
    """Shipments dispatched on ``date`` (the warehouse's local date), of one carrier or all."""
    async with read_transaction(request, principal) as conn:
        found = await service.manifest(conn, warehouse=warehouse, carrier=carrier, day=date)
    return Manifest.model_validate(found)
