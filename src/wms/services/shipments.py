"""Shipping: shipments of packed orders, dispatch (stock leaves the building), manifests."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from wms.domain.allocation import OrderStatus
from wms.domain.errors import (
    ConflictError,
    FieldError,
    InvalidStateError,
    NotFoundError,
    UnknownReferenceError,
)
from wms.domain.inventory import BalanceKey, Delta, MovementKind, StockStatus, api_lot
from wms.ops import business_metrics
from wms.services.unit_of_work import UnitOfWork
from wms.store import inventory as stock_store
from wms.store import orders as order_store
from wms.store import packing as packing_store
from wms.store import shipments as store
from wms.store import warehouses as warehouse_store
from wms.store import waves as wave_store


async def create(
    uow: UnitOfWork, *, orders: list[str], carrier: str, tracking_number: str
) -> dict[str, Any]:
    """A shipment of packed orders of one warehouse, all booked with ``carrier``."""
    if len(set(orders)) != len(orders):
        raise FieldError("/orders", "an order is named twice")
    found = {h["number"]: h for h in await wave_store.lock_orders_by_number(uow.conn, orders)}
    heads = []
    for index, number in enumerate(orders):
        head = found.get(number)
        if head is None:
            raise UnknownReferenceError(f"/orders/{index}", f"no order {number}")
        if head["status"] != OrderStatus.PACKED:
            raise InvalidStateError(
                f"order {number} is {head['status']}; only packed orders ship",
                current_status=head["status"],
            )
        heads.append(head)
    if len({h["warehouse_id"] for h in heads}) > 1:
        raise ConflictError("the orders are in different warehouses; ship them apart")
    full = await order_store.heads_by_id(uow.conn, [h["id"] for h in heads])
    for head in full:
        if head["carrier"] != carrier:
            raise ConflictError(
                f"order {head['number']} is booked with {head['carrier']}, not {carrier}",
                order=head["number"], carrier=head["carrier"],
            )  # fmt: skip
    holder = await store.tracking_number_user(uow.conn, carrier, tracking_number)
    if holder is not None:
        raise ConflictError(
            f"{carrier} tracking number {tracking_number} is shipment {holder}'s; cancel that "
            "shipment first if its label was not used",
            shipment=holder,
        )
    taken = await store.shipment_of(uow.conn, [h["id"] for h in heads])
    if taken:
        order_id, shipment_id = next(iter(taken.items()))
        number = next(h["number"] for h in heads if h["id"] == order_id)
        raise ConflictError(
            f"order {number} is already in shipment {shipment_id}", shipment=shipment_id
        )
    shipment_id = await store.insert_shipment(
        uow.conn, uow.tenant_id, warehouse_id=heads[0]["warehouse_id"], carrier=carrier,
        tracking_number=tracking_number, order_ids=[h["id"] for h in heads], actor=uow.actor,
    )  # fmt: skip
    shipment = await view(uow.conn, shipment_id)
    data = {"shipment": shipment_id, "carrier": carrier, "tracking_number": tracking_number,
            "orders": shipment["orders"]}  # fmt: skip
    uow.audit("shipment", shipment_id, "created", after=data)
    uow.emit("wms.shipment.created", "shipment", shipment_id, data,
             warehouse=shipment["warehouse"])  # fmt: skip
    return shipment


async def cancel(uow: UnitOfWork, shipment_id: int, reason: str | None) -> dict[str, Any]:
    """Cancel a shipment not dispatched: its orders stay packed, free to ship in another,
    and its tracking number is free again (a shipment whose orders were all cancelled)."""
    shipment = await store.get(uow.conn, shipment_id, for_update=True)
    if shipment is None:
        raise NotFoundError(f"no shipment {shipment_id}")
    if shipment["status"] != "created":
        raise InvalidStateError(
            f"shipment {shipment_id} is {shipment['status']}", current_status=shipment["status"]
        )
    await store.cancel(uow.conn, shipment_id, actor=uow.actor, reason=reason)
    data = {"shipment": shipment_id, "carrier": shipment["carrier"],
            "tracking_number": shipment["tracking_number"], "orders": shipment["orders"],
            "reason": reason}  # fmt: skip
    uow.audit("shipment", shipment_id, "cancelled", before={"status": "created"},
              after={"status": "cancelled", **data})  # fmt: skip
    uow.emit("wms.shipment.cancelled", "shipment", shipment_id, data,
             warehouse=shipment["warehouse"])  # fmt: skip
    return await view(uow.conn, shipment_id)


async def dispatch(uow: UnitOfWork, shipment_id: int) -> dict[str, Any]:
    """The shipment leaves: its staged stock is removed (ledger ``ship``), orders shipped."""
    shipment = await store.get(uow.conn, shipment_id, for_update=True)
    if shipment is None:
        raise NotFoundError(f"no shipment {shipment_id}")
    if shipment["status"] != "created":
        raise InvalidStateError(
            f"shipment {shipment_id} is already {shipment['status']}",
            current_status=shipment["status"],
        )
    # The membership was read before the heads' locks: an order cancelled meanwhile (its
    # cancel held the head, then took it out of the shipment and committed) is locked here
    # as cancelled, and its stock is on its way back to the shelves; it must not ship.
    heads = [
        head
        for head in await order_store.heads_by_id(uow.conn, list(shipment["order_ids"]))
        if head["status"] != OrderStatus.CANCELLED
    ]
    if not heads:
        raise ConflictError(f"shipment {shipment_id} has no order left to ship")
    warehouse_id = shipment["warehouse_id"]
    staging = await stock_store.location_by_code(
        uow.conn, warehouse_id, shipment["outbound_staging_location"]
    )
    assert staging is not None
    # Every balance of every order, locked once in key order, before any is changed.
    await order_store.lock_allocated_balances(uow.conn, [h["id"] for h in heads])
    leaving: dict[BalanceKey, int] = {}
    staged_by_order = {}
    for head in heads:
        staged = await order_store.staged(uow.conn, head["id"], staging.id)
        staged_by_order[head["id"]] = staged
        for _line, _balance, product_id, lot_code, quantity in staged:
            key = BalanceKey(warehouse_id, staging.id, product_id, lot_code, StockStatus.AVAILABLE)
            leaving[key] = leaving.get(key, 0) + int(quantity)
    # The orders' writes and the shipment's need no answer: they travel together (each
    # release still waits for the balances it locks).
    async with uow.conn.pipeline():
        for head in heads:
            await order_store.release_all(uow.conn, head["id"])
            await order_store.ship_lines(uow.conn, head["id"])
            await order_store.set_status(uow.conn, head["id"], OrderStatus.SHIPPED, stamp="shipped")
        await store.mark_dispatched(uow.conn, shipment_id, uow.actor)
    if leaving:
        await stock_store.apply_deltas(
            uow.conn, uow.tenant_id, [Delta(key, -q) for key, q in leaving.items()],
            stock_store.MovementInfo(
                kind=MovementKind.SHIP, reference_type="shipment", reference_id=str(shipment_id),
                actor=uow.actor, request_id=uow.request_id,
            ),
        )  # fmt: skip
    packages = await packing_store.packages(uow.conn, [h["id"] for h in heads])
    for head in heads:
        await _shipped_event(uow, shipment, head, staged_by_order[head["id"]], packages)
    result = await view(uow.conn, shipment_id)
    for head in heads:
        # dispatched_at is this transaction's now(), the same instant as the order's
        # shipped_at: the cycle time the KPI report computes from the table.
        cycle = (result["dispatched_at"] - head["created_at"]).total_seconds()
        uow.observe(business_metrics.order_shipped, uow.tenant_code, shipment["warehouse"], cycle)
    uow.audit("shipment", shipment_id, "dispatched", before={"status": "created"},
              after={"status": "dispatched", "orders": result["orders"]})  # fmt: skip
    uow.emit("wms.shipment.dispatched", "shipment", shipment_id,
             {"shipment": shipment_id, "carrier": shipment["carrier"],
              "tracking_number": shipment["tracking_number"], "orders": result["orders"]},
             warehouse=shipment["warehouse"])  # fmt: skip
    return result


async def _shipped_event(
    uow: UnitOfWork,
    shipment: dict[str, Any],
    head: dict[str, Any],
    staged: list[Any],
    packages: list[dict[str, Any]],
) -> None:
    lots: dict[int, list[dict[str, Any]]] = {}
    for line_no, _balance, _product, lot_code, quantity in staged:
        lots.setdefault(line_no, []).append({"lot": api_lot(lot_code), "quantity": quantity})
    lines = [
        {"line": line["line_no"], "sku": line["sku"], "ordered": line["quantity"],
         "quantity": line["shipped"], "lots": lots.get(line["line_no"], [])}
        for line in await order_store.lines(uow.conn, head["id"])
    ]  # fmt: skip
    data = {
        "number": head["number"], "shipment": shipment["id"], "carrier": shipment["carrier"],
        "tracking_number": shipment["tracking_number"], "lines": lines,
        "packages": [{"id": p["id"], "carton": p["carton"], "weight_kg": p["weight_kg"],
                      "contents": p["contents"]}
                     for p in packages if p["order_id"] == head["id"]],
    }  # fmt: skip
    uow.audit("order", head["number"], "shipped", before={"status": head["status"]},
              after={"status": OrderStatus.SHIPPED, "shipment": shipment["id"]})  # fmt: skip
    uow.emit("wms.order.shipped", "order", head["number"], data, warehouse=shipment["warehouse"])


async def view(conn: AsyncConnection, shipment_id: int) -> dict[str, Any]:
    """The shipment (404 when unknown)."""
    found = await store.get(conn, shipment_id)
    if found is None:
        raise NotFoundError(f"no shipment {shipment_id}")
    return found


async def manifest(
    conn: AsyncConnection, *, warehouse: str, carrier: str | None, day: date
) -> dict[str, Any]:
    """Shipments dispatched on ``day`` (the warehouse's local date), by dispatch time."""
    found = await warehouse_store.get(conn, warehouse)
    if found is None:
        # As the stock and KPI reports answer a query naming an unknown warehouse.
        raise NotFoundError(f"no warehouse {warehouse}")
    zone = ZoneInfo(found["timezone"])
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    shipments = await store.manifest(conn, found["id"], carrier=carrier, start=start, end=end)
    orders = [order for s in shipments for order in (s["orders"] or [])]
    return {
        "warehouse": warehouse, "carrier": carrier, "date": day, "shipments": shipments,
        "totals": {"shipments": len(shipments), "orders": len(orders),
                   "packages": sum(o["packages"] for o in orders),
                   "weight_kg": round(sum(o["weight_kg"] for o in orders), 3)},
    }  # fmt: skip
