"""ASNs: creation (idempotent by reference), receiving by scan, and closing with a report.

A receipt locks its ASN (so the over-receipt check sees every earlier receipt) and the
warehouse (so putaway suggestions of concurrent receipts never promise the same room),
validates every scan before changing anything, then writes the receipt, the putaway
tasks of its good lines and the dock stock with ledger rows of kind ``receipt``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from wms.domain.errors import ConflictError, FieldError, NotFoundError, UnknownReferenceError
from wms.domain.inbound import (
    AsnContent,
    AsnLine,
    AsnStatus,
    Condition,
    NotOnAsnError,
    Received,
    check_closable,
    check_not_expired,
    check_over_receipt,
    check_receivable,
    discrepancies,
    match_line,
    stock_status,
    tolerance_pct,
)
from wms.domain.inventory import BalanceKey, Delta, MovementKind, api_lot, stored_lot
from wms.services import inventory, putaway
from wms.services.inventory import Quantity
from wms.services.unit_of_work import UnitOfWork
from wms.store import asns as store
from wms.store import inventory as stock_store
from wms.store import locations as location_store
from wms.store import putaway as task_store
from wms.store import settings as settings_store


@dataclass(frozen=True)
class ExpectedLine:
    """A line of a new ASN as the request names it."""

    sku: str
    quantity: int
    uom: str | None = None
    lot: str | None = None
    expiry: date | None = None


@dataclass(frozen=True)
class Scan:
    """One receiving scan: a product by SKU or barcode, a quantity, lot, condition, dock."""

    location: str
    quantity: int
    sku: str | None = None
    barcode: str | None = None
    uom: str | None = None
    lot: str | None = None
    expiry: date | None = None
    condition: Condition = Condition.GOOD


async def create(
    uow: UnitOfWork,
    *,
    reference: str,
    warehouse: str,
    supplier: str,
    expected_at: datetime | None,
    lines: Sequence[ExpectedLine],
) -> tuple[dict[str, Any], bool]:
    """Create the ASN; (its view, True). The same reference with the same content again
    returns (the existing view, False) without change; other content is a 409."""
    warehouse_id = await inventory.warehouse_id(uow, warehouse)
    expected = await _expected_lines(uow, lines)
    asn_id = await store.insert_asn(
        uow.conn, uow.tenant_id, reference=reference, warehouse_id=warehouse_id,
        supplier=supplier, expected_at=expected_at, created_by=uow.actor,
    )  # fmt: skip
    if asn_id is None:
        existing_id = await store.id_by_reference(uow.conn, reference)
        assert existing_id is not None
        existing = await view(uow.conn, existing_id)
        stored = AsnContent.of(existing["warehouse"], existing["supplier"],
                               existing["expected_at"], _lines_of(existing))  # fmt: skip
        if stored != AsnContent.of(warehouse, supplier, expected_at, expected):
            raise ConflictError(
                f"ASN {reference} exists with other content", id=existing_id, reference=reference
            )
        return existing, False
    await store.insert_lines(uow.conn, uow.tenant_id, asn_id, expected)
    created = await view(uow.conn, asn_id)
    data = _event_data(created)
    uow.audit("asn", asn_id, "created", after=data)
    uow.emit("wms.asn.created", "asn", asn_id, data, warehouse=warehouse)
    return created, True


async def _expected_lines(uow: UnitOfWork, lines: Sequence[ExpectedLine]) -> list[AsnLine]:
    result: list[AsnLine] = []
    seen: dict[tuple[int, str], int] = {}
    known = await stock_store.products_by_sku(uow.conn, [line.sku for line in lines])
    for i, line in enumerate(lines):
        at = f"/lines/{i}"
        item = known.get(line.sku) or await inventory.product(uow, line.sku, f"{at}/sku")
        units = inventory.base_units(item, Quantity(line.quantity, line.uom), f"{at}/uom")
        if line.lot is not None and not item.lot_tracked:
            raise FieldError(
                f"{at}/lot", f"product {item.sku} is not lot-tracked: lot must be null"
            )
        if line.expiry is not None and (line.lot is None or not item.expiry_tracked):
            raise FieldError(f"{at}/expiry", "an expiry needs the lot of an expiry-tracked product")
        lot_code = line.lot or ""
        earlier = seen.setdefault((item.id, lot_code), i)
        if earlier != i:
            raise FieldError(at, f"repeats the product and lot of /lines/{earlier}")
        result.append(AsnLine(i + 1, item.id, lot_code, line.expiry, units))
    return result


def _lines_of(asn: dict[str, Any]) -> list[AsnLine]:
    return [
        AsnLine(ln["line"], ln["product_id"], ln["lot"] or "", ln["expiry"], ln["expected"])
        for ln in asn["lines"]
    ]


async def receive(
    uow: UnitOfWork, asn_id: int, scans: Sequence[Scan], *, allow_unexpected: bool, many: bool
) -> dict[str, Any]:
    """Receive scans into dock stock; good lines get putaway tasks. ``many``: the request
    listed ``lines`` (error fields then point into them)."""
    asn = await store.get_asn(uow.conn, asn_id, for_update=True)
    if asn is None:
        raise NotFoundError(f"no ASN {asn_id}")
    check_receivable(AsnStatus(asn["status"]), asn_id)
    warehouse_id = asn["warehouse_id"]
    await location_store.lock_warehouse(uow.conn, warehouse_id)
    lines = [_asn_line(row) for row in await store.lines(uow.conn, asn_id)]
    # Per product, once: a 5,000-line receipt matched each scan against every line, and
    # read each expected product's attributes in its own round trip.
    lines_of: dict[int, list[AsnLine]] = defaultdict(list)
    for asn_line in lines:
        lines_of[asn_line.product_id].append(asn_line)
    attributes = await store.product_attributes(uow.conn, sorted(lines_of))
    so_far: dict[int, Received] = defaultdict(Received)
    for row in await store.received(uow.conn, asn_id):
        if row["asn_line_no"] is not None:
            so_far[row["asn_line_no"]] = so_far[row["asn_line_no"]].plus(
                row["quantity"], Condition(row["condition"])
            )
    tenant_tolerance = Decimal(
        (await settings_store.get(uow.conn, uow.tenant_id))["over_receipt_tolerance_pct"]
    )
    today = datetime.now(ZoneInfo(asn["timezone"])).date()
    received: list[store.ReceiptLine] = []
    docks: dict[int, tuple[stock_store.StockLocation, int]] = {}
    # The products scanned by SKU in one statement, not one lookup per line.
    known = await stock_store.products_by_sku(
        uow.conn, [scan.sku for scan in scans if scan.barcode is None and scan.sku is not None]
    )
    for i, scan in enumerate(scans):
        at = f"/lines/{i}" if many else ""
        item, uom = await _scanned_product(uow, scan, at, known)
        units = inventory.base_units(item, Quantity(scan.quantity, uom), f"{at}/uom")
        dock = await inventory.location(uow, warehouse_id, scan.location, f"{at}/location")
        if dock.type != "dock":
            raise FieldError(f"{at}/location", f"location {dock.code} is a {dock.type} "
                             "location; receive at a dock")  # fmt: skip
        lot_code = await _lot(uow, item, scan, at, today)
        line = match_line(lines_of.get(item.id, []), item.id, lot_code)
        if line is None and not allow_unexpected:
            raise NotOnAsnError(
                f"product {item.sku} is not on ASN {asn_id}; send allow_unexpected: true "
                "to receive it anyway",
                sku=item.sku,
                field=f"{at}/sku",
            )
        if line is not None:  # then the product is on the ASN: its attributes are read
            check_over_receipt(
                expected=line.expected,
                received=so_far[line.line_no].total,
                requested=units,
                tolerance=tolerance_pct(
                    attributes[item.id]["over_receipt_tolerance_pct"], tenant_tolerance
                ),
                sku=item.sku,
            )
            so_far[line.line_no] = so_far[line.line_no].plus(units, scan.condition)
        docks[dock.id] = (dock, docks.get(dock.id, (dock, 0))[1] + units)
        received.append(
            store.ReceiptLine(
                line_no=i + 1, asn_line_no=None if line is None else line.line_no,
                product_id=item.id, lot_code=lot_code, expiry=scan.expiry, quantity=units,
                uom=uom, uom_quantity=scan.quantity, scanned=scan.barcode or item.sku,
                condition=scan.condition, location_id=dock.id,
            )
        )  # fmt: skip
    # Read again under the docks' locks: a location's type changes only while it holds no
    # stock and no open task, which this receipt is about to add (services.locations).
    types = await location_store.lock_types(uow.conn, sorted(docks))
    for dock, _ in docks.values():
        if types.get(dock.id) != "dock":
            raise ConflictError(
                f"location {dock.code} stopped being a dock; receive at a dock", code=dock.code
            )
    for dock, units in docks.values():
        await inventory.ensure_room(uow, dock, units)
    receipt_id, received_at = await store.insert_receipt(
        uow.conn, uow.tenant_id, asn_id, actor=uow.actor, request_id=uow.request_id
    )
    await store.insert_receipt_lines(
        uow.conn, uow.tenant_id, receipt_id=receipt_id, asn_id=asn_id, actor=uow.actor,
        received_at=received_at, lines=received,
    )  # fmt: skip
    # Tasks (which lock their suggested locations) before the dock balances: a
    # confirmation locks its location before the dock balance too, so neither waits on
    # the other in the opposite order.
    task_ids = await putaway.create_tasks(
        uow, warehouse_id=warehouse_id, asn_id=asn_id, receipt_id=receipt_id,
        received_at=received_at,
        tasks=[
            putaway.NewTask(ln.line_no, ln.product_id, ln.lot_code, ln.quantity, ln.location_id)
            for ln in received if ln.condition == Condition.GOOD
        ],
    )  # fmt: skip
    await _stock_docks(uow, asn_id, warehouse_id, received)
    if asn["status"] == AsnStatus.OPEN:
        await store.set_status(uow.conn, asn_id, AsnStatus.RECEIVING)
    result = await receipt_view(uow.conn, asn_id, receipt_id)
    _record_receipt(uow, asn, result, task_ids)
    return result


async def _scanned_product(
    uow: UnitOfWork, scan: Scan, at: str, known: dict[str, stock_store.StockProduct]
) -> tuple[stock_store.StockProduct, str | None]:
    """The scanned product and unit: a unit's barcode names its unit. ``known``: products
    already read by SKU."""
    if scan.barcode is None:
        assert scan.sku is not None  # the schema asks for sku or barcode
        found = known.get(scan.sku) or await inventory.product(uow, scan.sku, f"{at}/sku")
        return found, scan.uom
    owner = await stock_store.barcode_owner(uow.conn, scan.barcode)
    if owner is None:
        raise UnknownReferenceError(
            f"{at}/barcode", f"no product or unit has barcode {scan.barcode}"
        )
    sku, unit = owner.sku, owner.uom
    if scan.sku is not None and scan.sku != sku:
        raise FieldError(f"{at}/sku", f"barcode {scan.barcode} is product {sku}, not {scan.sku}")
    if unit is not None and scan.uom is not None and scan.uom != unit:
        raise FieldError(f"{at}/uom", f"barcode {scan.barcode} is unit {unit}, not {scan.uom}")
    return await inventory.product(uow, sku, f"{at}/barcode"), unit or scan.uom


async def _lot(
    uow: UnitOfWork, item: stock_store.StockProduct, scan: Scan, at: str, today: date
) -> str:
    """The stored lot code; lot and expiry are required when tracked, past expiry refused."""
    lot_code = stored_lot(scan.lot, lot_tracked=item.lot_tracked, sku=item.sku, field=f"{at}/lot")
    if item.expiry_tracked and scan.expiry is None:
        raise FieldError(f"{at}/expiry", f"product {item.sku} is expiry-tracked: give the expiry")
    if not item.expiry_tracked and scan.expiry is not None:
        raise FieldError(f"{at}/expiry", f"product {item.sku} is not expiry-tracked: no expiry")
    check_not_expired(scan.expiry, today, f"{at}/expiry")
    return await inventory.resolve_lot(uow, item, lot_code or None, scan.expiry, create=True)


async def _stock_docks(
    uow: UnitOfWork, asn_id: int, warehouse_id: int, lines: Sequence[store.ReceiptLine]
) -> None:
    """Add each line's stock at its dock (balances locked in key order), one ledger row each.

    One set-based ``apply_moves`` for the whole receipt: per line it cost round trips.
    """

    def key(line: store.ReceiptLine) -> BalanceKey:
        status = stock_status(Condition(line.condition))
        return BalanceKey(warehouse_id, line.location_id, line.product_id, line.lot_code, status)

    keyed = sorted(((key(line), line) for line in lines), key=lambda pair: pair[0])
    await stock_store.apply_moves(
        uow.conn,
        uow.tenant_id,
        [
            (
                Delta(balance, line.quantity),
                stock_store.MovementInfo(
                    kind=MovementKind.RECEIPT,
                    reason=line.condition,
                    reference_type="asn",
                    reference_id=str(asn_id),
                    uom=line.uom,
                    uom_quantity=line.uom_quantity,
                    actor=uow.actor,
                    request_id=uow.request_id,
                ),
            )
            for balance, line in keyed
        ],
    )


def _record_receipt(
    uow: UnitOfWork, asn: dict[str, Any], receipt: dict[str, Any], task_ids: list[int]
) -> None:
    lines = [
        {key: line[key] for key in ("line", "sku", "lot", "expiry", "quantity", "uom",
                                    "uom_quantity", "condition", "location")}
        for line in receipt["lines"]
    ]  # fmt: skip
    data = {"asn": asn["id"], "reference": asn["reference"], "receipt": receipt["id"],
            "warehouse": asn["warehouse"], "lines": lines, "putaway_tasks": task_ids}  # fmt: skip
    uow.audit("asn", asn["id"], "received", after=data)
    uow.emit("wms.asn.received", "asn", asn["id"], data, warehouse=asn["warehouse"])
    for line in lines:
        stock = {"warehouse": asn["warehouse"], "asn": asn["id"], "receipt": receipt["id"],
                 "status": stock_status(Condition(line["condition"])), **line}  # fmt: skip
        uow.emit("wms.inventory.received", "inventory", f"{asn['warehouse']}/{line['sku']}",
                 stock, warehouse=asn["warehouse"])  # fmt: skip


async def close(uow: UnitOfWork, asn_id: int) -> dict[str, Any]:
    """Close the ASN (no more receipts) and answer with its discrepancy report."""
    asn = await store.get_asn(uow.conn, asn_id, for_update=True)
    if asn is None:
        raise NotFoundError(f"no ASN {asn_id}")
    check_closable(AsnStatus(asn["status"]), asn_id)
    await store.set_status(uow.conn, asn_id, AsnStatus.CLOSED, closed_by=uow.actor)
    closed = await view(uow.conn, asn_id)
    data = {"asn": asn_id, "reference": asn["reference"], "warehouse": asn["warehouse"],
            "discrepancies": closed["discrepancies"]}  # fmt: skip
    uow.audit("asn", asn_id, "closed", before={"status": asn["status"]},
              after={"status": AsnStatus.CLOSED, **data})  # fmt: skip
    uow.emit("wms.asn.closed", "asn", asn_id, data, warehouse=asn["warehouse"])
    return closed


async def view(conn: AsyncConnection, asn_id: int) -> dict[str, Any]:
    """The ASN with its lines, received quantities and discrepancies (404 when unknown)."""
    asn = await store.get_asn(conn, asn_id)
    if asn is None:
        raise NotFoundError(f"no ASN {asn_id}")
    line_rows = await store.lines(conn, asn_id)
    skus = {row["product_id"]: row["sku"] for row in line_rows}
    per_line: dict[int, Received] = defaultdict(Received)
    unexpected: dict[tuple[int, str], Received] = defaultdict(Received)
    for row in await store.received(conn, asn_id):
        skus[row["product_id"]] = row["sku"]
        condition = Condition(row["condition"])
        if row["asn_line_no"] is None:
            where = (row["product_id"], row["lot_code"])
            unexpected[where] = unexpected[where].plus(row["quantity"], condition)
        else:
            line_no = row["asn_line_no"]
            per_line[line_no] = per_line[line_no].plus(row["quantity"], condition)
    report = discrepancies([_asn_line(row) for row in line_rows], per_line, unexpected)
    asn["lines"] = [
        {"line": row["line_no"], "product_id": row["product_id"], "sku": row["sku"],
         "lot": row["lot"], "expiry": row["expiry"], "expected": row["expected"],
         "received_good": per_line[row["line_no"]].good,
         "received_damaged": per_line[row["line_no"]].damaged}
        for row in line_rows
    ]  # fmt: skip
    asn["discrepancies"] = [
        {"line": d.line_no, "sku": skus[d.product_id], "lot": api_lot(d.lot_code),
         "expected": d.expected, "received_good": d.received_good,
         "received_damaged": d.received_damaged, "short": d.short, "over": d.over}
        for d in report
    ]  # fmt: skip
    return asn


async def receipt_view(conn: AsyncConnection, asn_id: int, receipt_id: int) -> dict[str, Any]:
    """One receipt with its lines and putaway tasks (404 when unknown)."""
    found = await store.receipt(conn, asn_id, receipt_id)
    if found is None:
        raise NotFoundError(f"no receipt {receipt_id} of ASN {asn_id}")
    task_ids = [line["putaway_task"] for line in found["lines"] if line["putaway_task"]]
    found["putaway_tasks"] = (
        await task_store.tasks(conn, ids=task_ids, limit=len(task_ids)) if task_ids else []
    )
    return found


def _asn_line(row: dict[str, Any]) -> AsnLine:
    return AsnLine(row["line_no"], row["product_id"], row["lot_code"], row["expiry"],
                   row["expected"])  # fmt: skip


def _event_data(asn: dict[str, Any]) -> dict[str, Any]:
    lines = [{key: line[key] for key in ("line", "sku", "lot", "expiry", "expected")}
             for line in asn["lines"]]  # fmt: skip
    fields = ("id", "reference", "warehouse", "supplier", "expected_at")
    return {**{name: asn[name] for name in fields}, "lines": lines}
