"""``/pick-tasks``: tasks in walking order, and their confirmation (one or a batch)."""

from __future__ import annotations

from datetime import datetime
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
    MAX_ID,
    Code,
    IdPath,
    IdQuery,
    MemberError,
    RequestModel,
    ResponseModel,
    examples,
    text,
    text_query,
)
from wms.domain.waves import PickTaskStatus
from wms.services import picking as service
from wms.services.picking import Picked, Scan
from wms.store import picking as store

router = api_router("picking")
Barcode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class TaskOrder(ResponseModel):
    """The part of a task that serves one order line; ``picked`` once confirmed."""

    order: str
    line: int
    quantity: int
    picked: int | None
    tote: str | None


class PickTask(ResponseModel):
    """A pick task; ``replaces`` is the short task whose shortage it re-allocates."""

    id: int
    wave: int
    warehouse: str
    location: str
    sku: str
    lot: str | None
    quantity: int
    sequence: int
    status: PickTaskStatus
    orders: list[TaskOrder]
    picked_quantity: int | None
    picker: str | None
    picked_at: datetime | None
    replaces: int | None
    created_at: datetime


class ConfirmedTask(PickTask):
    """A confirmed task: its shortage, the count it flagged, and re-allocation tasks."""

    shortage: int
    backordered: int
    cycle_count: int | None
    new_tasks: list[PickTask]


class ScanIn(RequestModel):
    """What the picker scanned: ``sku`` (or any barcode in it) or ``barcode``; ``uom``."""

    model_config = examples({"location": "P-01", "sku": "SKU-1", "lot": None, "quantity": 2})

    location: Code
    sku: Annotated[str | None, text(64)] = None
    barcode: Barcode | None = None
    lot: Annotated[str | None, text(40)] = None
    quantity: Annotated[int, Field(ge=0, le=1_000_000_000)]
    uom: Annotated[str | None, Field(pattern=r"^[A-Z0-9]{1,10}$")] = None

    @model_validator(mode="after")
    def _names_product(self) -> ScanIn:
        if self.sku is None and self.barcode is None:
            raise MemberError("sku", "give sku or barcode")
        return self


class BatchScanIn(ScanIn):
    """One confirmation of a batch."""

    model_config = examples(
        {"task": 11, "location": "P-01", "sku": "SKU-1", "lot": None, "quantity": 2}
    )

    task: Annotated[int, Field(ge=1, le=MAX_ID)]


class BatchIn(RequestModel):
    """Body of ``POST /pick-tasks:confirm``: all confirmed, or none."""

    model_config = examples(
        {"confirmations": [{"task": 11, "location": "P-01", "sku": "SKU-1", "lot": None,
                            "quantity": 2}]}
    )  # fmt: skip

    confirmations: Annotated[list[BatchScanIn], Field(min_length=1, max_length=500)]


class BatchOut(ResponseModel):
    """The confirmed tasks, in the order given."""

    tasks: list[ConfirmedTask]


def _scan(task_id: int, body: ScanIn) -> Scan:
    return Scan(task_id=task_id, location=body.location, quantity=body.quantity, sku=body.sku,
                barcode=body.barcode, lot=body.lot, uom=body.uom)  # fmt: skip


def _confirmed(result: Picked) -> ConfirmedTask:
    return ConfirmedTask.model_validate(
        {**result.task, "shortage": result.shortage, "backordered": result.backordered,
         "cycle_count": result.cycle_count,
         "new_tasks": [PickTask.model_validate(t) for t in result.new_tasks]}
    )  # fmt: skip


class PickTaskQuery(ListQuery):
    """Filters of the pick task listing."""

    wave: IdQuery = None
    status: PickTaskStatus | None = None
    warehouse: Annotated[str | None, text_query(40)] = None


@router.get("/pick-tasks", response_model=Page[PickTask])
async def list_tasks(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[PickTaskQuery, query_of(PickTaskQuery)],
) -> Page[PickTask]:
    """Pick tasks in walking order (``sequence``, then ``id``)."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.tasks(
            conn, wave=query.wave, status=query.status, warehouse=query.warehouse,
            after=(listing.after[0], listing.after[1]) if listing.after else None,
            limit=listing.fetch,
        )  # fmt: skip
    return listing.page(
        rows, position=lambda r: [r["sequence"], r["id"]], item=PickTask.model_validate
    )


@router.get("/pick-tasks/{id}", response_model=PickTask)
async def get_task(id: IdPath, request: Request, principal: PrincipalDep) -> PickTask:
    """One pick task."""
    async with read_transaction(request, principal) as conn:
        return PickTask.model_validate(await service.get(conn, id))


@router.post("/pick-tasks/{id}/confirm", response_model=ConfirmedTask)
async def confirm(id: IdPath, body: ScanIn, request: Request, principal: PrincipalDep) -> Response:
    """Confirm a pick; a quantity below the task's is a short pick.

    Location, product and lot must match the task (409 ``pick-mismatch``); more than the
    task is 409 ``over-pick``. A shortage flags the location for a cycle count and lists
    the re-allocation tasks created in ``new_tasks``.
    """
    scan = _scan(id, body)
    return await run_command(
        request,
        principal,
        lambda uow: service.confirm(uow, scan),
        lambda result: Answer(200, _confirmed(result)),
    )


@router.post("/pick-tasks:confirm", response_model=BatchOut)
async def confirm_batch(body: BatchIn, request: Request, principal: PrincipalDep) -> Response:
    """Confirm several picks at once: any error and none is confirmed."""
    scans = [_scan(item.task, item) for item in body.confirmations]
    return await run_command(
        request,
        principal,
        lambda uow: service.confirm_many(uow, scans),
        lambda results: Answer(200, BatchOut(tasks=[_confirmed(r) for r in results])),
    )
