"""Run the ASGI app under uvicorn with a graceful drain on SIGTERM.

Kubernetes sends SIGTERM and, at the same moment, starts removing the pod from its
endpoints; for a few seconds new requests still arrive. uvicorn would stop accepting
at once, so SIGTERM here only marks the server as draining (``/health/ready`` → 503)
and keeps serving for ``WMS_DRAIN_SECONDS``; then uvicorn's own graceful shutdown
stops accepting, lets in-flight requests finish (up to
``WMS_SHUTDOWN_TIMEOUT_SECONDS``), runs the lifespan shutdown, and the process exits 0.
A second SIGTERM, or SIGINT (Ctrl-C), skips the remaining drain.
"""

from __future__ import annotations

import gc
import signal
import time
from types import FrameType

import structlog
import uvicorn

from wms.app import create_app
from wms.config import Settings
from wms.ops.health import DrainState
from wms.ops.metrics import start_metrics_server
from wms.ops.tracing import configure_tracing

log = structlog.get_logger(__name__)

# The young generation is collected every 10,000 allocations instead of CPython's 700,
# and the older ones half as often. A request allocates a few thousand objects, nearly
# all freed by reference counting; with the defaults the collector ran several times
# per request and took ~10% of a stock lookup's CPU (py-spy); with these and the frozen
# start-up heap a lookup costs 10-15% less server CPU, an allocation 14% less
# (bench/FINDINGS.md). Cyclic garbage still goes, only in larger batches.
GC_THRESHOLDS = (10_000, 20, 20)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose SIGTERM first drains, and which never re-raises the signal."""

    def __init__(self, config: uvicorn.Config, drain: DrainState, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = drain_seconds
        self._drain_deadline: float | None = None
        self._drain_logged = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining on the first SIGTERM; otherwise shut down (twice: at once).

        A signal handler runs between two bytecodes of the main thread, possibly while
        that thread holds the log's lock: so it only sets flags, and ``on_tick`` logs.
        """
        if sig == signal.SIGTERM and self.drain_seconds > 0 and self._drain_deadline is None:
            self.drain.start()
            self._drain_deadline = time.monotonic() + self.drain_seconds
            return
        # Not recorded in _captured_signals: uvicorn would re-raise it after shutdown and
        # the process would die by the signal instead of exiting 0.
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s in uvicorn's main loop: report the drain and end it on time."""
        if self._drain_deadline is not None:
            if not self._drain_logged:
                self._drain_logged = True
                log.info("drain_started", seconds=self.drain_seconds)
            if not self.should_exit and time.monotonic() >= self._drain_deadline:
                log.info("drain_finished")
                self.should_exit = True
        return await super().on_tick(counter)


def tune_garbage_collector() -> None:
    """Freeze the start-up heap out of every collection and collect in larger batches.

    Modules, the app's routes, models and OpenAPI schema live as long as the process:
    frozen, full collections no longer walk them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_server(settings: Settings) -> bool:
    """Serve until shut down; return False when the server failed to start."""
    configure_tracing(settings.otel_service_name or "wms-server", settings.otel_endpoint)
    drain = DrainState()
    app = create_app(settings, drain=drain)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        lifespan="on",
        timeout_graceful_shutdown=round(settings.shutdown_timeout_seconds),
    )
    server = DrainingServer(config, drain, settings.drain_seconds)
    tune_garbage_collector()
    metrics = start_metrics_server(settings.metrics_port, settings.host)
    try:
        server.run()
    finally:
        if metrics is not None:
            metrics.shutdown()
    return server.started
