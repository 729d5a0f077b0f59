"""The names tenant settings may take."""

from __future__ import annotations

from enum import StrEnum


class AllocationStrategy(StrEnum):
    """How allocation picks stock (a product may override the tenant's choice)."""

    FIFO = "fifo"
    FEFO = "fefo"
    LIFO = "lifo"
    PICK_FACE_FIRST = "pick_face_first"
    FEWEST_LOCATIONS = "fewest_locations"


class BackorderPolicy(StrEnum):
    """What happens to the part of an order that stock cannot cover.

    ``backorder``: allocate what is there, the rest waits for stock; ``ship_complete``:
    allocate nothing until all lines can be covered; ``cancel_remainder``: allocate what
    is there and cancel the rest.
    """

    BACKORDER = "backorder"
    SHIP_COMPLETE = "ship_complete"
    CANCEL_REMAINDER = "cancel_remainder"
