"""Product commands: create, update, and the all-or-nothing bulk import.

The three share one write path (``_write``): check the products' final state, check
that no barcode is held by another product, then write products, units and barcodes
set-based. A change arrives as a mapping of the fields given (``barcodes`` and ``uoms``
when given replace the lists); fields not given keep their value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wms.domain.errors import ConflictError, ImportRejectedError, NotFoundError
from wms.domain.products import (
    BarcodeClaim,
    BarcodeInUseError,
    BarcodeOwner,
    Product,
    Rewrite,
    changes_held_fields,
    check_product,
    duplicate_claims,
    duplicate_skus,
    foreign_claims,
    held_changes,
    product_errors,
)
from wms.services.unit_of_work import UnitOfWork
from wms.store import cache
from wms.store import products as store

MAX_REPORTED_ERRORS = 1000
Changes = Mapping[str, Any]


@dataclass(frozen=True)
class ImportRow:
    """One row of an import: where it came from, its SKU and the fields it gives.

    ``pointer`` locates the row in a JSON body (``/products/3``); for a CSV row it is
    None and errors name the column instead.
    """

    line: int
    sku: str
    changes: Changes
    pointer: str | None = None

    def field(self, pointer: str) -> str:
        """Where ``pointer`` (relative to the product) is in the file."""
        if self.pointer is not None:
            return self.pointer + pointer
        return pointer.split("/")[1]


@dataclass(frozen=True)
class ImportSummary:
    """What an import did."""

    created: int
    updated: int
    unchanged: int


@dataclass
class _Plan:
    """What one command writes: new products, and changed ones with the lists they replace."""

    creates: list[Product] = field(default_factory=list)
    updates: list[tuple[int, Product, Rewrite]] = field(default_factory=list)
    # Barcodes whose owner may change: their cached lookups are dropped by ``_write``.
    barcodes: set[str] = field(default_factory=set)

    def add(self, product_id: int | None, current: Product, product: Product) -> bool:
        """Plan ``product`` (now ``current``; no id = new); False when nothing changes."""
        if product_id is None:
            self.creates.append(product)
            self.barcodes.update(code for code, _ in product.barcode_claims())
            return True
        if product == current:
            return False  # the common re-import: lists given in the stored order
        before, after = current.normalised(), product.normalised()
        if before == after:
            return False
        # A list given but equal to the stored one is left alone (no barcode churn).
        lists = Rewrite(before.barcodes != after.barcodes, before.uoms != after.uoms)
        self.updates.append((product_id, product, lists))
        if lists.barcodes or lists.uoms:
            for side in (current, product):
                self.barcodes.update(code for code, _ in side.barcode_claims())
        return True


async def create_product(uow: UnitOfWork, sku: str, changes: Changes) -> dict[str, Any]:
    """Create a product with its barcodes and units."""
    product = check_product(Product(sku=sku, description="").changed(changes))
    if await store.get(uow.conn, sku) is not None:
        raise ConflictError(f"product {sku} already exists", sku=sku)
    await _check_barcodes(uow, sku, product.barcode_claims())
    await _write(uow, _Plan(creates=[product]))
    await cache.invalidate("product", sku)
    created = await _get(uow, sku)
    uow.audit("product", sku, "created", after=created)
    uow.emit("wms.product.created", "product", sku, created)
    return created


async def update_product(uow: UnitOfWork, sku: str, changes: Changes) -> dict[str, Any]:
    """Change the fields given; ``barcodes`` and ``uoms`` when given replace the lists."""
    row = await store.get(uow.conn, sku, for_update=True)
    if row is None:
        raise NotFoundError(f"no product {sku}")
    current = store.to_product(row)
    product = check_product(current.changed(changes))
    before = _public(row)
    plan = _Plan()
    if not plan.add(row["id"], current, product):
        return before
    if changes_held_fields(current, product):
        held = await store.holds(uow.conn, [row["id"]])
        refused = held_changes(current, product, held.get(row["id"], set()))
        if refused:
            pointer, message = refused[0]
            raise ConflictError(message, sku=sku, field=pointer)
    claims = product.barcode_claims(
        product_barcodes="barcodes" in changes, uom_barcodes="uoms" in changes
    )
    await _check_barcodes(uow, sku, claims)
    await _write(uow, plan)
    await cache.invalidate("product", sku)
    after = await _get(uow, sku)
    uow.audit("product", sku, "updated", before=before, after=after)
    uow.emit("wms.product.updated", "product", sku, after)
    return after


async def import_products(
    uow: UnitOfWork, rows: Sequence[ImportRow], errors: Sequence[dict[str, object]] = ()
) -> ImportSummary:
    """Create or update every row's product, or nothing when any row is bad.

    ``errors`` are the rows the caller could not even parse; the rows given are checked
    too so that one answer reports every bad row.
    """
    row_errors = list(errors)
    for again, first in duplicate_skus(r.sku for r in rows):
        message = f"SKU {rows[again].sku} is also on line {rows[first].line}"
        row_errors.append(_row_error(rows[again], "/sku", message))
    existing = await store.get_many(uow.conn, [r.sku for r in rows])
    plan, claims, given = _Plan(), [], {}
    # Existing products whose lot tracking or base unit changes: what holds them may forbid it.
    guarded: dict[int, tuple[ImportRow, Product, Product]] = {}
    for index, row in enumerate(rows):
        product_id, current = existing.get(row.sku, (None, Product(sku=row.sku, description="")))
        product = current.changed(row.changes)
        if product_id is not None and changes_held_fields(current, product):
            guarded[product_id] = (row, current, product)
        row_errors += [_row_error(row, ptr, msg) for ptr, msg in product_errors(product)]
        given[row.sku] = Rewrite("barcodes" in row.changes, "uoms" in row.changes)
        for barcode, ptr in product.barcode_claims(
            product_barcodes=given[row.sku].barcodes, uom_barcodes=given[row.sku].uoms
        ):
            claims.append(BarcodeClaim(barcode, row.sku, index, ptr))
        plan.add(product_id, current, product)
    for product_id, held in (await store.holds(uow.conn, sorted(guarded))).items():
        row, current, product = guarded[product_id]
        row_errors += [_row_error(row, p, m) for p, m in held_changes(current, product, held)]
    for claim, first_claim in duplicate_claims(claims):
        message = f"barcode {claim.barcode} is also on line {rows[first_claim.row].line}"
        row_errors.append(_row_error(rows[claim.row], claim.pointer, message))
    owners = await store.barcode_owners(uow.conn, [(c.barcode, c.sku) for c in claims])
    for claim, owner in foreign_claims(claims, owners, given):
        message = f"barcode {claim.barcode} already belongs to {_describe(owner)}"
        row_errors.append(_row_error(rows[claim.row], claim.pointer, message))
    if row_errors:
        _reject(row_errors)
    await _write(uow, plan)
    touched = [p.sku for p in plan.creates] + [p.sku for _, p, _ in plan.updates]
    await cache.invalidate_many("product", [(sku,) for sku in touched])
    created, updated = len(plan.creates), len(plan.updates)
    summary = ImportSummary(created, updated, unchanged=len(rows) - created - updated)
    counts = {"created": created, "updated": updated}
    uow.audit(
        "product",
        "import",
        "imported",
        after={
            **counts,
            "unchanged": summary.unchanged,
            "created_skus": [p.sku for p in plan.creates],
            "updated_skus": [p.sku for _, p, _ in plan.updates],
        },
    )
    uow.emit("wms.products.imported", "product", "import", counts)
    return summary


def _reject(row_errors: list[dict[str, object]]) -> None:
    """Raise ``ImportRejectedError`` with the errors in file order (the first thousand)."""
    row_errors.sort(key=lambda e: (e["line"], str(e["field"])))
    shown = row_errors[:MAX_REPORTED_ERRORS]
    more = f" (the first {len(shown)} are listed)" if len(row_errors) > len(shown) else ""
    raise ImportRejectedError(f"{len(row_errors)} error(s) in the import{more}", shown)


async def _check_barcodes(uow: UnitOfWork, sku: str, claimed: list[tuple[str, str]]) -> None:
    """Raise ``BarcodeInUseError`` for the first barcode another product holds.

    (A clash with the product's own barcodes is ``product_errors``' business.)
    """
    claims = [BarcodeClaim(barcode, sku, 0, pointer) for barcode, pointer in claimed]
    owners = await store.barcode_owners(uow.conn, [(c.barcode, c.sku) for c in claims])
    for claim, owner in foreign_claims(claims, owners, {}):
        raise BarcodeInUseError(claim.barcode, claim.pointer, owner.sku, owner.uom)


async def _write(uow: UnitOfWork, plan: _Plan) -> None:
    """Write ``plan``: new products, changed attributes, then the replaced lists."""
    created = await store.insert_products(uow.conn, uow.tenant_id, plan.creates)
    for product in plan.creates:
        if product.sku not in created:
            # Another transaction created it since we looked (the unique key held).
            raise ConflictError(f"product {product.sku} already exists", sku=product.sku)
    await store.update_products(uow.conn, [(pid, product) for pid, product, _ in plan.updates])
    # Every replaced barcode goes before any is inserted, so one may move between products.
    await store.delete_lists(
        uow.conn,
        barcodes_of=[pid for pid, _, lists in plan.updates if lists.barcodes],
        uoms_of=[pid for pid, _, lists in plan.updates if lists.uoms],
    )
    written = [(created[p.sku], p, Rewrite(True, True)) for p in plan.creates] + plan.updates
    await store.insert_lists(
        uow.conn,
        uow.tenant_id,
        barcodes=[(pid, p.barcodes) for pid, p, lists in written if lists.barcodes],
        uoms=[(pid, p.uoms) for pid, p, lists in written if lists.uoms],
    )
    await cache.invalidate_many("barcode", [(code,) for code in sorted(plan.barcodes)])


async def _get(uow: UnitOfWork, sku: str) -> dict[str, Any]:
    row = await store.get(uow.conn, sku)
    if row is None:
        raise NotFoundError(f"no product {sku}")
    return _public(row)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """The product as clients see it (also in audit rows and events): no internal id."""
    return {key: value for key, value in row.items() if key != "id"}


def _describe(owner: BarcodeOwner) -> str:
    return f"product {owner.sku}" + (f" (unit {owner.uom})" if owner.uom else "")


def _row_error(row: ImportRow, pointer: str, message: str) -> dict[str, object]:
    return {"line": row.line, "field": row.field(pointer), "message": message}
