"""Helpers of the worker tests: start ``wms-server worker``, seed events, read metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.e2e.conftest import WMS_SERVER, Launch, ServerProcess, http_get, server_env


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


def seed_events(
    database_url: str, tenant_id: int, *, keys: int, per_key: int, per_tx: int, start: int = 0
) -> None:
    """Commit ``keys × per_key`` events, ``per_tx`` per transaction, each key's in ``seq`` order."""
    rows = [
        (f"agg{k}", seq) for seq in range(start, start + per_key) for k in range(keys)
    ]  # interleaved keys, ascending seq per key
    with psycopg.connect(database_url, autocommit=False) as conn:
        for first in range(0, len(rows), per_tx):
            with conn.transaction():
                conn.execute("SELECT set_config('role', 'wms_app', true)")
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO wms.outbox (tenant_id, event_id, type, source, subject, "
                        "aggregate, aggregate_id, data) VALUES (%s, %s, 'wms.test.sequenced', "
                        "'/wms/local/-', %s, 'test', %s, %s)",
                        [
                            (tenant_id, uuid.uuid4(), f"test/{key}", key, Jsonb({"seq": seq}))
                            for key, seq in rows[first : first + per_tx]
                        ],
                    )


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
