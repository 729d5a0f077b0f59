"""``/reports/kpis``: warehouse throughput per local hour, dock-to-stock, cycle times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import AwareDatetime

from wms.api.auth import PrincipalDep
from wms.api.commands import read_transaction
from wms.api.routing import api_router
from wms.api.schemas import EARLIEST_DATE, LATEST_DATE, ResponseModel, Rfc3339Datetime, text_query
from wms.domain.errors import FieldError, NotFoundError
from wms.store import kpis as store
from wms.store import warehouses

router = api_router("reports")
MAX_SPAN = timedelta(days=31)
# Windows outside the dates a query may name are refused as invalid: near the ends of
# Python's datetime (years 1 and 9999) the default ``from`` and local hours overflow it.
EARLIEST = datetime.combine(EARLIEST_DATE, time(0), UTC)
LATEST = datetime.combine(LATEST_DATE, time(0), UTC)
SERIES = ("orders_received", "orders_shipped", "lines_picked", "lines_put_away")


class HourCount(ResponseModel):
    """How many in one hour of the warehouse's local time.

    ``hour`` is the local wall-clock hour with that moment's UTC offset
    (``2026-11-20T09:00:00-03:00``): RFC 3339 like every time of the API.
    """

    hour: AwareDatetime
    count: int


def _hours(rows: list[dict[str, Any]]) -> list[HourCount]:
    """The store's naive local hours, each given the UTC offset it had.

    Not the zone's: a local hour that happens twice (clocks going back) would get the
    first offset both times.
    """
    return [
        HourCount(hour=row["hour"].replace(tzinfo=timezone(row["utc_offset"])), count=row["count"])
        for row in rows
    ]


class Distribution(ResponseModel):
    """Mean and percentiles of a duration, in seconds."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None


class Accuracy(ResponseModel):
    """Mean inventory accuracy of the cycle counts approved in the window."""

    count: int
    mean: float | None


class PickingEfficiency(ResponseModel):
    """Picked lines per picker-hour (an hour in which a picker picked anything)."""

    lines: int
    picker_hours: int
    lines_per_picker_hour: float | None


class Kpis(ResponseModel):
    """The warehouse's KPIs over [from, to)."""

    warehouse: str
    timezone: str
    start: datetime
    end: datetime
    orders_received_per_hour: list[HourCount]
    orders_shipped_per_hour: list[HourCount]
    lines_picked_per_hour: list[HourCount]
    lines_put_away_per_hour: list[HourCount]
    dock_to_stock_seconds: Distribution
    order_cycle_time_seconds: Distribution
    inventory_accuracy_pct: Accuracy
    pick_accuracy_pct: Accuracy
    picking_efficiency: PickingEfficiency


def _within_years(field: str, moment: datetime) -> datetime:
    """``moment``, or a 422 on ``field`` when it is outside [``EARLIEST``, ``LATEST``]."""
    if not EARLIEST <= moment <= LATEST:
        raise FieldError(field, f"must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return moment


@router.get("/reports/kpis", response_model=Kpis)
async def kpis(
    request: Request,
    principal: PrincipalDep,
    warehouse: Annotated[str, text_query(40)],
    start: Annotated[Rfc3339Datetime | None, Query(alias="from")] = None,
    end: Annotated[Rfc3339Datetime | None, Query(alias="to")] = None,
) -> Kpis:
    """Throughput per hour in the warehouse's time zone and time distributions (≤ 31 days).

    ``from`` defaults to 24 hours before ``to``, which defaults to now; both in 1900..9000.
    """
    end = _within_years("to", end or datetime.now(UTC))
    start = _within_years("from", start or end - timedelta(hours=24))
    if not start < end:
        raise FieldError("from", "must be before to")
    if end - start > MAX_SPAN:
        raise FieldError("to", "the window may span at most 31 days")
    # One snapshot: the series and the distributions count the same picks, receipts, orders.
    async with read_transaction(request, principal, one_snapshot=True) as conn:
        found = await warehouses.id_and_timezone(conn, warehouse)
        if found is None:
            raise NotFoundError(f"no warehouse {warehouse}")
        warehouse_id, zone = found
        series = {
            name: await store.hourly(
                conn, name, warehouse_id=warehouse_id, timezone=zone, start=start, end=end
            )
            for name in SERIES
        }
        times = await store.durations(
            conn, warehouse_id=warehouse_id, timezone=zone, start=start, end=end
        )
    return Kpis(
        warehouse=warehouse,
        timezone=zone,
        start=start,
        end=end,
        orders_received_per_hour=_hours(series["orders_received"]),
        orders_shipped_per_hour=_hours(series["orders_shipped"]),
        lines_picked_per_hour=_hours(series["lines_picked"]),
        lines_put_away_per_hour=_hours(series["lines_put_away"]),
        dock_to_stock_seconds=Distribution.model_validate(times["dock_to_stock"]),
        order_cycle_time_seconds=Distribution.model_validate(times["order_cycle"]),
        inventory_accuracy_pct=Accuracy.model_validate(times["inventory_accuracy"]),
        pick_accuracy_pct=Accuracy.model_validate(times["pick_accuracy"]),
        picking_efficiency=PickingEfficiency(
            lines=times["picking"]["lines"],
            picker_hours=times["picking"]["picker_hours"],
            lines_per_picker_hour=round(
                times["picking"]["lines"] / times["picking"]["picker_hours"], 2
            )
            if times["picking"]["picker_hours"]
            else None,
        ),
    )
