"""Helpers of the worker tests: start ``wms-server worker``, seed events, read metrics."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from tests.e2e.conftest import WMS_SERVER, Launch, ServerProcess, http_get, server_env
from tests.integration.kafka_fixtures import Broker
from wms.events import kafka, outbox_sql
from wms.events.relay import Relay, admin_connect

T = TypeVar("T")


def start_worker(
    launch: Launch, tmp_path: Path, database_url: str, brokers: str, **extra: str
) -> ServerProcess:
    """A worker process on the test database and broker, ready when /metrics answers."""
    env = server_env(
        tmp_path,
        DATABASE_URL=database_url,
        KAFKA_BROKERS=brokers,
        WMS_WORKER_POLL_SECONDS="0.5",
        **extra,
    )
    worker = launch(env, command=[WMS_SERVER, "worker"])
    wait_until(lambda: metric(worker, "wms_outbox_backlog") is not None, 30, worker)
    return worker


def metric(worker: ServerProcess, name: str) -> float | None:
    """The value of an unlabelled sample (or the sum over labels) on the worker's /metrics."""
    try:
        status, text = http_get(f"http://127.0.0.1:{worker.metrics_port}/metrics", 2.0)
    except OSError:
        return None
    if status != 200 or not isinstance(text, str):
        return None
    values = [
        float(m.group(1))
        for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    ]
    return sum(values) if values else None


def wait_until(
    check: Callable[[], object], timeout: float, worker: ServerProcess | None = None
) -> None:
    """Poll ``check`` until it is truthy; fail with the worker's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if worker is not None and worker.process.poll() is not None:
            raise AssertionError(f"worker exited {worker.process.returncode}:\n{worker.log()}")
        time.sleep(0.1)
    log = worker.log()[-5000:] if worker is not None else ""
    raise AssertionError(f"condition not met within {timeout} s\n{log}")


def write_events(
    database_url: str,
    tenant_id: int,
    events: list[tuple[str, dict[str, object]]],
    *,
    age_days: int = 0,
) -> list[uuid.UUID]:
    """Commit one test event per ``(aggregate id, data)``, in order, in one transaction."""
    ids = [uuid.uuid4() for _ in events]
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('role', 'wms_app', true)")
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO wms.outbox (tenant_id, event_id, type, source, subject, "
                "aggregate, aggregate_id, data, occurred_at) VALUES (%s, %s, "
                "'wms.test.sequenced', '/wms/local/-', %s, 'test', %s, %s, now() - %s)",
                [
                    (tenant_id, event_id, f"test/{key}", key, Jsonb(data), timedelta(days=age_days))
                    for event_id, (key, data) in zip(ids, events, strict=True)
                ],
            )
    return ids


def seed_events(
    database_url: str, tenant_id: int, *, keys: int, per_key: int, per_tx: int, start: int = 0
) -> None:
    """Commit ``keys × per_key`` events, ``per_tx`` per transaction, each key's in ``seq`` order."""
    rows: list[tuple[str, dict[str, object]]] = [
        (f"agg{k}", {"seq": seq}) for seq in range(start, start + per_key) for k in range(keys)
    ]  # interleaved keys, ascending seq per key
    for first in range(0, len(rows), per_tx):
        write_events(database_url, tenant_id, rows[first : first + per_tx])


def counts(database_url: str) -> tuple[int, int]:
    """(published, total) outbox rows."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(published_at), count(*) FROM wms.outbox").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def dedup_in_key_order(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Each key's ``seq`` values in the order a consumer de-duplicating by id applies them."""
    seen: set[str] = set()
    applied: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        event = record["value"]
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        applied[record["key"]].append(event["data"]["seq"])
    return applied


def relay_once(database_url: str, broker: Broker) -> int:
    """One relay pass of every shard, as a worker makes it."""

    async def _run() -> int:
        relay = Relay(
            admin_url=database_url,
            producer=kafka.producer(broker.url),
            stop=asyncio.Event(),
            shard_count=4,
        )
        try:
            await relay._connect()
            await relay._rebalance()
            return await relay.relay_once()
        finally:
            await relay.close()

    return asyncio.run(_run())


def as_worker(database_url: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` on the worker's admin session (``wms_admin``), then closed."""

    async def run() -> T:
        conn = await admin_connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def prune(database_url: str, *, published_only: bool) -> int:
    """One retention pass (168 hours, up to 100 events), as the worker makes it."""
    return as_worker(
        database_url,
        lambda conn: outbox_sql.prune(
            conn, retention_hours=168, limit=100, published_only=published_only
        ),
    )
