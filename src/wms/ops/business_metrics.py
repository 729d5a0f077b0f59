"""Business metrics: orders, picks, putaway and counts, per tenant and warehouse code.

Services never touch these objects directly: they queue one of the functions below with
``uow.observe(...)`` and the pipeline calls it only once the transaction has committed,
so a rollback, a retried attempt or an idempotent replay never counts (docs/metrics.md).
Labels are tenant and warehouse *codes*, bounded by the deployment's tenants × warehouses;
never order numbers, SKUs or people.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Receipt to putaway: minutes to a week (a pallet left at the dock over a weekend).
DOCK_TO_STOCK_BUCKETS = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 604800.0,
)  # fmt: skip
# Order received to shipped: minutes to two weeks (backorders wait for stock).
ORDER_CYCLE_BUCKETS = (
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0,
    604800.0, 1209600.0,
)  # fmt: skip
_PLACE = ["tenant", "warehouse"]

ORDERS_RECEIVED = Counter(
    "wms_orders_received_total", "Orders created (API or Kafka intake), by tenant and warehouse.",
    _PLACE,
)  # fmt: skip
ORDERS_SHIPPED = Counter(
    "wms_orders_shipped_total", "Orders shipped by a shipment's dispatch.", _PLACE
)
LINES_PICKED = Counter(
    "wms_order_lines_picked_total", "Pick tasks confirmed (in full or short).", _PLACE
)
SHORT_PICKS = Counter(
    "wms_short_picks_total", "Pick confirmations of fewer units than the task asked.", _PLACE
)
DOCK_TO_STOCK = Histogram(
    "wms_dock_to_stock_seconds", "Time from receipt at the dock to putaway confirmation.",
    _PLACE, buckets=DOCK_TO_STOCK_BUCKETS,
)  # fmt: skip
ORDER_CYCLE_TIME = Histogram(
    "wms_order_cycle_time_seconds", "Time from an order's intake to its shipment's dispatch.",
    _PLACE, buckets=ORDER_CYCLE_BUCKETS,
)  # fmt: skip
COUNT_LINES = Counter(
    "wms_count_lines_total",
    "Cycle count lines approved, by result (match: counted = expected; variance: not).",
    [*_PLACE, "result"],
)


def order_received(tenant: str, warehouse: str) -> None:
    """One order was created."""
    ORDERS_RECEIVED.labels(tenant, warehouse).inc()


def order_shipped(tenant: str, warehouse: str, cycle_seconds: float) -> None:
    """One order shipped, ``cycle_seconds`` after it was received."""
    ORDERS_SHIPPED.labels(tenant, warehouse).inc()
    ORDER_CYCLE_TIME.labels(tenant, warehouse).observe(max(cycle_seconds, 0.0))


def pick_confirmed(tenant: str, warehouse: str, *, short: bool) -> None:
    """One pick task was confirmed; ``short`` when fewer units were found than asked."""
    LINES_PICKED.labels(tenant, warehouse).inc()
    if short:
        SHORT_PICKS.labels(tenant, warehouse).inc()


def put_away(tenant: str, warehouse: str, dock_to_stock_seconds: float) -> None:
    """One putaway task was confirmed, ``dock_to_stock_seconds`` after its receipt."""
    DOCK_TO_STOCK.labels(tenant, warehouse).observe(max(dock_to_stock_seconds, 0.0))


def count_lines_approved(tenant: str, warehouse: str, *, matched: int, varied: int) -> None:
    """A cycle count was approved with ``matched`` exact lines and ``varied`` off ones."""
    if matched:
        COUNT_LINES.labels(tenant, warehouse, "match").inc(matched)
    if varied:
        COUNT_LINES.labels(tenant, warehouse, "variance").inc(varied)
