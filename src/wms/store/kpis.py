"""SQL of the warehouse KPIs: throughput per local hour and time distributions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

# Each throughput series: (name, table expression, timestamp column, extra condition).
_HOURLY = {
    "orders_received": ("orders", "created_at", "true"),
    "orders_shipped": ("orders", "shipped_at", "shipped_at IS NOT NULL"),
    "lines_picked": ("pick_tasks", "picked_at", "status IN ('confirmed', 'short')"),
    "lines_put_away": ("putaway_tasks", "confirmed_at", "status = 'confirmed'"),
}


def _local_hour(column: str) -> str:
    """SQL of the warehouse's local hour of ``column`` and that instant's UTC offset.

    The pair, not the local hour alone, names one hour: when clocks go back, the same
    wall-clock hour happens twice, under two offsets. ``%(tz)s`` is the warehouse's zone.
    """
    local = f"({column} AT TIME ZONE %(tz)s)"
    return f"date_trunc('hour', {local}), {local} - ({column} AT TIME ZONE 'UTC')"


async def hourly(
    conn: AsyncConnection,
    series: str,
    *,
    warehouse_id: int,
    timezone: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """Counts per hour of the warehouse's local time, for one series of ``_HOURLY``.

    Each row: ``hour`` (naive local), ``utc_offset`` (timedelta) and ``count``, in time order.
    """
    table, column, condition = _HOURLY[series]
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT hour, utc_offset, count(*) AS count "
        f"FROM {table}, LATERAL (SELECT {_local_hour(column)}) AS bucket(hour, utc_offset) "
        f"WHERE warehouse_id = %(wh)s AND {column} >= %(start)s "
        f"AND {column} < %(end)s AND {condition} "
        "GROUP BY hour, utc_offset ORDER BY hour - utc_offset",
        {"tz": timezone, "wh": warehouse_id, "start": start, "end": end},
    )
    return await cursor.fetchall()


async def durations(
    conn: AsyncConnection, *, warehouse_id: int, timezone: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """Dock-to-stock and order cycle time (seconds): mean, p50, p95 and count."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT "
        "(SELECT json_build_object('count', count(*), 'mean', avg(dock_to_stock_seconds), "
        " 'p50', percentile_cont(0.5) WITHIN GROUP (ORDER BY dock_to_stock_seconds), "
        " 'p95', percentile_cont(0.95) WITHIN GROUP (ORDER BY dock_to_stock_seconds)) "
        " FROM putaway_tasks WHERE warehouse_id = %(wh)s AND status = 'confirmed' "
        " AND confirmed_at >= %(start)s AND confirmed_at < %(end)s) AS dock_to_stock, "
        "(SELECT json_build_object('count', count(*), "
        " 'mean', avg(extract(epoch FROM shipped_at - created_at)), "
        " 'p50', percentile_cont(0.5) WITHIN GROUP "
        "   (ORDER BY extract(epoch FROM shipped_at - created_at)), "
        " 'p95', percentile_cont(0.95) WITHIN GROUP "
        "   (ORDER BY extract(epoch FROM shipped_at - created_at))) "
        " FROM orders WHERE warehouse_id = %(wh)s AND shipped_at >= %(start)s "
        " AND shipped_at < %(end)s) AS order_cycle, "
        "(SELECT json_build_object('count', count(*), 'mean', avg(accuracy_pct)) "
        " FROM cycle_counts WHERE warehouse_id = %(wh)s AND status = 'approved' "
        " AND approved_at >= %(start)s AND approved_at < %(end)s) AS inventory_accuracy, "
        # Pick accuracy: tasks confirmed in full among all finished; efficiency: picked
        # lines per picker-hour (hours in which a picker picked anything): the warehouse's
        # local hours, as the hourly series count them.
        "(SELECT json_build_object('count', count(*), 'mean', 100.0 * "
        " count(*) FILTER (WHERE status = 'confirmed') / nullif(count(*), 0)) "
        " FROM pick_tasks WHERE warehouse_id = %(wh)s AND status IN ('confirmed', 'short') "
        " AND picked_at >= %(start)s AND picked_at < %(end)s) AS pick_accuracy, "
        "(SELECT json_build_object('lines', count(*), 'picker_hours', "
        f" count(DISTINCT (picker, {_local_hour('picked_at')}))) "
        " FROM pick_tasks WHERE warehouse_id = %(wh)s AND status IN ('confirmed', 'short') "
        " AND picked_at >= %(start)s AND picked_at < %(end)s) AS picking",
        {"wh": warehouse_id, "tz": timezone, "start": start, "end": end},
    )
    row = await cursor.fetchone()
    assert row is not None
    return row
