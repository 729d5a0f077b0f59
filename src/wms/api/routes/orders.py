"""``/orders``: intake, allocation, cancellation."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, field_validator

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.paths import segment
from wms.api.query_models import query_of
from wms.api.routing import api_router, link
from wms.api.schemas import (
    Code,
    OrderNumberPath,
    RequestModel,
    ResponseModel,
    Rfc3339Datetime,
    Sku,
    examples,
    text,
    text_query,
)
from wms.domain.allocation import OrderStatus
from wms.services import orders as service
from wms.services.orders import OrderIn, OrderLineIn, OrderResult
from wms.store import orders as store

router = api_router("orders")
OrderNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]
Text = Annotated[str, text(200, min_length=1)]
MAX_LINES = 10_000


class ShipTo(RequestModel):
    """Where the order goes."""

    name: Text
    line1: Text
    line2: Annotated[str | None, text(200)] = None
    city: Text
    state: Annotated[str | None, text(100)] = None
    postal_code: Annotated[str, text(20, min_length=1)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
    phone: Annotated[str | None, text(40)] = None


class ShipToView(ResponseModel):
    """Where the order goes, as taken (``ShipTo``'s fields)."""

    name: str
    line1: str
    line2: str | None = None
    city: str
    state: str | None = None
    postal_code: str
    country: str
    phone: str | None = None


class LineIn(RequestModel):
    """One line of a new order (``line`` defaults to its position, from 1)."""

    line: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    sku: Sku
    quantity: Annotated[int, Field(gt=0, le=1_000_000_000)]
    uom: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{1,10}$")] = None
    lot: Annotated[str | None, text(40)] = None
    min_shelf_life_days: Annotated[int | None, Field(ge=0, le=3650)] = None


class NewOrder(RequestModel):
    """Body of ``POST /orders``."""

    model_config = examples(
        {"number": "SO-1001", "warehouse": "SP1", "customer": "ACME Retail",
         "carrier": "CORREIOS", "carrier_service": "SEDEX", "priority": 5,
         "ship_by": "2026-12-01T18:00:00Z",
         "ship_to": {"name": "Ana", "line1": "Rua A 1", "city": "São Paulo",
                     "postal_code": "01000-000", "country": "BR"},
         "lines": [{"line": 1, "sku": "SKU-1", "quantity": 2, "lot": None,
                    "min_shelf_life_days": None}]}
    )  # fmt: skip

    number: OrderNumber
    warehouse: Code
    customer: Annotated[str | None, text(200)] = None
    carrier: Annotated[str, text(60, min_length=1)]
    carrier_service: Annotated[str | None, text(60)] = None
    priority: Annotated[int, Field(ge=1, le=9, description="1 is the most urgent")] = 5
    ship_by: Rfc3339Datetime | None = None
    ship_to: ShipTo
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]

    @field_validator("lines")
    @classmethod
    def _unique_line_numbers(cls, lines: list[LineIn]) -> list[LineIn]:
        seen: set[int] = set()
        for index, line in enumerate(lines):
            number = line.line or index + 1
            if number in seen:
                raise ValueError(f"line number {number} is used twice (at /lines/{index})")
            seen.add(number)
        return lines


class AllocationOut(ResponseModel):
    """Stock reserved for a line at one place."""

    location: str
    lot: str | None
    expiry: date | None
    quantity: int


class LineOut(ResponseModel):
    """An order line with what is reserved, backordered, picked and shipped."""

    line: int
    sku: str
    quantity: int
    uom: str | None
    uom_quantity: int | None
    lot: str | None
    min_shelf_life_days: int | None
    allocated: int
    backordered: int
    cancelled: int
    picked: int
    shipped: int
    allocations: list[AllocationOut]


class Order(ResponseModel):
    """An order."""

    number: str
    warehouse: str
    customer: str | None
    carrier: str
    carrier_service: str | None
    priority: int
    ship_by: datetime | None
    ship_to: ShipToView
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    allocated_at: datetime | None
    cancelled_at: datetime | None
    lines: list[LineOut]


class OrderHead(ResponseModel):
    """An order in a listing (without lines)."""

    number: str
    warehouse: str
    customer: str | None
    carrier: str
    priority: int
    ship_by: datetime | None
    status: OrderStatus
    created_at: datetime


def present(order: dict[str, Any]) -> Order:
    """The API shape of an assembled order."""
    lines = [
        LineOut(
            line=line["line_no"],
            sku=line["sku"],
            quantity=line["quantity"],
            uom=line["uom"],
            uom_quantity=line["uom_quantity"],
            lot=line["lot"],
            min_shelf_life_days=line["min_shelf_life_days"],
            allocated=line["allocated"],
            # Dispatch turns the picked units, still allocated until then, into shipped.
            backordered=0
            if order["status"] == OrderStatus.CANCELLED
            else line["quantity"] - line["allocated"] - line["cancelled"] - line["shipped"],
            cancelled=line["cancelled"],
            picked=line["picked"],
            shipped=line["shipped"],
            allocations=[AllocationOut.model_validate(a) for a in line["allocations"]],
        )
        for line in order["lines"]
    ]
    return Order.model_validate({**order, "lines": lines})


def to_command(body: NewOrder) -> OrderIn:
    """The service's view of the body, with the hash that identifies its content."""
    content = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return OrderIn(
        number=body.number,
        warehouse=body.warehouse,
        customer=body.customer,
        carrier=body.carrier,
        carrier_service=body.carrier_service,
        priority=body.priority,
        ship_by=body.ship_by,
        ship_to=body.ship_to.model_dump(),
        lines=[
            OrderLineIn(
                line_no=line.line or index + 1,
                sku=line.sku,
                quantity=line.quantity,
                uom=line.uom,
                lot=line.lot,
                min_shelf_life_days=line.min_shelf_life_days,
            )
            for index, line in enumerate(body.lines)
        ],
        content_hash=hashlib.sha256(content.encode()).digest(),
    )


def _location(number: str) -> str:
    return f"/api/v1/orders/{segment(number)}"


def _answer_intake(result: OrderResult) -> Answer:
    order = present(result.order)
    return Answer(201 if result.created else 200, order, _location(order.number))


_ORDER_LINKS = {
    "GetOrder": link("GET /orders/{number}", "The order", number="$response.body#/number"),
    "AllocateOrder": link(
        "POST /orders/{number}/allocate", "Allocate it", number="$response.body#/number"
    ),
    "CancelOrder": link(
        "POST /orders/{number}/cancel", "Cancel it", number="$response.body#/number"
    ),
}


@router.post(
    "/orders",
    status_code=201,
    response_model=Order,
    responses={
        200: {
            "model": Order,
            "description": "The same order was already received",
            "links": _ORDER_LINKS,
        },
        201: {"links": _ORDER_LINKS},
    },
)
async def create_order(body: NewOrder, request: Request, principal: PrincipalDep) -> Response:
    """Receive an order; allocate at once when the tenant's settings say so.

    The same number with the same content again answers 200 with the order unchanged;
    with different content, 409.
    """
    command = to_command(body)
    return await run_command(
        request, principal, lambda uow: service.create_order(uow, command), _answer_intake
    )


class OrderQuery(ListQuery):
    """Filters of the order listing."""

    warehouse: Annotated[str | None, text_query(40)] = None
    status: OrderStatus | None = None


@router.get("/orders", response_model=Page[OrderHead])
async def list_orders(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[OrderQuery, query_of(OrderQuery)],
) -> Page[OrderHead]:
    """Orders in the order they were received (by id)."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.list_heads(
            conn,
            warehouse=query.warehouse,
            status=query.status,
            after_id=listing.after[0] if listing.after else None,
            limit=listing.fetch,
        )
    return listing.page(rows, position=lambda r: [r["id"]], item=OrderHead.model_validate)


@router.get("/orders/{number:segment}", response_model=Order)
async def get_order(number: OrderNumberPath, request: Request, principal: PrincipalDep) -> Order:
    """An order with its lines and allocations."""
    async with read_transaction(request, principal) as conn:
        order = await service.view(conn, number)
    return present(order)


@router.post("/orders/{number:segment}/allocate", response_model=Order)
async def allocate_order(
    number: OrderNumberPath, request: Request, principal: PrincipalDep
) -> Response:
    """Allocate what the order still needs, by the tenant's strategy and backorder policy."""
    return await run_command(
        request,
        principal,
        lambda uow: service.allocate_order(uow, number),
        lambda order: Answer(200, present(order)),
    )


@router.post("/orders/{number:segment}/cancel", response_model=Order)
async def cancel_order(
    number: OrderNumberPath, request: Request, principal: PrincipalDep
) -> Response:
    """Cancel an order not yet released; its allocations are released."""
    return await run_command(
        request,
        principal,
        lambda uow: service.cancel_order(uow, number),
        lambda order: Answer(200, present(order)),
    )
