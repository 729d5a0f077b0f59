"""``/warehouses/{wh}/zones``, ``/locations`` (with the bulk import) and ``/putaway-rules``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import Field, field_validator

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.json_body import parse_json
from wms.api.pagination import CursorExpiredError, ListQuery, Page, start_listing
from wms.api.problems import Problem
from wms.api.query_models import query_of
from wms.api.routing import api_router, link, links, problem_response
from wms.api.schemas import (
    Code,
    CodePath,
    Name,
    RequestModel,
    ResponseModel,
    Sku,
    examples,
    not_null,
    text,
    text_query,
)
from wms.domain.errors import FieldError, NotFoundError
from wms.domain.locations import COLUMNS, MAX_INT, LocationType, RawRow, csv_rows, json_rows
from wms.services import locations as service
from wms.store import locations as store

router = api_router("locations")

PickSequence = Annotated[int, Field(ge=0, le=MAX_INT, examples=[10])]
CapacityUnits = Annotated[int, Field(gt=0, le=MAX_INT, examples=[500])]
Measure = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
VelocityClass = Literal["A", "B", "C"]
_NOT_NULL = ("type", "pick_sequence", "active")


class NewZone(RequestModel):
    """Body of ``POST /warehouses/{wh}/zones``."""

    model_config = examples({"code": "A", "name": "Zone A"})

    code: Code
    name: Name | None = None


class Zone(ResponseModel):
    """A zone of a warehouse."""

    code: str
    name: str | None
    warehouse: str
    created_at: datetime


class NewLocation(RequestModel):
    """Body of ``POST /warehouses/{wh}/locations``; ``zone`` names a zone of the warehouse."""

    model_config = examples(
        {"code": "A-01-01", "type": "storage", "zone": "A", "pick_sequence": 10,
         "capacity_units": 500}
    )  # fmt: skip

    code: Code
    type: LocationType
    zone: Code | None = None
    pick_sequence: PickSequence = 0
    capacity_units: CapacityUnits | None = None
    capacity_volume_l: Measure | None = None
    capacity_weight_kg: Measure | None = None
    active: bool = True


class LocationChanges(RequestModel):
    """Body of ``PATCH /warehouses/{wh}/locations/{code}``: only the fields given change.

    ``zone`` and the capacities may be null (cleared); the other fields may not.
    """

    model_config = examples({"pick_sequence": 20, "capacity_units": 400})

    type: LocationType | None = None
    zone: Code | None = None
    pick_sequence: PickSequence | None = None
    capacity_units: CapacityUnits | None = None
    capacity_volume_l: Measure | None = None
    capacity_weight_kg: Measure | None = None
    active: bool | None = None

    _present = field_validator(*_NOT_NULL)(not_null)


class Location(ResponseModel):
    """A location; ``warehouse`` and ``zone`` are codes."""

    code: str
    warehouse: str
    zone: str | None
    type: LocationType
    pick_sequence: int
    capacity_units: int | None
    capacity_volume_l: float | None
    capacity_weight_kg: float | None
    active: bool
    created_at: datetime
    updated_at: datetime


class ImportedLocationRow(RequestModel):
    """One row of a JSON import; optional fields left out keep an existing location's value."""

    code: Code
    type: LocationType
    zone: Code | None = None
    pick_sequence: PickSequence | None = None
    capacity_units: CapacityUnits | None = None
    capacity_volume_l: float | None = Field(None, gt=0)
    capacity_weight_kg: float | None = Field(None, gt=0)
    active: bool | None = None


class RowError(ResponseModel):
    """One bad value of an import: CSV line (header = 1) or JSON index from 1, and field."""

    line: int
    field: str
    message: str


class ImportProblem(Problem):
    """A 422 of an import: ``import-rejected`` lists ``row_errors``; others list ``errors``."""

    row_errors: list[RowError] | None = None


class ImportResult(ResponseModel):
    """What an import did."""

    created: int
    updated: int


class PutawayRule(RequestModel):
    """One rule: stock matching sku / category / velocity class goes to ``zone``."""

    sku: Sku | None = None
    category: Annotated[str, text(100, min_length=1)] | None = None
    velocity_class: VelocityClass | None = None
    zone: Code
    allow_mixed_lots: bool = False


class PutawayRules(RequestModel):
    """Body of ``PUT /warehouses/{wh}/putaway-rules``: replaces the whole ordered list."""

    model_config = examples(
        {"rules": [{"velocity_class": "A", "zone": "A"}, {"category": "bulk", "zone": "P"}]}
    )

    rules: Annotated[list[PutawayRule], Field(max_length=500)]


class PutawayRuleOut(ResponseModel):
    """A stored rule; ``position`` counts from 1 in evaluation order."""

    position: int
    sku: str | None
    category: str | None
    velocity_class: VelocityClass | None
    zone: str
    allow_mixed_lots: bool


class PutawayRulesOut(ResponseModel):
    """The warehouse's putaway rules, in order."""

    rules: list[PutawayRuleOut]


_IMPORT_PROBLEM: dict[str, Any] = {
    "model": ImportProblem,
    "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ImportProblem"}}
    },
}


def _import_body_schema() -> dict[str, Any]:
    # The row's enum refers to the LocationType schema that NewLocation puts in components.
    row = ImportedLocationRow.model_json_schema(ref_template="#/components/schemas/{model}")
    row.pop("$defs", None)
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["locations"],
                    "additionalProperties": False,
                    "properties": {"locations": {"type": "array", "items": row}},
                }
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(COLUMNS) + "\nA-01-01,storage,A,10,500,,,true\n",
            },
        },
    }


@router.post(
    "/warehouses/{wh}/zones",
    status_code=201,
    response_model=Zone,
    responses=links(
        201,
        GetZone=link(
            "GET /warehouses/{wh}/zones/{code}",
            "The new zone",
            wh="$response.body#/warehouse",
            code="$response.body#/code",
        ),
    ),
)
async def create_zone(
    wh: CodePath, body: NewZone, request: Request, principal: PrincipalDep
) -> Response:
    """Create a zone in a warehouse."""
    return await run_command(
        request,
        principal,
        lambda uow: service.create_zone(uow, wh, body.code, body.name),
        lambda row: Answer(
            201, Zone.model_validate(row), f"/api/v1/warehouses/{wh}/zones/{row['code']}"
        ),
    )


@router.get("/warehouses/{wh}/zones", response_model=Page[Zone])
async def list_zones(
    wh: CodePath,
    request: Request,
    principal: PrincipalDep,
    query: Annotated[ListQuery, query_of(ListQuery)],
) -> Page[Zone]:
    """The warehouse's zones in creation order (by id)."""
    listing = start_listing(request, principal.tenant_id, query, filters={"wh": wh})
    after = int(listing.after[0]) if listing.after else None
    async with read_transaction(request, principal) as conn:
        wh_id = await service.warehouse_id(conn, wh)
        rows = await store.list_zones(conn, wh_id, after, listing.fetch)
    return listing.page(rows, position=lambda row: [row["id"]], item=Zone.model_validate)


@router.get("/warehouses/{wh}/zones/{code}", response_model=Zone)
async def get_zone(wh: CodePath, code: CodePath, request: Request, principal: PrincipalDep) -> Zone:
    """One zone."""
    async with read_transaction(request, principal) as conn:
        row = await store.get_zone(conn, await service.warehouse_id(conn, wh), code)
    if row is None:
        raise NotFoundError(f"no zone {code} in warehouse {wh}")
    return Zone.model_validate(row)


_AT_LOCATION = {"wh": "$response.body#/warehouse", "code": "$response.body#/code"}


@router.post(
    "/warehouses/{wh}/locations",
    status_code=201,
    response_model=Location,
    responses=links(
        201,
        GetLocation=link(
            "GET /warehouses/{wh}/locations/{code}", "The new location", **_AT_LOCATION
        ),
        UpdateLocation=link("PATCH /warehouses/{wh}/locations/{code}", "Change it", **_AT_LOCATION),
        SetReplenishment=link(
            "PUT /warehouses/{wh}/locations/{code}/replenishment",
            "Replenishment levels of a pick face",
            **_AT_LOCATION,
        ),
    ),
)
async def create_location(
    wh: CodePath, body: NewLocation, request: Request, principal: PrincipalDep
) -> Response:
    """Create a location; ``zone``, if given, must be a zone of the same warehouse."""
    values = body.model_dump()
    values["type"] = body.type.value
    return await run_command(
        request,
        principal,
        lambda uow: service.create_location(uow, wh, values),
        lambda row: Answer(
            201, Location.model_validate(row), f"/api/v1/warehouses/{wh}/locations/{row['code']}"
        ),
    )


class LocationQuery(ListQuery):
    """Filters of the location listing."""

    type: Annotated[LocationType | None, Query(description="Only this type.")] = None
    zone: Annotated[str | None, text_query(40, "Only this zone's code.")] = None
    active: Annotated[bool | None, Query(description="Only active (or inactive) ones.")] = None


@router.get(
    "/warehouses/{wh}/locations",
    response_model=Page[Location],
    responses={
        410: problem_response(410, "The walk began before the history kept (`cursor-expired`)")
    },
)
async def list_locations(
    wh: CodePath,
    request: Request,
    principal: PrincipalDep,
    query: Annotated[LocationQuery, query_of(LocationQuery)],
) -> Page[Location]:
    """The warehouse's locations in walking order: by ``pick_sequence``, then ``id``.

    The order is the one of the first page: a location re-sequenced during the walk keeps
    its place in it (listed once), and shows its new ``pick_sequence``.
    """
    type_ = query.type.value if query.type else None
    filters = {"wh": wh, "type": type_, "zone": query.zone, "active": query.active}
    listing = start_listing(request, principal.tenant_id, query, filters=filters)
    after = _walk_position(listing.after)
    async with read_transaction(request, principal) as conn:
        wh_id = await service.warehouse_id(conn, wh)
        rows = await store.list_locations(
            conn,
            wh_id,
            type_=type_,
            zone=query.zone,
            active=query.active,
            after=after,
            limit=listing.fetch,
        )
        # After the rows: a prune that ran before their read is seen here.
        version = after.version if after is not None else None
        if version is not None and version < await store.walk_pruned_version(conn, wh_id):
            raise CursorExpiredError(
                "this walk began before the oldest re-sequencing the server keeps "
                f"({store.WALK_HISTORY_HOURS} hours); start again without a cursor"
            )
    return listing.page(
        rows,
        position=lambda row: [row["walk_sequence"], row["id"], row["walk_version"]],
        item=Location.model_validate,
    )


def _walk_position(after: list[Any] | None) -> store.WalkPosition | None:
    """A cursor's (sequence, id, version); one issued before V17 has no version.

    The version comes last so that a build before V17, meeting a new cursor during a
    rolling update, still reads (sequence, id) from it.
    """
    if after is None:
        return None
    version = int(after[2]) if len(after) > 2 else None
    return store.WalkPosition(version, int(after[0]), int(after[1]))


@router.get("/warehouses/{wh}/locations/{code}", response_model=Location)
async def get_location(
    wh: CodePath, code: CodePath, request: Request, principal: PrincipalDep
) -> Location:
    """One location."""
    async with read_transaction(request, principal) as conn:
        row = await store.get_location(conn, await service.warehouse_id(conn, wh), code)
    if row is None:
        raise NotFoundError(f"no location {code} in warehouse {wh}")
    return Location.model_validate(row)


@router.patch("/warehouses/{wh}/locations/{code}", response_model=Location)
async def update_location(
    wh: CodePath, code: CodePath, body: LocationChanges, request: Request, principal: PrincipalDep
) -> Response:
    """Change a location's type, zone, pick sequence, capacities or active flag."""
    changes = body.model_dump(exclude_unset=True)
    if body.type is not None:
        changes["type"] = body.type.value
    return await run_command(
        request,
        principal,
        lambda uow: service.update_location(uow, wh, code, changes),
        lambda row: Answer(200, Location.model_validate(row)),
    )


@router.post(
    "/warehouses/{wh}/locations:import",
    response_model=ImportResult,
    responses={422: _IMPORT_PROBLEM},
    openapi_extra={"requestBody": _import_body_schema()},
)
async def import_locations(wh: CodePath, request: Request, principal: PrincipalDep) -> Response:
    """Create or update locations by code from JSON ``{"locations": [...]}`` or ``text/csv``.

    All or nothing: any bad row rejects the file (422 ``import-rejected``) with each error's
    ``line`` (CSV: physical line, header = 1; JSON: 1-based index) and ``field``.
    """
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()

    def rows() -> list[RawRow]:
        return csv_rows(body) if content_type == "text/csv" else json_rows(_locations_list(body))

    return await run_command(
        request,
        principal,
        lambda uow: service.import_locations(uow, wh, rows),
        lambda summary: Answer(200, ImportResult.model_validate(summary)),
    )


def _locations_list(body: bytes) -> list[object]:
    document = parse_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("locations"), list):
        raise FieldError("/locations", "send an object with a list of locations")
    extra = sorted(set(document) - {"locations"})
    if extra:
        raise FieldError("/" + extra[0], "unknown field")
    items: list[object] = document["locations"]
    return items


@router.get("/warehouses/{wh}/putaway-rules", response_model=PutawayRulesOut)
async def get_putaway_rules(
    wh: CodePath, request: Request, principal: PrincipalDep
) -> PutawayRulesOut:
    """The warehouse's putaway rules, in the order they are tried."""
    async with read_transaction(request, principal) as conn:
        rules = await service.putaway_rules(conn, wh)
    return PutawayRulesOut.model_validate({"rules": rules})


@router.put("/warehouses/{wh}/putaway-rules", response_model=PutawayRulesOut)
async def replace_putaway_rules(
    wh: CodePath, body: PutawayRules, request: Request, principal: PrincipalDep
) -> Response:
    """Replace the whole ordered list of putaway rules (positions 1..n as given)."""
    rules = [rule.model_dump() for rule in body.rules]
    return await run_command(
        request,
        principal,
        lambda uow: service.replace_putaway_rules(uow, wh, rules),
        lambda after: Answer(200, PutawayRulesOut.model_validate({"rules": after})),
    )
