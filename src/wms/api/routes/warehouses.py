"""``/warehouses``: create, read, update, list, carrier cut-offs."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.query_models import query_of
from wms.api.routing import api_router, link, links
from wms.api.schemas import (
    TEXT_PATTERN,
    Code,
    CodePath,
    Name,
    RequestModel,
    ResponseModel,
    examples,
    not_null,
)
from wms.domain.errors import NotFoundError
from wms.domain.time import is_time_zone
from wms.services import warehouses as service
from wms.store import warehouses as store

router = api_router("warehouses")
DEFAULT_STAGING = "OUTBOUND"
TimeZone = Annotated[str, Field(examples=["America/Sao_Paulo"], max_length=64)]
# A cut-off is a wall-clock time of the warehouse's zone: an offset would contradict it.
# Minutes only: reads and events show HH:MM, so seconds would be kept but never shown.
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
LocalTime = Annotated[
    str,
    Field(pattern=LOCAL_TIME_PATTERN, examples=["17:30"], description="HH:MM local time"),
]


def _check_zone(value: str | None) -> str | None:
    if value is not None and not is_time_zone(value):
        raise ValueError("must be an IANA time zone such as America/Sao_Paulo")
    return value


class NewWarehouse(RequestModel):
    """Body of ``POST /warehouses``."""

    model_config = examples({"code": "SP1", "name": "São Paulo 1", "timezone": "America/Sao_Paulo"})

    code: Code
    name: Name
    timezone: TimeZone
    outbound_staging_location: Code = DEFAULT_STAGING

    _zone = field_validator("timezone")(_check_zone)


class WarehouseChanges(RequestModel):
    """Body of ``PATCH /warehouses/{code}``: only the fields given change; none may be null."""

    model_config = examples({"name": "São Paulo 1 (North)"})

    name: Name | None = None
    timezone: TimeZone | None = None
    active: bool | None = None

    _zone = field_validator("timezone")(_check_zone)
    _present = field_validator("name", "timezone", "active")(not_null)


class CarrierCutoff(RequestModel):
    """A carrier's daily cut-off, in the warehouse's local time."""

    carrier: Annotated[str, Field(min_length=1, max_length=60, pattern=TEXT_PATTERN)]
    time: LocalTime


class CarrierCutoffs(RequestModel):
    """Body of ``PUT /warehouses/{code}/carrier-cutoffs``: the whole list, one per carrier."""

    model_config = examples({"cutoffs": [{"carrier": "CORREIOS", "time": "17:30"}]})

    cutoffs: Annotated[list[CarrierCutoff], Field(max_length=200)]

    @model_validator(mode="after")
    def _one_per_carrier(self) -> CarrierCutoffs:
        # Raised as a ValidationError so that the error points at the repeated entry
        # (/cutoffs/1/carrier); MemberError can only name a direct member (/cutoffs).
        seen: set[str] = set()
        for index, cutoff in enumerate(self.cutoffs):
            if cutoff.carrier in seen:
                raise ValidationError.from_exception_data(
                    type(self).__name__,
                    [
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "value_error",
                                "carrier {carrier} has a cut-off already: one per carrier",
                                {"carrier": cutoff.carrier},
                            ),
                            loc=("cutoffs", index, "carrier"),
                            input=cutoff.carrier,
                        )
                    ],
                )
            seen.add(cutoff.carrier)
        return self


class CutoffOut(ResponseModel):
    """A carrier cut-off as stored (``HH:MM``)."""

    carrier: str
    time: str


class Warehouse(ResponseModel):
    """A warehouse."""

    code: str
    name: str
    timezone: str
    outbound_staging_location: str
    active: bool
    carrier_cutoffs: list[CutoffOut]
    created_at: datetime
    updated_at: datetime


def _created(row: dict[str, Any]) -> Answer:
    warehouse = Warehouse.model_validate(row)
    return Answer(201, warehouse, f"/api/v1/warehouses/{warehouse.code}")


def _ok(row: dict[str, Any]) -> Answer:
    return Answer(200, Warehouse.model_validate(row))


@router.post(
    "/warehouses",
    status_code=201,
    response_model=Warehouse,
    responses=links(
        201,
        GetWarehouse=link(
            "GET /warehouses/{code}", "The new warehouse", code="$response.body#/code"
        ),
        UpdateWarehouse=link("PATCH /warehouses/{code}", "Change it", code="$response.body#/code"),
        CreateZone=link("POST /warehouses/{wh}/zones", "Add a zone", wh="$response.body#/code"),
        CreateLocation=link(
            "POST /warehouses/{wh}/locations", "Add a location", wh="$response.body#/code"
        ),
    ),
)
async def create_warehouse(
    body: NewWarehouse, request: Request, principal: PrincipalDep
) -> Response:
    """Create a warehouse with its outbound staging location."""
    return await run_command(
        request,
        principal,
        lambda uow: service.create_warehouse(
            uow,
            code=body.code,
            name=body.name,
            timezone=body.timezone,
            staging_location=body.outbound_staging_location,
        ),
        _created,
    )


@router.get("/warehouses", response_model=Page[Warehouse])
async def list_warehouses(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[ListQuery, query_of(ListQuery)],
) -> Page[Warehouse]:
    """Warehouses in creation order (by id)."""
    listing = start_listing(request, principal.tenant_id, query=query)
    after = listing.after[0] if listing.after else None
    async with read_transaction(request, principal) as conn:
        rows = await store.list_page(conn, after, listing.fetch)
    return listing.page(rows, position=lambda row: [row["id"]], item=Warehouse.model_validate)


@router.get("/warehouses/{code}", response_model=Warehouse)
async def get_warehouse(code: CodePath, request: Request, principal: PrincipalDep) -> Warehouse:
    """One warehouse."""
    async with read_transaction(request, principal) as conn:
        row = await store.get(conn, code)
    if row is None:
        raise NotFoundError(f"no warehouse {code}")
    return Warehouse.model_validate(row)


@router.patch("/warehouses/{code}", response_model=Warehouse)
async def update_warehouse(
    code: CodePath, body: WarehouseChanges, request: Request, principal: PrincipalDep
) -> Response:
    """Change a warehouse's name, time zone or active flag."""
    changes = body.model_dump(exclude_unset=True)
    return await run_command(
        request, principal, lambda uow: service.update_warehouse(uow, code, changes), _ok
    )


@router.put("/warehouses/{code}/carrier-cutoffs", response_model=Warehouse)
async def set_carrier_cutoffs(
    code: CodePath, body: CarrierCutoffs, request: Request, principal: PrincipalDep
) -> Response:
    """Replace the carrier cut-off times."""
    # The pattern guarantees each parses, without an offset.
    cutoffs = [(c.carrier, time.fromisoformat(c.time)) for c in body.cutoffs]
    return await run_command(
        request, principal, lambda uow: service.set_carrier_cutoffs(uow, code, cutoffs), _ok
    )
