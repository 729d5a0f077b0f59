"""Stock: balance keys, statuses, reasons and the rules of a change (no I/O).

A change of stock is a list of ``Delta``s, each adding to or taking from one balance
key. The store locks their balances in ``lock_order`` (one deterministic order for every
transaction, so concurrent commands cannot deadlock on balances), takes only from
unallocated stock, and writes one ledger row per delta.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from wms.domain.errors import ConflictError, FieldError

NO_LOT = ""  # the stored lot code of stock that is not lot-tracked (the API shows null)


class StockStatus(StrEnum):
    """What stock may be used for: only ``available`` stock is allocatable."""

    AVAILABLE = "available"
    QUARANTINE = "quarantine"
    DAMAGED = "damaged"
    HOLD = "hold"


class AdjustmentReason(StrEnum):
    """Why stock was adjusted; ``cycle_count`` is written by count approval only."""

    FOUND = "found"
    LOST = "lost"
    DAMAGED = "damaged"
    EXPIRED = "expired"
    THEFT = "theft"
    SCRAP = "scrap"
    CORRECTION = "correction"
    INITIAL_LOAD = "initial_load"
    RETURN = "return"
    CYCLE_COUNT = "cycle_count"


class MovementKind(StrEnum):
    """The kind of event a ledger row records."""

    RECEIPT = "receipt"
    PUTAWAY = "putaway"
    MOVE = "move"
    ADJUSTMENT = "adjustment"
    STATUS_CHANGE = "status_change"
    PICK = "pick"
    SHIP = "ship"
    CYCLE_COUNT = "cycle_count"
    REPLENISHMENT = "replenishment"
    RETURN = "return"
    CANCELLATION = "cancellation"


@dataclass(frozen=True, order=True)
class BalanceKey:
    """Where a quantity is: warehouse, location, product, lot ('' if none), status."""

    warehouse_id: int
    location_id: int
    product_id: int
    lot_code: str
    status: StockStatus


@dataclass(frozen=True)
class Delta:
    """A signed change of ``on_hand`` at one key (never zero)."""

    key: BalanceKey
    quantity: int


class InsufficientStockError(ConflictError):
    """Less unallocated stock than the change takes."""

    slug = "insufficient-stock"

    def __init__(self, detail: str, *, available: int, requested: int) -> None:
        super().__init__(detail, available=available, requested=requested)


class LocationUnavailableError(ConflictError):
    """The destination is inactive or would exceed its capacity."""

    slug = "location-unavailable"


class LotExpiryConflictError(ConflictError):
    """A lot is named with an expiry other than the one it has."""

    slug = "lot-expiry-conflict"


def lock_order(keys: Iterable[BalanceKey]) -> list[BalanceKey]:
    """The balance keys, once each, in the one global order balances are locked in.

    Text compares as bytes, as Python's ``sorted`` does; the store's locking query orders
    with the byte-order collation to match.
    """
    return sorted(set(keys))


def stored_lot(lot: str | None, *, lot_tracked: bool, sku: str, field: str = "/lot") -> str:
    """The lot code to store: required for lot-tracked products, refused for others."""
    if lot_tracked and not lot:
        raise FieldError(field, f"product {sku} is lot-tracked: name the lot")
    if not lot_tracked and lot:
        raise FieldError(field, f"product {sku} is not lot-tracked: lot must be null")
    return lot or NO_LOT


def api_lot(lot_code: str) -> str | None:
    """The lot as the API shows it: null for stock that is not lot-tracked."""
    return lot_code or None


def check_expiry(
    lot_code: str, given: date | None, existing: date | None, *, known: bool, may_set: bool = False
) -> date | None:
    """The expiry a lot keeps; a given date must match a known lot's (else 409), except
    that with ``may_set`` it becomes the expiry of a known lot that has none."""
    if known:
        # A lot stored before its product was expiry-tracked has no expiry: the first
        # stock arriving with one dates it, else the lot could never be received again.
        if existing is None and may_set:
            return given
        if given is not None and given != existing:
            raise LotExpiryConflictError(
                f"lot {lot_code} has expiry {existing}, not {given}",
                lot=lot_code,
                expiry=existing.isoformat() if existing else None,
            )
        return existing
    return given


def check_capacity(
    *,
    code: str,
    active: bool,
    capacity_units: int | None,
    stored_units: int,
    adding: int,
    promised_units: int = 0,
) -> None:
    """Refuse adding stock to an inactive location or beyond its unit capacity, counting
    the units promised to open putaway tasks as taken (their operators are on the way)."""
    if not active:
        raise LocationUnavailableError(f"location {code} is inactive", location=code)
    if capacity_units is not None and stored_units + promised_units + adding > capacity_units:
        promised = f", {promised_units} more promised to putaway tasks" if promised_units else ""
        raise LocationUnavailableError(
            f"location {code} holds {stored_units} of {capacity_units} units{promised}; "
            f"{adding} more do not fit",
            location=code,
            capacity_units=capacity_units,
            stored_units=stored_units,
            promised_units=promised_units,
        )


def move_deltas(source: BalanceKey, destination: BalanceKey, quantity: int) -> list[Delta]:
    """Take ``quantity`` from ``source`` and put it at ``destination`` (a move or status change)."""
    if quantity <= 0:
        raise FieldError("/quantity", "must be greater than 0")
    if source == destination:
        raise FieldError("/to_location", "source and destination are the same")
    return [Delta(source, -quantity), Delta(destination, quantity)]


def variance_needs_recount(expected: int, counted: int, tolerance_pct: float) -> bool:
    """True when a first count differs from the system by more than the tolerance.

    Stock found where the system expects none is always recounted.
    """
    if expected == counted:
        return False
    if expected == 0:
        return True
    return abs(counted - expected) * 100 > tolerance_pct * expected


# Which status a count's shortfall comes off first: the units handled most, then those set
# aside. A count compares every unit at a place, whatever its status (a counter sees the
# bin, not the statuses); a surplus is available stock.
SHORTFALL_ORDER = (StockStatus.AVAILABLE, StockStatus.HOLD, StockStatus.QUARANTINE,
                   StockStatus.DAMAGED)  # fmt: skip


def count_variance_by_status(
    variance: int, free: Mapping[StockStatus, int]
) -> list[tuple[StockStatus, int]]:
    """A count line's variance as signed changes per status.

    A surplus goes to ``available``; a shortfall comes off the ``free`` units of each
    status in ``SHORTFALL_ORDER``. What no status can give is left on ``available``, where
    applying it fails as taking allocated stock does.
    """
    if variance >= 0:
        return [(StockStatus.AVAILABLE, variance)] if variance else []
    changes: dict[StockStatus, int] = {}
    missing = -variance
    for status in SHORTFALL_ORDER:
        taken = min(missing, max(free.get(status, 0), 0))
        if taken:
            changes[status] = -taken
            missing -= taken
    if missing:
        changes[StockStatus.AVAILABLE] = changes.get(StockStatus.AVAILABLE, 0) - missing
    return [(status, changes[status]) for status in SHORTFALL_ORDER if status in changes]


def accuracy_pct(lines: list[tuple[int, int]]) -> float:
    """Share of (expected, counted) lines that matched, in percent (100 for none)."""
    if not lines:
        return 100.0
    exact = sum(1 for expected, counted in lines if expected == counted)
    return round(exact * 100 / len(lines), 2)
