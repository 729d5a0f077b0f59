"""Order intake from Kafka ``wms.orders.inbound`` (API.md §Events).

Each message is a CloudEvent ``wms.order.create.requested`` whose ``tenant`` names the
tenant and whose ``data`` is a ``POST /orders`` body. It runs the same service as the
HTTP route in a transaction bound to that tenant, as the runtime role. Its offset is
committed only after that transaction commits (or after the dead letter is
acknowledged), so a crash re-reads it and the order number's idempotency makes the
replay a no-op. Transient database errors are retried, never dead-lettered; a constraint
or a value PostgreSQL refuses is dead-lettered like a domain error (sent again, it would
fail again and hold up its partition). Any other database error stops the worker: a
fault of ours or of the database, not of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from opentelemetry.trace import SpanKind
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from wms.api.routes.orders import NewOrder, to_command
from wms.domain.errors import DomainError
from wms.events import metrics
from wms.events.cloudevents import (
    INBOUND_TOPIC,
    ORDER_CREATE_REQUESTED,
    InvalidCloudEventError,
    parse,
)
from wms.events.relay import REFUSED_FOR_GOOD, admin_connect
from wms.ops.tracing import context_from_kafka, tracer
from wms.services.orders import OrderIn, create_order
from wms.services.tenants import TENANT_CODE
from wms.services.unit_of_work import UnitOfWork
from wms.store import cache
from wms.store.database import constraint_conflict
from wms.store.tenancy import tenant_transaction

log = structlog.get_logger(__name__)
DLQ_TOPIC = f"{INBOUND_TOPIC}.dlq"
_TRANSIENT = (psycopg.OperationalError, psycopg.errors.SerializationFailure)


@dataclass(frozen=True)
class DeadLetter:
    """Why a message cannot become an order."""

    reason: str
    detail: str


def partition_lag(low: int, high: int, *, committed: int) -> int:
    """Messages of a partition the group has not committed (negative offset: none yet)."""
    done = committed if committed >= 0 else low
    return max(high - done, 0)


class OrderIntake:
    """Consumes ``wms.orders.inbound`` until ``stop`` is set."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        producer: Producer,
        pool: AsyncConnectionPool[AsyncConnection],
        admin_url: str,
        region: str,
        stop: asyncio.Event,
        group: str,
        statement_timeout_ms: int = 5000,
        lock_timeout_ms: int = 2000,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.pool = pool
        self.admin_url = admin_url
        self.region = region
        self.stop = stop
        self.group = group
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_timeout_ms = lock_timeout_ms
        self._tenants: dict[str, int] = {}
        self._lag_at = 0.0
        self._done: list[Message] = []
        self.failure: BaseException | None = None  # why a partition could not go on

    async def run(self) -> None:
        """Poll and hand each partition's messages, in order, to that partition's task.

        Partitions are handled concurrently, each strictly in offset order; an offset is
        stored for the background commit only once its message is done.
        """
        self.consumer.subscribe([INBOUND_TOPIC])
        queues: dict[int, asyncio.Queue[Message | None]] = {}
        tasks: list[asyncio.Task[None]] = []
        try:
            while not self.stop.is_set():
                batch = await asyncio.to_thread(self._poll)
                for msg in batch:
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("intake_consumer_error", error=str(error))
                        continue
                    partition = msg.partition() or 0
                    if partition not in queues:
                        queues[partition] = asyncio.Queue(maxsize=500)
                        task = asyncio.create_task(self._partition(queues[partition]))
                        task.add_done_callback(self._stop_on_failure)
                        tasks.append(task)
                    if not await self._hand_over(queues[partition], msg):
                        break  # stopping: what is left is read again by the next owner
        finally:
            # A full queue whose task returned (stopping) or died would never take the
            # end marker: the worker hung. Stopping, each task returns at its next message.
            self.stop.set()
            for queue in queues.values():
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self._store_done)
            await asyncio.to_thread(self.consumer.close)

    async def _hand_over(self, queue: asyncio.Queue[Message | None], msg: Message) -> bool:
        """Queue ``msg`` for its partition's task, waiting while the queue is full; False
        once the intake stops instead (that task may never take another message)."""
        if not queue.full():
            queue.put_nowait(msg)
            return True
        put = asyncio.ensure_future(queue.put(msg))
        stopping = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({put, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if put.done():
            return True
        put.cancel()
        return False

    def _poll(self) -> list[Message]:
        # Every consumer call happens in this one thread: librdkafka serialises calls on a
        # consumer, so one made from the event loop would stall it while consume() waits.
        self._store_done()
        self._report_lag()
        return self.consumer.consume(200, 0.1)

    def _store_done(self) -> None:
        done, self._done = self._done, []
        for msg in done:
            try:
                self.consumer.store_offsets(message=msg)
            except KafkaException as exc:  # revoked meanwhile: the new owner replays it
                log.info("intake_offset_not_stored", error=str(exc))

    def _stop_on_failure(self, task: asyncio.Task[None]) -> None:
        # A partition that cannot go on must not stall silently: stop, and let a restart
        # (or another worker) read its uncommitted messages again.
        if not task.cancelled() and task.exception() is not None:
            log.error("intake_partition_failed", error=repr(task.exception()))
            self.failure = self.failure or task.exception()
            self.stop.set()

    async def _partition(self, queue: asyncio.Queue[Message | None]) -> None:
        while (msg := await queue.get()) is not None:
            if self.stop.is_set():
                return  # not stored: the next owner of the partition reads it again
            outcome = await self.handle(msg)
            if outcome is None:  # stopping while the database was away: re-read later
                return
            metrics.INTAKE.labels(outcome=outcome).inc()
            self._done.append(msg)  # stored by the polling thread, committed in the background

    async def handle(self, msg: Message) -> str | None:
        """Create the order or dead-letter the message; the outcome, None if interrupted."""
        with tracer().start_as_current_span(
            f"{INBOUND_TOPIC} process",
            context=context_from_kafka(msg.headers()),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": INBOUND_TOPIC,
                        "messaging.kafka.offset": msg.offset() or 0},
        ) as span:  # fmt: skip
            outcome = await self._handle(msg)
            span.set_attribute("wms.intake.outcome", outcome or "interrupted")
            return outcome

    async def _handle(self, msg: Message) -> str | None:
        letter: DeadLetter | None
        try:
            event = parse(msg.value(), expected_type=ORDER_CREATE_REQUESTED)
            tenant_id = await self._tenant_id(event["tenant"])
            command = to_command(NewOrder.model_validate(event["data"]))
        except InvalidCloudEventError as exc:
            letter = DeadLetter(exc.reason, str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "/" + "/".join(str(part) for part in first["loc"])
            letter = DeadLetter("invalid", f"{where}: {first['msg']} ({exc.error_count()} errors)")
        else:
            backoff = 0.05
            while True:
                try:
                    created = await self._create(event, tenant_id, command)
                except _TRANSIENT as exc:
                    metrics.INTAKE_RETRIES.inc()
                    log.info("intake_retry", error=type(exc).__name__)
                    if self.stop.is_set():
                        return None
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
                    backoff = min(backoff * 2, 10.0)
                    continue
                except DomainError as exc:
                    letter = DeadLetter(exc.slug, exc.detail)
                except psycopg.errors.IntegrityError as exc:  # as the API's 409
                    conflict = constraint_conflict(exc)
                    letter = DeadLetter(conflict.slug, conflict.detail)
                except psycopg.errors.DataError as exc:
                    # A value the schema let through and PostgreSQL refuses: sent again it
                    # fails again, and the partition's later messages would wait behind it.
                    letter = DeadLetter(
                        "invalid", f"a value PostgreSQL refuses: {exc.diag.message_primary}"
                    )
                else:
                    return "created" if created else "duplicate"
                break
        await self._dead_letter(msg, letter)
        return f"dlq:{letter.reason}"

    async def _create(self, event: dict[str, object], tenant_id: int, command: OrderIn) -> bool:
        async with (
            cache.tenant_scope(tenant_id),
            tenant_transaction(
                self.pool,
                tenant_id,
                statement_timeout_ms=self.statement_timeout_ms,
                lock_timeout_ms=self.lock_timeout_ms,
            ) as conn,
        ):
            uow = UnitOfWork(
                conn=conn,
                tenant_id=tenant_id,
                tenant_code=str(event["tenant"]),
                actor=f"kafka:{INBOUND_TOPIC}",
                request_id=str(event["id"]),
                region=self.region,
            )
            result = await create_order(uow, command)
            await uow.flush()
        uow.committed()  # metrics count only now; a retried attempt had its own uow
        return result.created

    async def _tenant_id(self, code: str) -> int:
        if TENANT_CODE.fullmatch(code) is None:
            # Never a tenant; and a NUL in it is a DataError before the query runs.
            raise InvalidCloudEventError("unknown-tenant", f"no tenant {code!r}")
        if code not in self._tenants:
            conn = await admin_connect(self.admin_url)
            try:
                cursor = await conn.execute("SELECT id FROM tenants WHERE code = %s", (code,))
                row = await cursor.fetchone()
            finally:
                await conn.close()
            if row is None:
                raise InvalidCloudEventError("unknown-tenant", f"no tenant {code!r}")
            self._tenants[code] = int(row[0])
        return self._tenants[code]

    async def _dead_letter(self, msg: Message, letter: DeadLetter) -> None:
        """Copy the message to the DLQ with its reason; return once Kafka acknowledged it.

        A value too large for the dead letter (the headers added to a message near the
        size limit, or a DLQ topic with a lower limit) is left out rather than stall the
        partition at every restart: the dlq_* headers say where the original is.
        """
        original: list[Any] = list(msg.headers() or [])
        headers: list[tuple[str, str | bytes | None]] = [
            (str(item[0]), item[1]) for item in original if not str(item[0]).startswith("dlq_")
        ]
        headers += [
            ("dlq_reason", letter.reason.encode()),
            ("dlq_detail", letter.detail[:1000].encode()),
            ("dlq_topic", str(msg.topic()).encode()),
            ("dlq_partition", str(msg.partition()).encode()),
            ("dlq_offset", str(msg.offset()).encode()),
        ]
        value = msg.value()
        err = await self._send_dead_letter(msg.key(), value, headers)
        if err is not None and err.code() in REFUSED_FOR_GOOD:
            log.error("intake_dead_letter_value_dropped", size=len(value or b""), error=str(err))
            dropped = f"{len(value or b'')} bytes, too large for {DLQ_TOPIC}: {err.name()}"
            headers.append(("dlq_value_dropped", dropped.encode()))
            err = await self._send_dead_letter(msg.key(), None, headers)
        if err is not None:
            raise RuntimeError(f"the dead letter was not accepted: {err}")
        log.info("intake_dead_letter", reason=letter.reason, detail=letter.detail[:200])

    async def _send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, str | bytes | None]]
    ) -> KafkaError | None:
        """Produce one dead letter and wait for Kafka's answer: None, or why it refused."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(done.set_result, err)

        try:
            self.producer.produce(
                DLQ_TOPIC, key=key, value=value, headers=headers, on_delivery=on_delivery
            )
        except KafkaException as exc:  # refused before sending (larger than message.max.bytes)
            refused: KafkaError = exc.args[0]
            return refused
        while not done.done():
            await asyncio.to_thread(self.producer.poll, 0.1)
        return done.result()

    def _report_lag(self) -> None:
        """``kafka_consumer_lag`` every few seconds: high watermark minus committed offset.

        The committed offset, not the fetch position: the consumer prefetches, so its
        position runs ahead of what the database has taken; offsets are committed only
        after the database commit. This is also what kafka_exporter reports per group.
        """
        if time.monotonic() - self._lag_at < 5.0:
            return
        self._lag_at = time.monotonic()
        try:
            assigned = self.consumer.assignment()
            committed = self.consumer.committed(assigned, timeout=2.0) if assigned else []
            for tp in committed:
                marks = self.consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
                if marks is None:
                    continue
                metrics.CONSUMER_LAG.labels(
                    topic=tp.topic, partition=str(tp.partition), group=self.group
                ).set(partition_lag(*marks, committed=tp.offset))
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the intake
            log.debug("intake_lag_unavailable", error=str(exc))
