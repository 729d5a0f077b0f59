"""``/reports``: read-only summaries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request

from wms.api.auth import PrincipalDep
from wms.api.commands import replica_transaction
from wms.api.routing import api_router
from wms.api.schemas import ResponseModel, text_query
from wms.domain.errors import NotFoundError
from wms.store import inventory as store
from wms.store import warehouses as warehouse_store

router = api_router("reports")


class StockSummaryLine(ResponseModel):
    """One product's stock in a warehouse."""

    sku: str
    description: str
    on_hand: int
    allocated: int
    available: int
    quarantine: int
    damaged: int
    hold: int
    locations: int


class StockSummary(ResponseModel):
    """Stock per product of one warehouse, by SKU."""

    warehouse: str
    items: list[StockSummaryLine]


@router.get("/reports/stock-summary", response_model=StockSummary)
async def stock_summary(
    request: Request,
    principal: PrincipalDep,
    warehouse: Annotated[str, text_query(40, "Warehouse code")],
) -> StockSummary:
    """On hand by status, allocated, available and location count per SKU.

    Served by the read replica when one is configured (it may lag by a moment).
    """
    async with replica_transaction(request, principal) as conn:
        warehouse_id = await warehouse_store.id_of(conn, warehouse)
        if warehouse_id is None:
            raise NotFoundError(f"no warehouse {warehouse}")
        rows = await store.stock_summary(conn, warehouse_id)
    return StockSummary(
        warehouse=warehouse, items=[StockSummaryLine.model_validate(row) for row in rows]
    )
