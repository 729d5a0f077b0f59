"""Products, their units of measure and barcodes: the pure rules (no I/O).

Quantities are integers in a product's base unit (DESIGN §5); a product may declare
other units (a case of 12) and ``to_base_quantity`` converts a quantity named in one
of them. Field names in errors are JSON Pointers relative to one product
(``/uoms/0/code``); callers prefix them (``/products/3``) where the product sits
inside a larger body.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from wms.domain.errors import ConflictError, FieldError

DEFAULT_BASE_UOM = "EA"
# The most base units one quantity may come to. A scan may name 10^9 units of a unit
# worth up to 2^31-1 base units: about 2.1e18, within bigint but not a few times over, so
# one receipt's scans could add up past what a balance or an ASN line's total holds.
MAX_BASE_QUANTITY = 10**12


class VelocityClass(StrEnum):
    """ABC class of how fast a product moves (putaway rules may route on it)."""

    A = "A"
    B = "B"
    C = "C"


@dataclass(frozen=True)
class Uom:
    """A unit other than the base unit: ``factor`` base units each, with its own barcodes."""

    code: str
    factor: int
    barcodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Product:
    """A product's master data as stored (without its internal id and timestamps).

    ``expiry_tracked`` requires ``lot_tracked``: an expiry date belongs to a lot
    (DESIGN §5, "Lot: (product, lot code) with its expiry date"), so a product whose
    stock carries no lot would have nowhere to keep the date.
    """

    sku: str
    description: str
    base_uom: str = DEFAULT_BASE_UOM
    lot_tracked: bool = False
    expiry_tracked: bool = False
    velocity_class: str | None = None
    category: str | None = None
    weight_kg: Decimal | None = None
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None
    allocation_strategy: str | None = None
    over_receipt_tolerance_pct: Decimal | None = None
    min_shelf_life_days: int | None = None
    active: bool = True
    barcodes: tuple[str, ...] = ()
    uoms: tuple[Uom, ...] = ()

    def changed(self, changes: Mapping[str, Any]) -> Product:
        """This product with ``changes`` (field name → new value) applied."""
        return dataclasses.replace(self, **changes)

    def normalised(self) -> Product:
        """The same product with its lists in one order (to compare two versions)."""
        uoms = tuple(
            sorted(
                (Uom(u.code, u.factor, tuple(sorted(u.barcodes))) for u in self.uoms),
                key=lambda u: (u.factor, u.code),
            )
        )
        return dataclasses.replace(self, barcodes=tuple(sorted(self.barcodes)), uoms=uoms)

    def factors(self) -> dict[str, int]:
        """Unit code → base units per unit, the base unit included (factor 1)."""
        return {self.base_uom: 1, **{uom.code: uom.factor for uom in self.uoms}}

    def barcode_claims(
        self, *, product_barcodes: bool = True, uom_barcodes: bool = True
    ) -> list[tuple[str, str]]:
        """``(barcode, pointer)`` of the product's barcodes and (or) its units' barcodes."""
        claims = []
        if product_barcodes:
            claims += [(code, f"/barcodes/{i}") for i, code in enumerate(self.barcodes)]
        if uom_barcodes:
            for i, uom in enumerate(self.uoms):
                claims += [(code, f"/uoms/{i}/barcodes/{j}") for j, code in enumerate(uom.barcodes)]
        return claims


class InvalidProductError(FieldError):
    """A product breaks one or more rules; ``errors`` lists ``(pointer, message)``."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        field, message = errors[0]
        super().__init__(field, f"the product is not valid: {field} {message}")
        self.errors = list(errors)


class UnknownUomError(FieldError):
    """A quantity names a unit the product does not have."""


class BarcodeInUseError(ConflictError):
    """A barcode already names another product or unit (barcodes are unique per tenant)."""

    def __init__(self, barcode: str, field: str, used_by_sku: str, used_by_uom: str | None) -> None:
        unit = f" (unit {used_by_uom})" if used_by_uom else ""
        super().__init__(
            f"barcode {barcode} already belongs to product {used_by_sku}{unit}",
            barcode=barcode,
            field=field,
            used_by_sku=used_by_sku,
            used_by_uom=used_by_uom,
        )


def product_errors(product: Product) -> list[tuple[str, str]]:
    """Every rule ``product`` breaks, as ``(pointer, message)``; empty when it is valid."""
    errors: list[tuple[str, str]] = []
    if not product.description:
        errors.append(("/description", "is required"))
    if product.expiry_tracked and not product.lot_tracked:
        errors.append(("/expiry_tracked", "requires lot_tracked (an expiry date belongs to a lot)"))
    codes: set[str] = set()
    for i, uom in enumerate(product.uoms):
        if uom.factor < 1:
            errors.append((f"/uoms/{i}/factor", "must be at least 1"))
        if uom.code == product.base_uom:
            errors.append((f"/uoms/{i}/code", f"must differ from the base unit {product.base_uom}"))
        elif uom.code in codes:
            errors.append((f"/uoms/{i}/code", f"unit {uom.code} is declared twice"))
        codes.add(uom.code)
    seen: set[str] = set()
    for barcode, pointer in product.barcode_claims():
        if barcode in seen:
            errors.append((pointer, f"barcode {barcode} is given twice for this product"))
        seen.add(barcode)
    return errors


def check_product(product: Product) -> Product:
    """``product`` itself when valid; ``InvalidProductError`` listing every broken rule."""
    errors = product_errors(product)
    if errors:
        raise InvalidProductError(errors)
    return product


class Hold(StrEnum):
    """What holds quantities or lot codes of a product as its master data now reads them."""

    STOCK = "stock on hand"
    TASK = "an open putaway, pick or replenishment task"
    COUNT = "a cycle count awaiting approval"
    ORDER_LINE = "an open order line"
    LOT_ORDER_LINE = "an open order line naming a lot"
    ASN_LINE = "an open ASN line"


# Stock, tasks and counts are stored under a lot ('' when not tracked): flipped under
# them, the stock is stranded under the other lot style. A waiting order line naming a
# lot would never be allocated once lots are no longer stored.
_LOT_TRACKING_HOLDS = {Hold.STOCK, Hold.TASK, Hold.COUNT}
_LOT_TRACKING_OFF_HOLDS = _LOT_TRACKING_HOLDS | {Hold.LOT_ORDER_LINE}
# Every stored quantity is in base units: under a new base unit, 24 EA would read 24 CS.
_BASE_UNIT_HOLDS = {Hold.STOCK, Hold.TASK, Hold.COUNT, Hold.ORDER_LINE, Hold.ASN_LINE}


def changes_held_fields(current: Product, product: Product) -> bool:
    """Whether ``product`` changes a field that only changes while nothing holds the product."""
    return product.lot_tracked != current.lot_tracked or product.base_uom != current.base_uom


def held_changes(current: Product, product: Product, holds: Set[Hold]) -> list[tuple[str, str]]:
    """``(pointer, message)`` for each change of ``current`` into ``product`` that
    ``holds`` forbid (lot tracking, base unit); empty when the change may go ahead."""
    errors = []
    if product.lot_tracked != current.lot_tracked:
        guard = _LOT_TRACKING_HOLDS if product.lot_tracked else _LOT_TRACKING_OFF_HOLDS
        if held := _listed(holds & guard):
            message = (
                f"product {product.sku} has {held}: lot tracking changes only while it has none"
            )
            errors.append(("/lot_tracked", message))
    if product.base_uom != current.base_uom and (held := _listed(holds & _BASE_UNIT_HOLDS)):
        message = (
            f"product {product.sku} has {held}, counted in {current.base_uom}: "
            "the base unit changes only while it has none"
        )
        errors.append(("/base_uom", message))
    return errors


def _listed(holds: Set[Hold]) -> str:
    """The holds in declaration order, as one phrase ('' for none)."""
    return ", ".join(hold.value for hold in Hold if hold in holds)


def to_base_quantity(
    quantity: int,
    uom: str | None,
    *,
    sku: str,
    factors: Mapping[str, int],
    field: str = "/uom",
) -> int:
    """``quantity`` of unit ``uom`` in base units; ``None`` means the base unit already.

    ``factors`` maps each unit code of the product, the base unit included, to its
    base units per unit (``Product.factors()``); an unknown unit, or more than
    ``MAX_BASE_QUANTITY`` base units, is a 422 on ``field``.
    """
    if uom is None:
        return quantity
    factor = factors.get(uom)
    if factor is None:
        known = ", ".join(sorted(factors))
        raise UnknownUomError(field, f"product {sku} has no unit {uom} (it has {known})")
    units = quantity * factor
    if abs(units) > MAX_BASE_QUANTITY:
        raise FieldError(field, f"{quantity} {uom} of product {sku} is {units} base units; "
                         f"one quantity may be at most {MAX_BASE_QUANTITY}")  # fmt: skip
    return units


@dataclass(frozen=True)
class BarcodeClaim:
    """A barcode a request assigns: to ``sku``, in request row ``row`` at ``pointer``."""

    barcode: str
    sku: str
    row: int
    pointer: str


@dataclass(frozen=True)
class BarcodeOwner:
    """Who holds a barcode now: a product, and the unit when it is a unit's barcode."""

    sku: str
    uom: str | None


@dataclass(frozen=True)
class Rewrite:
    """Which of a product's barcode lists a request replaces (the rest are kept)."""

    barcodes: bool
    uoms: bool


def duplicate_claims(claims: Iterable[BarcodeClaim]) -> list[tuple[BarcodeClaim, BarcodeClaim]]:
    """Claims of a barcode already claimed earlier, each with that first claim."""
    first: dict[str, BarcodeClaim] = {}
    duplicates = []
    for claim in claims:
        earlier = first.setdefault(claim.barcode, claim)
        if earlier is not claim:
            duplicates.append((claim, earlier))
    return duplicates


def foreign_claims(
    claims: Iterable[BarcodeClaim],
    owners: Mapping[str, BarcodeOwner],
    rewrites: Mapping[str, Rewrite],
) -> list[tuple[BarcodeClaim, BarcodeOwner]]:
    """Claims of a barcode that another product keeps after the request is applied.

    A stored barcode is released when the request replaces the list holding it (the
    owner's ``barcodes``, or its ``uoms`` for a unit's barcode). A clash within one
    product is left to ``product_errors``, which sees the product's final lists.
    """
    clashes = []
    for claim in claims:
        owner = owners.get(claim.barcode)
        if owner is None or owner.sku == claim.sku:
            continue
        rewrite = rewrites.get(owner.sku)
        released = rewrite is not None and (rewrite.uoms if owner.uom else rewrite.barcodes)
        if not released:
            clashes.append((claim, owner))
    return clashes


def duplicate_skus(skus: Iterable[str]) -> list[tuple[int, int]]:
    """``(row, first_row)`` for each row repeating an earlier row's SKU."""
    first: dict[str, int] = {}
    duplicates = []
    for row, sku in enumerate(skus):
        earlier = first.setdefault(sku, row)
        if earlier != row:
            duplicates.append((row, earlier))
    return duplicates
