"""Putaway: tasks suggested by the warehouse's rules, and their confirmation.

Suggestions count units promised to open tasks, and the chosen location is locked and
re-read before it is promised, so two receipts never promise the same room. A
confirmation re-checks the destination under its lock (stored units plus units
promised to other open tasks), then moves the stock from the dock in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from wms.domain.errors import FieldError, InvalidStateError, NotFoundError
from wms.domain.inventory import (
    BalanceKey,
    Delta,
    LocationUnavailableError,
    MovementKind,
    StockStatus,
    api_lot,
)
from wms.domain.putaway import (
    RULE_ZONE_TYPES,
    Candidate,
    Item,
    Rule,
    Shelves,
    check_room,
    matching_rule,
)
from wms.ops import business_metrics
from wms.services import backorders, inventory
from wms.services.unit_of_work import UnitOfWork
from wms.store import asns as asn_store
from wms.store import inventory as stock_store
from wms.store import locations as location_store
from wms.store import putaway as store


@dataclass(frozen=True)
class NewTask:
    """Good stock of one receipt line waiting at the dock."""

    receipt_line_no: int
    product_id: int
    lot_code: str
    quantity: int
    from_location_id: int


async def create_tasks(
    uow: UnitOfWork,
    *,
    warehouse_id: int,
    asn_id: int,
    receipt_id: int,
    received_at: datetime,
    tasks: Sequence[NewTask],
) -> list[int]:
    """One open task per receipt line, each with the location the rules suggest (or none)."""
    if not tasks:
        return []
    product_ids = sorted({task.product_id for task in tasks})
    attributes = await asn_store.product_attributes(uow.conn, product_ids)
    rules = await _rules(uow.conn, warehouse_id)
    items = [_item(attributes[task.product_id], task.lot_code) for task in tasks]
    known = {c.id: c for c in await store.candidates(uow.conn, warehouse_id, product_ids)}
    verified: set[int] = set()
    while True:
        # Plan every line on what is known; the chosen locations read without a lock are
        # then locked (one statement) and reloaded, and the plan is made again, until it
        # chooses only locked, fresh locations. One round trip per pass, not per line.
        chosen = _plan(Shelves(known.values()), rules, items, tasks)
        unverified = sorted({c.id for c in chosen if c is not None} - verified)
        if not unverified:
            break
        await stock_store.lock_locations(uow.conn, unverified)
        for fresh in await store.candidates(uow.conn, warehouse_id, product_ids, only=unverified):
            known[fresh.id] = fresh
        verified.update(unverified)
    return await store.insert_tasks(
        uow.conn,
        uow.tenant_id,
        warehouse_id=warehouse_id,
        asn_id=asn_id,
        receipt_id=receipt_id,
        received_at=received_at,
        rows=[
            store.NewTaskRow(task.receipt_line_no, task.product_id, task.lot_code, task.quantity,
                             task.from_location_id, None if place is None else place.id)
            for task, place in zip(tasks, chosen, strict=True)
        ],
    )  # fmt: skip


def _plan(
    shelves: Shelves, rules: Sequence[Rule], items: Sequence[Item], tasks: Sequence[NewTask]
) -> list[Candidate | None]:
    """Each task's suggestion in turn, each promising its room before the next is chosen."""
    chosen: list[Candidate | None] = []
    for item, task in zip(items, tasks, strict=True):
        place = shelves.suggest(rules, item, task.quantity)
        if place is not None:
            shelves.put(place.promise(item, task.quantity))
        chosen.append(place)
    return chosen


async def confirm(uow: UnitOfWork, task_id: int, location_code: str | None) -> dict[str, Any]:
    """Put the task's stock away to ``location_code`` (default: the suggestion)."""
    task = await store.lock_task(uow.conn, task_id)
    if task is None:
        raise NotFoundError(f"no putaway task {task_id}")
    if task["status"] != "open":
        raise InvalidStateError(
            f"putaway task {task_id} is already {task['status']}", current_status=task["status"]
        )
    warehouse_id = task["warehouse_id"]
    if location_code is not None:
        destination = (await inventory.location(uow, warehouse_id, location_code)).id
    elif task["suggested_location_id"] is not None:
        destination = task["suggested_location_id"]
    else:
        raise FieldError("/location", f"putaway task {task_id} has no suggestion: name a location")
    await stock_store.lock_location(uow.conn, destination)
    (place,) = await store.candidates(
        uow.conn, warehouse_id, [task["product_id"]], only=[destination], except_task=task_id
    )
    if place.type not in RULE_ZONE_TYPES:
        raise FieldError("/location", f"location {place.code} is a {place.type} location; "
                         "put away to a storage or pick location")  # fmt: skip
    attributes = await asn_store.product_attributes(uow.conn, [task["product_id"]])
    item = _item(attributes[task["product_id"]], task["lot_code"])
    check_room(place, item, task["quantity"])
    rule = matching_rule(await _rules(uow.conn, warehouse_id), item)
    if rule is not None and not rule.allow_mixed_lots and place.mixes_lots(item):
        raise LocationUnavailableError(
            f"location {place.code} holds another lot of {item.sku}; the putaway rule "
            "forbids mixing lots",
            location=place.code,
        )
    quantity = task["quantity"]
    key = BalanceKey(warehouse_id, task["from_location_id"], task["product_id"],
                     task["lot_code"], StockStatus.AVAILABLE)  # fmt: skip
    await stock_store.apply_deltas(
        uow.conn,
        uow.tenant_id,
        [
            Delta(key, -quantity),
            Delta(BalanceKey(warehouse_id, destination, *_rest(key)), quantity),
        ],
        stock_store.MovementInfo(
            kind=MovementKind.PUTAWAY,
            reference_type="putaway_task",
            reference_id=str(task_id),
            actor=uow.actor,
            request_id=uow.request_id,
        ),
    )
    await store.mark_confirmed(uow.conn, task_id, location_id=destination, actor=uow.actor)
    await backorders.stock_arrived(uow, warehouse_id, [task["product_id"]])
    view = (await store.tasks(uow.conn, ids=[task_id], limit=1))[0]
    data = {"task": task_id, "asn": task["asn_id"], "warehouse": task["warehouse"],
            "sku": task["sku"], "lot": api_lot(task["lot_code"]), "quantity": quantity,
            "from_location": view["from_location"], "location": place.code,
            "suggested_location": view["suggested_location"],
            "dock_to_stock_seconds": view["dock_to_stock_seconds"]}  # fmt: skip
    uow.audit("putaway_task", task_id, "confirmed", before={"status": "open"},
              after={"status": "confirmed", **data})  # fmt: skip
    uow.emit("wms.inventory.putaway", "inventory", f"{task['warehouse']}/{task['sku']}", data,
             warehouse=task["warehouse"])  # fmt: skip
    if view["dock_to_stock_seconds"] is not None:  # set by the confirmation just above
        uow.observe(business_metrics.put_away, uow.tenant_code, task["warehouse"],
                    float(view["dock_to_stock_seconds"]))  # fmt: skip
    return view


async def get(conn: AsyncConnection, task_id: int) -> dict[str, Any]:
    """One task as the API shows it (404 when unknown)."""
    found = await store.tasks(conn, ids=[task_id], limit=1)
    if not found:
        raise NotFoundError(f"no putaway task {task_id}")
    return found[0]


def _rest(key: BalanceKey) -> tuple[int, str, StockStatus]:
    return key.product_id, key.lot_code, key.status


async def _rules(conn: AsyncConnection, warehouse_id: int) -> list[Rule]:
    return [
        Rule(
            zone=row["zone"],
            sku=row["sku"],
            category=row["category"],
            velocity_class=row["velocity_class"],
            allow_mixed_lots=row["allow_mixed_lots"],
        )
        for row in await location_store.list_putaway_rules(conn, warehouse_id)
    ]


def _item(row: dict[str, Any], lot_code: str) -> Item:
    volume, weight = row["unit_volume_l"], row["unit_weight_kg"]
    return Item(
        product_id=row["id"],
        sku=row["sku"],
        lot_code=lot_code,
        category=row["category"],
        velocity_class=row["velocity_class"],
        unit_volume_l=None if volume is None else Decimal(volume),
        unit_weight_kg=None if weight is None else Decimal(weight),
    )
