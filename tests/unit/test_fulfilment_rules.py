"""Pure fulfilment rules: task building in walking order, shortage charging, wave limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wms.domain.picking import (
    Claim,
    OverPickError,
    PickMismatchError,
    charge_shortage,
    check_match,
    check_quantity,
)
from wms.domain.waves import (
    Allocated,
    PickMethod,
    Place,
    WaveCandidate,
    build_tasks,
    take_orders,
    tote_names,
)

FAR = Place(1, "Z-09", 90, 7, "SKU-1", "")
NEAR = Place(2, "A-01", 10, 7, "SKU-1", "")
SAME_SEQUENCE = Place(3, "A-00", 10, 7, "SKU-1", "")
STOCK = [
    Allocated(order_id=1, line_no=1, place=FAR, quantity=2),
    Allocated(order_id=2, line_no=1, place=FAR, quantity=3),
    Allocated(order_id=1, line_no=2, place=NEAR, quantity=1),
    Allocated(order_id=2, line_no=2, place=SAME_SEQUENCE, quantity=4),
]


def test_discrete_tasks_are_one_per_order_line_in_walking_order() -> None:
    tasks = build_tasks(PickMethod.DISCRETE, STOCK)
    assert [(t.place.location_code, t.quantity) for t in tasks] == [
        ("A-00", 4), ("A-01", 1), ("Z-09", 2), ("Z-09", 3),
    ]  # fmt: skip


def test_batch_tasks_merge_every_order_at_one_place() -> None:
    tasks = build_tasks(PickMethod.BATCH, STOCK)
    assert [(t.place.location_code, t.quantity) for t in tasks] == [
        ("A-00", 4), ("A-01", 1), ("Z-09", 5),
    ]  # fmt: skip
    assert [(s.order_id, s.quantity) for s in tasks[-1].shares] == [(1, 2), (2, 3)]


def test_cluster_tasks_are_per_order_and_place_with_the_order_tote() -> None:
    totes = tote_names([2, 1])
    tasks = build_tasks(PickMethod.CLUSTER, STOCK, totes)
    assert [(t.place.location_code, t.shares[0].order_id, t.shares[0].tote) for t in tasks] == [
        ("A-00", 2, "T01"), ("A-01", 1, "T02"), ("Z-09", 1, "T02"), ("Z-09", 2, "T01"),
    ]  # fmt: skip


def test_a_shortage_falls_on_the_least_urgent_orders_priority_then_ship_by() -> None:
    early = datetime(2026, 1, 1, tzinfo=UTC)
    late = datetime(2026, 2, 1, tzinfo=UTC)
    claims = [
        Claim(order_id=1, line_no=1, quantity=3, priority=5, ship_by=early),
        Claim(order_id=2, line_no=1, quantity=3, priority=1, ship_by=None),
        Claim(order_id=3, line_no=1, quantity=3, priority=5, ship_by=late),
        Claim(order_id=4, line_no=1, quantity=3, priority=5, ship_by=None),
    ]
    assert charge_shortage(claims, 7) == {(2, 1): 3, (1, 1): 3, (3, 1): 1, (4, 1): 0}


def test_wave_limits_take_whole_orders_within_max_orders_and_max_lines() -> None:
    candidates = [WaveCandidate(1, 3), WaveCandidate(2, 5), WaveCandidate(3, 2)]
    assert take_orders(candidates, max_orders=None, max_lines=5) == [1, 3]
    assert take_orders(candidates, max_orders=2, max_lines=None) == [1, 2]


def test_scans_must_match_and_never_over_pick() -> None:
    check_match("/lot", expected=None, given=None, what="lot")
    with pytest.raises(PickMismatchError):
        check_match("/location", expected="A-01", given="A-02", what="location")
    check_quantity(2, 3)
    with pytest.raises(OverPickError):
        check_quantity(4, 3)
