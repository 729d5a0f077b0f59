"""Allocation strategies: which stock an order's lines reserve (pure, no I/O).

The store locks the candidate balances, hands them here with their free quantities,
and applies the plan. A plan never reserves more than a balance's free quantity nor
more than a line still needs; shared balances are shared across the lines of one
order in line order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from wms.domain.settings import AllocationStrategy, BackorderPolicy

ALLOCATABLE_LOCATION_TYPES = frozenset({"storage", "pick"})


def allocatable_location(location_type: str, active: bool) -> bool:
    """Whether allocation may take stock at a location: an active storage or pick place."""
    return active and location_type in ALLOCATABLE_LOCATION_TYPES


class OrderStatus(StrEnum):
    """The life of an order (API.md)."""

    RECEIVED = "received"
    ALLOCATED = "allocated"
    PARTIALLY_ALLOCATED = "partially_allocated"
    BACKORDERED = "backordered"
    RELEASED = "released"
    PICKING = "picking"
    PICKED = "picked"
    PACKED = "packed"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


ALLOCATABLE_STATUSES = frozenset(
    {
        OrderStatus.RECEIVED,
        OrderStatus.BACKORDERED,
        OrderStatus.PARTIALLY_ALLOCATED,
        OrderStatus.ALLOCATED,
    }
)
# A released order may be cancelled until it ships: picked stock is put back.
CANCELLABLE_STATUSES = ALLOCATABLE_STATUSES | {
    OrderStatus.RELEASED,
    OrderStatus.PICKING,
    OrderStatus.PICKED,
    OrderStatus.PACKED,
}
PICKED_STATUSES = frozenset({OrderStatus.PICKED, OrderStatus.PACKED})


@dataclass(frozen=True)
class Candidate:
    """A balance of available stock that a line of this product may reserve."""

    balance_id: int
    product_id: int
    location_code: str
    location_type: str
    pick_sequence: int
    lot_code: str
    expiry: date | None
    received_at: datetime
    free: int


@dataclass(frozen=True)
class LineNeed:
    """What one order line still needs, and how it wants its stock chosen."""

    line_no: int
    product_id: int
    quantity: int
    strategy: AllocationStrategy
    lot_code: str = ""
    min_expiry: date | None = None


@dataclass(frozen=True)
class Reservation:
    """Reserve ``quantity`` of balance ``balance_id`` for line ``line_no``."""

    line_no: int
    balance_id: int
    quantity: int


@dataclass
class OrderPlan:
    """Reservations for an order and what each line could not get."""

    reservations: list[Reservation] = field(default_factory=list)
    short: dict[int, int] = field(default_factory=dict)

    @property
    def reserved(self) -> int:
        """Units reserved by the plan."""
        return sum(r.quantity for r in self.reservations)


def min_expiry_for(today: date, shelf_life_days: int | None) -> date:
    """The earliest expiry a line accepts: today plus its minimum shelf life (none: today).

    Without a minimum shelf life a lot is still sellable on its expiry day, never after:
    receipts refuse expired lots, but stock also expires on the shelf.
    """
    return today + timedelta(days=shelf_life_days or 0)


def eligible(candidate: Candidate, need: LineNeed) -> bool:
    """Whether a balance may serve a line at all (lot, shelf life, location type)."""
    if candidate.product_id != need.product_id or candidate.free <= 0:
        return False
    if candidate.location_type not in ALLOCATABLE_LOCATION_TYPES:
        return False
    if need.lot_code and candidate.lot_code != need.lot_code:
        return False
    return not (
        need.min_expiry is not None
        and candidate.expiry is not None
        and candidate.expiry < need.min_expiry
    )


def _far_future() -> date:
    return date.max


_ORDERINGS: dict[AllocationStrategy, Callable[[Candidate], Any]] = {
    AllocationStrategy.FIFO: lambda c: (c.received_at, c.balance_id),
    AllocationStrategy.LIFO: lambda c: (-c.received_at.timestamp(), -c.balance_id),
    AllocationStrategy.FEFO: lambda c: (c.expiry or _far_future(), c.received_at, c.balance_id),
    AllocationStrategy.PICK_FACE_FIRST: lambda c: (
        c.location_type != "pick",
        c.pick_sequence,
        c.received_at,
        c.balance_id,
    ),
    AllocationStrategy.FEWEST_LOCATIONS: lambda c: (-c.free, c.received_at, c.balance_id),
}


def rank(strategy: AllocationStrategy, candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates in the order ``strategy`` takes them."""
    return sorted(candidates, key=_ORDERINGS[strategy])


def plan_line(
    need: LineNeed, candidates: list[Candidate], free: dict[int, int]
) -> list[Reservation]:
    """Reserve for one line from ``candidates``, drawing down ``free`` (balance → units)."""
    usable = [c for c in candidates if eligible(c, need) and free.get(c.balance_id, 0) > 0]
    ranked = rank(need.strategy, usable)
    if need.strategy == AllocationStrategy.FEWEST_LOCATIONS:
        # One location that covers the whole line beats several; the smallest such
        # balance keeps big ones whole for big lines.
        covering = [c for c in ranked if free[c.balance_id] >= need.quantity]
        if covering:
            ranked = [min(covering, key=lambda c: (free[c.balance_id], c.balance_id))]
    reservations = []
    still = need.quantity
    for candidate in ranked:
        if still == 0:
            break
        take = min(still, free[candidate.balance_id])
        if take <= 0:
            continue
        free[candidate.balance_id] -= take
        still -= take
        reservations.append(Reservation(need.line_no, candidate.balance_id, take))
    return reservations


def plan_order(
    needs: list[LineNeed], candidates: list[Candidate], policy: BackorderPolicy
) -> OrderPlan:
    """Reserve for every line in line order; ``ship_complete`` reserves all or nothing."""
    free = {c.balance_id: c.free for c in candidates}
    by_product: dict[int, list[Candidate]] = {}
    for candidate in candidates:
        by_product.setdefault(candidate.product_id, []).append(candidate)
    plan = OrderPlan()
    for need in sorted(needs, key=lambda n: n.line_no):
        reserved = plan_line(need, by_product.get(need.product_id, []), free)
        plan.reservations.extend(reserved)
        got = sum(r.quantity for r in reserved)
        if got < need.quantity:
            plan.short[need.line_no] = need.quantity - got
    if policy == BackorderPolicy.SHIP_COMPLETE and plan.short:
        return OrderPlan(reservations=[], short={n.line_no: n.quantity for n in needs})
    return plan


def status_after_allocation(*, total: int, allocated: int, cancelled: int) -> OrderStatus:
    """The order status once allocation ran: allocated, partially, backordered or cancelled."""
    if allocated + cancelled >= total:
        return OrderStatus.ALLOCATED if allocated > 0 else OrderStatus.CANCELLED
    if allocated > 0:
        return OrderStatus.PARTIALLY_ALLOCATED
    return OrderStatus.BACKORDERED
