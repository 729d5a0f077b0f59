"""Inventory commands: adjustments, moves and status changes, each one transaction.

Every command resolves its references (unknown ones are 422 on their field), converts
the quantity to base units, checks the destination, applies its deltas through the
store (conditional updates in lock order) and records audit and events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from wms.domain.allocation import allocatable_location
from wms.domain.errors import FieldError, UnknownReferenceError
from wms.domain.inventory import (
    AdjustmentReason,
    BalanceKey,
    Delta,
    MovementKind,
    StockStatus,
    check_capacity,
    check_expiry,
    move_deltas,
    stored_lot,
)
from wms.domain.products import to_base_quantity
from wms.services import backorders
from wms.services.unit_of_work import UnitOfWork
from wms.store import inventory as store
from wms.store import warehouses as warehouse_store


@dataclass(frozen=True)
class StockChange:
    """What a command did: its ledger rows and the balances it touched."""

    movement_ids: list[int]
    balances: list[dict[str, Any]]


@dataclass(frozen=True)
class Quantity:
    """A quantity as the request named it."""

    amount: int
    uom: str | None = None


async def warehouse_id(uow: UnitOfWork, code: str, field: str = "/warehouse") -> int:
    """The id of a warehouse named in a body (422 when unknown)."""
    found = await warehouse_store.id_of(uow.conn, code)
    if found is None:
        raise UnknownReferenceError(field, f"no warehouse {code}")
    return found


async def product(uow: UnitOfWork, sku: str, field: str = "/sku") -> store.StockProduct:
    """A product named in a body (422 when unknown)."""
    found = await store.product_by_sku(uow.conn, sku)
    if found is None:
        raise UnknownReferenceError(field, f"no product {sku}")
    return found


async def location(
    uow: UnitOfWork, warehouse: int, code: str, field: str = "/location"
) -> store.StockLocation:
    """A location named in a body (422 when unknown)."""
    found = await store.location_by_code(uow.conn, warehouse, code)
    if found is None:
        raise UnknownReferenceError(field, f"no location {code} in this warehouse")
    return found


def base_units(item: store.StockProduct, quantity: Quantity, field: str = "/uom") -> int:
    """The quantity in the product's base unit."""
    return to_base_quantity(
        quantity.amount, quantity.uom, sku=item.sku, factors=item.factors, field=field
    )


async def ensure_room(uow: UnitOfWork, place: store.StockLocation, adding: int) -> None:
    """Lock the destination when it has a capacity, and refuse if inactive or full (room
    promised to putaway tasks counts as taken)."""
    stored, promised = (
        await store.lock_location(uow.conn, place.id) if place.capacity_units else (0, 0)
    )
    check_capacity(
        code=place.code,
        active=place.active,
        capacity_units=place.capacity_units,
        stored_units=stored,
        promised_units=promised,
        adding=adding,
    )


async def resolve_lot(
    uow: UnitOfWork, item: store.StockProduct, lot: str | None, expiry: date | None, *, create: bool
) -> str:
    """The stored lot code; when ``create``, a new lot is created with ``expiry`` and a
    known lot without an expiry takes it."""
    code = stored_lot(lot, lot_tracked=item.lot_tracked, sku=item.sku)
    if not code:
        if expiry is not None:
            raise FieldError("/expiry", f"product {item.sku} is not lot-tracked: no expiry")
        return code
    known, existing = await store.find_lot(uow.conn, item.id, code)
    if not known and create:
        if item.expiry_tracked and expiry is None:
            raise FieldError("/expiry", f"product {item.sku} is expiry-tracked: give the expiry")
        created, existing = await store.insert_lot(uow.conn, uow.tenant_id, item.id, code, expiry)
        known = not created
    elif not known:
        raise UnknownReferenceError("/lot", f"product {item.sku} has no lot {code}")
    kept = check_expiry(code, expiry, existing, known=known, may_set=create)
    if known and existing is None and kept is not None:
        await _date_lot(uow, item, code, kept)
    return code


async def _date_lot(uow: UnitOfWork, item: store.StockProduct, code: str, expiry: date) -> None:
    """Record ``expiry`` on a known lot that had none (audited), unless another
    transaction dated it first: then ``expiry`` must be that date (else 409)."""
    if await store.set_lot_expiry(uow.conn, item.id, code, expiry):
        uow.audit("lot", f"{item.sku}/{code}", "expiry_set", before={"expiry": None},
                  after={"expiry": expiry.isoformat()})  # fmt: skip
        return
    _, existing = await store.find_lot(uow.conn, item.id, code)
    check_expiry(code, expiry, existing, known=True)


async def adjust(
    uow: UnitOfWork,
    *,
    warehouse: str,
    location_code: str,
    sku: str,
    lot: str | None,
    quantity: Quantity,
    reason: AdjustmentReason,
    status: StockStatus = StockStatus.AVAILABLE,
    expiry: date | None = None,
    reference: str | None = None,
) -> StockChange:
    """Add (positive) or remove (negative) stock at one place, with a reason code."""
    if quantity.amount == 0:
        raise FieldError("/quantity", "must not be 0")
    wh = await warehouse_id(uow, warehouse)
    item = await product(uow, sku)
    place = await location(uow, wh, location_code)
    units = base_units(item, quantity)
    lot_code = await resolve_lot(uow, item, lot, expiry, create=units > 0)
    if units > 0:
        await ensure_room(uow, place, units)
    key = BalanceKey(wh, place.id, item.id, lot_code, status)
    change = await _apply(
        uow,
        [Delta(key, units)],
        _movement(uow, MovementKind.ADJUSTMENT, quantity, reason=reason, reference=reference),
    )
    data = {"warehouse": warehouse, "location": location_code, "sku": sku, "lot": lot,
            "status": status, "quantity": units, "reason": reason}  # fmt: skip
    if units > 0 and status == StockStatus.AVAILABLE:
        await backorders.stock_arrived(uow, wh, [item.id])
    _record(uow, "adjusted", f"{warehouse}/{location_code}/{sku}", data)
    return change


async def move(
    uow: UnitOfWork,
    *,
    warehouse: str,
    sku: str,
    lot: str | None,
    from_location: str,
    to_location: str,
    quantity: Quantity,
    status: StockStatus = StockStatus.AVAILABLE,
) -> StockChange:
    """Move part or all of the unallocated stock of one balance to another location."""
    wh = await warehouse_id(uow, warehouse)
    item = await product(uow, sku)
    source = await location(uow, wh, from_location, "/from_location")
    destination = await location(uow, wh, to_location, "/to_location")
    units = base_units(item, quantity)
    lot_code = await resolve_lot(uow, item, lot, None, create=False)
    deltas = move_deltas(
        BalanceKey(wh, source.id, item.id, lot_code, status),
        BalanceKey(wh, destination.id, item.id, lot_code, status),
        units,
    )
    await ensure_room(uow, destination, units)
    change = await _apply(
        uow,
        deltas,
        _movement(uow, MovementKind.MOVE, quantity),
    )
    data = {"warehouse": warehouse, "sku": sku, "lot": lot, "from_location": from_location,
            "to_location": to_location, "status": status, "quantity": units}  # fmt: skip
    if (
        status == StockStatus.AVAILABLE
        and allocatable_location(destination.type, destination.active)
        and not allocatable_location(source.type, source.active)
    ):
        await backorders.stock_arrived(uow, wh, [item.id])
    # Audited under both places: a place's history must show the stock that arrived too.
    _record(uow, "moved", f"{warehouse}/{from_location}/{sku}", data,
            also_at=f"{warehouse}/{to_location}/{sku}")  # fmt: skip
    return change


async def change_status(
    uow: UnitOfWork,
    *,
    warehouse: str,
    location_code: str,
    sku: str,
    lot: str | None,
    quantity: Quantity,
    from_status: StockStatus,
    to_status: StockStatus,
    reason: str | None,
) -> StockChange:
    """Move stock between statuses (available ↔ quarantine, damaged, hold) in place."""
    if from_status == to_status:
        raise FieldError("/to_status", "must differ from from_status")
    wh = await warehouse_id(uow, warehouse)
    item = await product(uow, sku)
    place = await location(uow, wh, location_code)
    units = base_units(item, quantity)
    lot_code = await resolve_lot(uow, item, lot, None, create=False)
    deltas = move_deltas(
        BalanceKey(wh, place.id, item.id, lot_code, from_status),
        BalanceKey(wh, place.id, item.id, lot_code, to_status),
        units,
    )
    change = await _apply(
        uow,
        deltas,
        _movement(uow, MovementKind.STATUS_CHANGE, quantity, reason=reason),
    )
    data = {"warehouse": warehouse, "location": location_code, "sku": sku, "lot": lot,
            "from_status": from_status, "to_status": to_status, "quantity": units,
            "reason": reason}  # fmt: skip
    if to_status == StockStatus.AVAILABLE:
        await backorders.stock_arrived(uow, wh, [item.id])
    _record(uow, "status_changed", f"{warehouse}/{location_code}/{sku}", data)
    return change


def _movement(
    uow: UnitOfWork,
    kind: MovementKind,
    quantity: Quantity,
    *,
    reason: str | None = None,
    reference: str | None = None,
) -> store.MovementInfo:
    """What the ledger rows of one command share: kind, reason, original unit, who."""
    return store.MovementInfo(
        kind=kind,
        reason=reason,
        reference_type="adjustment" if reference else None,
        reference_id=reference,
        uom=quantity.uom,
        uom_quantity=abs(quantity.amount),
        actor=uow.actor,
        request_id=uow.request_id,
    )


def _record(
    uow: UnitOfWork, action: str, place: str, data: dict[str, Any], *, also_at: str | None = None
) -> None:
    """Audit row and ``wms.inventory.<action>`` event of one stock command; ``also_at`` is
    a second place it changed (a move's destination), audited with the same data."""
    for audited in (place,) if also_at is None else (place, also_at):
        uow.audit("inventory", audited, action, after=data)
    warehouse, sku = data["warehouse"], data["sku"]
    uow.emit(f"wms.inventory.{action}", "inventory", f"{warehouse}/{sku}", data,
             warehouse=warehouse)  # fmt: skip


async def _apply(uow: UnitOfWork, deltas: list[Delta], info: store.MovementInfo) -> StockChange:
    ids = await store.apply_deltas(uow.conn, uow.tenant_id, deltas, info)
    touched = await store.balances(uow.conn, keys=[delta.key for delta in deltas])
    return StockChange(movement_ids=ids, balances=touched)
