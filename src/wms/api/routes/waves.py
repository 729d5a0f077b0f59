"""``/waves``: waves of allocated orders, and their release into pick tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.routing import api_router, link, links
from wms.api.schemas import (
    Code,
    IdPath,
    RequestModel,
    ResponseModel,
    Rfc3339Datetime,
    examples,
    text,
)
from wms.domain.waves import PickMethod, WaveStatus
from wms.services import waves as service
from wms.services.waves import WaveFilter

router = api_router("waves")
OrderNumber = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]


class FilterIn(RequestModel):
    """Which allocated orders a wave takes: most urgent first (priority, ship-by, age)."""

    carrier: Annotated[str | None, text(60, min_length=1)] = None
    ship_by_before: Rfc3339Datetime | None = None
    priority_at_most: Annotated[int | None, Field(ge=1, le=9)] = None
    zone: Code | None = None
    max_orders: Annotated[int | None, Field(ge=1, le=service.MAX_WAVE_ORDERS)] = None
    max_lines: Annotated[int | None, Field(ge=1, le=100_000)] = None


class NewWave(RequestModel):
    """Body of ``POST /waves``: ``orders`` or ``filter``, not both."""

    model_config = examples(
        {"warehouse": "SP1", "orders": ["SO-1001", "SO-1002"], "pick_method": "discrete"},
        {"warehouse": "SP1", "filter": {"carrier": "CORREIOS",
         "ship_by_before": "2026-12-01T18:00:00-03:00", "priority_at_most": 5, "zone": "P",
         "max_orders": 50, "max_lines": 500}, "pick_method": "batch"},
    )  # fmt: skip

    warehouse: Code
    orders: Annotated[list[OrderNumber] | None, Field(min_length=1, max_length=1000)] = None
    filter: FilterIn | None = None
    pick_method: PickMethod = PickMethod.DISCRETE


class Wave(ResponseModel):
    """A wave; ``totes`` names each order's tote in a cluster wave."""

    id: int
    warehouse: str
    pick_method: PickMethod
    status: WaveStatus
    orders: list[str]
    totes: dict[str, str]
    task_count: int
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None
    completed_at: datetime | None


def _answer_created(wave: dict[str, Any]) -> Answer:
    return Answer(201, Wave.model_validate(wave), f"/api/v1/waves/{wave['id']}")


@router.post(
    "/waves",
    status_code=201,
    response_model=Wave,
    responses=links(
        201,
        GetWave=link("GET /waves/{id}", "The new wave", id="$response.body#/id"),
        ReleaseWave=link("POST /waves/{id}/release", "Release it", id="$response.body#/id"),
    ),
)
async def create_wave(body: NewWave, request: Request, principal: PrincipalDep) -> Response:
    """Make an open wave of the named allocated orders, or of those the filter claims.

    Named orders must be ``allocated`` (else 409 ``invalid-state``) and in no other open
    wave (else 409 ``conflict``); a filter skips orders claimed by a concurrent wave.
    """
    criteria = None
    if body.filter is not None:
        criteria = WaveFilter(**body.filter.model_dump())
    return await run_command(
        request,
        principal,
        lambda uow: service.create_wave(
            uow,
            warehouse=body.warehouse,
            pick_method=body.pick_method,
            orders=body.orders,
            criteria=criteria,
        ),
        _answer_created,
    )


@router.get("/waves/{id}", response_model=Wave)
async def get_wave(id: IdPath, request: Request, principal: PrincipalDep) -> Wave:
    """One wave."""
    async with read_transaction(request, principal) as conn:
        return Wave.model_validate(await service.view(conn, id))


@router.post(
    "/waves/{id}/release",
    response_model=Wave,
    responses=links(
        200,
        ListPickTasks=link("GET /pick-tasks", "The wave's pick tasks", wave="$response.body#/id"),
    ),
)
async def release_wave(id: IdPath, request: Request, principal: PrincipalDep) -> Response:
    """Create the wave's pick tasks in walking order; its orders become ``released``."""
    return await run_command(
        request,
        principal,
        lambda uow: service.release(uow, id),
        lambda wave: Answer(200, Wave.model_validate(wave)),
    )
