"""``/orders/{number}/packages``: packing a picked order into cartons."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.paths import segment
from wms.api.routing import api_router
from wms.api.schemas import OrderNumberPath, RequestModel, ResponseModel, Sku, examples, text
from wms.domain.allocation import OrderStatus
from wms.services import packing as service
from wms.services.packing import ContentIn, PackageIn

router = api_router("packing")


class ContentBody(RequestModel):
    """Units of one product and lot in a carton (``uom`` converts)."""

    sku: Sku
    lot: Annotated[str | None, text(40)] = None
    quantity: Annotated[int, Field(gt=0, le=1_000_000_000)]
    uom: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{1,10}$")] = None


class PackageBody(RequestModel):
    """One carton with its weight and contents."""

    carton: Annotated[str, text(40, min_length=1)]
    weight_kg: Annotated[Decimal, Field(gt=0, le=100_000, decimal_places=3)]
    contents: Annotated[list[ContentBody], Field(min_length=1, max_length=1000)]


class PackagesIn(RequestModel):
    """Body of ``POST /orders/{number}/packages``: every carton of the order at once."""

    model_config = examples(
        {"packages": [{"carton": "BOX-M", "weight_kg": 1.2,
                       "contents": [{"sku": "SKU-1", "lot": None, "quantity": 2}]}]}
    )  # fmt: skip

    packages: Annotated[list[PackageBody], Field(min_length=1, max_length=500)]


class ContentOut(ResponseModel):
    """Units of one product and lot in a carton."""

    sku: str
    lot: str | None
    quantity: int


class PackageOut(ResponseModel):
    """A packed carton."""

    id: int
    carton: str
    weight_kg: float
    contents: list[ContentOut]
    packed_by: str
    packed_at: datetime


class Packing(ResponseModel):
    """An order's packages."""

    order: str
    status: OrderStatus
    packages: list[PackageOut]


@router.post("/orders/{number:segment}/packages", status_code=201, response_model=Packing)
async def pack(
    number: OrderNumberPath, body: PackagesIn, request: Request, principal: PrincipalDep
) -> Response:
    """Pack a picked order; the order becomes ``packed``.

    The contents of all cartons together must equal exactly what was picked for the
    order (per SKU and lot), else 409 ``packing-mismatch`` with ``expected`` and
    ``packed``; an order not ``picked`` is 409 ``invalid-state``.
    """
    packages = [
        PackageIn(
            carton=p.carton,
            weight_kg=p.weight_kg,
            contents=[ContentIn(c.sku, c.lot, c.quantity, c.uom) for c in p.contents],
        )
        for p in body.packages
    ]
    return await run_command(
        request,
        principal,
        lambda uow: service.pack(uow, number, packages),
        lambda result: Answer(
            201, Packing.model_validate(result), f"/api/v1/orders/{segment(number)}/packages"
        ),
    )


@router.get("/orders/{number:segment}/packages", response_model=Packing)
async def get_packages(
    number: OrderNumberPath, request: Request, principal: PrincipalDep
) -> Packing:
    """The order's packages."""
    async with read_transaction(request, principal) as conn:
        return Packing.model_validate(await service.view(conn, number))
