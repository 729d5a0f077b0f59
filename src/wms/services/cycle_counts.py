"""Cycle counts: blind counting of locations or products, recounts, approval.

A line's expected quantity is read when it is counted (stock may move while a count
is open); a first count off by more than the tenant's recount tolerance asks for a
recount; approval turns each remaining variance into a ``cycle_count`` adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from psycopg import AsyncConnection

from wms.domain.errors import ConflictError, FieldError, InvalidStateError, NotFoundError
from wms.domain.inventory import (
    BalanceKey,
    Delta,
    InsufficientStockError,
    MovementKind,
    accuracy_pct,
    api_lot,
    count_variance_by_status,
    stored_lot,
    variance_needs_recount,
)
from wms.ops import business_metrics
from wms.services import backorders, inventory
from wms.services.unit_of_work import UnitOfWork
from wms.store import cycle_counts as store
from wms.store import inventory as stock_store
from wms.store import settings as settings_store


@dataclass(frozen=True)
class CountResult:
    """One counted quantity as a counter reports it."""

    location: str
    sku: str
    lot: str | None
    counted: int


async def create_count(
    uow: UnitOfWork, *, warehouse: str, locations: list[str] | None, skus: list[str] | None
) -> dict[str, Any]:
    """Open a count of some locations, or of some products wherever they are."""
    if (locations is None) == (skus is None):
        raise FieldError("/locations", "give either locations or skus, not both")
    warehouse_id = await inventory.warehouse_id(uow, warehouse)
    location_ids = None
    product_ids = None
    if locations is not None:
        location_ids = [
            (await inventory.location(uow, warehouse_id, code, f"/locations/{i}")).id
            for i, code in enumerate(locations)
        ]
    if skus is not None:
        product_ids = [
            (await inventory.product(uow, sku, f"/skus/{i}")).id for i, sku in enumerate(skus)
        ]
    await store.lock_counting(uow.conn, warehouse_id)
    taken = await store.first_counted_elsewhere(
        uow.conn, warehouse_id, location_ids=location_ids, product_ids=product_ids
    )
    if taken is not None:
        _refuse_counted_elsewhere(taken["count"], taken["location"], taken["sku"],
                                  taken["lot_code"])  # fmt: skip
    count_id = await store.insert_count(uow.conn, uow.tenant_id, warehouse_id, uow.actor)
    await store.insert_lines(
        uow.conn,
        uow.tenant_id,
        count_id,
        warehouse_id,
        location_ids=location_ids,
        product_ids=product_ids,
    )
    scope = {"warehouse": warehouse, "locations": locations, "skus": skus}
    uow.audit("cycle_count", count_id, "created", after=scope)
    uow.emit("wms.cycle_count.created", "cycle_count", count_id, scope, warehouse=warehouse)
    return await view(uow.conn, count_id)


def _refuse_counted_elsewhere(count_id: int, location: str, sku: str, lot_code: str) -> NoReturn:
    lot = f" lot {lot_code}" if lot_code else ""
    raise ConflictError(
        f"{location} {sku}{lot} is already in cycle count {count_id}, not yet approved: "
        "approve that count first (two counts of the same stock would each apply its "
        "difference)",
        cycle_count=count_id, location=location, sku=sku, lot=api_lot(lot_code),
    )  # fmt: skip


async def record_results(
    uow: UnitOfWork, count_id: int, results: list[CountResult]
) -> dict[str, Any]:
    """Record counted quantities; lines off by more than the tolerance ask for a recount."""
    count = await _open_count(uow, count_id, for_update=True)
    tolerance = float((await settings_store.get(uow.conn, uow.tenant_id))["recount_tolerance_pct"])
    by_place = {
        (line["location_id"], line["product_id"], line["lot_code"]): line
        for line in await store.lines(uow.conn, count_id)
    }
    recorded: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for i, result in enumerate(results):
        place = await inventory.location(
            uow, count["warehouse_id"], result.location, f"/results/{i}/location"
        )
        item = await inventory.product(uow, result.sku, f"/results/{i}/sku")
        lot_code = stored_lot(
            result.lot, lot_tracked=item.lot_tracked, sku=item.sku, field=f"/results/{i}/lot"
        )
        line = by_place.get((place.id, item.id, lot_code))
        if line is None:
            await store.lock_counting(uow.conn, count["warehouse_id"])
            other = await store.count_holding(uow.conn, place.id, item.id, lot_code)
            if other is not None:
                _refuse_counted_elsewhere(other, place.code, item.sku, lot_code)
            line_no = await store.add_line(
                uow.conn,
                uow.tenant_id,
                count_id,
                location_id=place.id,
                product_id=item.id,
                lot_code=lot_code,
            )
            line = {"line_no": line_no, "status": "pending"}
            by_place[(place.id, item.id, lot_code)] = line
        if line["status"] == "counted":
            raise InvalidStateError(
                f"line {line['line_no']} ({result.location} {result.sku}) is already counted",
                current_status="counted",
            )
        expected = await store.on_hand_at(uow.conn, place.id, item.id, lot_code)
        first = line["status"] == "pending"
        recount = first and variance_needs_recount(expected, result.counted, tolerance)
        status = "recount" if recount else "counted"
        await store.record(
            uow.conn,
            count_id,
            line["line_no"],
            status=status,
            expected=expected,
            counted=result.counted,
            counted_by=uow.actor,
        )
        where = {"line": line["line_no"], "location": place.code, "sku": item.sku,
                 "lot": api_lot(lot_code)}  # fmt: skip
        if not first:  # a recount overwrites the line: its audit row keeps what it replaced
            replaced.append({**where, "counted": line["counted"], "counted_by": line["counted_by"]})
        # No expected quantity: every role reads the audit, and operators count blind.
        recorded.append({**where, "counted": result.counted, "status": status})
        line.update(status=status, counted=result.counted, counted_by=uow.actor)
    if all(line["status"] == "counted" for line in by_place.values()):
        await store.set_status(uow.conn, count_id, "counted")
    uow.audit("cycle_count", count_id, "results_recorded",
              before={"results": replaced} if replaced else None,
              after={"results": recorded})  # fmt: skip
    uow.emit(
        "wms.cycle_count.counted",
        "cycle_count",
        count_id,
        {"results": len(results)},
        warehouse=count["warehouse"],
    )
    return await view(uow.conn, count_id)


async def approve(uow: UnitOfWork, count_id: int) -> dict[str, Any]:
    """Turn each variance into a ``cycle_count`` adjustment and record the accuracy."""
    count = await _get(uow, count_id, for_update=True)
    if count["status"] != "counted":
        raise InvalidStateError(
            f"cycle count {count_id} is {count['status']}; only a counted count is approved",
            current_status=count["status"],
        )
    lines = await store.lines(uow.conn, count_id)
    varied = [line for line in lines if line["counted"] != line["expected"]]
    # Every unit at a place was counted, whatever its status: a shortfall comes off the
    # statuses in SHORTFALL_ORDER, as far as their units are free (balances locked here).
    free = await stock_store.lock_free_by_status(
        uow.conn,
        count["warehouse_id"],
        [(line["location_id"], line["product_id"], line["lot_code"]) for line in varied],
    )
    deltas = [
        Delta(
            BalanceKey(
                count["warehouse_id"], line["location_id"], line["product_id"],
                line["lot_code"], status,
            ),
            change,
        )
        for line in varied
        for status, change in count_variance_by_status(
            line["counted"] - line["expected"],
            free.get((line["location_id"], line["product_id"], line["lot_code"]), {}),
        )
    ]  # fmt: skip
    if deltas:
        try:
            await stock_store.apply_deltas(
                uow.conn,
                uow.tenant_id,
                deltas,
                stock_store.MovementInfo(
                    kind=MovementKind.CYCLE_COUNT,
                    reason="cycle_count",
                    reference_type="cycle_count",
                    reference_id=str(count_id),
                    actor=uow.actor,
                    request_id=uow.request_id,
                ),
            )
        except InsufficientStockError as short:
            # Approval never takes allocated units (nor units owed to putaway).
            raise InsufficientStockError(
                f"{short.detail}: the count found less than is allocated there. Cancel or "
                "re-allocate the orders holding it, then approve; or cancel this count "
                f"(POST /cycle-counts/{count_id}/cancel)",
                available=int(str(short.extensions["available"])),
                requested=int(str(short.extensions["requested"])),
            ) from None
        _publish_adjustments(uow, count, count_id, varied, deltas)
        found = {d.key.product_id for d in deltas if d.quantity > 0 and d.key.status == "available"}
        if found:  # a surplus is stock that waiting orders may have
            await backorders.stock_arrived(uow, count["warehouse_id"], found)
    accuracy = accuracy_pct([(line["expected"], line["counted"]) for line in lines])
    await store.set_status(
        uow.conn, count_id, "approved", approved_by=uow.actor, accuracy_pct=accuracy
    )
    data = {"adjusted_lines": len(varied), "accuracy_pct": accuracy}
    uow.audit("cycle_count", count_id, "approved", after=data)
    uow.emit("wms.cycle_count.approved", "cycle_count", count_id, data,
             warehouse=count["warehouse"])  # fmt: skip
    # Lines count at approval: each once, with its final (recounted) quantity.
    uow.observe(business_metrics.count_lines_approved, uow.tenant_code, count["warehouse"],
                matched=len(lines) - len(varied), varied=len(varied))  # fmt: skip
    return await view(uow.conn, count_id)


async def cancel(uow: UnitOfWork, count_id: int, reason: str | None) -> dict[str, Any]:
    """Cancel a count not yet approved: nothing is adjusted, its keys may be counted again."""
    count = await _get(uow, count_id, for_update=True)
    if count["status"] not in ("open", "counted"):
        raise InvalidStateError(
            f"cycle count {count_id} is {count['status']}", current_status=count["status"]
        )
    await store.mark_cancelled(uow.conn, count_id, actor=uow.actor, reason=reason)
    data = {"count": count_id, "status": "cancelled", "reason": reason}
    uow.audit("cycle_count", count_id, "cancelled", before={"status": count["status"]},
              after=data)  # fmt: skip
    uow.emit("wms.cycle_count.cancelled", "cycle_count", count_id, data,
             warehouse=count["warehouse"])  # fmt: skip
    return await view(uow.conn, count_id)


def _publish_adjustments(
    uow: UnitOfWork,
    count: dict[str, Any],
    count_id: int,
    varied: list[dict[str, Any]],
    deltas: list[Delta],
) -> None:
    """One ``wms.inventory.adjusted`` per change, as an adjustment publishes it: consumers
    mirroring stock from events would drift after every approved count."""
    places = {(line["location_id"], line["product_id"], line["lot_code"]): line for line in varied}
    for delta in deltas:
        key = delta.key
        line = places[(key.location_id, key.product_id, key.lot_code)]
        data = {"warehouse": count["warehouse"], "location": line["location"],
                "sku": line["sku"], "lot": line["lot"], "status": key.status,
                "quantity": delta.quantity, "reason": "cycle_count",
                "cycle_count": count_id}  # fmt: skip
        uow.emit("wms.inventory.adjusted", "inventory", f"{count['warehouse']}/{line['sku']}",
                 data, warehouse=count["warehouse"])  # fmt: skip


async def view(conn: AsyncConnection, count_id: int) -> dict[str, Any]:
    """The count with its lines, as the API shows it (404 when unknown)."""
    count = await store.get_count(conn, count_id)
    if count is None:
        raise NotFoundError(f"no cycle count {count_id}")
    count["lines"] = await store.lines(conn, count_id)
    return count


async def _get(uow: UnitOfWork, count_id: int, *, for_update: bool = False) -> dict[str, Any]:
    count = await store.get_count(uow.conn, count_id, for_update=for_update)
    if count is None:
        raise NotFoundError(f"no cycle count {count_id}")
    return count


async def _open_count(uow: UnitOfWork, count_id: int, *, for_update: bool) -> dict[str, Any]:
    count = await _get(uow, count_id, for_update=for_update)
    if count["status"] != "open":
        raise InvalidStateError(
            f"cycle count {count_id} is {count['status']}", current_status=count["status"]
        )
    return count
