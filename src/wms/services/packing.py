"""Packing: cartons with weights and contents that must equal what was picked."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from wms.domain.allocation import OrderStatus
from wms.domain.errors import ConflictError, InvalidStateError, NotFoundError, UnknownReferenceError
from wms.domain.inventory import api_lot, stored_lot
from wms.domain.products import to_base_quantity
from wms.services.unit_of_work import UnitOfWork
from wms.store import inventory as stock_store
from wms.store import orders as order_store
from wms.store import packing as store


class PackingMismatchError(ConflictError):
    """The packages' contents differ from what was picked for the order."""

    slug = "packing-mismatch"


@dataclass(frozen=True)
class ContentIn:
    """Units of one product and lot in a carton."""

    sku: str
    lot: str | None
    quantity: int
    uom: str | None = None


@dataclass(frozen=True)
class PackageIn:
    """One carton."""

    carton: str
    weight_kg: Decimal
    contents: list[ContentIn]


async def pack(uow: UnitOfWork, number: str, packages: list[PackageIn]) -> dict[str, Any]:
    """Pack a picked order: the contents of all cartons must equal what was picked."""
    head = await order_store.get_head(uow.conn, number, for_update=True)
    if head is None:
        raise NotFoundError(f"no order {number}")
    if head["status"] != OrderStatus.PICKED:
        raise InvalidStateError(
            f"order {number} is {head['status']}; only a picked order is packed",
            current_status=head["status"],
        )
    staging = await stock_store.location_by_code(
        uow.conn, head["warehouse_id"], head["staging_location"]
    )
    assert staging is not None
    expected: dict[tuple[int, str], int] = {}
    skus: dict[int, str] = {}
    for row in await order_store.staged(uow.conn, head["id"], staging.id):
        key = (int(row[2]), str(row[3]))
        expected[key] = expected.get(key, 0) + int(row[4])
    given: dict[tuple[int, str], int] = {}
    resolved = []
    for p, package in enumerate(packages):
        contents: dict[tuple[int, str], int] = {}
        for c, content in enumerate(package.contents):
            at = f"/packages/{p}/contents/{c}"
            item = await stock_store.product_by_sku(uow.conn, content.sku)
            if item is None:
                raise UnknownReferenceError(f"{at}/sku", f"no product {content.sku}")
            skus[item.id] = item.sku
            lot = stored_lot(content.lot, lot_tracked=item.lot_tracked, sku=item.sku,
                             field=f"{at}/lot")  # fmt: skip
            units = to_base_quantity(content.quantity, content.uom, sku=item.sku,
                                     factors=item.factors, field=f"{at}/uom")  # fmt: skip
            contents[(item.id, lot)] = contents.get((item.id, lot), 0) + units
            given[(item.id, lot)] = given.get((item.id, lot), 0) + units
        resolved.append((package, contents))
    if given != expected:
        names = await _names(uow.conn, set(expected) | set(given), skus)
        raise PackingMismatchError(
            f"the packages of order {number} do not hold exactly what was picked",
            expected=_listing(expected, names),
            packed=_listing(given, names),
        )
    for package, contents in resolved:
        await store.insert_package(
            uow.conn, uow.tenant_id, order_id=head["id"], carton=package.carton,
            weight_kg=package.weight_kg, contents=contents, actor=uow.actor,
        )  # fmt: skip
    await order_store.set_status(uow.conn, head["id"], OrderStatus.PACKED)
    result = await view(uow.conn, number)
    data = {"number": number, "packages": _event_packages(result["packages"])}
    uow.audit("order", number, "packed", before={"status": head["status"]},
              after={"status": OrderStatus.PACKED, **data})  # fmt: skip
    uow.emit("wms.order.packed", "order", number, data, warehouse=head["warehouse"])
    return result


async def view(conn: AsyncConnection, number: str) -> dict[str, Any]:
    """The order's packages (404 for an unknown order)."""
    head = await order_store.get_head(conn, number)
    if head is None:
        raise NotFoundError(f"no order {number}")
    return {"order": number, "status": head["status"],
            "packages": await store.packages(conn, [head["id"]])}  # fmt: skip


def _event_packages(packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": p["id"], "carton": p["carton"], "weight_kg": p["weight_kg"],
             "contents": p["contents"]} for p in packages]  # fmt: skip


def _listing(quantities: dict[tuple[int, str], int], names: dict[int, str]) -> list[dict[str, Any]]:
    return [
        {"sku": names[product], "lot": api_lot(lot), "quantity": quantity}
        for (product, lot), quantity in sorted(
            quantities.items(), key=lambda kv: (names[kv[0][0]], kv[0][1])
        )
    ]


async def _names(
    conn: AsyncConnection, keys: set[tuple[int, str]], known: dict[int, str]
) -> dict[int, str]:
    missing = sorted({product for product, _ in keys} - set(known))
    if missing:
        cursor = await conn.execute(
            "SELECT id, sku FROM products WHERE id = ANY(%s::bigint[])", (missing,)
        )
        known = {**known, **{int(r[0]): str(r[1]) for r in await cursor.fetchall()}}
    return known
