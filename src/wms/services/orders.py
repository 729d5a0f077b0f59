"""Order commands: intake, allocation, cancellation — and re-allocation of backorders.

No unit is sold twice: allocation locks the candidate balances in primary-key order,
plans with the pure strategies of ``wms.domain.allocation`` on the locked quantities,
and applies the plan in the same transaction; ``allocated <= on_hand`` is CHECKed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from wms.domain.allocation import (
    ALLOCATABLE_STATUSES,
    CANCELLABLE_STATUSES,
    LineNeed,
    OrderStatus,
    Reservation,
    min_expiry_for,
    plan_order,
    status_after_allocation,
)
from wms.domain.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    UnknownReferenceError,
)
from wms.domain.inventory import stored_lot
from wms.domain.products import to_base_quantity
from wms.domain.settings import AllocationStrategy, BackorderPolicy
from wms.ops import business_metrics
from wms.services import replenishment
from wms.services.unit_of_work import UnitOfWork
from wms.store import inventory as stock_store
from wms.store import orders as store
from wms.store import picking as pick_store
from wms.store import settings as settings_store
from wms.store import shipments as shipment_store
from wms.store import waves as wave_store

BACKORDERS_PER_BATCH = 50
ALLOCATION_EVENTS = {
    OrderStatus.ALLOCATED: "wms.order.allocated",
    OrderStatus.PARTIALLY_ALLOCATED: "wms.order.partially_allocated",
    OrderStatus.BACKORDERED: "wms.order.backordered",
    OrderStatus.CANCELLED: "wms.order.cancelled",
}


@dataclass(frozen=True)
class OrderLineIn:
    """One requested line."""

    line_no: int
    sku: str
    quantity: int
    uom: str | None
    lot: str | None
    min_shelf_life_days: int | None


@dataclass(frozen=True)
class OrderIn:
    """A requested order, its content hash identifying it for repeated intake."""

    number: str
    warehouse: str
    customer: str | None
    carrier: str
    carrier_service: str | None
    priority: int
    ship_by: datetime | None
    ship_to: dict[str, Any]
    lines: list[OrderLineIn]
    content_hash: bytes


@dataclass(frozen=True)
class OrderResult:
    """An order as it stands after a command, and whether the command created it."""

    order: dict[str, Any]
    created: bool


async def create_order(uow: UnitOfWork, order: OrderIn) -> OrderResult:
    """Take in an order; the same number and content again returns it unchanged."""
    found = await store.to_receive(
        uow.conn, uow.tenant_id, order.number, order.warehouse, [line.sku for line in order.lines]
    )
    if found.existing is not None:
        return OrderResult(await _same_order(uow, found.existing, order), created=False)
    if found.warehouse_id is None:
        raise UnknownReferenceError("/warehouse", f"no warehouse {order.warehouse}")
    new_lines = _resolve_lines(order.lines, found.products)
    order_id = await store.insert_order(
        uow.conn,
        uow.tenant_id,
        number=order.number,
        warehouse_id=found.warehouse_id,
        fields={
            "customer": order.customer,
            "carrier": order.carrier,
            "carrier_service": order.carrier_service,
            "priority": order.priority,
            "ship_by": order.ship_by,
            "ship_to": order.ship_to,
        },
        content_hash=order.content_hash,
        line_count=len(new_lines),
    )
    if order_id is None:  # created by a concurrent request since we looked
        existing = await store.get_head(uow.conn, order.number)
        assert existing is not None
        return OrderResult(await _same_order(uow, existing, order), created=False)
    # The lines and the read of the new order go in one round trip. The rows are this
    # transaction's own, invisible to others until commit: no lock needed, and no
    # allocation can exist yet.
    async with uow.conn.pipeline():
        await store.insert_lines(uow.conn, uow.tenant_id, order_id, new_lines)
        rows = await store.order_rows(uow.conn, order.number, allocations=False)
    assert rows.head is not None
    summary = {"number": order.number, "lines": len(new_lines), "warehouse": order.warehouse}
    uow.audit("order", order.number, "received", after=summary)
    uow.emit("wms.order.received", "order", order.number, summary, warehouse=order.warehouse)
    uow.observe(business_metrics.order_received, uow.tenant_code, order.warehouse)
    if not found.settings["allocate_on_create"]:
        return OrderResult(_with_lines(rows.head, rows.lines, rows.allocations), created=True)
    await _allocate(uow, rows.head, found.settings, lines=rows.lines)
    return OrderResult(await view(uow.conn, order.number), created=True)


async def allocate_order(uow: UnitOfWork, number: str) -> dict[str, Any]:
    """Allocate what the order still needs (a fully allocated order is left as it is)."""
    found = await store.to_allocate(uow.conn, uow.tenant_id, number)
    head = found.head
    if head is None:
        raise NotFoundError(f"no order {number}")
    if head["status"] not in ALLOCATABLE_STATUSES:
        raise InvalidStateError(
            f"order {number} is {head['status']} and cannot be allocated",
            current_status=head["status"],
        )
    if head["status"] != OrderStatus.ALLOCATED:
        await _allocate(uow, head, found.settings, lines=found.lines)
    return await view(uow.conn, number)


async def cancel_order(uow: UnitOfWork, number: str) -> dict[str, Any]:
    """Cancel an order not yet shipped, releasing its allocations.

    A released order leaves its open pick tasks; stock already picked is released at the
    staging location and a put-back task brings it back where it was picked from.
    """
    # The order's open tasks before its head: a pick locks its tasks, then their orders'
    # heads; the other way round, a cancel and a pick of the same order deadlocked.
    unlocked = await _head(uow, number)
    await pick_store.lock_open_tasks_of(uow.conn, unlocked["id"])
    head = await _head(uow, number, for_update=True)
    if head["status"] not in CANCELLABLE_STATUSES:
        raise InvalidStateError(
            f"order {number} is {head['status']} and cannot be cancelled",
            current_status=head["status"],
        )
    await wave_store.leave_wave(uow.conn, head["id"])
    waves = await pick_store.withdraw_order(uow.conn, head["id"])
    freed = await store.release_all(uow.conn, head["id"])
    await store.cancel_lines(uow.conn, head["id"])
    put_back = await replenishment.put_back(uow, head)
    await shipment_store.leave_shipment(uow.conn, head["id"])
    for wave_id in waves:
        await wave_store.complete_if_done(uow.conn, wave_id)
    await store.set_status(uow.conn, head["id"], OrderStatus.CANCELLED, stamp="cancelled")
    uow.audit("order", number, "cancelled", before={"status": head["status"]},
              after={"status": OrderStatus.CANCELLED, "put_back_tasks": put_back})  # fmt: skip
    uow.emit("wms.order.cancelled", "order", number,
             {"number": number, "put_back_tasks": put_back},
             warehouse=head["warehouse"])  # fmt: skip
    if freed:
        await reallocate_backorders(uow, head["warehouse_id"], freed, skip_order=head["id"])
    return await view(uow.conn, number)


async def reallocate_backorders(
    uow: UnitOfWork, warehouse_id: int, product_ids: list[int], *, skip_order: int | None = None
) -> int:
    """Offer stock of ``product_ids`` to waiting orders, by priority then age; return how many.

    In batches, for as long as some of the products have free stock left: one batch of
    waiting orders may all want what did not come (another lot), and the order behind
    them the stock that did.
    """
    served = 0
    settings: dict[str, Any] | None = None
    after: store.WaitingOrder | None = None
    while product_ids:
        batch = await store.waiting_orders(
            uow.conn, warehouse_id, product_ids, BACKORDERS_PER_BATCH, after=after
        )
        if not batch:
            break
        after = batch[-1]
        waiting = [order.id for order in batch if order.id != skip_order]
        settings = settings or await settings_store.get(uow.conn, uow.tenant_id)
        heads = {h["id"]: h for h in await store.heads_by_id(uow.conn, waiting)}
        for order_id in waiting:  # priority order; heads were locked in id order above
            head = heads.get(order_id)
            if head is None or head["status"] not in ALLOCATABLE_STATUSES:
                continue
            if await _allocate(uow, head, settings, backorder=True):
                served += 1
        if len(batch) < BACKORDERS_PER_BATCH:
            break
        product_ids = await stock_store.products_with_free_stock(
            uow.conn, warehouse_id, product_ids=product_ids
        )
    return served


async def reallocate_lines(
    uow: UnitOfWork,
    head: dict[str, Any],
    lines: dict[int, int],
    *,
    excluded_balances: list[int],
) -> list[Reservation]:
    """Reserve ``lines`` (line → units) again elsewhere after a short pick, as far as it goes.

    The short balance is left out; what finds no stock stays backordered on its line.
    """
    settings = await settings_store.get(uow.conn, uow.tenant_id)
    today = datetime.now(UTC).astimezone(ZoneInfo(head["timezone"])).date()
    default = AllocationStrategy(settings["allocation_strategy"])
    needs = []
    for line in await store.lines(uow.conn, head["id"]):
        missing = lines.get(line["line_no"], 0)
        if missing > 0:
            need = _need(line, default, today)
            needs.append(replace(need, quantity=min(missing, need.quantity)))
    needs = [need for need in needs if need.quantity > 0]
    if not needs:
        return []
    candidates = await store.lock_candidates(
        uow.conn,
        head["warehouse_id"],
        sorted({need.product_id for need in needs}),
        excluded_location=head["staging_location"],
        excluded_balances=excluded_balances,
    )
    plan = plan_order(needs, candidates, BackorderPolicy.BACKORDER)
    await store.reserve(uow.conn, uow.tenant_id, head["id"], plan.reservations)
    return plan.reservations


async def view(conn: AsyncConnection, number: str) -> dict[str, Any]:
    """The order with its lines and where each line's stock is reserved (404 if none)."""
    rows = await store.order_rows(conn, number)
    if rows.head is None:
        raise NotFoundError(f"no order {number}")
    return _with_lines(rows.head, rows.lines, rows.allocations)


async def assemble(conn: AsyncConnection, head: dict[str, Any]) -> dict[str, Any]:
    """Attach lines and allocations to an order head."""
    return _with_lines(head, *await store.lines_and_allocations(conn, head["id"]))


def _with_lines(
    head: dict[str, Any], lines: list[dict[str, Any]], allocations: list[dict[str, Any]]
) -> dict[str, Any]:
    by_line: dict[int, list[dict[str, Any]]] = {}
    for allocation in allocations:
        by_line.setdefault(allocation["line_no"], []).append(allocation)
    for line in lines:
        line["allocations"] = by_line.get(line["line_no"], [])
    return {**head, "lines": lines}


async def _allocate(
    uow: UnitOfWork,
    head: dict[str, Any],
    settings: dict[str, Any],
    *,
    backorder: bool = False,
    lines: list[dict[str, Any]] | None = None,
) -> bool:
    """Plan and reserve for the order's open lines; return whether anything was reserved.

    ``lines`` are the order's lines as read under the head's lock (read here if not given).
    """
    if lines is None:
        lines = await store.lines(uow.conn, head["id"])
    today = datetime.now(UTC).astimezone(ZoneInfo(head["timezone"])).date()
    default = AllocationStrategy(settings["allocation_strategy"])
    needs = [
        _need(line, default, today)
        for line in lines
        if line["allocated"] + line["cancelled"] < line["quantity"]
    ]
    if not needs:
        return False
    policy = BackorderPolicy(settings["backorder_policy"])
    # A backorder is offered stock by a command that made some available: it holds that
    # stock's balances, then the waiting orders' heads, before the candidates. Another
    # such command (a second putaway of the product) may hold a candidate and wait for
    # the same head: waiting for its balance would close the circle (a deadlock). Its
    # balance is left out instead; that command offers its own stock once it has the
    # head, and the offering command's own balances are never skipped.
    candidates = await store.lock_candidates(
        uow.conn,
        head["warehouse_id"],
        sorted({need.product_id for need in needs}),
        excluded_location=head["staging_location"],
        skip_locked=backorder,
    )
    plan = plan_order(needs, candidates, policy)
    cancel_short = policy == BackorderPolicy.CANCEL_REMAINDER and bool(plan.short) and not backorder
    # The lines' totals once the plan is applied: what the UPDATEs below add to them.
    status = status_after_allocation(
        total=sum(line["quantity"] for line in lines),
        allocated=sum(line["allocated"] for line in lines) + plan.reserved,
        cancelled=sum(line["cancelled"] for line in lines)
        + (sum(plan.short.values()) if cancel_short else 0),
    )
    stamp = "allocated" if status == OrderStatus.ALLOCATED else None
    if status == OrderStatus.CANCELLED:
        stamp = "cancelled"
    head["status"] = status
    # A backorder re-offer that found nothing is not news: no audit row, no event.
    if plan.reserved or not backorder:
        data = {
            "number": head["number"],
            "status": status,
            "reserved": plan.reserved,
            "short": sum(plan.short.values()),
        }
        uow.audit("order", head["number"], "allocated", after=data)
        event = data
        if status == OrderStatus.CANCELLED:  # for want of stock: the cancellation's shape
            event = {"number": head["number"], "put_back_tasks": []}
        uow.emit(ALLOCATION_EVENTS[status], "order", head["number"], event,
                 warehouse=head["warehouse"])  # fmt: skip
    # The writes and the pick-face check that follows them travel in one round trip.
    async with uow.conn.pipeline():
        await store.reserve(uow.conn, uow.tenant_id, head["id"], plan.reservations)
        if cancel_short:
            await store.cancel_remainders(uow.conn, head["id"], plan.short)
        await store.set_status(uow.conn, head["id"], status, stamp=stamp)
        if plan.reserved:
            # Reserving may have drawn a pick face below its minimum.
            await replenishment.check_levels(
                uow, head["warehouse_id"], sorted({need.product_id for need in needs})
            )
    return plan.reserved > 0


def _need(line: dict[str, Any], default: AllocationStrategy, today: date) -> LineNeed:
    shelf_life = line["min_shelf_life_days"]
    if shelf_life is None:
        shelf_life = line["product_shelf_life"]
    return LineNeed(
        line_no=line["line_no"],
        product_id=line["product_id"],
        quantity=line["quantity"] - line["allocated"] - line["cancelled"],
        strategy=AllocationStrategy(line["allocation_strategy"] or default),
        lot_code=line["lot_code"],
        min_expiry=min_expiry_for(today, shelf_life),
    )


def _resolve_lines(
    lines: list[OrderLineIn], products: dict[str, store.OrderProduct]
) -> list[store.NewLine]:
    resolved = []
    for index, line in enumerate(lines):
        product = products.get(line.sku)
        if product is None:
            raise UnknownReferenceError(f"/lines/{index}/sku", f"no product {line.sku}")
        quantity = to_base_quantity(
            line.quantity,
            line.uom,
            sku=line.sku,
            factors=product.factors,
            field=f"/lines/{index}/uom",
        )
        lot_code = ""
        if line.lot is not None:
            lot_code = stored_lot(
                line.lot, lot_tracked=product.lot_tracked, sku=line.sku,
                field=f"/lines/{index}/lot",
            )  # fmt: skip
        resolved.append(
            store.NewLine(
                line_no=line.line_no,
                product_id=product.id,
                quantity=quantity,
                uom=line.uom,
                uom_quantity=line.quantity if line.uom else None,
                lot_code=lot_code,
                min_shelf_life_days=line.min_shelf_life_days,
            )
        )
    return resolved


async def _same_order(uow: UnitOfWork, head: dict[str, Any], order: OrderIn) -> dict[str, Any]:
    if bytes(head["content_hash"]) != order.content_hash:
        raise ConflictError(
            f"order {order.number} exists with different content", number=order.number
        )
    return await assemble(uow.conn, head)


async def _head(uow: UnitOfWork, number: str, *, for_update: bool = False) -> dict[str, Any]:
    head = await store.get_head(uow.conn, number, for_update=for_update)
    if head is None:
        raise NotFoundError(f"no order {number}")
    return head
