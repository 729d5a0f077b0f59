"""Waves: building them from named orders or a filter, and releasing them into pick tasks.

Only fully ``allocated`` orders join a wave: a named order in another status is a 409
``invalid-state`` (a partially allocated order waits until it is complete, or is
allocated again under ``cancel_remainder``); a filter simply skips it. The database
keeps an order in at most one open wave (a partial unique index), and filter-built waves
claim their orders with ``FOR UPDATE SKIP LOCKED`` so concurrent waves never share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from wms.domain.allocation import OrderStatus
from wms.domain.errors import (
    ConflictError,
    FieldError,
    InvalidStateError,
    NotFoundError,
    UnknownReferenceError,
)
from wms.domain.waves import PickMethod, WaveStatus, build_tasks, take_orders, tote_names
from wms.services import inventory
from wms.services.unit_of_work import UnitOfWork
from wms.store import orders as order_store
from wms.store import waves as store

MAX_WAVE_ORDERS = 1000


@dataclass(frozen=True)
class WaveFilter:
    """Which allocated orders a filter-built wave takes."""

    carrier: str | None = None
    ship_by_before: datetime | None = None
    priority_at_most: int | None = None
    zone: str | None = None
    max_orders: int | None = None
    max_lines: int | None = None


async def create_wave(
    uow: UnitOfWork,
    *,
    warehouse: str,
    pick_method: PickMethod,
    orders: list[str] | None,
    criteria: WaveFilter | None,
) -> dict[str, Any]:
    """A new open wave of the named orders, or of the orders the filter claims."""
    if (orders is None) == (criteria is None):
        raise FieldError("/orders", "give either orders or filter, not both")
    warehouse_id = await inventory.warehouse_id(uow, warehouse)
    if orders is not None:
        order_ids = await _named_orders(uow, warehouse_id, orders)
        recorded = None
    else:
        assert criteria is not None
        order_ids = await _claim(uow, warehouse_id, criteria)
        if not order_ids:
            raise ConflictError("no allocated order in no other open wave matches the filter")
        recorded = {k: v.isoformat() if isinstance(v, datetime) else v
                    for k, v in criteria.__dict__.items()}  # fmt: skip
    wave_id = await store.insert_wave(
        uow.conn, uow.tenant_id, warehouse_id=warehouse_id, pick_method=pick_method,
        criteria=recorded, actor=uow.actor,
    )  # fmt: skip
    added = await store.add_orders(uow.conn, uow.tenant_id, wave_id, order_ids)
    if orders is not None and len(added) != len(order_ids):
        # A concurrent wave took one of them between our lock and our insert.
        raise ConflictError("an order joined another open wave meanwhile; try again")
    wave = await view(uow.conn, wave_id)
    data = {"wave": wave_id, "warehouse": warehouse, "pick_method": pick_method,
            "orders": wave["orders"]}  # fmt: skip
    uow.audit("wave", wave_id, "created", after=data)
    uow.emit("wms.wave.created", "wave", wave_id, data, warehouse=warehouse)
    return wave


async def release(uow: UnitOfWork, wave_id: int) -> dict[str, Any]:
    """Turn the allocations of the wave's orders into pick tasks in walking order."""
    wave = await store.get_wave(uow.conn, wave_id, for_update=True)
    if wave is None:
        raise NotFoundError(f"no wave {wave_id}")
    if wave["status"] != WaveStatus.OPEN:
        raise InvalidStateError(
            f"wave {wave_id} is {wave['status']}", current_status=wave["status"]
        )
    members = [m for m in await store.wave_orders(uow.conn, wave_id) if m["active"]]
    heads = await order_store.heads_by_id(uow.conn, [m["order_id"] for m in members])
    ready = {h["id"]: h for h in heads if h["status"] == OrderStatus.ALLOCATED}
    for member in members:
        if member["order_id"] not in ready:  # cancelled (or changed) since the wave was made
            await store.leave_wave(uow.conn, member["order_id"])
    order_ids = [m["order_id"] for m in members if m["order_id"] in ready]
    method = PickMethod(wave["pick_method"])
    totes = tote_names(order_ids) if method == PickMethod.CLUSTER else None
    if totes:
        await store.set_totes(uow.conn, wave_id, totes)
    allocated = await store.allocated_stock(
        uow.conn, order_ids, staging=wave["outbound_staging_location"]
    )
    plans = build_tasks(method, allocated, totes)
    await store.insert_tasks(
        uow.conn, uow.tenant_id, wave_id=wave_id, warehouse_id=wave["warehouse_id"], plans=plans
    )
    await store.mark_released(uow.conn, wave_id, task_count=len(plans), actor=uow.actor)
    if not plans:
        # Every order left before the release: no task will ever complete the wave.
        await store.complete_if_done(uow.conn, wave_id)
    for order_id in order_ids:
        head = ready[order_id]
        await order_store.set_status(uow.conn, order_id, OrderStatus.RELEASED)
        data = {"number": head["number"], "wave": wave_id}
        uow.audit("order", head["number"], "released", before={"status": head["status"]},
                  after={"status": OrderStatus.RELEASED, "wave": wave_id})  # fmt: skip
        uow.emit("wms.order.released", "order", head["number"], data,
                 warehouse=wave["warehouse"])  # fmt: skip
    result = await view(uow.conn, wave_id)
    data = {"wave": wave_id, "pick_method": method, "orders": result["orders"],
            "task_count": len(plans)}  # fmt: skip
    uow.audit("wave", wave_id, "released", before={"status": WaveStatus.OPEN}, after=data)
    uow.emit("wms.wave.released", "wave", wave_id, data, warehouse=wave["warehouse"])
    return result


async def view(conn: AsyncConnection, wave_id: int) -> dict[str, Any]:
    """The wave with its orders (404 when unknown)."""
    wave = await store.get_wave(conn, wave_id)
    if wave is None:
        raise NotFoundError(f"no wave {wave_id}")
    members = await store.wave_orders(conn, wave_id)
    active_or_done = [m for m in members if m["active"] or wave["status"] == "completed"]
    return {
        **wave,
        "orders": [m["number"] for m in active_or_done],
        "totes": {m["number"]: m["tote"] for m in active_or_done if m["tote"]},
    }


async def _named_orders(uow: UnitOfWork, warehouse_id: int, numbers: list[str]) -> list[int]:
    if len(set(numbers)) != len(numbers):
        raise FieldError("/orders", "an order is named twice")
    found = {h["number"]: h for h in await store.lock_orders_by_number(uow.conn, numbers)}
    for index, number in enumerate(numbers):
        head = found.get(number)
        if head is None or head["warehouse_id"] != warehouse_id:
            raise UnknownReferenceError(f"/orders/{index}", f"no order {number} in this warehouse")
        if head["status"] != OrderStatus.ALLOCATED:
            raise InvalidStateError(
                f"order {number} is {head['status']}; only allocated orders join a wave",
                current_status=head["status"],
            )
        if head["wave"] is not None:
            raise ConflictError(
                f"order {number} is already in open wave {head['wave']}", wave=head["wave"]
            )
    return [found[number]["id"] for number in numbers]


async def _claim(uow: UnitOfWork, warehouse_id: int, criteria: WaveFilter) -> list[int]:
    # Lock no more than can fit (an order has at least one line): rows locked here are
    # skipped by concurrent waves until this one commits.
    limit = min(criteria.max_orders or MAX_WAVE_ORDERS, criteria.max_lines or MAX_WAVE_ORDERS)
    candidates = await store.claim_by_filter(
        uow.conn, warehouse_id, carrier=criteria.carrier,
        ship_by_before=criteria.ship_by_before, priority_at_most=criteria.priority_at_most,
        zone=criteria.zone, limit=limit,
    )  # fmt: skip
    return take_orders(candidates, max_orders=criteria.max_orders, max_lines=criteria.max_lines)
