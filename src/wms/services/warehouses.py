"""Warehouse commands: create, update, carrier cut-offs."""

from __future__ import annotations

from datetime import time
from typing import Any

from wms.domain.errors import ConflictError, FieldError, NotFoundError
from wms.services.unit_of_work import UnitOfWork
from wms.store import warehouses as store


async def create_warehouse(
    uow: UnitOfWork, *, code: str, name: str, timezone: str, staging_location: str
) -> dict[str, Any]:
    """Create a warehouse and its outbound staging location."""
    await _check_time_zone(uow, timezone)
    warehouse_id = await store.insert(
        uow.conn, uow.tenant_id, code=code, name=name, timezone=timezone, staging=staging_location
    )
    if warehouse_id is None:
        raise ConflictError(f"warehouse {code} already exists", code=code)
    await store.insert_staging_location(uow.conn, uow.tenant_id, warehouse_id, staging_location)
    created = await _get(uow, code)
    uow.audit("warehouse", code, "created", after=created)
    uow.emit("wms.warehouse.created", "warehouse", code, created, warehouse=code)
    return created


async def update_warehouse(uow: UnitOfWork, code: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change name, time zone or active flag."""
    before = await _get(uow, code, for_update=True)  # an unknown warehouse: 404 first
    if "timezone" in changes:
        await _check_time_zone(uow, changes["timezone"])
    await store.update(uow.conn, before["id"], changes)
    after = await _get(uow, code)
    uow.audit("warehouse", code, "updated", before=before, after=after)
    uow.emit("wms.warehouse.updated", "warehouse", code, after, warehouse=code)
    return after


async def set_carrier_cutoffs(
    uow: UnitOfWork, code: str, cutoffs: list[tuple[str, time]]
) -> dict[str, Any]:
    """Replace the carrier cut-off times (local times of the warehouse)."""
    before = await _get(uow, code, for_update=True)
    await store.replace_cutoffs(uow.conn, uow.tenant_id, before["id"], cutoffs)
    after = await _get(uow, code)
    uow.audit("warehouse", code, "carrier_cutoffs_set", before=before, after=after)
    uow.emit("wms.warehouse.updated", "warehouse", code, after, warehouse=code)
    return after


async def _check_time_zone(uow: UnitOfWork, name: str) -> None:
    # zoneinfo also loads files PostgreSQL refuses (right/UTC, posixrules): stored, such a
    # zone would break every later AT TIME ZONE of the warehouse.
    if not await store.knows_time_zone(uow.conn, name):
        raise FieldError("/timezone", f"{name} is not a time zone the database knows")


async def _get(uow: UnitOfWork, code: str, *, for_update: bool = False) -> dict[str, Any]:
    found = await store.get(uow.conn, code, for_update=for_update)
    if found is None:
        raise NotFoundError(f"no warehouse {code}")
    return found
