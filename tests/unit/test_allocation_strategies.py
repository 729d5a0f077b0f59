"""The allocation strategies, as pure functions, against generated stock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from wms.domain.allocation import (
    Candidate,
    LineNeed,
    OrderStatus,
    allocatable_location,
    eligible,
    min_expiry_for,
    plan_order,
    rank,
    status_after_allocation,
)
from wms.domain.settings import AllocationStrategy, BackorderPolicy

TODAY = date(2026, 11, 29)


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(0, 12))
    made = []
    for balance_id in range(1, count + 1):
        made.append(
            Candidate(
                balance_id=balance_id,
                product_id=draw(st.sampled_from([1, 2])),
                location_code=f"L{balance_id}",
                location_type=draw(st.sampled_from(["storage", "pick", "dock"])),
                pick_sequence=draw(st.integers(0, 100)),
                lot_code=draw(st.sampled_from(["", "A", "B"])),
                expiry=draw(st.none() | st.dates(TODAY, TODAY + timedelta(days=365))),
                received_at=datetime(2026, 1, 1, tzinfo=UTC)
                + timedelta(hours=draw(st.integers(0, 5000))),
                free=draw(st.integers(0, 20)),
            )
        )
    return made


@st.composite
def needs(draw: st.DrawFn) -> list[LineNeed]:
    count = draw(st.integers(1, 5))
    strategy = draw(st.sampled_from(list(AllocationStrategy)))
    return [
        LineNeed(
            line_no=line_no,
            product_id=draw(st.sampled_from([1, 2])),
            quantity=draw(st.integers(1, 40)),
            strategy=strategy,
            lot_code=draw(st.sampled_from(["", "", "A"])),
            min_expiry=draw(st.none() | st.dates(TODAY, TODAY + timedelta(days=200))),
        )
        for line_no in range(1, count + 1)
    ]


@given(needs(), candidates(), st.sampled_from(list(BackorderPolicy)))
def test_a_plan_never_takes_more_than_is_free_or_than_a_line_needs(
    lines: list[LineNeed], stock: list[Candidate], policy: BackorderPolicy
) -> None:
    plan = plan_order(lines, stock, policy)
    free = {c.balance_id: c.free for c in stock}
    taken: dict[int, int] = {}
    per_line: dict[int, int] = {}
    by_id = {c.balance_id: c for c in stock}
    by_line = {n.line_no: n for n in lines}
    for reservation in plan.reservations:
        assert reservation.quantity > 0
        taken[reservation.balance_id] = taken.get(reservation.balance_id, 0) + reservation.quantity
        per_line[reservation.line_no] = per_line.get(reservation.line_no, 0) + reservation.quantity
        assert eligible(by_id[reservation.balance_id], by_line[reservation.line_no])
    assert all(taken[b] <= free[b] for b in taken)
    for need in lines:
        got = per_line.get(need.line_no, 0)
        assert got + plan.short.get(need.line_no, 0) == need.quantity or (
            policy == BackorderPolicy.SHIP_COMPLETE and got == 0
        )


@given(needs(), candidates())
def test_ship_complete_reserves_everything_or_nothing(
    lines: list[LineNeed], stock: list[Candidate]
) -> None:
    plan = plan_order(lines, stock, BackorderPolicy.SHIP_COMPLETE)
    assert plan.reserved in {0, sum(n.quantity for n in lines)}


@given(candidates(), st.integers(1, 60), st.none() | st.dates(TODAY, TODAY + timedelta(days=200)))
def test_fefo_takes_the_earliest_eligible_expiry_first_and_respects_shelf_life(
    stock: list[Candidate], quantity: int, min_expiry: date | None
) -> None:
    need = LineNeed(1, 1, quantity, AllocationStrategy.FEFO, min_expiry=min_expiry)
    plan = plan_order([need], stock, BackorderPolicy.BACKORDER)
    by_id = {c.balance_id: c for c in stock}
    chosen = [by_id[r.balance_id] for r in plan.reservations]
    for candidate in chosen:
        if min_expiry is not None and candidate.expiry is not None:
            assert candidate.expiry >= min_expiry
    expiries = [c.expiry or date.max for c in chosen]
    assert expiries == sorted(expiries)
    if chosen:
        # Nothing eligible that expires sooner than the last chosen balance was left over.
        last = expiries[-1]
        untouched = [
            c
            for c in stock
            if eligible(c, need) and c not in chosen and (c.expiry or date.max) < last
        ]
        assert untouched == []


def test_each_strategy_has_its_order() -> None:
    def make(balance_id: int, **fields: object) -> Candidate:
        base: dict[str, object] = {
            "balance_id": balance_id, "product_id": 1, "location_code": f"L{balance_id}",
            "location_type": "storage", "pick_sequence": 50, "lot_code": "",
            "expiry": None, "received_at": datetime(2026, 1, 1, tzinfo=UTC), "free": 5,
        }  # fmt: skip
        base.update(fields)
        return Candidate(**base)  # type: ignore[arg-type]

    old = make(1, received_at=datetime(2025, 1, 1, tzinfo=UTC), expiry=date(2027, 1, 1))
    new = make(2, received_at=datetime(2026, 6, 1, tzinfo=UTC), expiry=date(2026, 12, 1))
    face = make(3, location_type="pick", pick_sequence=1, free=50)
    assert [c.balance_id for c in rank(AllocationStrategy.FIFO, [new, old])] == [1, 2]
    assert [c.balance_id for c in rank(AllocationStrategy.LIFO, [old, new])] == [2, 1]
    assert [c.balance_id for c in rank(AllocationStrategy.FEFO, [old, new])] == [2, 1]
    assert rank(AllocationStrategy.PICK_FACE_FIRST, [old, new, face])[0] is face
    one_place = plan_order(
        [LineNeed(1, 1, 30, AllocationStrategy.FEWEST_LOCATIONS)],
        [old, new, face],
        BackorderPolicy.BACKORDER,
    )
    assert [r.balance_id for r in one_place.reservations] == [3]


def test_order_status_follows_what_was_allocated() -> None:
    assert status_after_allocation(total=5, allocated=5, cancelled=0) == OrderStatus.ALLOCATED
    assert status_after_allocation(total=5, allocated=2, cancelled=0) == (
        OrderStatus.PARTIALLY_ALLOCATED
    )
    assert status_after_allocation(total=5, allocated=0, cancelled=0) == OrderStatus.BACKORDERED
    assert status_after_allocation(total=5, allocated=2, cancelled=3) == OrderStatus.ALLOCATED
    assert status_after_allocation(total=5, allocated=0, cancelled=5) == OrderStatus.CANCELLED


def test_a_line_takes_stock_until_its_expiry_day_and_a_shelf_life_before_it() -> None:
    assert min_expiry_for(TODAY, None) == TODAY  # without a shelf life: not expired
    assert min_expiry_for(TODAY, 0) == TODAY
    assert min_expiry_for(TODAY, 30) == TODAY + timedelta(days=30)


def test_only_active_storage_and_pick_locations_are_allocatable() -> None:
    assert allocatable_location("storage", active=True)
    assert allocatable_location("pick", active=True)
    assert not allocatable_location("storage", active=False)
    assert not allocatable_location("dock", active=True)
    assert not allocatable_location("staging", active=True)
