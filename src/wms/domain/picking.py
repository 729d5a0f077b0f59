"""Picking rules: what a scan must match, and who bears a shortage (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wms.domain.errors import ConflictError


class PickMismatchError(ConflictError):
    """The scan names another location, product or lot than the task."""

    slug = "pick-mismatch"


class OverPickError(ConflictError):
    """More units confirmed than the task asks for."""

    slug = "over-pick"


@dataclass(frozen=True)
class Claim:
    """One order line's part of a task, with what ranks it when stock is short."""

    order_id: int
    line_no: int
    quantity: int
    priority: int
    ship_by: datetime | None


def check_match(field: str, *, expected: str | None, given: str | None, what: str) -> None:
    """Refuse a scan whose ``what`` differs from the task's (409 ``pick-mismatch``)."""
    if (expected or None) != (given or None):
        raise PickMismatchError(
            f"the task picks {what} {expected or 'none'}, not {given or 'none'}",
            field=field,
            expected=expected or None,
            given=given or None,
        )


def check_quantity(picked: int, expected: int) -> None:
    """A pick may fall short of the task, never exceed it (409 ``over-pick``)."""
    if picked > expected:
        raise OverPickError(
            f"the task asks for {expected} unit(s); {picked} is an over-pick",
            requested=picked,
            expected=expected,
        )


def charge_shortage(claims: list[Claim], picked: int) -> dict[tuple[int, int], int]:
    """Units each claim receives when only ``picked`` were found.

    The most urgent orders are served first (priority 1 before 9, then earliest ship-by,
    orders without one last, then the oldest order), so a shortage falls on the least
    urgent ones.
    """
    received: dict[tuple[int, int], int] = {}
    left = picked
    ranked = sorted(
        claims,
        key=lambda c: (
            c.priority,
            c.ship_by is None,
            c.ship_by.timestamp() if c.ship_by else 0.0,
            c.order_id,
            c.line_no,
        ),
    )
    for claim in ranked:
        take = min(left, claim.quantity)
        received[(claim.order_id, claim.line_no)] = take
        left -= take
    return received
