"""``/cycle-counts``: blind counts, results with recounts, supervisor approval."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, model_validator

from wms.api.auth import Principal, PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.routing import api_router, link, links
from wms.api.schemas import (
    CancelReason,
    Code,
    IdPath,
    MemberError,
    RequestModel,
    ResponseModel,
    Sku,
    examples,
    text,
)
from wms.domain.roles import Role
from wms.services import cycle_counts as service
from wms.services.cycle_counts import CountResult

router = api_router("cycle-counts")


class CountStatus(StrEnum):
    """The life of a count."""

    OPEN = "open"
    COUNTED = "counted"
    APPROVED = "approved"
    CANCELLED = "cancelled"


class LineStatus(StrEnum):
    """A line waits for its count, asks for a recount, or is counted."""

    PENDING = "pending"
    RECOUNT = "recount"
    COUNTED = "counted"


class NewCycleCount(RequestModel):
    """Body of ``POST /cycle-counts``: locations, or SKUs wherever they are stored."""

    model_config = examples({"warehouse": "SP1", "locations": ["A-01-01"]})

    warehouse: Code
    locations: Annotated[list[Code], Field(min_length=1, max_length=5000)] | None = None
    skus: Annotated[list[Sku], Field(min_length=1, max_length=5000)] | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> NewCycleCount:
        if (self.locations is None) == (self.skus is None):
            raise MemberError("locations", "give either locations or skus")
        return self


class Result(RequestModel):
    """One counted quantity."""

    location: Code
    sku: Sku
    lot: Annotated[str | None, text(40)] = None
    counted: Annotated[int, Field(ge=0, le=1_000_000_000)]


class Results(RequestModel):
    """Body of ``POST /cycle-counts/{id}/results``."""

    model_config = examples(
        {"results": [{"location": "A-01-01", "sku": "SKU-1", "lot": None, "counted": 9}]}
    )

    results: Annotated[list[Result], Field(min_length=1, max_length=5000)]


class CountLine(ResponseModel):
    """A line to count; expected and variance are hidden from counters (blind count)."""

    line: int
    location: str
    sku: str
    lot: str | None
    status: LineStatus
    counted: int | None
    expected: int | None
    variance: int | None
    attempts: int


class CycleCount(ResponseModel):
    """A cycle count with its lines."""

    id: int
    warehouse: str
    status: CountStatus
    blind: bool
    created_at: datetime
    approved_at: datetime | None
    accuracy_pct: float | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    lines: list[CountLine]


def present(count: dict[str, Any], principal: Principal) -> CycleCount:
    """The count as ``principal`` may see it: counters never see expected quantities."""
    hide = count["blind"] and principal.role == Role.OPERATOR and count["status"] != "approved"
    lines = [
        CountLine(
            line=line["line_no"],
            location=line["location"],
            sku=line["sku"],
            lot=line["lot"],
            status=line["status"],
            counted=line["counted"],
            expected=None if hide else line["expected"],
            variance=None
            if hide or line["counted"] is None or line["expected"] is None
            else line["counted"] - line["expected"],
            attempts=line["attempts"],
        )
        for line in count["lines"]
    ]
    return CycleCount.model_validate({**count, "lines": lines})


_COUNT = {"id": "$response.body#/id"}


@router.post(
    "/cycle-counts",
    status_code=201,
    response_model=CycleCount,
    responses=links(
        201,
        GetCount=link("GET /cycle-counts/{id}", "The new count", **_COUNT),
        RecordResults=link("POST /cycle-counts/{id}/results", "Record counts", **_COUNT),
        ApproveCount=link("POST /cycle-counts/{id}/approve", "Approve it", **_COUNT),
    ),
)
async def create_count(body: NewCycleCount, request: Request, principal: PrincipalDep) -> Response:
    """Open a blind count of some locations or of some SKUs."""

    def answer(count: dict[str, Any]) -> Answer:
        return Answer(201, present(count, principal), f"/api/v1/cycle-counts/{count['id']}")

    return await run_command(
        request,
        principal,
        lambda uow: service.create_count(
            uow, warehouse=body.warehouse, locations=body.locations, skus=body.skus
        ),
        answer,
    )


@router.get("/cycle-counts/{id}", response_model=CycleCount)
async def get_count(id: IdPath, request: Request, principal: PrincipalDep) -> CycleCount:
    """A count with its lines (blind for counters until approved)."""
    async with read_transaction(request, principal) as conn:
        count = await service.view(conn, id)
    return present(count, principal)


@router.post("/cycle-counts/{id}/results", response_model=CycleCount)
async def record_results(
    id: IdPath, body: Results, request: Request, principal: PrincipalDep
) -> Response:
    """Record counted quantities; a first count beyond the tolerance asks for a recount."""
    results = [CountResult(r.location, r.sku, r.lot, r.counted) for r in body.results]
    return await run_command(
        request,
        principal,
        lambda uow: service.record_results(uow, id, results),
        lambda count: Answer(200, present(count, principal)),
    )


@router.post("/cycle-counts/{id}/cancel", response_model=CycleCount)
async def cancel(
    id: IdPath, request: Request, principal: PrincipalDep, body: CancelReason | None = None
) -> Response:
    """Cancel a count not yet approved (supervisors): nothing is adjusted, and its keys
    may be counted again. A count that cannot be approved (it found less than is
    allocated) is otherwise stuck. An approved or cancelled count answers 409."""
    reason = body.reason if body is not None else None
    return await run_command(
        request,
        principal,
        lambda uow: service.cancel(uow, id, reason),
        lambda count: Answer(200, present(count, principal)),
    )


@router.post("/cycle-counts/{id}/approve", response_model=CycleCount)
async def approve(id: IdPath, request: Request, principal: PrincipalDep) -> Response:
    """Approve a counted count: variances become ``cycle_count`` adjustments."""
    return await run_command(
        request,
        principal,
        lambda uow: service.approve(uow, id),
        lambda count: Answer(200, present(count, principal)),
    )
