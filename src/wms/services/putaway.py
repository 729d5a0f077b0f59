"""Putaway: tasks suggested by the warehouse's rules, their confirmation and cancellation.

Suggestions count units promised to open tasks, and the chosen location is locked and
re-read before it is promised, so two receipts never promise the same room. A
confirmation re-checks the destination under its lock (stored units plus units
promised to other open tasks), then moves the stock from the dock in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from wms.domain.errors import (
    FieldError,
    NotFoundError,
)
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
    Load,
    Rule,
    Shelves,
    check_room,
    matching_rule,
)
from wms.domain.tasks import open_task
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


@dataclass(frozen=True)
class Confirm:
    """One confirmation: the task, and the location named (None: the suggestion)."""

    task_id: int
    location: str | None = None


async def confirm(uow: UnitOfWork, task_id: int, location_code: str | None) -> dict[str, Any]:
    """Put the task's stock away to ``location_code`` (default: the suggestion)."""
    (view,) = await confirm_many(uow, [Confirm(task_id, location_code)], batch=False)
    return view


async def confirm_many(
    uow: UnitOfWork, confirmations: Sequence[Confirm], *, batch: bool = True
) -> list[dict[str, Any]]:
    """Confirm several tasks in one transaction: any error and none is confirmed.

    Tasks, then every destination, then the balances moved are locked, each set in one
    statement in one global order (ids, keys), so two batches never deadlock. Each
    destination is checked as if the confirmations ran one after another: units put
    there by earlier confirmations of the batch count as stored, and the suggestions of
    tasks not yet confirmed still count as promised.
    """
    ids = [c.task_id for c in confirmations]
    if len(set(ids)) != len(ids):
        raise FieldError("/confirmations", "a task is confirmed twice")
    locked = await store.lock_tasks(uow.conn, ids)
    destinations = await _destinations(uow, confirmations, locked, batch=batch)
    chosen = [locked[task_id] for task_id in ids]
    await stock_store.lock_locations(uow.conn, sorted(set(destinations)))
    keys = [_key(task) for task in chosen]
    targets = [
        BalanceKey(k.warehouse_id, d, *_rest(k)) for k, d in zip(keys, destinations, strict=True)
    ]
    await stock_store.lock_balances(uow.conn, uow.tenant_id, [*keys, *targets])
    product_ids = sorted({task["product_id"] for task in chosen})
    attributes = await asn_store.product_attributes(uow.conn, product_ids)
    items = [_item(attributes[t["product_id"]], t["lot_code"]) for t in chosen]
    base, rules = await _destination_loads(uow, chosen, destinations, product_ids)
    # What the batch adds to each destination: still promised (tasks not yet confirmed,
    # at their suggestion), then stored (tasks confirmed there earlier in the batch).
    pending: dict[int, _Extra] = {}
    for task, item in zip(chosen, items, strict=True):
        if task["suggested_location_id"] in base:
            pending.setdefault(task["suggested_location_id"], _Extra()).add(item, task["quantity"])
    stored: dict[int, _Extra] = {}
    moves: list[tuple[Delta, stock_store.MovementInfo]] = []
    for index, (task, item, place_id) in enumerate(zip(chosen, items, destinations, strict=True)):
        quantity = task["quantity"]
        if task["suggested_location_id"] in pending:
            pending[task["suggested_location_id"]].add(item, -quantity)
        place = _current(base[place_id], pending.get(place_id), stored.get(place_id))
        _check_place(place, rules[task["warehouse_id"]], item, quantity,
                     at=f"/confirmations/{index}" if batch else "")  # fmt: skip
        stored.setdefault(place_id, _Extra()).add(item, quantity)
        info = stock_store.MovementInfo(
            kind=MovementKind.PUTAWAY,
            reference_type="putaway_task",
            reference_id=str(task["id"]),
            actor=uow.actor,
            request_id=uow.request_id,
        )
        moves += [(Delta(keys[index], -quantity), info), (Delta(targets[index], quantity), info)]
    # Confirmed first: a take leaves the units of open tasks on their dock, and these are
    # the units this move takes. Then every task's move off the dock and onto its shelf,
    # a few statements for the batch.
    await store.mark_many_confirmed(uow.conn, ids, destinations, actor=uow.actor)
    await stock_store.apply_moves(uow.conn, uow.tenant_id, moves)
    arrived: dict[int, set[int]] = {}
    for task in chosen:
        arrived.setdefault(task["warehouse_id"], set()).add(task["product_id"])
    for warehouse_id, products in sorted(arrived.items()):
        await backorders.stock_arrived(uow, warehouse_id, sorted(products))
    views = {v["id"]: v for v in await store.tasks(uow.conn, ids=ids, limit=len(ids))}
    for task, place_id in zip(chosen, destinations, strict=True):
        _record(uow, task, views[task["id"]], base[place_id].code)
    return [views[task_id] for task_id in ids]


async def _destinations(
    uow: UnitOfWork,
    confirmations: Sequence[Confirm],
    locked: dict[int, dict[str, Any]],
    *,
    batch: bool,
) -> list[int]:
    """Each confirmation's destination id, once its task is known and open."""
    destinations: list[int] = []
    named = await stock_store.locations_by_code(
        uow.conn,
        [
            (locked[c.task_id]["warehouse_id"], c.location)
            for c in confirmations
            if c.location is not None and c.task_id in locked
        ],
    )
    for index, wanted in enumerate(confirmations):
        at = f"/confirmations/{index}" if batch else ""
        task = open_task(locked, wanted.task_id, what="putaway task", at=at, batch=batch)
        if wanted.location is not None:
            found = named.get((task["warehouse_id"], wanted.location)) or await inventory.location(
                uow, task["warehouse_id"], wanted.location, field=f"{at}/location"
            )
            destinations.append(found.id)
        elif task["suggested_location_id"] is not None:
            destinations.append(task["suggested_location_id"])
        else:
            raise FieldError(
                f"{at}/location",
                f"putaway task {wanted.task_id} has no suggestion: name a location",
            )
    return destinations


async def _destination_loads(
    uow: UnitOfWork, chosen: Sequence[dict[str, Any]], destinations: Sequence[int],
    product_ids: Sequence[int],
) -> tuple[dict[int, Candidate], dict[int, list[Rule]]]:  # fmt: skip
    """Destinations (locked) as stored, promised to tasks outside the batch; rules."""
    by_warehouse: dict[int, set[int]] = {}
    for task, place_id in zip(chosen, destinations, strict=True):
        by_warehouse.setdefault(task["warehouse_id"], set()).add(place_id)
    ids = [task["id"] for task in chosen]
    base: dict[int, Candidate] = {}
    rules: dict[int, list[Rule]] = {}
    for warehouse_id, places in sorted(by_warehouse.items()):
        rules[warehouse_id] = await _rules(uow.conn, warehouse_id)
        for place in await store.candidates(
            uow.conn, warehouse_id, product_ids, only=sorted(places), except_tasks=ids
        ):
            base[place.id] = place
    return base, rules


def _check_place(place: Candidate, rules: Sequence[Rule], item: Item, quantity: int, *,
                 at: str) -> None:  # fmt: skip
    """Refuse a destination of the wrong type, without room, or mixing lots against a rule."""
    if place.type not in RULE_ZONE_TYPES:
        raise FieldError(f"{at}/location", f"location {place.code} is a {place.type} location; "
                         "put away to a storage or pick location")  # fmt: skip
    check_room(place, item, quantity)
    rule = matching_rule(rules, item)
    if rule is not None and not rule.allow_mixed_lots and place.mixes_lots(item):
        raise LocationUnavailableError(
            f"location {place.code} holds another lot of {item.sku}; the putaway rule "
            "forbids mixing lots",
            location=place.code,
        )


def _record(uow: UnitOfWork, task: dict[str, Any], view: dict[str, Any], location: str) -> None:
    """Audit, event and metric of one confirmed task."""
    data = {"task": task["id"], "asn": task["asn_id"], "warehouse": task["warehouse"],
            "sku": task["sku"], "lot": api_lot(task["lot_code"]), "quantity": task["quantity"],
            "from_location": view["from_location"], "location": location,
            "suggested_location": view["suggested_location"],
            "dock_to_stock_seconds": view["dock_to_stock_seconds"]}  # fmt: skip
    uow.audit("putaway_task", task["id"], "confirmed", before={"status": "open"},
              after={"status": "confirmed", **data})  # fmt: skip
    uow.emit("wms.inventory.putaway", "inventory", f"{task['warehouse']}/{task['sku']}", data,
             warehouse=task["warehouse"])  # fmt: skip
    if view["dock_to_stock_seconds"] is not None:  # set by the confirmation just above
        uow.observe(business_metrics.put_away, uow.tenant_code, task["warehouse"],
                    float(view["dock_to_stock_seconds"]))  # fmt: skip


@dataclass
class _Extra:
    """Load and (product, lot) pairs a batch adds to one location."""

    load: Load = field(default_factory=Load)
    pairs: Counter[tuple[int, str]] = field(default_factory=Counter)

    def add(self, item: Item, quantity: int) -> None:
        self.load = self.load + Load.of(item, quantity)
        self.pairs[(item.product_id, item.lot_code)] += 1 if quantity > 0 else -1


def _current(place: Candidate, promised: _Extra | None, stored: _Extra | None) -> Candidate:
    """The location as the next confirmation of a batch finds it."""
    holds = set(place.holds)
    for extra in (promised, stored):
        if extra is not None:
            holds.update(pair for pair, count in extra.pairs.items() if count > 0)
    return dataclasses.replace(
        place,
        stored=place.stored + (stored.load if stored else Load()),
        promised=place.promised + (promised.load if promised else Load()),
        holds=frozenset(holds),
    )


async def cancel(
    uow: UnitOfWork, task_id: int, quantity: int | None, reason: str | None
) -> dict[str, Any]:
    """Cancel an open task, or only ``quantity`` of its units (the rest stays open).

    The units stay at the dock, free again: a count found them short, or they go
    elsewhere. The room the task promised its suggested location is given back with them.
    """
    locked = await store.lock_tasks(uow.conn, [task_id])
    task = open_task(locked, task_id, what="putaway task", at="", batch=False)
    if quantity is not None and quantity > task["quantity"]:
        raise FieldError("/quantity", f"putaway task {task_id} has {task['quantity']} unit(s) open")
    cancelled = task["quantity"] if quantity is None else quantity
    ended = cancelled == task["quantity"]
    await store.reduce(uow.conn, task_id, cancelled, cancel=ended, actor=uow.actor)
    view = await get(uow.conn, task_id)
    remaining = 0 if ended else task["quantity"] - cancelled
    data = {"task": task_id, "asn": task["asn_id"], "warehouse": task["warehouse"],
            "sku": task["sku"], "lot": api_lot(task["lot_code"]),
            "from_location": view["from_location"],
            "suggested_location": view["suggested_location"], "cancelled": cancelled,
            "remaining": remaining, "reason": reason}  # fmt: skip
    uow.audit("putaway_task", task_id, "cancelled" if ended else "reduced",
              before={"status": "open", "quantity": task["quantity"]},
              after={"status": view["status"], **data})  # fmt: skip
    uow.emit("wms.putaway_task.cancelled", "putaway_task", str(task_id), data,
             warehouse=task["warehouse"])  # fmt: skip
    return view


def _key(task: dict[str, Any]) -> BalanceKey:
    return BalanceKey(task["warehouse_id"], task["from_location_id"], task["product_id"],
                      task["lot_code"], StockStatus.AVAILABLE)  # fmt: skip


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
