"""Waves and pick tasks: which orders a wave takes and the tasks a release creates (no I/O).

A release turns the allocations of a wave's orders into pick tasks: ``discrete`` one per
order line and place, ``batch`` one per place (location, product, lot) across orders,
``cluster`` one per order and place, each order picked into its own tote. Tasks are
numbered in walking order: the location's ``pick_sequence``, then its code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class PickMethod(StrEnum):
    """How a wave's allocations are grouped into tasks."""

    DISCRETE = "discrete"
    BATCH = "batch"
    CLUSTER = "cluster"


class WaveStatus(StrEnum):
    """A wave is open until released; completed when its last task is done."""

    OPEN = "open"
    RELEASED = "released"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PickTaskStatus(StrEnum):
    """A task is open until picked in full (confirmed) or in part (short)."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    SHORT = "short"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class WaveCandidate:
    """An allocated order a filter matched, in the order the wave prefers it."""

    order_id: int
    line_count: int


def take_orders(
    candidates: Iterable[WaveCandidate], *, max_orders: int | None, max_lines: int | None
) -> list[int]:
    """The candidates that fit the wave's limits, in order; an order never splits."""
    taken: list[int] = []
    lines = 0
    for candidate in candidates:
        if max_orders is not None and len(taken) >= max_orders:
            break
        if max_lines is not None and lines + candidate.line_count > max_lines:
            continue  # a smaller order further on may still fit
        taken.append(candidate.order_id)
        lines += candidate.line_count
    return taken


def tote_names(order_ids: Iterable[int]) -> dict[int, str]:
    """One tote per order of a cluster wave, in the wave's order: T01, T02, ..."""
    return {order_id: f"T{index:02d}" for index, order_id in enumerate(order_ids, start=1)}


@dataclass(frozen=True)
class Place:
    """Where a task picks: a location (with its walking position), a product and a lot."""

    location_id: int
    location_code: str
    pick_sequence: int
    product_id: int
    sku: str
    lot_code: str

    def walk_key(self) -> tuple[int, str, str, str]:
        """Walking order: pick sequence, then location code (then SKU and lot, to be stable)."""
        return (self.pick_sequence, self.location_code, self.sku, self.lot_code)


@dataclass(frozen=True)
class Allocated:
    """Stock reserved for one order line at one place."""

    order_id: int
    line_no: int
    place: Place
    quantity: int


@dataclass(frozen=True)
class Share:
    """The part of a task that serves one order line."""

    order_id: int
    line_no: int
    quantity: int
    tote: str | None = None


@dataclass
class TaskPlan:
    """A pick task to create: a place and the order lines it serves."""

    place: Place
    shares: list[Share] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        """Units to pick at the place."""
        return sum(share.quantity for share in self.shares)


def build_tasks(
    method: PickMethod, allocated: Iterable[Allocated], totes: dict[int, str] | None = None
) -> list[TaskPlan]:
    """The tasks of a release, in walking order (their position is their sequence)."""
    groups: dict[tuple[object, ...], TaskPlan] = {}
    for item in allocated:
        if item.quantity <= 0:
            continue
        if method == PickMethod.BATCH:
            group: tuple[object, ...] = (item.place,)
        elif method == PickMethod.CLUSTER:
            group = (item.place, item.order_id)
        else:
            group = (item.place, item.order_id, item.line_no)
        tote = (totes or {}).get(item.order_id) if method == PickMethod.CLUSTER else None
        plan = groups.setdefault(group, TaskPlan(item.place))
        for index, share in enumerate(plan.shares):
            if (share.order_id, share.line_no) == (item.order_id, item.line_no):
                plan.shares[index] = Share(
                    share.order_id, share.line_no, share.quantity + item.quantity, tote
                )
                break
        else:
            plan.shares.append(Share(item.order_id, item.line_no, item.quantity, tote))
    plans = list(groups.values())
    for plan in plans:
        plan.shares.sort(key=lambda s: (s.order_id, s.line_no))
    return sorted(
        plans, key=lambda p: (*p.place.walk_key(), [(s.order_id, s.line_no) for s in p.shares])
    )
