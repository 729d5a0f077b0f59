"""The pure inbound rules: tolerance, line matching, expiry, discrepancies, ASN content."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wms.domain.errors import FieldError, InvalidStateError
from wms.domain.inbound import (
    AsnContent,
    AsnLine,
    AsnStatus,
    Condition,
    OverReceiptError,
    Received,
    check_closable,
    check_not_expired,
    check_over_receipt,
    check_receivable,
    discrepancies,
    match_line,
    receivable,
    stock_status,
    tolerance_pct,
)
from wms.domain.inventory import StockStatus


def test_the_products_tolerance_overrides_the_tenants() -> None:
    assert tolerance_pct(None, Decimal(5)) == Decimal(5)
    assert tolerance_pct(Decimal(0), Decimal(5)) == Decimal(0)
    assert tolerance_pct(Decimal(12), Decimal(5)) == Decimal(12)


def test_over_receipt_is_refused_beyond_the_tolerance_with_the_numbers() -> None:
    check_over_receipt(expected=100, received=100, requested=10, tolerance=Decimal(10), sku="S")
    with pytest.raises(OverReceiptError) as refused:
        check_over_receipt(expected=100, received=100, requested=11, tolerance=Decimal(10),
                           sku="S")  # fmt: skip
    assert refused.value.extensions == {"expected": 100, "received": 100, "requested": 11,
                                        "allowed": 110}  # fmt: skip


@given(st.integers(1, 10_000), st.decimals(0, 100, places=2))
def test_the_receivable_quantity_never_falls_below_expected_nor_exceeds_the_tolerance(
    expected: int, tolerance: Decimal
) -> None:
    allowed = receivable(expected, tolerance)
    assert expected <= allowed <= expected * (100 + tolerance) / 100


def test_a_receipt_matches_the_same_lot_then_the_no_lot_line_then_the_first() -> None:
    lines = [AsnLine(1, 7, "L1", None, 10), AsnLine(2, 7, "", None, 10),
             AsnLine(3, 8, "L5", None, 10)]  # fmt: skip
    assert match_line(lines, 7, "L1") == lines[0]
    assert match_line(lines, 7, "L2") == lines[1]
    assert match_line(lines, 8, "L6") == lines[2]
    assert match_line(lines, 9, "") is None


def test_damaged_goods_are_stocked_as_damaged() -> None:
    assert stock_status(Condition.DAMAGED) == StockStatus.DAMAGED
    assert stock_status(Condition.GOOD) == StockStatus.AVAILABLE


def test_an_expiry_before_today_is_refused_on_its_field() -> None:
    today = date(2026, 5, 10)
    check_not_expired(today, today, "/expiry")
    check_not_expired(None, today, "/expiry")
    with pytest.raises(FieldError) as expired:
        check_not_expired(today - timedelta(days=1), today, "/lines/2/expiry")
    assert expired.value.errors[0][0] == "/lines/2/expiry"


def test_a_closed_asn_receives_nothing_and_closes_once() -> None:
    check_receivable(AsnStatus.RECEIVING, 1)
    check_closable(AsnStatus.OPEN, 1)
    with pytest.raises(InvalidStateError):
        check_receivable(AsnStatus.CLOSED, 1)
    with pytest.raises(InvalidStateError):
        check_closable(AsnStatus.CLOSED, 1)


def test_the_report_shows_short_over_and_damaged_per_line_and_unexpected_products() -> None:
    lines = [AsnLine(1, 7, "", None, 100), AsnLine(2, 8, "", None, 10)]
    received = {1: Received(60, 4), 2: Received(12, 0)}
    report = discrepancies(lines, received, {(9, "L1"): Received(5, 0)})
    assert [(d.line_no, d.expected, d.received_good, d.received_damaged, d.short, d.over)
            for d in report] == [(1, 100, 60, 4, 36, 0), (2, 10, 12, 0, 0, 2),
                                 (None, 0, 5, 0, 0, 5)]  # fmt: skip


@given(st.integers(1, 500), st.integers(0, 500), st.integers(0, 500))
def test_short_and_over_balance_expected_against_received(
    expected: int, good: int, damaged: int
) -> None:
    (entry,) = discrepancies([AsnLine(1, 1, "", None, expected)], {1: Received(good, damaged)}, {})
    assert expected - entry.short + entry.over == good + damaged
    assert min(entry.short, entry.over) == 0


def test_asn_content_ignores_line_order_and_the_offset_of_the_same_instant() -> None:
    lines = [AsnLine(1, 7, "", None, 10), AsnLine(2, 8, "L1", date(2030, 1, 1), 5)]
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    same_instant = at.astimezone(timezone(timedelta(hours=-3)))
    renumbered = [AsnLine(1, 8, "L1", date(2030, 1, 1), 5), AsnLine(2, 7, "", None, 10)]
    assert AsnContent.of("SP1", "ACME", at, lines) == AsnContent.of(
        "SP1", "ACME", same_instant, renumbered
    )
    assert AsnContent.of("SP1", "ACME", at, lines) != AsnContent.of("SP1", "ACME", at, lines[:1])
    assert AsnContent.of("SP1", "ACME", at, lines) != AsnContent.of("SP1", "ACME", None, lines)
