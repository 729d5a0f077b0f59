"""``/putaway-tasks``: tasks moving received stock from the dock, their confirmation
(one or a batch) and cancellation."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.query_models import query_of
from wms.api.routing import api_router
from wms.api.schemas import (
    MAX_ID,
    Code,
    IdPath,
    IdQuery,
    PositiveQuantity,
    RequestModel,
    ResponseModel,
    examples,
    text,
    text_query,
)
from wms.services import putaway as service
from wms.store import putaway as store

router = api_router("putaway")


class TaskStatus(StrEnum):
    """A task is open until its stock is confirmed at a location, or it is cancelled."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class PutawayTask(ResponseModel):
    """A putaway task; ``suggested_location`` is null when no location had room.

    ``dock_to_stock_seconds`` is the time from receipt to confirmation. ``quantity`` is
    what is (or was last) to be put away; ``cancelled_quantity`` what was cancelled off
    it, the units left at the dock.
    """

    id: int
    asn: int
    receipt: int
    warehouse: str
    sku: str
    lot: str | None
    expiry: date | None
    quantity: int
    from_location: str
    suggested_location: str | None
    confirmed_location: str | None
    status: TaskStatus
    received_at: datetime
    created_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    dock_to_stock_seconds: float | None
    cancelled_quantity: int
    cancelled_by: str | None
    cancelled_at: datetime | None


class Confirmation(RequestModel):
    """Body of ``POST /putaway-tasks/{id}/confirm``; empty: the suggested location."""

    model_config = examples({"location": "A-01-02"})

    location: Code | None = None


class Cancellation(RequestModel):
    """Body of ``POST /putaway-tasks/{id}/cancel``; without ``quantity``: all of it."""

    model_config = examples({"quantity": 4, "reason": "4 short at the dock"})

    quantity: PositiveQuantity | None = None
    reason: Annotated[str | None, text(200)] = None


class BatchConfirmation(RequestModel):
    """One confirmation of a batch; without ``location``: the suggested location."""

    model_config = examples({"task": 7, "location": "A-01-02"})

    task: Annotated[int, Field(ge=1, le=MAX_ID)]
    location: Code | None = None


class BatchIn(RequestModel):
    """Body of ``POST /putaway-tasks:confirm``: all confirmed, or none."""

    model_config = examples({"confirmations": [{"task": 7, "location": "A-01-02"}, {"task": 8}]})

    confirmations: Annotated[list[BatchConfirmation], Field(min_length=1, max_length=500)]


class BatchOut(ResponseModel):
    """The confirmed tasks, in the order given."""

    tasks: list[PutawayTask]


class PutawayTaskQuery(ListQuery):
    """Filters of the putaway task listing."""

    status: TaskStatus | None = None
    warehouse: Annotated[str | None, text_query(64)] = None
    asn: IdQuery = None


@router.get("/putaway-tasks", response_model=Page[PutawayTask])
async def list_tasks(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[PutawayTaskQuery, query_of(PutawayTaskQuery)],
) -> Page[PutawayTask]:
    """Putaway tasks in id order (oldest first), filtered by status, warehouse and ASN."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.tasks(
            conn,
            status=query.status,
            warehouse=query.warehouse,
            asn=query.asn,
            after_id=listing.after[0] if listing.after else None,
            limit=listing.fetch,
        )
    return listing.page(rows, position=lambda r: [r["id"]], item=PutawayTask.model_validate)


@router.get("/putaway-tasks/{id}", response_model=PutawayTask)
async def get_task(id: IdPath, request: Request, principal: PrincipalDep) -> PutawayTask:
    """One putaway task."""
    async with read_transaction(request, principal) as conn:
        return PutawayTask.model_validate(await service.get(conn, id))


@router.post("/putaway-tasks/{id}/confirm", response_model=PutawayTask)
async def confirm(
    id: IdPath, request: Request, principal: PrincipalDep, body: Confirmation | None = None
) -> Response:
    """Put the stock away to the suggested location, or to ``location`` (an override).

    The destination's capacity is re-checked under its lock, counting units promised to
    other open tasks; a confirmed task answers 409 ``invalid-state``.
    """
    location = body.location if body is not None else None
    return await run_command(
        request,
        principal,
        lambda uow: service.confirm(uow, id, location),
        lambda task: Answer(200, PutawayTask.model_validate(task)),
    )


@router.post("/putaway-tasks/{id}/cancel", response_model=PutawayTask)
async def cancel(
    id: IdPath, request: Request, principal: PrincipalDep, body: Cancellation | None = None
) -> Response:
    """Cancel an open task, or reduce it by ``quantity`` (it stays open with the rest).

    The units stay at the dock, free again for moves, adjustments and counts: while a
    task is open, its units there can only be put away. The room promised to its
    suggested location is given back. A task not open answers 409 ``invalid-state``.
    """
    quantity = body.quantity if body is not None else None
    reason = body.reason if body is not None else None
    return await run_command(
        request,
        principal,
        lambda uow: service.cancel(uow, id, quantity, reason),
        lambda task: Answer(200, PutawayTask.model_validate(task)),
    )


@router.post("/putaway-tasks:confirm", response_model=BatchOut)
async def confirm_batch(body: BatchIn, request: Request, principal: PrincipalDep) -> Response:
    """Confirm several putaways at once: any error and none is confirmed.

    Each destination is checked as if the confirmations ran in the order given: units
    put there by earlier confirmations of the batch count as stored. Errors point into
    the batch (``/confirmations/2/location``).
    """
    confirmations = [service.Confirm(item.task, item.location) for item in body.confirmations]
    return await run_command(
        request,
        principal,
        lambda uow: service.confirm_many(uow, confirmations),
        lambda tasks: Answer(200, BatchOut(tasks=[PutawayTask.model_validate(t) for t in tasks])),
    )
