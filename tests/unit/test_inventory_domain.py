"""The pure stock rules."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wms.domain.errors import FieldError
from wms.domain.inventory import (
    BalanceKey,
    Delta,
    LocationUnavailableError,
    LotExpiryConflictError,
    StockStatus,
    accuracy_pct,
    api_lot,
    check_capacity,
    check_expiry,
    count_variance_by_status,
    lock_order,
    move_deltas,
    stored_lot,
    variance_needs_recount,
)

keys = st.builds(
    BalanceKey,
    st.integers(1, 3),
    st.integers(1, 5),
    st.integers(1, 5),
    st.sampled_from(["", "L1", "L2"]),
    st.sampled_from(list(StockStatus)),
)


@given(st.lists(keys, min_size=2, max_size=6), st.randoms())
def test_lock_order_is_the_same_whatever_order_keys_come_in(
    balance_keys: list[BalanceKey], rng: object
) -> None:
    shuffled = list(balance_keys)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert lock_order(shuffled) == lock_order(balance_keys)
    ordered = lock_order(balance_keys)
    assert ordered == sorted(set(balance_keys))
    assert len(ordered) == len(set(balance_keys))


def test_lot_is_required_for_tracked_products_and_refused_for_others() -> None:
    assert stored_lot("L1", lot_tracked=True, sku="S") == "L1"
    assert stored_lot(None, lot_tracked=False, sku="S") == ""
    with pytest.raises(FieldError):
        stored_lot(None, lot_tracked=True, sku="S")
    with pytest.raises(FieldError):
        stored_lot("L1", lot_tracked=False, sku="S")
    assert api_lot("") is None
    assert api_lot("L1") == "L1"


def test_a_known_lot_keeps_its_expiry_and_refuses_another() -> None:
    existing = date(2027, 1, 1)
    assert check_expiry("L1", None, existing, known=True) == existing
    assert check_expiry("L1", existing, existing, known=True) == existing
    with pytest.raises(LotExpiryConflictError):
        check_expiry("L1", date(2027, 2, 1), existing, known=True)
    assert check_expiry("L2", date(2027, 2, 1), None, known=False) == date(2027, 2, 1)


def test_stock_arriving_dates_a_known_lot_without_an_expiry() -> None:
    # A lot stored before expiry tracking was turned on refused every expiry: never receivable.
    given, other = date(2031, 1, 31), date(2031, 2, 28)
    assert check_expiry("L1", given, None, known=True, may_set=True) == given
    with pytest.raises(LotExpiryConflictError):
        check_expiry("L1", other, given, known=True, may_set=True)  # dated: it stays
    with pytest.raises(LotExpiryConflictError):
        check_expiry("L1", given, None, known=True)  # taking stock out dates nothing


def test_capacity_counts_what_is_stored_or_promised_and_inactive_locations_take_nothing() -> None:
    check_capacity(code="B", active=True, capacity_units=10, stored_units=4, adding=6)
    check_capacity(code="B", active=True, capacity_units=None, stored_units=10**9, adding=1)
    with pytest.raises(LocationUnavailableError):
        check_capacity(code="B", active=True, capacity_units=10, stored_units=4, adding=7)
    with pytest.raises(LocationUnavailableError):
        check_capacity(code="B", active=False, capacity_units=None, stored_units=0, adding=1)
    check_capacity(code="B", active=True, capacity_units=10, stored_units=4, promised_units=2,
                   adding=4)  # fmt: skip
    with pytest.raises(LocationUnavailableError):
        check_capacity(code="B", active=True, capacity_units=10, stored_units=4,
                       promised_units=2, adding=5)  # fmt: skip


def test_a_move_takes_from_one_key_and_puts_at_another() -> None:
    a = BalanceKey(1, 1, 1, "", StockStatus.AVAILABLE)
    b = BalanceKey(1, 2, 1, "", StockStatus.AVAILABLE)
    assert move_deltas(a, b, 3) == [Delta(a, -3), Delta(b, 3)]
    with pytest.raises(FieldError):
        move_deltas(a, a, 3)
    with pytest.raises(FieldError):
        move_deltas(a, b, 0)


@pytest.mark.parametrize(
    ("expected", "counted", "tolerance", "recount"),
    [(100, 100, 0, False), (100, 95, 5, False), (100, 94, 5, True), (0, 1, 100, True),
     (5, 4, 5, True), (5, 4, 20, False)],
)  # fmt: skip
def test_recount_when_the_variance_exceeds_the_tolerance(
    expected: int, counted: int, tolerance: float, recount: bool
) -> None:
    assert variance_needs_recount(expected, counted, tolerance) is recount


def test_accuracy_is_the_share_of_exact_lines() -> None:
    assert accuracy_pct([]) == 100.0
    assert accuracy_pct([(1, 1), (2, 3), (4, 4)]) == 66.67


@pytest.mark.parametrize(
    ("variance", "free", "changes"),
    [
        (0, {}, []),
        (4, {StockStatus.QUARANTINE: 3}, [(StockStatus.AVAILABLE, 4)]),
        (-2, {StockStatus.AVAILABLE: 5, StockStatus.QUARANTINE: 3}, [(StockStatus.AVAILABLE, -2)]),
        (
            -6,
            {StockStatus.AVAILABLE: 5, StockStatus.QUARANTINE: 3},
            [(StockStatus.AVAILABLE, -5), (StockStatus.QUARANTINE, -1)],
        ),
        (
            -3,
            {StockStatus.DAMAGED: 2, StockStatus.HOLD: 2},
            [(StockStatus.HOLD, -2), (StockStatus.DAMAGED, -1)],
        ),
        # More than every status can give: the rest stays on available, which refuses it.
        (
            -5,
            {StockStatus.AVAILABLE: 1, StockStatus.QUARANTINE: 1},
            [(StockStatus.AVAILABLE, -4), (StockStatus.QUARANTINE, -1)],
        ),
        (-2, {StockStatus.AVAILABLE: -3}, [(StockStatus.AVAILABLE, -2)]),
    ],
)
def test_a_count_variance_is_split_by_status(
    variance: int, free: dict[StockStatus, int], changes: list[tuple[StockStatus, int]]
) -> None:
    assert count_variance_by_status(variance, free) == changes
    assert sum(q for _, q in changes) == variance
