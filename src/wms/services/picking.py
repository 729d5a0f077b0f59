"""Picking: confirming pick tasks one at a time or in a batch (all or nothing).

A scan must name the task's location, product (its SKU or any barcode, a unit's barcode
converting the quantity) and lot, else 409 ``pick-mismatch``; more than the task is
409 ``over-pick``. Picked units move to the warehouse's outbound staging location and stay
allocated to their orders (the allocation moves with them). Less than the task is a short
pick: the missing units are charged to the task's orders, least urgent first; the location
gets an open cycle count; each charged line is re-allocated elsewhere, giving new tasks in
the same wave, and what finds no stock stays backordered on its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import AsyncConnection

from wms.domain.allocation import OrderStatus, status_after_allocation
from wms.domain.errors import FieldError, NotFoundError, UnknownReferenceError
from wms.domain.inventory import BalanceKey, Delta, MovementKind, StockStatus, api_lot
from wms.domain.picking import Claim, charge_shortage, check_match, check_quantity
from wms.domain.products import to_base_quantity
from wms.domain.tasks import open_task
from wms.domain.waves import PickTaskStatus, Share
from wms.ops import business_metrics
from wms.services import orders as order_service
from wms.services import replenishment
from wms.services.unit_of_work import UnitOfWork
from wms.store import cycle_counts as count_store
from wms.store import inventory as stock_store
from wms.store import orders as order_store
from wms.store import picking as store
from wms.store import waves as wave_store


@dataclass(frozen=True)
class Scan:
    """One confirmation as the picker scanned it."""

    task_id: int
    location: str
    quantity: int
    sku: str | None = None
    barcode: str | None = None
    lot: str | None = None
    uom: str | None = None


@dataclass
class Picked:
    """What a confirmation did: the task, its shortage and what the shortage led to."""

    task: dict[str, Any]
    shortage: int = 0
    backordered: int = 0
    cycle_count: int | None = None
    new_tasks: list[dict[str, Any]] = field(default_factory=list)


async def confirm(uow: UnitOfWork, scan: Scan) -> Picked:
    """Confirm one task."""
    (picked,) = await confirm_many(uow, [scan], batch=False)
    return picked


async def confirm_many(uow: UnitOfWork, scans: list[Scan], *, batch: bool = True) -> list[Picked]:
    """Confirm several tasks in one transaction: any error and none is confirmed.

    The common case is settled for the whole batch at once: every scan is checked, the
    tasks' order lines and order heads are read in one query each, every balance the batch
    touches is locked in one statement (in key order), and all exact picks move to staging,
    are written to the ledger and are marked picked in a few set-based statements. Short
    picks (rare: they re-allocate) then run one by one; audit rows and events are recorded
    per task, in the order of the batch.
    """
    ids = [scan.task_id for scan in scans]
    if len(set(ids)) != len(ids):
        raise FieldError("/confirmations", "a task is confirmed twice")
    # One round trip: the tasks locked, then their products (unit factors), their order
    # lines and their orders' heads (locked after the tasks, as before), all by task id.
    async with uow.conn.pipeline():
        sent_tasks = await store.send_lock_tasks(uow.conn, ids)
        sent_products = await store.send_task_products(uow.conn, ids)
        sent_shares = await store.send_shares_of(uow.conn, ids)
        sent_heads = await store.send_task_order_heads(uow.conn, ids)
    tasks = await store.read_tasks(sent_tasks)
    products = await stock_store.read_products(sent_products)
    shares_of = await store.read_shares(sent_shares, ids)
    heads = {h["id"]: h for h in await sent_heads.fetchall()}
    checked: list[tuple[dict[str, Any], int]] = []
    for index, scan in enumerate(scans):
        at = f"/confirmations/{index}" if batch else ""
        task = open_task(tasks, scan.task_id, what="pick task", at=at, batch=batch)
        checked.append((task, await _check_scan(uow, task, scan, at, products)))
    picks = [_plan(task, units, shares_of[task["id"]]) for task, units in checked]
    balance_ids = await _lock_balances(uow, picks)
    await _move_exact_to_staging(uow, [p for p in picks if not p.short_pick], balance_ids)
    results = []
    touched = _Touched()
    for pick in picks:
        results.append(await _confirm(uow, pick, heads, touched))
    # What depends on the batch as a whole is settled once, not once per task: a 5,000-line
    # order confirmed in batches asked "any open task left?" 5,000 times otherwise.
    await _advance_orders(uow, touched.orders)
    for wave_id in sorted(touched.waves):
        await wave_store.complete_if_done(uow.conn, wave_id)
    for warehouse_id, product_ids in sorted(touched.products.items()):
        await replenishment.check_levels(uow, warehouse_id, sorted(product_ids))
    # Re-read: later confirmations of a batch may touch earlier ones.
    fresh = {t["id"]: t for t in await store.tasks(uow.conn, ids=ids, limit=len(ids))}
    for result in results:
        result.task = fresh[result.task["id"]]
    return results


@dataclass
class _Touched:
    """What a batch of confirmations touched: orders (with their warehouse), waves, products."""

    orders: dict[int, str] = field(default_factory=dict)  # order id → warehouse code
    waves: set[int] = field(default_factory=set)
    products: dict[int, set[int]] = field(default_factory=dict)


@dataclass
class _Pick:
    """One checked confirmation: what its order lines want and receive, and its balances."""

    task: dict[str, Any]
    units: int
    shares: list[dict[str, Any]]
    wanted: dict[tuple[int, int], int]
    received: dict[tuple[int, int], int]
    source: BalanceKey
    staging: BalanceKey

    @property
    def short_pick(self) -> bool:
        return bool(self.units != self.task["quantity"])

    @property
    def status(self) -> PickTaskStatus:
        return PickTaskStatus.SHORT if self.short_pick else PickTaskStatus.CONFIRMED


def _plan(task: dict[str, Any], units: int, shares: list[dict[str, Any]]) -> _Pick:
    shares = [s for s in shares if s["quantity"] > 0]
    received = charge_shortage(
        [Claim(s["order_id"], s["line_no"], s["quantity"], s["priority"], s["ship_by"])
         for s in shares],
        units,
    )  # fmt: skip
    wanted = {(s["order_id"], s["line_no"]): int(s["quantity"]) for s in shares}
    rest = (task["product_id"], task["lot_code"], StockStatus.AVAILABLE)
    source = BalanceKey(task["warehouse_id"], task["location_id"], *rest)
    staging = BalanceKey(task["warehouse_id"], 0, *rest)  # location resolved on locking
    return _Pick(task, units, shares, wanted, received, source, staging)


async def _lock_balances(uow: UnitOfWork, picks: list[_Pick]) -> dict[BalanceKey, int]:
    """Lock every balance of the batch (sources, and staging where units move) in key order."""
    keys = []
    for pick in picks:
        task = pick.task
        staging = await stock_store.location_by_code(
            uow.conn, task["warehouse_id"], task["staging"]
        )
        assert staging is not None
        pick.staging = replace(pick.staging, location_id=staging.id)
        keys.append(pick.source)
        if pick.units:
            keys.append(pick.staging)
    return await stock_store.lock_balances(uow.conn, uow.tenant_id, keys)


async def _move_exact_to_staging(
    uow: UnitOfWork, picks: list[_Pick], balance_ids: dict[BalanceKey, int]
) -> None:
    """What ``_move_to_staging`` does, for many exact picks at once (balances locked)."""
    released: dict[tuple[int, int, int], int] = {}
    reserved: dict[tuple[int, int, int], int] = {}
    allocated: dict[tuple[int, int], int] = {}
    picked: dict[tuple[int, int], int] = {}
    moves: list[tuple[Delta, stock_store.MovementInfo]] = []
    for pick in picks:
        source_id = balance_ids[pick.source]
        for key, quantity in pick.wanted.items():
            _add(released, (source_id, *key), quantity)
            _add(allocated, key, pick.received[key] - quantity)
        if pick.units == 0:
            continue
        info = stock_store.MovementInfo(
            kind=MovementKind.PICK, reference_type="pick_task", reference_id=str(pick.task["id"]),
            actor=uow.actor, request_id=uow.request_id,
        )  # fmt: skip
        moves += [(Delta(pick.source, -pick.units), info), (Delta(pick.staging, pick.units), info)]
        staging_id = balance_ids[pick.staging]
        for key, quantity in pick.received.items():
            _add(reserved, (staging_id, *key), quantity)
            _add(picked, key, quantity)
    # Writes that need no answer travel together: one round trip each side of the moves.
    async with uow.conn.pipeline():
        await store.release_many(uow.conn, released)
        await order_store.add_to_lines(uow.conn, "allocated", allocated)
    await stock_store.apply_moves(uow.conn, uow.tenant_id, moves, locked=balance_ids)
    async with uow.conn.pipeline():
        await store.reserve_many(uow.conn, uow.tenant_id, reserved)
        await order_store.add_to_lines(uow.conn, "picked", picked)
        await store.mark_many_picked(
            uow.conn,
            [(p.task["id"], p.status, p.units) for p in picks],
            actor=uow.actor,
            received={(p.task["id"], *key): q for p in picks for key, q in p.received.items()},
        )


def _add(totals: dict[Any, int], key: Any, quantity: int) -> None:
    totals[key] = totals.get(key, 0) + quantity


async def _confirm(
    uow: UnitOfWork, pick: _Pick, heads: dict[int, dict[str, Any]], touched: _Touched
) -> Picked:
    """Finish one confirmation: a short pick's moves and re-allocation; audit and events.

    An exact pick was moved and marked with its batch already.
    """
    task, units, received = pick.task, pick.units, pick.received
    status = pick.status
    result = Picked(task=task, shortage=task["quantity"] - units)
    if pick.short_pick:
        short = {key: pick.wanted[key] - received[key] for key in pick.wanted}
        # Read again: an earlier short pick's re-allocation may have changed its orders.
        own = {h["id"]: h for h in await order_store.heads_by_id(
            uow.conn, sorted({k[0] for k in pick.wanted}))}  # fmt: skip
        source_id = await _move_to_staging(
            uow, task, wanted=pick.wanted, received=received, units=units
        )
        await store.mark_picked(
            uow.conn, task["id"], status=status, picked=units, actor=uow.actor, received=received
        )
        if result.shortage:
            await _shortage(uow, task, shares=pick.shares, short=short, heads=own,
                            result=result, source_id=source_id)  # fmt: skip
    for order_id in sorted({k[0] for k in pick.wanted}):
        touched.orders[order_id] = task["warehouse"]
    touched.waves.add(task["wave_id"])
    touched.products.setdefault(task["warehouse_id"], set()).add(task["product_id"])
    data = {
        "task": task["id"], "wave": task["wave_id"], "location": task["location"],
        "staging_location": task["staging"], "sku": task["sku"], "lot": api_lot(task["lot_code"]),
        "quantity": units, "short": result.shortage, "picker": uow.actor,
        "orders": [{"order": heads[k[0]]["number"], "line": k[1], "quantity": q}
                   for k, q in received.items()],
    }  # fmt: skip
    uow.audit("pick_task", task["id"], "confirmed", before={"status": PickTaskStatus.OPEN},
              after={"status": status, **data})  # fmt: skip
    uow.emit("wms.inventory.picked", "inventory", f"{task['warehouse']}/{task['sku']}", data,
             warehouse=task["warehouse"])  # fmt: skip
    uow.observe(business_metrics.pick_confirmed, uow.tenant_code, task["warehouse"],
                short=result.shortage > 0)  # fmt: skip
    return result


async def _check_scan(
    uow: UnitOfWork,
    task: dict[str, Any],
    scan: Scan,
    at: str,
    products: dict[str, stock_store.StockProduct],
) -> int:
    """The scan's quantity in base units, once location, product and lot match the task.

    ``products``: the tasks' products by SKU."""
    check_match(f"{at}/location", expected=task["location"], given=scan.location,
                what="location")  # fmt: skip
    uom = scan.uom
    scanned = scan.barcode or scan.sku
    product_id: int | None = None
    if scan.sku is not None and scan.barcode is None and scan.sku == task["sku"]:
        product_id = task["product_id"]
    else:
        code = scan.barcode if scan.barcode is not None else scan.sku
        assert code is not None
        owner = await stock_store.barcode_owner(uow.conn, code)
        if owner is None and scan.barcode is not None:
            raise UnknownReferenceError(f"{at}/barcode", f"no product or unit has barcode {code}")
        if owner is not None:
            product_id, barcode_uom = owner.product_id, owner.uom
            if barcode_uom is not None:
                if uom is not None and uom != barcode_uom:
                    raise FieldError(f"{at}/uom", f"barcode {code} is unit {barcode_uom}")
                uom = barcode_uom
    field_name = "barcode" if scan.barcode is not None else "sku"
    if product_id != task["product_id"]:
        check_match(f"{at}/{field_name}", expected=task["sku"], given=scanned, what="product")
    item = products[task["sku"]]
    units = to_base_quantity(
        scan.quantity, uom, sku=task["sku"], factors=item.factors, field=f"{at}/uom"
    )
    check_match(f"{at}/lot", expected=api_lot(task["lot_code"]), given=scan.lot, what="lot")
    check_quantity(units, task["quantity"])
    return units


async def _move_to_staging(
    uow: UnitOfWork,
    task: dict[str, Any],
    *,
    wanted: dict[tuple[int, int], int],
    received: dict[tuple[int, int], int],
    units: int,
) -> int:
    """Release the task's allocations at the source; move what was found to staging.

    Both balances are locked first, in key order; the picked units are allocated again
    at the staging balance to the same order lines, so they stay reserved until dispatch.
    """
    staging = await stock_store.location_by_code(uow.conn, task["warehouse_id"], task["staging"])
    assert staging is not None
    rest = (task["product_id"], task["lot_code"], StockStatus.AVAILABLE)
    source_key = BalanceKey(task["warehouse_id"], task["location_id"], *rest)
    staging_key = BalanceKey(task["warehouse_id"], staging.id, *rest)
    ids = await stock_store.lock_balances(
        uow.conn, uow.tenant_id, [source_key, staging_key] if units else [source_key]
    )
    await order_store.release_at(uow.conn, ids[source_key], wanted)
    await order_store.add_to_lines(
        uow.conn, "allocated", {key: received[key] - wanted[key] for key in wanted}
    )
    if units == 0:
        return ids[source_key]
    await stock_store.apply_deltas(
        uow.conn,
        uow.tenant_id,
        [Delta(source_key, -units), Delta(staging_key, units)],
        stock_store.MovementInfo(
            kind=MovementKind.PICK, reference_type="pick_task", reference_id=str(task["id"]),
            actor=uow.actor, request_id=uow.request_id,
        ),
    )  # fmt: skip
    await order_store.reserve_at(uow.conn, uow.tenant_id, ids[staging_key], received)
    await order_store.add_to_lines(uow.conn, "picked", received)
    return ids[source_key]


async def _shortage(
    uow: UnitOfWork,
    task: dict[str, Any],
    *,
    shares: list[dict[str, Any]],
    short: dict[tuple[int, int], int],
    heads: dict[int, dict[str, Any]],
    result: Picked,
    source_id: int,
) -> None:
    """Flag the location for counting; re-allocate each charged line elsewhere."""
    result.cycle_count = await _flag_for_count(uow, task)
    totes = {(s["order_id"], s["line_no"]): s["tote"] for s in shares}
    new_ids = []
    for order_id in sorted({key[0] for key, q in short.items() if q > 0}):
        lines = {key[1]: q for key, q in short.items() if key[0] == order_id and q > 0}
        reservations = await order_service.reallocate_lines(
            uow, heads[order_id], lines, excluded_balances=[source_id]
        )
        result.backordered += sum(lines.values()) - sum(r.quantity for r in reservations)
        places = await store.places_of(uow.conn, [r.balance_id for r in reservations])
        plans = sorted(reservations, key=lambda r: (*places[r.balance_id].walk_key(), r.line_no))
        for reservation in plans:
            sequence = await store.next_sequence(uow.conn, task["wave_id"])
            share = Share(order_id, reservation.line_no, reservation.quantity,
                          totes.get((order_id, reservation.line_no)))  # fmt: skip
            new_ids.append(
                await store.insert_task(
                    uow.conn,
                    uow.tenant_id,
                    wave_id=task["wave_id"],
                    warehouse_id=task["warehouse_id"],
                    place=places[reservation.balance_id],
                    shares=[share],
                    sequence=sequence,
                    replaces=task["id"],
                )
            )
    if new_ids:
        await wave_store.add_task_count(uow.conn, task["wave_id"], len(new_ids))
        result.new_tasks = await store.tasks(uow.conn, ids=new_ids, limit=len(new_ids))
    uow.emit(
        "wms.pick.shorted", "pick_task", task["id"],
        {"task": task["id"], "location": task["location"], "sku": task["sku"],
         "lot": api_lot(task["lot_code"]), "short": result.shortage,
         "reallocated_tasks": new_ids, "backordered": result.backordered,
         "cycle_count": result.cycle_count},
        warehouse=task["warehouse"],
    )  # fmt: skip


async def _flag_for_count(uow: UnitOfWork, task: dict[str, Any]) -> int:
    """A cycle count of the short location: the unapproved one already counting the short
    stock key is reused; otherwise a new one counts the location's keys no count holds."""
    await count_store.lock_counting(uow.conn, task["warehouse_id"])
    # By the key, not the location: a count of the location's other products would never
    # write off the units this pick did not find.
    existing = await count_store.count_holding(
        uow.conn, task["location_id"], task["product_id"], task["lot_code"]
    )
    if existing is not None:
        return existing
    count_id = await count_store.insert_count(
        uow.conn, uow.tenant_id, task["warehouse_id"], uow.actor
    )
    await count_store.insert_lines(
        uow.conn, uow.tenant_id, count_id, task["warehouse_id"],
        location_ids=[task["location_id"]], product_ids=None,
    )  # fmt: skip
    scope = {"warehouse": task["warehouse"], "locations": [task["location"]],
             "reason": "short pick", "task": task["id"]}  # fmt: skip
    uow.audit("cycle_count", count_id, "created", after=scope)
    uow.emit("wms.cycle_count.created", "cycle_count", count_id, scope,
             warehouse=task["warehouse"])  # fmt: skip
    return count_id


async def _back_to_waiting(
    uow: UnitOfWork, head: dict[str, Any], lines: list[dict[str, Any]], warehouse: str
) -> None:
    """An order whose every task ended short with nothing picked: there is nothing to pack,
    so it leaves its wave and waits for stock as a backorder, which arrivals offer to."""
    status = status_after_allocation(
        total=sum(line["quantity"] for line in lines),
        allocated=sum(line["allocated"] for line in lines),
        cancelled=sum(line["cancelled"] for line in lines),
    )
    cancelled = status == OrderStatus.CANCELLED  # its policy cancelled what was short
    await wave_store.leave_wave(uow.conn, head["id"])
    await order_store.set_status(
        uow.conn, head["id"], status, stamp="cancelled" if cancelled else None
    )
    uow.audit("order", head["number"], str(status), before={"status": head["status"]},
              after={"status": status, "reason": "nothing picked"})  # fmt: skip
    data: dict[str, Any] = {
        "number": head["number"], "status": status, "reserved": 0,
        "short": sum(line["quantity"] - line["cancelled"] for line in lines),
    }  # fmt: skip
    if cancelled:
        data["put_back_tasks"] = []
    uow.emit(order_service.ALLOCATION_EVENTS[status], "order", head["number"], data,
             warehouse=warehouse)  # fmt: skip
    head["status"] = status


async def _advance_orders(uow: UnitOfWork, orders: dict[int, str]) -> None:
    """Released orders start picking; an order with no open task left is picked, or, when
    its tasks all ended short with nothing picked, waits for stock again (backordered)."""
    # The heads as the batch left them (locked since it began), and which orders still have
    # open tasks: one round trip.
    async with uow.conn.pipeline():
        sent_heads = await order_store.send_heads_by_id(uow.conn, sorted(orders))
        still_open = await store.send_orders_with_open_tasks(uow.conn, sorted(orders))
    heads = await sent_heads.fetchall()
    picking = {row[0] for row in await still_open.fetchall()}
    for head in heads:
        order_id, warehouse = head["id"], orders[head["id"]]
        status = head["status"]
        if status == OrderStatus.RELEASED:
            status = OrderStatus.PICKING
        lines: list[dict[str, Any]] = []
        if order_id not in picking:
            status = OrderStatus.PICKED
            lines = await order_store.lines(uow.conn, order_id)
            if not any(line["picked"] for line in lines):
                await _back_to_waiting(uow, head, lines, warehouse)
                continue
        if status == head["status"]:
            continue
        await order_store.set_status(uow.conn, order_id, status)
        uow.audit("order", head["number"], str(status), before={"status": head["status"]},
                  after={"status": status})  # fmt: skip
        head["status"] = status
        if status == OrderStatus.PICKED:
            data = {"number": head["number"],
                    "lines": [{"line": line["line_no"], "sku": line["sku"],
                               "quantity": line["quantity"], "picked": line["picked"]}
                              for line in lines]}  # fmt: skip
            uow.emit("wms.order.picked", "order", head["number"], data,
                     warehouse=warehouse)  # fmt: skip


async def get(conn: AsyncConnection, task_id: int) -> dict[str, Any]:
    """One task as the API shows it (404 when unknown)."""
    found = await store.tasks(conn, ids=[task_id], limit=1)
    if not found:
        raise NotFoundError(f"no pick task {task_id}")
    return found[0]
