"""Re-allocation of backordered order lines when stock arrives.

Every command that makes stock available (putaway, a positive adjustment, a
cancellation releasing allocations, a status change to ``available``, a move out of a
place allocation skips, a count's surplus, a location activated or made storage or
pick) calls ``stock_arrived`` in its own transaction, so the waiting orders get first
claim on the new stock, by priority then age.
"""

from __future__ import annotations

from collections.abc import Iterable

from wms.services import orders
from wms.services.unit_of_work import UnitOfWork


async def stock_arrived(uow: UnitOfWork, warehouse_id: int, product_ids: Iterable[int]) -> int:
    """Offer new stock of ``product_ids`` to backordered orders; return how many got some."""
    return await orders.reallocate_backorders(uow, warehouse_id, sorted(set(product_ids)))
