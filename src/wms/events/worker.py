"""``wms-server worker``: the outbox relay, the order intake and the periodic chores.

Without ``KAFKA_BROKERS`` only the chores run: events stay in the outbox, readable from
the event feed, until retention prunes them. With it, retention never prunes an event
Kafka has not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial

import psycopg
import structlog
from prometheus_client import Counter

from wms.config import Settings
from wms.events import kafka, metrics, outbox_sql
from wms.events.intake import OrderIntake
from wms.events.relay import Relay, admin_connect
from wms.ops.tracing import configure_tracing
from wms.store import idempotency
from wms.store import locations as locations_sql
from wms.store.database import create_pool
from wms.store.partitions import ensure_movement_partitions

log = structlog.get_logger(__name__)
PRUNE_BATCH = 5000
PARTITIONS_EVERY_SECONDS = 3600.0


class WorkerFailedError(RuntimeError):
    """A job stopped the worker: the process must exit non-zero so it is restarted."""


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``); a relay shutdown re-sends at most one batch."""
    stop = stop or asyncio.Event()
    configure_tracing(settings.otel_service_name or "wms-worker", settings.otel_endpoint)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    admin_url = settings.migration_url
    assert settings.database_url is not None
    jobs = [chores(settings, admin_url, stop)]
    pool = None
    intake: OrderIntake | None = None
    if settings.kafka_brokers:
        relay = Relay(
            admin_url=admin_url,
            producer=kafka.producer(
                settings.kafka_brokers, **{"message.max.bytes": settings.kafka_message_max_bytes}
            ),
            stop=stop,
            shard_count=settings.event_shards,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.worker_poll_seconds,
        )
        pool = create_pool(
            settings.database_url,
            min_size=1,
            max_size=4,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
            name="worker",
        )
        await pool.open(wait=False)
        intake = OrderIntake(
            consumer=kafka.consumer(settings.kafka_brokers),
            producer=kafka.producer(settings.kafka_brokers),
            pool=pool,
            admin_url=admin_url,
            region=settings.region,
            stop=stop,
            group=kafka.INTAKE_GROUP,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
        )
        jobs += [relay.run(), intake.run()]
    else:
        log.info("worker_without_kafka", detail="KAFKA_BROKERS unset: events stay in the outbox")
    log.info("worker_started", kafka=bool(settings.kafka_brokers))
    try:
        await asyncio.gather(*jobs)
    finally:
        stop.set()
        if pool is not None:
            await pool.close()
        log.info("worker_stopped")
    if intake is not None and intake.failure is not None:
        raise WorkerFailedError(f"the order intake stopped: {intake.failure!r}")


async def chores(settings: Settings, admin_url: str, stop: asyncio.Event) -> None:
    """Backlog metrics every second, retention every minute (events, location walk
    history, idempotency records), ledger partitions hourly."""
    conn = None
    pruned_at = partitions_at = 0.0
    while not stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = await admin_connect(admin_url)
            backlog = await outbox_sql.backlog(conn)
            metrics.OUTBOX_BACKLOG.set(backlog.waiting)
            metrics.OUTBOX_OLDEST_AGE.set(backlog.oldest_age_seconds)
            metrics.OUTBOX_PARKED.set(backlog.parked)
            now = time.monotonic()
            if now - pruned_at >= settings.event_prune_interval_seconds:
                pruned_at = now
                await _delete_in_batches(
                    partial(
                        outbox_sql.prune,
                        conn,
                        retention_hours=settings.event_retention_hours,
                        limit=PRUNE_BATCH,
                        published_only=bool(settings.kafka_brokers),
                    ),
                    metrics.PRUNED,
                    stop,
                )
                await outbox_sql.sweep_commits(conn)
                await locations_sql.prune_walk_history(
                    conn, older_than_hours=locations_sql.WALK_HISTORY_HOURS
                )
                await _delete_in_batches(
                    partial(idempotency.purge_expired, conn, limit=PRUNE_BATCH),
                    metrics.IDEMPOTENCY_PURGED,
                    stop,
                )
            if now - partitions_at >= PARTITIONS_EVERY_SECONDS:
                partitions_at = now
                await asyncio.to_thread(ensure_movement_partitions, admin_url)
        except psycopg.Error as exc:
            log.warning("worker_chores_failed", error=str(exc).strip()[:200])
            if conn is not None:
                await conn.close()
            conn = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    if conn is not None:
        await conn.close()


async def _delete_in_batches(
    delete_batch: Callable[[], Awaitable[int]], removed: Counter, stop: asyncio.Event
) -> None:
    """Run ``delete_batch`` (at most ``PRUNE_BATCH`` rows, each its own short transaction
    on the autocommit session) until one removes less, or the worker stops; count rows."""
    while not stop.is_set():
        count = await delete_batch()
        removed.inc(count)
        if count < PRUNE_BATCH:
            return
