"""Prometheus metrics of the HTTP server, its command pipeline and its database pool.

One process per container (Kubernetes scales pods, not workers), so the default
registry is exact: no multiprocess directory is needed. The metric names are the
seed's (``http_requests_total``, ``http_request_duration_seconds``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Resolves 5 ms to 2.5 s, with the SLO's 500 ms and the seed's 1 s as edges.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "<unmatched>"
# *_created samples double the series count for no use in our dashboards.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request start to the last byte of the response, by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS_SHED = Counter(
    "wms_http_requests_shed_total",
    "API requests answered 503 at once because the process had WMS_MAX_IN_FLIGHT in flight.",
)
COMMAND_DURATION = Histogram(
    "wms_command_duration_seconds",
    "Time a command spends in the pipeline, retries included, by method and route template.",
    ["command"],
    buckets=LATENCY_BUCKETS,
)
DB_TRANSACTION_DURATION = Histogram(
    "wms_db_transaction_duration_seconds",
    "Time a transaction is held, from its bound connection to commit or rollback, by kind.",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)


class PoolCollector(Collector):
    """Gauges read from psycopg_pool's ``get_stats()`` at scrape time."""

    def __init__(self) -> None:
        self._sources: dict[str, Callable[[], dict[str, int]]] = {}

    def watch(self, name: str, stats: Callable[[], dict[str, int]]) -> None:
        """Report the pool called ``name`` using the ``stats`` callable."""
        self._sources[name] = stats

    def forget(self, name: str) -> None:
        """Stop reporting a closed pool."""
        self._sources.pop(name, None)

    def collect(self) -> Iterable[Metric]:
        """Yield the current size, idle and waiting counts of every watched pool."""
        families = {
            "pool_size": GaugeMetricFamily(
                "wms_db_pool_connections", "Connections open in the pool.", labels=["pool"]
            ),
            "pool_available": GaugeMetricFamily(
                "wms_db_pool_idle_connections", "Idle connections in the pool.", labels=["pool"]
            ),
            "requests_waiting": GaugeMetricFamily(
                "wms_db_pool_waiting_requests",
                "Requests waiting for a connection.",
                labels=["pool"],
            ),
        }
        for name, stats in list(self._sources.items()):
            values = stats()
            for key, family in families.items():
                family.add_metric([name], values.get(key, 0))
        yield from families.values()


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def start_metrics_server(port: int, host: str) -> WSGIServer | None:
    """Serve ``/metrics`` on its own port (not routed by the ingress); 0 turns it off."""
    if port == 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    return server
