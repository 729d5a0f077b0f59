"""Zone, location and putaway-rule commands, and the all-or-nothing location import."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg import AsyncConnection

from wms.domain.allocation import allocatable_location
from wms.domain.errors import ConflictError, NotFoundError, UnknownReferenceError
from wms.domain.locations import RawRow, check_type_changes, type_locked, validate_rows
from wms.services import backorders
from wms.services.unit_of_work import UnitOfWork
from wms.store import cache, warehouses
from wms.store import inventory as stock_store
from wms.store import locations as store


async def warehouse_id(conn: AsyncConnection, wh: str) -> int:
    """The id of warehouse ``wh``; ``NotFoundError`` when it does not exist (for this tenant)."""
    found = await warehouses.id_of(conn, wh)
    if found is None:
        raise NotFoundError(f"no warehouse {wh}")
    return found


async def create_zone(uow: UnitOfWork, wh: str, code: str, name: str | None) -> dict[str, Any]:
    """Create a zone in warehouse ``wh``."""
    wh_id = await warehouse_id(uow.conn, wh)
    if not await store.insert_zone(uow.conn, uow.tenant_id, wh_id, code, name):
        raise ConflictError(f"zone {code} already exists in warehouse {wh}", code=code)
    created = await _zone(uow, wh_id, code)
    uow.audit("zone", f"{wh}/{code}", "created", after=created)
    uow.emit("wms.zone.created", "zone", f"{wh}/{code}", created, warehouse=wh)
    return created


async def create_location(uow: UnitOfWork, wh: str, values: dict[str, Any]) -> dict[str, Any]:
    """Create a location; ``values`` as in the request (``zone`` a zone code or None)."""
    wh_id = await warehouse_id(uow.conn, wh)
    row = {key: value for key, value in values.items() if key != "zone"}
    row["zone_id"] = await _zone_id(uow, wh_id, values.get("zone"))
    if not await store.insert_location(uow.conn, uow.tenant_id, wh_id, row):
        raise ConflictError(
            f"location {values['code']} already exists in warehouse {wh}", code=values["code"]
        )
    await cache.invalidate("location", wh_id, values["code"])
    created = await _location(uow, wh_id, values["code"])
    _record(uow, wh, "created", after=created)
    return created


async def update_location(
    uow: UnitOfWork, wh: str, code: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change only the given fields of a location (``zone`` by code; None clears it)."""
    wh_id = await warehouse_id(uow.conn, wh)
    before = await _location(uow, wh_id, code, for_update=True)
    columns = {key: value for key, value in changes.items() if key != "zone"}
    if "zone" in changes:
        columns["zone_id"] = await _zone_id(uow, wh_id, changes["zone"])
    if not columns:
        return before
    if "type" in columns:
        locked = await store.type_changes_locked(uow.conn, wh_id, [(code, str(columns["type"]))])
        if code in locked:
            raise ConflictError(type_locked(code, locked[code]), code=code)
    await store.update_location(uow.conn, before["id"], columns)
    await cache.invalidate("location", wh_id, code)
    after = await _location(uow, wh_id, code)
    _record(uow, wh, "updated", before=before, after=after)
    if not allocatable_location(before["type"], before["active"]):
        await _offer_stock_of(uow, wh_id, [before["id"]])
    return after


async def import_locations(
    uow: UnitOfWork, wh: str, read_rows: Callable[[], Sequence[RawRow]]
) -> dict[str, int]:
    """Create or update locations by code, all or nothing; one audit row and one event.

    ``read_rows`` parses the file once the warehouse is known to exist (404 before 422).
    """
    wh_id = await warehouse_id(uow.conn, wh)
    zones = await store.zone_ids(uow.conn, wh_id)
    valid = validate_rows(read_rows(), zones)
    not_allocatable = await store.lock_by_code(uow.conn, wh_id, [row.code for row in valid])
    locked = await store.type_changes_locked(
        uow.conn, wh_id, [(row.code, row.type.value) for row in valid]
    )
    check_type_changes(valid, locked)
    created, updated = await store.upsert_locations(uow.conn, uow.tenant_id, wh_id, valid)
    await cache.invalidate_many("location", [(wh_id, code) for code in [*created, *updated]])
    await _offer_stock_of(uow, wh_id, not_allocatable)
    summary = {"created": len(created), "updated": len(updated)}
    # One audit row naming every code touched; a before/after per row would make a
    # 10,000-row import write 10,000 audit rows (the file itself is the "after").
    uow.audit("warehouse", wh, "locations_imported", after={"created": created, "updated": updated})
    uow.emit("wms.locations.imported", "warehouse", wh, {"warehouse": wh, **summary}, warehouse=wh)
    return summary


async def putaway_rules(conn: AsyncConnection, wh: str) -> list[dict[str, Any]]:
    """The warehouse's putaway rules in order (for reads and for the command's answer)."""
    return await store.list_putaway_rules(conn, await warehouse_id(conn, wh))


async def replace_putaway_rules(
    uow: UnitOfWork, wh: str, rules: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Replace the warehouse's ordered putaway rules; every rule's zone must exist."""
    wh_id = await warehouse_id(uow.conn, wh)
    await store.lock_warehouse(uow.conn, wh_id)
    zones = await store.zone_ids(uow.conn, wh_id, [rule["zone"] for rule in rules])
    unknown = [(i, rule["zone"]) for i, rule in enumerate(rules) if rule["zone"] not in zones]
    if unknown:
        error = UnknownReferenceError(*_no_zone(*unknown[0]))
        error.errors.extend(_no_zone(*item) for item in unknown[1:])
        raise error
    before = await store.list_putaway_rules(uow.conn, wh_id)
    stored = [{**rule, "zone_id": zones[rule["zone"]]} for rule in rules]
    await store.replace_putaway_rules(uow.conn, uow.tenant_id, wh_id, stored)
    after = await store.list_putaway_rules(uow.conn, wh_id)
    uow.audit("putaway_rules", wh, "replaced", before={"rules": before}, after={"rules": after})
    uow.emit("wms.putaway_rules.replaced", "warehouse", wh, {"rules": after}, warehouse=wh)
    return after


def _no_zone(index: int, zone: str) -> tuple[str, str]:
    return f"/rules/{index}/zone", f"no zone {zone} in this warehouse"


def _record(uow: UnitOfWork, wh: str, action: str, **states: dict[str, Any]) -> None:
    location = states["after"]
    key = f"{wh}/{location['code']}"
    uow.audit("location", key, action, **states)
    uow.emit(f"wms.location.{action}", "location", key, _public(location), warehouse=wh)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows it: codes, no internal ids."""
    return {key: value for key, value in row.items() if key != "id"}


async def _zone_id(uow: UnitOfWork, wh_id: int, zone: str | None) -> int | None:
    if zone is None:
        return None
    found = await store.zone_ids(uow.conn, wh_id, [zone])
    if zone not in found:
        raise UnknownReferenceError("/zone", f"no zone {zone} in this warehouse")
    return found[zone]


async def _zone(uow: UnitOfWork, wh_id: int, code: str) -> dict[str, Any]:
    found = await store.get_zone(uow.conn, wh_id, code)
    if found is None:
        raise NotFoundError(f"no zone {code}")
    return _public(found)


async def _offer_stock_of(uow: UnitOfWork, wh_id: int, location_ids: Sequence[int]) -> None:
    """Offer backorders the free stock of locations allocation may take from now on
    (activated, or made storage or pick): it became allocatable without arriving."""
    if not location_ids:
        return
    products = await stock_store.products_with_free_stock(
        uow.conn, wh_id, location_ids=location_ids
    )
    if products:
        await backorders.stock_arrived(uow, wh_id, products)


async def _location(
    uow: UnitOfWork, wh_id: int, code: str, *, for_update: bool = False
) -> dict[str, Any]:
    found = await store.get_location(uow.conn, wh_id, code, for_update=for_update)
    if found is None:
        raise NotFoundError(f"no location {code}")
    return found
