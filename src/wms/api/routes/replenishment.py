"""Replenishment levels of pick faces, and ``/replenishment-tasks``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, model_validator

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.query_models import query_of
from wms.api.routing import api_router
from wms.api.schemas import (
    CancelReason,
    CodePath,
    IdPath,
    MemberError,
    RequestModel,
    ResponseModel,
    Sku,
    examples,
    text_query,
)
from wms.services import replenishment as service
from wms.store import replenishment as store

router = api_router("replenishment")


class TaskKind(StrEnum):
    """``replenishment`` fills a pick face; ``put_back`` returns a cancelled order's picks."""

    REPLENISHMENT = "replenishment"
    PUT_BACK = "put_back"


class TaskStatus(StrEnum):
    """A task is open until confirmed, or cancelled by a supervisor."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class LevelIn(RequestModel):
    """Body of ``PUT .../replenishment``: min and max of a product at this pick face."""

    model_config = examples({"sku": "SKU-1", "min": 10, "max": 50})

    sku: Sku
    min: Annotated[int, Field(ge=0, le=1_000_000_000)]
    max: Annotated[int, Field(gt=0, le=1_000_000_000)]

    @model_validator(mode="after")
    def _ordered(self) -> LevelIn:
        if self.min > self.max:
            raise MemberError("min", "must not exceed max")
        return self


class Level(ResponseModel):
    """A replenishment level."""

    warehouse: str
    location: str
    sku: str
    min: int
    max: int


class ReplenishmentTask(ResponseModel):
    """A task moving stock between two locations."""

    id: int
    kind: TaskKind
    warehouse: str
    sku: str
    lot: str | None
    quantity: int
    from_location: str
    to_location: str
    order_number: str | None
    reason: str
    status: TaskStatus
    created_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    confirmed_quantity: int | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class ConfirmIn(RequestModel):
    """Body of a confirmation: empty for the whole task, or the units actually moved."""

    model_config = examples({"quantity": 5})

    quantity: Annotated[int | None, Field(gt=0, le=1_000_000_000)] = None


@router.put("/warehouses/{wh}/locations/{code}/replenishment", response_model=Level)
async def set_level(
    wh: CodePath, code: CodePath, body: LevelIn, request: Request, principal: PrincipalDep
) -> Response:
    """Set min/max of a product at a pick face; a task follows at once if it is low."""
    return await run_command(
        request,
        principal,
        lambda uow: service.set_level(
            uow,
            warehouse=wh,
            location_code=code,
            sku=body.sku,
            minimum=body.min,
            maximum=body.max,
        ),
        lambda level: Answer(200, Level.model_validate(level)),
    )


class ReplenishmentTaskQuery(ListQuery):
    """Filters of the replenishment task listing."""

    status: TaskStatus | None = None
    kind: TaskKind | None = None
    warehouse: Annotated[str | None, text_query(40)] = None


@router.get("/replenishment-tasks", response_model=Page[ReplenishmentTask])
async def list_tasks(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[ReplenishmentTaskQuery, query_of(ReplenishmentTaskQuery)],
) -> Page[ReplenishmentTask]:
    """Replenishment and put-back tasks in id order."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.tasks(
            conn, status=query.status, kind=query.kind, warehouse=query.warehouse,
            after_id=listing.after[0] if listing.after else None, limit=listing.fetch,
        )  # fmt: skip
    return listing.page(rows, position=lambda r: [r["id"]], item=ReplenishmentTask.model_validate)


@router.get("/replenishment-tasks/{id}", response_model=ReplenishmentTask)
async def get_task(id: IdPath, request: Request, principal: PrincipalDep) -> ReplenishmentTask:
    """One task."""
    async with read_transaction(request, principal) as conn:
        return ReplenishmentTask.model_validate(await service.get(conn, id))


@router.post("/replenishment-tasks/{id}/confirm", response_model=ReplenishmentTask)
async def confirm(
    id: IdPath, request: Request, principal: PrincipalDep, body: ConfirmIn | None = None
) -> Response:
    """Move the task's stock (ledger ``replenishment``, or ``cancellation`` for put-back)."""
    quantity = body.quantity if body is not None else None
    return await run_command(
        request,
        principal,
        lambda uow: service.confirm(uow, id, quantity),
        lambda task: Answer(200, ReplenishmentTask.model_validate(task)),
    )


@router.post("/replenishment-tasks/{id}/cancel", response_model=ReplenishmentTask)
async def cancel(
    id: IdPath, request: Request, principal: PrincipalDep, body: CancelReason | None = None
) -> Response:
    """Cancel an open replenishment task whose reserve stock is gone (supervisors).

    The task reserved nothing: its source may have been allocated, moved or adjusted
    away. The face is checked at once, so a task from other reserve follows if it is
    still low. Put-back tasks cannot be cancelled (409 ``invalid-state``): their stock is
    at staging and would stay there unsold.
    """
    reason = body.reason if body is not None else None
    return await run_command(
        request,
        principal,
        lambda uow: service.cancel(uow, id, reason),
        lambda task: Answer(200, ReplenishmentTask.model_validate(task)),
    )
