"""The outbox relay: committed events to Kafka ``wms.events``, at least once, in key order.

Committed rows are read in commit order (V16; DESIGN §6.4 reads by xid, which is not
commit order, see the migration). Each key shard is relayed by one worker at a time,
the one holding its session advisory lock on a dedicated connection; workers share the
shards evenly. A batch is marked published only after Kafka acknowledged all of it, and
the next batch is read only then, so a crash re-sends at most one batch (consumers
de-duplicate by ``id``).

An event the producer refuses for good (``REFUSED_FOR_GOOD``: larger than its
``message.max.bytes``) is parked, not retried: sent again it would be refused again,
and every event behind it would wait forever. It stays readable from the feed;
``wms-server events requeue`` gives it back once the limit is raised. Its key's later
events go on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry.trace import SpanKind
from psycopg import AsyncConnection

from wms.events import metrics, outbox_sql
from wms.events.cloudevents import EVENTS_TOPIC, EventRow, to_record
from wms.ops.tracing import kafka_trace_headers, mark_error, tracer
from wms.store.roles import ADMIN, SCHEMA

log = structlog.get_logger(__name__)
LOCK_CLASS = 0x574D53  # "WMS": the advisory-lock namespace of relay shards
PRESENCE = -1  # every relay holds this key shared, so the count of relays is visible
NOTIFY_CHANNEL = "wms_outbox"
# Errors ``produce()`` raises for one message before sending it, and would raise again
# for it on every resend. Only those park a row: what the broker refuses arrives per
# batch (librdkafka does not split a refused batch), so a broker-side "too large"
# names healthy events with the bad one; those stay unpublished and are retried in
# order (a topic limit below WMS_KAFKA_MESSAGE_MAX_BYTES stalls the relay, and
# OutboxRelayStalled says so).
REFUSED_FOR_GOOD = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE})


async def admin_connect(url: str) -> AsyncConnection:
    """An autocommit session acting as ``wms_admin`` (BYPASSRLS: every tenant's rows)."""
    conn = await AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    await conn.execute(f"SET ROLE {ADMIN}")
    await conn.execute(f"SET search_path = {SCHEMA}, public")
    await conn.execute("SET application_name = 'wms-worker'")
    return conn


class Relay:
    """Publishes the outbox of the shards this process holds."""

    def __init__(
        self,
        *,
        admin_url: str,
        producer: Producer,
        stop: asyncio.Event,
        shard_count: int = 16,
        batch_size: int = 500,
        poll_seconds: float = 2.0,
    ) -> None:
        self.admin_url = admin_url
        self.producer = producer
        self.stop = stop
        self.shard_count = shard_count
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.shards: set[int] = set()
        self._lease: AsyncConnection | None = None
        self._conn: AsyncConnection | None = None

    async def run(self) -> None:
        """Relay until ``stop`` is set; database outages back off and reconnect."""
        backoff = 0.5
        while not self.stop.is_set():
            try:
                await self._connect()
                await self._rebalance()
                sent = await self.relay_once() if self.shards else 0
                backoff = 0.5
                if sent < self.batch_size:
                    await self._wait_for_events()
            except psycopg.OperationalError as exc:
                log.warning("relay_database_error", error=str(exc).strip()[:200])
                metrics.PUBLISH_ERRORS.labels(kind="database").inc()
                await self.close()
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        await self.close()

    async def close(self) -> None:
        """Close both sessions; closing the lease session releases every shard."""
        for conn in (self._lease, self._conn):
            if conn is not None:
                await conn.close()
        self._lease = self._conn = None
        self.shards.clear()
        metrics.SHARDS_HELD.set(0)

    async def relay_once(self) -> int:
        """Publish one batch of the held shards; return how many events left the backlog.

        Those are the ones Kafka acknowledged and the ones the producer refused for good
        (parked).
        """
        assert self._conn is not None
        await self.confirm_lease()
        if not self.shards:
            return 0
        rows = await outbox_sql.unpublished(
            self._conn,
            shards=sorted(self.shards),
            shard_count=self.shard_count,
            limit=self.batch_size,
        )
        if not rows:
            return 0
        with tracer().start_as_current_span(
            f"{EVENTS_TOPIC} publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": EVENTS_TOPIC,
                        "messaging.batch.message_count": len(rows)},
        ) as span:  # fmt: skip
            delivered, refused = await self._deliver(rows)
            if len(delivered) < len(rows):
                mark_error(span, f"{len(rows) - len(delivered)} event(s) not acknowledged")
        if delivered:
            await outbox_sql.mark_published(self._conn, delivered)
        for row, err in refused:
            await outbox_sql.park(self._conn, row, f"{err.name()}: {err.str()}")
            metrics.PARKED.labels(kind=err.name()).inc()
            log.error(
                "relay_event_parked",
                event_id=str(row.event_id),
                type=row.type,
                subject=row.subject,
                error=err.str(),
            )
        return len(delivered) + len(refused)

    async def confirm_lease(self) -> None:
        """Drop the shards whose lock the lease session no longer holds, before each batch.

        The locks live in the lease session, the reads in another: if the lease session
        was ended (an idle-session timeout, ``pg_terminate_backend``, a proxy restart),
        another worker may already own the shards. A dead lease session raises here
        (OperationalError → reconnect); a lock lost any other way is given up. What this
        cannot fence is a batch already handed to the producer when the lease ends: it
        may be sent twice, the later copy after newer events (consumers de-duplicate by
        ``id``; Kafka transactions would be the full fence).
        """
        assert self._lease is not None
        cursor = await self._lease.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' "
            "AND pid = pg_backend_pid() AND classid = %s::oid AND objsubid = 2 "
            "AND mode = 'ExclusiveLock' AND granted",
            (LOCK_CLASS,),
        )
        held = {int(row[0]) for row in await cursor.fetchall()}
        lost = self.shards - held
        if lost:
            log.warning("relay_shards_lost", shards=sorted(lost))
            self.shards -= lost
            metrics.SHARDS_HELD.set(len(self.shards))

    async def _deliver(
        self, rows: list[EventRow]
    ) -> tuple[list[EventRow], list[tuple[EventRow, KafkaError]]]:
        """Produce ``rows`` in order and wait for every outcome.

        Returns the rows Kafka acknowledged and those the producer refused for good before
        sending them, with the error.
        """
        outcomes: dict[int, KafkaError | None] = {}

        def on_delivery(index: int) -> Any:
            def callback(err: KafkaError | None, _msg: Message) -> None:
                outcomes[index] = err

            return callback

        trace_headers = kafka_trace_headers()  # consumers continue the publish span's trace
        refused_locally: set[int] = set()
        for index, row in enumerate(rows):
            refused = await self._produce(row, trace_headers, on_delivery(index))
            if refused is not None:
                outcomes[index] = refused
                refused_locally.add(index)
        await self._wait_for_outcomes(outcomes, len(rows))
        now = datetime.now(UTC)
        delivered: list[EventRow] = []
        refused_rows: list[tuple[EventRow, KafkaError]] = []
        for index, row in enumerate(rows):
            if index not in outcomes:
                continue
            err = outcomes[index]
            if err is None:
                delivered.append(row)
                metrics.PUBLISH_LATENCY.observe(max((now - row.occurred_at).total_seconds(), 0))
                continue
            metrics.PUBLISH_ERRORS.labels(kind=err.name()).inc()
            if index in refused_locally:
                refused_rows.append((row, err))
            else:
                log.warning("relay_delivery_failed", event_id=str(row.event_id), error=str(err))
        if delivered:
            metrics.KAFKA_UP.set(1)
            metrics.PUBLISHED.inc(len(delivered))
        return delivered, refused_rows

    async def _produce(
        self, row: EventRow, trace_headers: list[tuple[str, bytes]], on_delivery: Any
    ) -> KafkaError | None:
        """Hand ``row`` to the producer; the error if it refused it for good before sending."""
        record = to_record(row)
        while True:
            try:
                self.producer.produce(
                    EVENTS_TOPIC,
                    key=record.key,
                    value=record.value,
                    headers=[*record.headers, *trace_headers],
                    on_delivery=on_delivery,
                )
                return None
            except BufferError:  # the local queue is full: let it drain
                await asyncio.to_thread(self.producer.poll, 0.1)
            except KafkaException as exc:  # checked locally: larger than message.max.bytes
                error: KafkaError = exc.args[0]
                if error.code() not in REFUSED_FOR_GOOD:
                    raise
                return error

    async def _wait_for_outcomes(self, outcomes: dict[int, KafkaError | None], count: int) -> None:
        """Poll until ``count`` outcomes are in (or a few seconds into a shutdown)."""
        wait = 0.05
        stop_deadline: float | None = None
        while len(outcomes) < count:
            await asyncio.to_thread(self.producer.poll, wait)
            wait = min(wait * 2, 1.0)
            if self.stop.is_set():
                # Shutting down mid-batch: whatever is unacknowledged is sent again later.
                stop_deadline = stop_deadline or time.monotonic() + 5.0
                if time.monotonic() > stop_deadline:
                    break

    async def _connect(self) -> None:
        if self._lease is not None and self._lease.closed:
            await self.close()
        if self._lease is None:
            self._lease = await admin_connect(self.admin_url)
            await self._lease.execute(
                "SELECT pg_advisory_lock_shared(%s, %s)", (LOCK_CLASS, PRESENCE)
            )
            await self._lease.execute(f"LISTEN {NOTIFY_CHANNEL}")
        if self._conn is None or self._conn.closed:
            self._conn = await admin_connect(self.admin_url)

    async def _rebalance(self) -> None:
        """Hold a fair share of the shards: give up extras, take free ones up to the share."""
        assert self._lease is not None
        cursor = await self._lease.execute(
            # Advisory locks are per database: relays of other databases on the same
            # server (another environment, the test databases) are not ours to share with.
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid "
            "AND objid = %s::oid AND objsubid = 2 AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (LOCK_CLASS, PRESENCE & 0xFFFFFFFF),
        )
        row = await cursor.fetchone()
        relays = max(int(row[0]) if row else 1, 1)
        share = math.ceil(self.shard_count / relays)
        for shard in sorted(self.shards, reverse=True)[: max(len(self.shards) - share, 0)]:
            await self._lease.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, shard))
            self.shards.discard(shard)
        for shard in range(self.shard_count):
            if len(self.shards) >= share:
                break
            if shard in self.shards:
                continue
            cursor = await self._lease.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, shard)
            )
            got = await cursor.fetchone()
            if got and got[0]:
                self.shards.add(shard)
        metrics.SHARDS_HELD.set(len(self.shards))

    async def _wait_for_events(self) -> None:
        """Sleep until a NOTIFY, the poll interval, or stop (polling covers lost notifies)."""
        assert self._lease is not None
        deadline = time.monotonic() + self.poll_seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            async for _ in self._lease.notifies(timeout=0.25, stop_after=1):
                return

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
