"""Inbound in the warehouse's terms: ASNs, what a scan may receive, and discrepancies.

Quantities are base units. A receipt is matched to one ASN line (same product and lot,
else the product's line that names no lot, else the product's first line); over-receipt
is allowed per line up to a tolerance (the product's override, else the tenant's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from wms.domain.errors import ConflictError, FieldError, InvalidStateError
from wms.domain.inventory import StockStatus


class AsnStatus(StrEnum):
    """``open`` until the first receipt, ``receiving`` until closed."""

    OPEN = "open"
    RECEIVING = "receiving"
    CLOSED = "closed"


class Condition(StrEnum):
    """How goods arrived; damaged goods are stocked with status ``damaged``."""

    GOOD = "good"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class AsnLine:
    """An expected line: product, lot ('' = any), expiry, quantity in base units."""

    line_no: int
    product_id: int
    lot_code: str
    expiry: date | None
    expected: int


@dataclass(frozen=True)
class AsnContent:
    """What identifies an ASN's content, to tell a repeated create from a conflicting one."""

    warehouse: str
    supplier: str
    expected_at: datetime | None
    lines: tuple[tuple[int, str, date | None, int], ...]  # product, lot, expiry, expected

    @staticmethod
    def of(
        warehouse: str, supplier: str, expected_at: datetime | None, lines: Iterable[AsnLine]
    ) -> AsnContent:
        """Content with lines in one order, so two equal ASNs compare equal."""
        key = tuple(sorted((ln.product_id, ln.lot_code, ln.expiry, ln.expected) for ln in lines))
        return AsnContent(warehouse, supplier, expected_at, key)


@dataclass(frozen=True)
class Received:
    """Base units received so far against one ASN line (or unexpected: line None)."""

    good: int = 0
    damaged: int = 0

    @property
    def total(self) -> int:
        """Everything physically received, good or damaged."""
        return self.good + self.damaged

    def plus(self, quantity: int, condition: Condition) -> Received:
        """This plus ``quantity`` more in ``condition``."""
        if condition == Condition.GOOD:
            return Received(self.good + quantity, self.damaged)
        return Received(self.good, self.damaged + quantity)


@dataclass(frozen=True)
class Discrepancy:
    """One line of the close report: expected against received, short and over."""

    line_no: int | None
    product_id: int
    lot_code: str
    expected: int
    received_good: int
    received_damaged: int
    short: int
    over: int


class OverReceiptError(ConflictError):
    """A receipt would take a line beyond its over-receipt tolerance."""

    slug = "over-receipt"

    def __init__(
        self, detail: str, *, expected: int, received: int, requested: int, allowed: int
    ) -> None:
        super().__init__(
            detail, expected=expected, received=received, requested=requested, allowed=allowed
        )


class NotOnAsnError(ConflictError):
    """The product is not on the ASN and the request did not allow unexpected products."""

    slug = "not-on-asn"


def stock_status(condition: Condition) -> StockStatus:
    """The status received stock gets."""
    return StockStatus.DAMAGED if condition == Condition.DAMAGED else StockStatus.AVAILABLE


def tolerance_pct(product_override: Decimal | None, tenant_setting: Decimal) -> Decimal:
    """The over-receipt tolerance in percent: the product's override, else the tenant's."""
    return tenant_setting if product_override is None else product_override


def receivable(expected: int, tolerance: Decimal) -> int:
    """Most base units a line may receive in total (rounded down)."""
    return int(expected * (100 + tolerance) // 100)


def check_over_receipt(
    *, expected: int, received: int, requested: int, tolerance: Decimal, sku: str
) -> None:
    """Refuse a receipt beyond ``expected`` plus the tolerance (409 with the numbers)."""
    allowed = receivable(expected, tolerance)
    if received + requested > allowed:
        raise OverReceiptError(
            f"{sku}: {expected} expected, {received} received, {requested} more exceeds "
            f"the {tolerance}% tolerance ({allowed} at most)",
            expected=expected,
            received=received,
            requested=requested,
            allowed=allowed,
        )


def match_line(lines: Sequence[AsnLine], product_id: int, lot_code: str) -> AsnLine | None:
    """The ASN line a receipt counts against: same lot, else the no-lot line, else the first."""
    mine = [line for line in lines if line.product_id == product_id]
    for wanted in (lot_code, ""):
        for line in mine:
            if line.lot_code == wanted:
                return line
    return mine[0] if mine else None


def check_receivable(status: AsnStatus, asn_id: int) -> None:
    """A closed ASN receives nothing more."""
    if status == AsnStatus.CLOSED:
        raise InvalidStateError(f"ASN {asn_id} is closed", current_status=status)


def check_closable(status: AsnStatus, asn_id: int) -> None:
    """An ASN is closed once."""
    if status == AsnStatus.CLOSED:
        raise InvalidStateError(f"ASN {asn_id} is already closed", current_status=status)


def check_not_expired(expiry: date | None, today: date, field: str) -> None:
    """Refuse an expiry date before today (in the warehouse's time zone)."""
    if expiry is not None and expiry < today:
        raise FieldError(field, f"expiry {expiry} is in the past (today is {today})")


def discrepancies(
    lines: Sequence[AsnLine],
    received: dict[int, Received],
    unexpected: dict[tuple[int, str], Received],
) -> list[Discrepancy]:
    """Per ASN line, then per unexpected product and lot: expected, received, short, over.

    ``short`` and ``over`` compare everything received (good and damaged) with the
    expected quantity; damaged units are reported on their own as well.
    """
    report = []
    for line in lines:
        got = received.get(line.line_no, Received())
        report.append(_entry(line.line_no, line.product_id, line.lot_code, line.expected, got))
    for (product_id, lot_code), got in sorted(unexpected.items()):
        report.append(_entry(None, product_id, lot_code, 0, got))
    return report


def _entry(
    line_no: int | None, product_id: int, lot_code: str, expected: int, got: Received
) -> Discrepancy:
    return Discrepancy(
        line_no=line_no,
        product_id=product_id,
        lot_code=lot_code,
        expected=expected,
        received_good=got.good,
        received_damaged=got.damaged,
        short=max(0, expected - got.total),
        over=max(0, got.total - expected),
    )
