"""Re-allocation of backordered order lines when stock arrives.

Every command that makes stock available (putaway, a positive adjustment, a
cancellation releasing allocations, a status change to ``available``) calls
``stock_arrived`` in its own transaction, so the waiting orders get first claim on
the new stock, oldest first by priority.
"""

from __future__ import annotations

from collections.abc import Iterable

from wms.services.unit_of_work import UnitOfWork


async def stock_arrived(uow: UnitOfWork, warehouse_id: int, product_ids: Iterable[int]) -> None:
    """Offer newly available stock of ``product_ids`` to backordered lines first."""
    # Filled by the orders and allocation work (issue 6); callers are wired already.
    del uow, warehouse_id, product_ids
