"""Replenishment of pick faces (min/max), and put-back of cancelled picks.

A task is created when a pick face's available stock (on hand − allocated) drops below
its minimum — after an allocation reserved there, or after a pick — and storage holds
free stock of the product: it brings the face back up to its maximum (in on-hand units)
from the reserve with the earliest expiry, then the oldest receipt. Reserve stock is not
reserved by the task; a confirmation finding it gone answers 409 ``insufficient-stock``.
The same task table carries put-back tasks (staging → where the stock was picked) for
cancelled orders whose stock was already picked.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from wms.domain.errors import FieldError, InvalidStateError, NotFoundError
from wms.domain.inventory import BalanceKey, MovementKind, StockStatus, api_lot, move_deltas
from wms.services import backorders, inventory, locations
from wms.services.unit_of_work import UnitOfWork
from wms.store import inventory as stock_store
from wms.store import picking as pick_store
from wms.store import replenishment as store

REPLENISHMENT = "replenishment"
PUT_BACK = "put_back"


async def set_level(
    uow: UnitOfWork, *, warehouse: str, location_code: str, sku: str, minimum: int, maximum: int
) -> dict[str, Any]:
    """Set the min/max of a product at a pick face; a task follows if it is already low."""
    if minimum > maximum:
        raise FieldError("/min", "must not exceed max")
    # The warehouse is in the path: unknown, it is a 404 (not a 422 on a body field).
    warehouse_id = await locations.warehouse_id(uow.conn, warehouse)
    place = await store_location(uow, warehouse_id, location_code)
    if place.type != "pick":
        raise FieldError("/location", f"location {location_code} is a {place.type} location, "
                         "not a pick face")  # fmt: skip
    item = await inventory.product(uow, sku)
    await store.upsert_level(
        uow.conn, uow.tenant_id, warehouse_id=warehouse_id, location_id=place.id,
        product_id=item.id, minimum=minimum, maximum=maximum,
    )  # fmt: skip
    level = {"warehouse": warehouse, "location": location_code, "sku": sku,
             "min": minimum, "max": maximum}  # fmt: skip
    uow.audit("replenishment_level", f"{warehouse}/{location_code}/{sku}", "set", after=level)
    await check_levels(uow, warehouse_id, [item.id])
    return level


async def store_location(
    uow: UnitOfWork, warehouse_id: int, code: str
) -> stock_store.StockLocation:
    """A location of the path (404 when unknown)."""
    found = await stock_store.location_by_code(uow.conn, warehouse_id, code)
    if found is None:
        raise NotFoundError(f"no location {code} in this warehouse")
    return found


async def check_levels(uow: UnitOfWork, warehouse_id: int, product_ids: list[int]) -> list[int]:
    """Create a task for each pick face of these products below its minimum; their ids."""
    created = []
    for face in await store.low_faces(uow.conn, warehouse_id, product_ids):
        wanted = int(face["max_quantity"]) - int(face["on_hand"])
        reserve = await store.best_reserve(
            uow.conn, warehouse_id, face["product_id"], face_id=face["location_id"]
        )
        if wanted <= 0 or reserve is None:
            continue
        task_id = await store.insert_task(
            uow.conn, uow.tenant_id, warehouse_id=warehouse_id, kind=REPLENISHMENT,
            product_id=face["product_id"], lot_code=reserve["lot_code"],
            quantity=min(wanted, int(reserve["free"])), from_location_id=reserve["location_id"],
            to_location_id=face["location_id"], reason="below minimum",
        )  # fmt: skip
        if task_id is not None:
            created.append(task_id)
            await _record_created(uow, task_id)
    return created


async def put_back(uow: UnitOfWork, head: dict[str, Any]) -> list[int]:
    """Tasks bringing a cancelled order's picked stock back from staging; their ids."""
    picked = await pick_store.picked_by_place(uow.conn, head["id"])
    if not picked:
        return []
    staging = await stock_store.location_by_code(
        uow.conn, head["warehouse_id"], head["staging_location"]
    )
    assert staging is not None
    ids = []
    for row in picked:
        task_id = await store.insert_task(
            uow.conn, uow.tenant_id, warehouse_id=head["warehouse_id"], kind=PUT_BACK,
            product_id=row["product_id"], lot_code=row["lot_code"], quantity=int(row["picked"]),
            from_location_id=staging.id, to_location_id=row["location_id"],
            reason="order cancelled", order_id=head["id"],
        )  # fmt: skip
        assert task_id is not None
        ids.append(task_id)
        # The order's cancellation event lists these tasks: each is audited, not announced.
        await _record_created(uow, task_id, announce=False)
    return ids


async def confirm(uow: UnitOfWork, task_id: int, quantity: int | None) -> dict[str, Any]:
    """Move the task's stock (or ``quantity`` of it) from its source to its destination."""
    task = await _open_task(uow, task_id)
    units = task["quantity"] if quantity is None else quantity
    if units > task["quantity"]:
        raise FieldError("/quantity", f"the task moves at most {task['quantity']} unit(s)")
    warehouse_id = task["warehouse_id"]
    destination = await _location(uow.conn, warehouse_id, task["to_location_id"])
    await inventory.ensure_room(uow, destination, units)
    rest = (task["product_id"], task["lot_code"], StockStatus.AVAILABLE)
    kind = (
        MovementKind.REPLENISHMENT if task["kind"] == REPLENISHMENT else MovementKind.CANCELLATION
    )
    await stock_store.apply_deltas(
        uow.conn,
        uow.tenant_id,
        move_deltas(
            BalanceKey(warehouse_id, task["from_location_id"], *rest),
            BalanceKey(warehouse_id, task["to_location_id"], *rest),
            units,
        ),
        stock_store.MovementInfo(
            kind=kind, reference_type="replenishment_task", reference_id=str(task_id),
            actor=uow.actor, request_id=uow.request_id,
        ),
    )  # fmt: skip
    await store.mark_confirmed(uow.conn, task_id, quantity=units, actor=uow.actor)
    rest_task = None
    if task["kind"] == PUT_BACK:
        if units < task["quantity"]:
            rest_task = await _put_back_rest(uow, task, task["quantity"] - units)
        await backorders.stock_arrived(uow, warehouse_id, [task["product_id"]])
    (view,) = await store.tasks(uow.conn, ids=[task_id], limit=1)
    after = _data(view) if rest_task is None else {**_data(view), "rest_task": rest_task}
    uow.audit("replenishment_task", task_id, "confirmed", before={"status": "open"},
              after=after)  # fmt: skip
    uow.emit("wms.replenishment.confirmed", "replenishment_task", task_id, _data(view),
             warehouse=task["warehouse"])  # fmt: skip
    return view


async def cancel(uow: UnitOfWork, task_id: int, reason: str | None) -> dict[str, Any]:
    """Cancel an open replenishment task; the face is checked again at once, so a task
    from other reserve follows if it is still low (the task's source may be gone)."""
    task = await _open_task(uow, task_id)
    if task["kind"] == PUT_BACK:
        # Staged stock is never allocated: without its task it would stay there unsold.
        raise InvalidStateError(
            f"task {task_id} brings a cancelled order's picked stock back from staging and "
            "cannot be cancelled; confirm what was moved (the rest gets a task of its own)",
            current_status=task["status"],
        )
    await store.mark_cancelled(uow.conn, task_id, actor=uow.actor, reason=reason)
    (view,) = await store.tasks(uow.conn, ids=[task_id], limit=1)
    data = {**_data(view), "reason": reason}
    uow.audit("replenishment_task", task_id, "cancelled", before={"status": "open"},
              after=data)  # fmt: skip
    uow.emit("wms.replenishment.cancelled", "replenishment_task", task_id, data,
             warehouse=task["warehouse"])  # fmt: skip
    await check_levels(uow, task["warehouse_id"], [task["product_id"]])
    return view


async def _open_task(uow: UnitOfWork, task_id: int) -> dict[str, Any]:
    """The task, locked; 404 when unknown, 409 when no longer open."""
    task = await store.lock_task(uow.conn, task_id)
    if task is None:
        raise NotFoundError(f"no replenishment task {task_id}")
    if task["status"] != "open":
        raise InvalidStateError(
            f"replenishment task {task_id} is {task['status']}", current_status=task["status"]
        )
    return task


async def _put_back_rest(uow: UnitOfWork, task: dict[str, Any], rest: int) -> int:
    """A put-back task for what a partial confirmation left at staging; its id.

    Staged stock is never allocated: without a task it would stay there unsold.
    """
    rest_id = await store.insert_task(
        uow.conn, uow.tenant_id, warehouse_id=task["warehouse_id"], kind=PUT_BACK,
        product_id=task["product_id"], lot_code=task["lot_code"], quantity=rest,
        from_location_id=task["from_location_id"], to_location_id=task["to_location_id"],
        reason=f"rest of put-back task {task['id']}", order_id=task["order_id"],
    )  # fmt: skip
    assert rest_id is not None  # only replenishments are one open task per face
    await _record_created(uow, rest_id)
    return rest_id


async def _record_created(uow: UnitOfWork, task_id: int, *, announce: bool = True) -> None:
    """Audit a new task as ``created`` (with why: its reason) and, when ``announce``,
    emit ``wms.replenishment.created``."""
    (task,) = await store.tasks(uow.conn, ids=[task_id], limit=1)
    uow.audit("replenishment_task", task_id, "created",
              after={**_data(task), "reason": task["reason"]})  # fmt: skip
    if announce:
        uow.emit("wms.replenishment.created", "replenishment_task", task_id, _data(task),
                 warehouse=task["warehouse"])  # fmt: skip


async def get(conn: AsyncConnection, task_id: int) -> dict[str, Any]:
    """One task (404 when unknown)."""
    found = await store.tasks(conn, ids=[task_id], limit=1)
    if not found:
        raise NotFoundError(f"no replenishment task {task_id}")
    return found[0]


def _data(task: dict[str, Any]) -> dict[str, Any]:
    return {"task": task["id"], "kind": task["kind"], "sku": task["sku"],
            "lot": api_lot(task["lot"] or ""), "quantity": task["confirmed_quantity"]
            or task["quantity"], "from_location": task["from_location"],
            "to_location": task["to_location"], "order": task["order_number"]}  # fmt: skip


async def _location(
    conn: AsyncConnection, warehouse_id: int, location_id: int
) -> stock_store.StockLocation:
    cursor = await conn.execute("SELECT code FROM locations WHERE id = %s", (location_id,))
    row = await cursor.fetchone()
    assert row is not None
    found = await stock_store.location_by_code(conn, warehouse_id, str(row[0]))
    assert found is not None
    return found
